#include "core/json/document.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <system_error>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace switchboard::json {
namespace {

inline unsigned char byte_at(const char* p) { return static_cast<unsigned char>(*p); }

// Bytes that may appear in a string literal as themselves and end nothing: printable
// ASCII except the quote and the backslash. Everything else needs a closer look.
constexpr std::array<bool, 256> kPlainStringByte = [] {
  std::array<bool, 256> table{};
  for (int c = 0x20; c < 0x80; ++c) table[c] = c != '"' && c != '\\';
  return table;
}();

constexpr std::array<bool, 256> kWhitespace = [] {
  std::array<bool, 256> table{};
  table[' '] = table['\t'] = table['\n'] = table['\r'] = true;
  return table;
}();

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Powers of ten that a double holds exactly.
constexpr double kExactPowersOfTen[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                        1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
constexpr int kMaxExactPowerOfTen = 22;
constexpr uint64_t kMaxExactMantissa = uint64_t{1} << 53;

// The 64 bits a Number node keeps in str_off and str_len.
inline uint64_t spare_bits(const Node& n) {
  return (static_cast<uint64_t>(n.str_len) << 32) | n.str_off;
}
inline void set_spare_bits(Node& n, uint64_t bits) {
  n.str_off = static_cast<uint32_t>(bits);
  n.str_len = static_cast<uint32_t>(bits >> 32);
}

// Flags, in the high bit of each byte, the bytes of `word` that a string literal cannot
// take as they are: control characters, '"', '\\' and non-ASCII. The borrows in these
// tricks can only flag bytes above a genuinely flagged one, so the lowest flag is exact.
inline uint64_t special_string_bytes(uint64_t word) {
  constexpr uint64_t ones = 0x0101010101010101ull;
  constexpr uint64_t highs = 0x8080808080808080ull;
  const uint64_t quote = word ^ (ones * '"');
  const uint64_t backslash = word ^ (ones * '\\');
  const uint64_t below_space = word - ones * 0x20;
  return ((below_space & ~word) | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) |
          word) &
         highs;
}

// Length of the well-formed UTF-8 sequence whose lead byte (>= 0x80) is at `p`, or 0
// when it is ill-formed. The second-byte ranges are those of Unicode table 3-7; they are
// what rules out overlong forms, UTF-16 surrogates and code points above U+10FFFF.
inline size_t utf8_sequence_length(const unsigned char* p, size_t available) {
  const unsigned char lead = p[0];
  unsigned char second_min = 0x80;
  unsigned char second_max = 0xBF;
  size_t length;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_min = 0xA0;       // overlong below U+0800
    else if (lead == 0xED) second_max = 0x9F;  // U+D800..U+DFFF
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_min = 0x90;       // overlong below U+10000
    else if (lead == 0xF4) second_max = 0x8F;  // above U+10FFFF
  } else {
    return 0;  // continuation byte, C0/C1 (always overlong) or F5..FF
  }
  if (available < length) return 0;
  if (p[1] < second_min || p[1] > second_max) return 0;
  for (size_t k = 2; k < length; ++k) {
    if ((p[k] & 0xC0) != 0x80) return 0;
  }
  return length;
}

inline int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads the four hex digits at `p`. Stops at the first non-hex byte, so it never reads
// past a terminating NUL.
inline bool read_hex4(const char* p, uint32_t& out) {
  uint32_t value = 0;
  for (int k = 0; k < 4; ++k) {
    const int digit = hex_digit_value(p[k]);
    if (digit < 0) return false;
    value = (value << 4) | static_cast<uint32_t>(digit);
  }
  out = value;
  return true;
}

void append_utf8(std::string& out, uint32_t code_point) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    const char bytes[2] = {static_cast<char>(0xC0 | (code_point >> 6)),
                           static_cast<char>(0x80 | (code_point & 0x3F))};
    out.append(bytes, 2);
  } else if (code_point < 0x10000) {
    const char bytes[3] = {static_cast<char>(0xE0 | (code_point >> 12)),
                           static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)),
                           static_cast<char>(0x80 | (code_point & 0x3F))};
    out.append(bytes, 3);
  } else {
    const char bytes[4] = {static_cast<char>(0xF0 | (code_point >> 18)),
                           static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)),
                           static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)),
                           static_cast<char>(0x80 | (code_point & 0x3F))};
    out.append(bytes, 4);
  }
}

// from_chars leaves the value untouched when it is out of double's range, so decide
// between infinity and zero from the literal's decimal magnitude. Out-of-range literals
// are either above ~1e308 or below ~1e-324, so the sign of the magnitude is enough.
double out_of_range_value(std::string_view literal) {
  const bool negative = !literal.empty() && literal.front() == '-';
  size_t i = negative ? 1 : 0;
  int64_t magnitude = 0;  // decimal exponent of the first non-zero digit, roughly
  bool seen_nonzero = false;
  for (; i < literal.size() && is_digit(literal[i]); ++i) {
    seen_nonzero = seen_nonzero || literal[i] != '0';
    if (seen_nonzero) ++magnitude;
  }
  if (i < literal.size() && literal[i] == '.') {
    for (++i; i < literal.size() && is_digit(literal[i]); ++i) {
      if (seen_nonzero) break;
      if (literal[i] != '0') seen_nonzero = true;
      else --magnitude;
    }
    while (i < literal.size() && is_digit(literal[i])) ++i;
  }
  if (i < literal.size() && (literal[i] == 'e' || literal[i] == 'E')) {
    ++i;
    bool exponent_negative = false;
    if (i < literal.size() && (literal[i] == '+' || literal[i] == '-')) {
      exponent_negative = literal[i] == '-';
      ++i;
    }
    // Saturate: the literal may carry an exponent with thousands of digits.
    int64_t exponent = 0;
    for (; i < literal.size() && is_digit(literal[i]); ++i) {
      exponent = std::min<int64_t>(exponent * 10 + (literal[i] - '0'), int64_t{1} << 40);
    }
    magnitude += exponent_negative ? -exponent : exponent;
  }
  const double value = magnitude > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  return negative ? -value : value;
}

// Failures are rare: building messages out of line keeps the hot loops small, and taking
// no Parser pointer leaves the compiler free to keep the parser's cursor in a register.
[[gnu::cold, gnu::noinline]] bool set_error(std::string& error, std::string_view prefix,
                                             std::string_view what, uint32_t offset,
                                             bool at_end_of_input) {
  error.assign(prefix);
  error += what;
  error += " at byte ";
  error += std::to_string(offset);
  if (at_end_of_input) error += " (end of input)";
  return false;
}

[[gnu::cold, gnu::noinline]] bool set_depth_error(std::string& error, uint32_t max_depth,
                                                   uint32_t offset) {
  return set_error(error, "nesting deeper than ", std::to_string(max_depth) + " levels", offset,
                   false);
}

}  // namespace

// The parser keeps one cursor `p` into source_, where the input is followed by NUL bytes
// (kSourcePadding of them). NUL is invalid wherever the grammar looks at a byte, so every
// scan stops on it without a separate bounds check; `p == end` then tells end of input
// from an embedded NUL.
struct Document::Parser {
  static constexpr uint32_t kNoContainer = UINT32_MAX;

  Document& doc;
  const char* const base;
  const char* const end;
  const char* p;
  const uint32_t max_depth;
  // The nodes are written through a pointer into doc.nodes_, whose size is the capacity;
  // doc.node_count_ is set from `count` at the end.
  Node* nodes;
  uint32_t capacity;
  uint32_t count = 0;
  // The innermost open container. While a container is open its `next` links to the one
  // around it, so the open containers form a stack without storage of their own.
  uint32_t current = kNoContainer;
  uint32_t depth = 0;

  uint32_t offset(const char* at) const { return static_cast<uint32_t>(at - base); }

  bool fail(std::string_view what, const char* at) {
    return set_error(doc.error_, "", what, offset(at), false);
  }

  bool fail_expected(std::string_view what, const char* at) {
    return set_error(doc.error_, "expected ", what, offset(at), at == end);
  }

  // A byte that cannot continue a string: the end of input, or a raw control character.
  bool fail_in_string(const char* open_quote) {
    if (p == end) return fail("unterminated string starting", open_quote);
    return fail("unescaped control character in string", p);
  }

  [[gnu::noinline]] void grow() {
    doc.nodes_.resize(std::max<size_t>(64, 2 * static_cast<size_t>(capacity)));
    nodes = doc.nodes_.data();
    capacity = static_cast<uint32_t>(std::min<size_t>(doc.nodes_.size(), UINT32_MAX));
  }

  // A reference to a node stays valid only until the next push_node, which may move them.
  [[gnu::always_inline]] uint32_t push_node(Type type, const char* at) {
    if (count == capacity) grow();
    const uint32_t index = count++;
    const uint32_t begin = offset(at);
    // Every field is stored, in place: the array is reused from parse to parse. (A
    // temporary copied in would be built with narrow stores and copied with wide loads,
    // which defeats store forwarding.)
    Node& node = nodes[index];
    node.type = type;
    node.escaped = false;
    node.integral = false;
    node.has_number = false;
    node.begin = begin;
    node.end = begin;
    node.count = 0;
    node.next = index + 1;
    node.str_off = 0;
    node.str_len = 0;
    return index;
  }

  [[gnu::always_inline]] void skip_whitespace() {
    // Most JSON on the wire has no whitespace between tokens.
    if (byte_at(p) > ' ') return;
    while (kWhitespace[byte_at(p)]) ++p;
  }

  [[gnu::always_inline]] bool open_container(Type type) {
    if (depth >= max_depth) return set_depth_error(doc.error_, max_depth, offset(p));
    const uint32_t index = push_node(type, p);
    nodes[index].next = current;
    current = index;
    ++depth;
    ++p;
    return true;
  }

  // `p` is at the closing bracket of the innermost open container.
  [[gnu::always_inline]] void close_container() {
    Node& container = nodes[current];
    ++p;
    container.end = offset(p);
    current = container.next;
    container.next = count;
    --depth;
  }

  // Parses `"key" :` inside the innermost open object, which gains a member.
  [[gnu::always_inline]] bool parse_member_key() {
    skip_whitespace();
    if (*p != '"') return fail_expected("a string key", p);
    if (!parse_string()) return false;
    ++nodes[current].count;
    skip_whitespace();
    if (*p != ':') return fail_expected("':'", p);
    ++p;
    return true;
  }

  [[gnu::always_inline]] bool parse_literal(std::string_view word, Type type) {
    // Comparing byte by byte stops at the first mismatch, which the NUL terminator is.
    for (size_t k = 0; k < word.size(); ++k) {
      if (p[k] != word[k]) return fail("invalid literal", p);
    }
    const uint32_t index = push_node(type, p);
    p += word.size();
    nodes[index].end = offset(p);
    return true;
  }

  // Also computes the value when that is cheap and exact: a mantissa of at most 2^53 and
  // a power of ten of at most 22 are both exact doubles, so one multiplication or
  // division rounds once, correctly, giving what from_chars gives. Other literals are
  // read by number_value() on demand.
  [[gnu::always_inline]] bool parse_number() {
    const char* start = p;
    bool integral = true;
    const bool negative = *p == '-';
    uint64_t mantissa = 0;  // wraps when there are more than 19 digits; then unused
    ptrdiff_t digits = 0;
    ptrdiff_t exponent = 0;
    if (negative) ++p;
    if (*p == '0') {
      ++p;
      if (is_digit(*p)) return fail("leading zero in number", start);
    } else if (is_digit(*p)) {
      const char* first = p;
      while (is_digit(*p)) {
        mantissa = mantissa * 10 + static_cast<uint64_t>(*p - '0');
        ++p;
      }
      digits = p - first;
    } else {
      return fail("expected a digit in number", p);
    }
    if (*p == '.') {
      ++p;
      if (!is_digit(*p)) return fail("expected a digit after '.' in number", p);
      const char* first = p;
      while (is_digit(*p)) {
        mantissa = mantissa * 10 + static_cast<uint64_t>(*p - '0');
        ++p;
      }
      digits += p - first;
      exponent = first - p;
      integral = false;
    }
    if (*p == 'e' || *p == 'E') {
      ++p;
      const bool exponent_negative = *p == '-';
      if (*p == '+' || *p == '-') ++p;
      if (!is_digit(*p)) return fail("expected a digit in exponent of number", p);
      ptrdiff_t written = 0;  // saturates: only whether it is small matters
      while (is_digit(*p)) {
        if (written < 100000) written = written * 10 + (*p - '0');
        ++p;
      }
      exponent += exponent_negative ? -written : written;
      integral = false;
    }
    const uint32_t index = push_node(Type::Number, start);
    Node& node = nodes[index];
    node.end = offset(p);
    node.integral = integral;
    if (digits <= 19 && mantissa <= kMaxExactMantissa && exponent >= -kMaxExactPowerOfTen &&
        exponent <= kMaxExactPowerOfTen) {
      double value = static_cast<double>(mantissa);
      value = exponent < 0 ? value / kExactPowersOfTen[-exponent]
                           : value * kExactPowersOfTen[exponent];
      set_spare_bits(node, std::bit_cast<uint64_t>(negative ? -value : value));
      node.has_number = true;
    }
    return true;
  }

  // Moves `p` to the first byte of a string literal that is not plain (kPlainStringByte).
  // The NUL after the input stops every scan, and the padding after it makes reading 16
  // bytes at any position up to the end safe.
  [[gnu::always_inline]] void skip_plain_string_bytes() {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(' ');
    for (;;) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      // A signed comparison: bytes of 0x80 and above are negative, so "below ' '" takes in
      // the control characters and everything that is not ASCII.
      const __m128i special =
          _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(bytes, quote), _mm_cmpeq_epi8(bytes, backslash)),
                       _mm_cmplt_epi8(bytes, space));
      const auto mask = static_cast<uint32_t>(_mm_movemask_epi8(special));
      if (mask != 0) {
        p += std::countr_zero(mask);
        return;
      }
      p += 16;
    }
#else
    if constexpr (std::endian::native == std::endian::little) {
      while (end - p >= 8) {
        uint64_t word;
        std::memcpy(&word, p, sizeof word);
        const uint64_t special = special_string_bytes(word);
        if (special != 0) {
          p += std::countr_zero(special) / 8;
          return;
        }
        p += 8;
      }
    }
    while (kPlainStringByte[byte_at(p)]) ++p;
#endif
  }

  // `p` is at the opening quote. Most strings have no escapes; those are only validated
  // and keep pointing into the source.
  [[gnu::always_inline]] bool parse_string() {
    const char* open_quote = p;
    const uint32_t index = push_node(Type::String, p);
    ++p;
    const char* text_begin = p;
    for (;;) {
      skip_plain_string_bytes();
      const unsigned char c = byte_at(p);
      if (c == '"') {
        break;
      } else if (c == '\\') {
        return parse_escaped_string(index, open_quote, text_begin);
      } else if (c >= 0x80) {
        const size_t length = utf8_sequence_length(reinterpret_cast<const unsigned char*>(p),
                                                   static_cast<size_t>(end - p));
        if (length == 0) return fail("invalid UTF-8 in string", p);
        p += length;
      } else {
        return fail_in_string(open_quote);
      }
    }
    Node& node = nodes[index];
    node.str_off = offset(text_begin);
    node.str_len = offset(p) - node.str_off;
    ++p;
    node.end = offset(p);
    return true;
  }

  // Continues parse_string at the first backslash, decoding the whole string into the
  // arena. Only arena offsets are kept: appending may move the arena.
  [[gnu::noinline]] bool parse_escaped_string(uint32_t index, const char* open_quote,
                                              const char* text_begin) {
    std::string& arena = doc.arena_;
    const size_t arena_begin = arena.size();
    arena.append(text_begin, p);
    for (;;) {
      const char* run = p;
      for (;;) {
        skip_plain_string_bytes();
        if (byte_at(p) >= 0x80) {
          const size_t length = utf8_sequence_length(reinterpret_cast<const unsigned char*>(p),
                                                     static_cast<size_t>(end - p));
          if (length == 0) return fail("invalid UTF-8 in string", p);
          p += length;
        } else {
          break;
        }
      }
      arena.append(run, p);
      if (*p == '"') break;
      if (*p != '\\') return fail_in_string(open_quote);
      if (!decode_escape(arena)) return false;
    }
    Node& node = nodes[index];
    node.escaped = true;
    node.str_off = static_cast<uint32_t>(arena_begin);
    node.str_len = static_cast<uint32_t>(arena.size() - arena_begin);
    ++p;
    node.end = offset(p);
    return true;
  }

  // `p` is at a backslash; appends the decoded character and moves past the escape.
  bool decode_escape(std::string& arena) {
    const char* escape = p;
    char decoded;
    switch (p[1]) {
      case '"': decoded = '"'; break;
      case '\\': decoded = '\\'; break;
      case '/': decoded = '/'; break;
      case 'b': decoded = '\b'; break;
      case 'f': decoded = '\f'; break;
      case 'n': decoded = '\n'; break;
      case 'r': decoded = '\r'; break;
      case 't': decoded = '\t'; break;
      case 'u': return decode_unicode_escape(arena);
      default:
        if (p + 1 == end) return fail("unterminated string ending in a backslash", escape);
        return fail("invalid escape in string", escape);
    }
    arena += decoded;
    p += 2;
    return true;
  }

  bool decode_unicode_escape(std::string& arena) {
    const char* escape = p;
    uint32_t code_point;
    if (!read_hex4(p + 2, code_point)) return fail("expected 4 hex digits after \\u", escape);
    p += 6;
    if (code_point >= 0xDC00 && code_point <= 0xDFFF) {
      return fail("lone low surrogate in \\u escape", escape);
    }
    if (code_point >= 0xD800 && code_point <= 0xDBFF) {
      uint32_t low;
      // Short-circuit order keeps every read at or before the NUL terminator.
      if (p[0] != '\\' || p[1] != 'u' || !read_hex4(p + 2, low) || low < 0xDC00 ||
          low > 0xDFFF) {
        return fail("lone high surrogate in \\u escape", escape);
      }
      code_point = 0x10000 + ((code_point - 0xD800) << 10) + (low - 0xDC00);
      p += 6;
    }
    append_utf8(arena, code_point);
    return true;
  }

  [[gnu::always_inline]] bool parse_scalar() {
    switch (*p) {
      case '"': return parse_string();
      case 't': return parse_literal("true", Type::True);
      case 'f': return parse_literal("false", Type::False);
      case 'n': return parse_literal("null", Type::Null);
      case '-':
      case '0': case '1': case '2': case '3': case '4':
      case '5': case '6': case '7': case '8': case '9':
        return parse_number();
      default:
        return fail_expected("a value", p);
    }
  }

  // Iterative rather than recursive so that depth is bounded by the stack of open
  // containers linked through the nodes, not by the C++ stack, whatever max_depth a
  // caller picks.
  bool run() {
    for (;;) {
      skip_whitespace();
      if (*p == '{') {
        if (!open_container(Type::Object)) return false;
        skip_whitespace();
        if (*p == '}') {
          close_container();
        } else {
          if (!parse_member_key()) return false;
          continue;
        }
      } else if (*p == '[') {
        if (!open_container(Type::Array)) return false;
        skip_whitespace();
        if (*p == ']') {
          close_container();
        } else {
          nodes[current].count = 1;
          continue;
        }
      } else if (!parse_scalar()) {
        return false;
      }

      // A value just ended: consume the closers that follow it, up to the separator that
      // introduces the next value.
      for (;;) {
        skip_whitespace();
        if (current == kNoContainer) {
          if (p != end) return fail("unexpected content after the value", p);
          return true;
        }
        Node& container = nodes[current];
        if (container.type == Type::Array) {
          if (*p == ',') {
            ++p;
            ++container.count;
            break;
          }
          if (*p != ']') return fail_expected("',' or ']'", p);
        } else {
          if (*p == ',') {
            ++p;
            if (!parse_member_key()) return false;
            break;
          }
          if (*p != '}') return fail_expected("',' or '}'", p);
        }
        close_container();
      }
    }
  }
};

bool Document::parse(std::string_view text, const Limits& limits) {
  // The nodes and the arena keep their capacity, which is what makes a warm parse
  // allocation-free.
  node_count_ = 0;
  arena_.clear();
  error_.clear();

  // Node offsets are uint32_t; no limit may admit inputs they cannot address.
  const size_t max_bytes =
      std::min<size_t>(limits.max_bytes, std::numeric_limits<uint32_t>::max() - kSourcePadding);
  if (text.size() > max_bytes) {
    source_.clear();
    source_size_ = 0;
    error_ = "input of " + std::to_string(text.size()) + " bytes exceeds the limit of " +
             std::to_string(max_bytes);
    return false;
  }
  source_.assign(text.data(), text.size());  // safe even when text views source_
  source_size_ = text.size();
  source_.append(kSourcePadding, '\0');
  if (source_size_ == 0) {
    error_ = "empty input";
    return false;
  }

  Parser parser{*this,
                source_.data(),
                source_.data() + source_size_,
                source_.data(),
                limits.max_depth,
                nodes_.data(),
                static_cast<uint32_t>(std::min<size_t>(nodes_.size(), UINT32_MAX))};
  if (!parser.run()) {
    arena_.clear();
    return false;
  }
  node_count_ = parser.count;
  return true;
}

// The slow part of number_value: literals whose value parse() did not compute.
double Document::parse_number_value(uint32_t i) const {
  const Node& n = nodes_[i];
  if (n.type != Type::Number) return 0.0;
  if (n.has_number) return std::bit_cast<double>(spare_bits(n));
  const std::string_view literal = raw(i);
  double value = 0.0;
  const auto result = std::from_chars(literal.data(), literal.data() + literal.size(), value);
  if (result.ec == std::errc::result_out_of_range) return out_of_range_value(literal);
  return value;
}

bool Document::int64_value(uint32_t i, int64_t& out) const {
  const Node& n = nodes_[i];
  if (n.type != Type::Number || !n.integral) return false;
  const std::string_view literal = raw(i);
  int64_t value = 0;
  const auto result = std::from_chars(literal.data(), literal.data() + literal.size(), value);
  if (result.ec != std::errc() || result.ptr != literal.data() + literal.size()) return false;
  out = value;
  return true;
}

// A negative literal, even "-0", is refused: from_chars for unsigned types takes no sign.
bool Document::uint64_value(uint32_t i, uint64_t& out) const {
  const Node& n = nodes_[i];
  if (n.type != Type::Number || !n.integral) return false;
  const std::string_view literal = raw(i);
  uint64_t value = 0;
  const auto result = std::from_chars(literal.data(), literal.data() + literal.size(), value);
  if (result.ec != std::errc() || result.ptr != literal.data() + literal.size()) return false;
  out = value;
  return true;
}


namespace {

template <typename Word>
inline Word load_word(const char* p) {
  Word w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

// Equality of two byte ranges of length n. Keys are short: up to 16 bytes are compared
// with two (possibly overlapping) loads of each, without a call to memcmp.
inline bool same_bytes(const char* a, const char* b, size_t n) {
  if (n >= 8) {
    if (n > 16) return std::memcmp(a, b, n) == 0;
    return load_word<uint64_t>(a) == load_word<uint64_t>(b) &&
           load_word<uint64_t>(a + n - 8) == load_word<uint64_t>(b + n - 8);
  }
  if (n >= 4) {
    return load_word<uint32_t>(a) == load_word<uint32_t>(b) &&
           load_word<uint32_t>(a + n - 4) == load_word<uint32_t>(b + n - 4);
  }
  if (n >= 2) {
    return load_word<uint16_t>(a) == load_word<uint16_t>(b) &&
           load_word<uint16_t>(a + n - 2) == load_word<uint16_t>(b + n - 2);
  }
  return n == 0 || *a == *b;
}

// What an object's node records in str_off about its keys (see Document::keys_unique).
enum : uint32_t { kKeysUnchecked = 0, kKeysUnique = 1, kKeysMayRepeat = 2 };
// Objects with more members than this are not checked for repeated keys; they are
// treated as if they repeated one.
constexpr uint32_t kMaxCheckedMembers = 32;

// One of 64 bits for a key, from its length and its first and last bytes. Keys with
// different bits differ; only keys with the same bit need comparing.
inline uint64_t key_hash_bit(const char* text, uint32_t length) {
  uint32_t hash = length * 0xC2B2AE3Du;
  if (length > 0) {
    hash ^= static_cast<unsigned char>(text[0]) * 0x9E3779B1u ^
            static_cast<unsigned char>(text[length - 1]) * 0x85EBCA77u;
  }
  return uint64_t{1} << (hash >> 26);
}

}  // namespace

// Checked on the first lookup in an object rather than at parse time, so that a payload
// only passed through never pays for it, and remembered in the object's node (whose
// str_off is 0 after the parse). Through std::atomic_ref, so that lookups on one
// document from several threads stay race-free; they would store the same answer.
bool Document::keys_unique(uint32_t obj) const {
  if (obj >= node_count_ || nodes_[obj].type != Type::Object) return false;
  return object_keys_unique(obj);
}

inline bool Document::object_keys_unique(uint32_t obj) const {
  const uint32_t known =
      std::atomic_ref<uint32_t>(nodes_[obj].str_off).load(std::memory_order_relaxed);
  if (known != kKeysUnchecked) return known == kKeysUnique;
  return check_keys_unique(obj);
}

bool Document::check_keys_unique(uint32_t obj) const {
  const Node* const nodes = nodes_.data();
  const char* const source = source_.data();
  const char* const arena = arena_.data();
  const uint32_t count = nodes[obj].count;
  bool unique = count <= kMaxCheckedMembers;
  // A bit per hash of the keys so far: only a key whose bit is taken is compared with
  // them, and then by length first.
  uint64_t seen = 0;
  uint32_t lengths[kMaxCheckedMembers];
  const char* texts[kMaxCheckedMembers];
  uint32_t key = first_child(obj);
  for (uint32_t m = 0; m < count && unique; ++m) {
    const Node& k = nodes[key];
    const uint32_t length = k.str_len;
    const char* text = (k.escaped ? arena : source) + k.str_off;
    const uint64_t bit = key_hash_bit(text, length);
    if ((seen & bit) != 0) {
      for (uint32_t e = 0; e < m; ++e) {
        if (lengths[e] == length && same_bytes(texts[e], text, length)) {
          unique = false;
          break;
        }
      }
    }
    seen |= bit;
    lengths[m] = length;
    texts[m] = text;
    key = nodes[key + 1].next;
  }
  std::atomic_ref<uint32_t>(nodes_[obj].str_off)
      .store(unique ? kKeysUnique : kKeysMayRepeat, std::memory_order_relaxed);
  return unique;
}

// With duplicate keys the last occurrence wins, as in most JSON libraries that build a
// map (and in JavaScript's JSON.parse), so the whole object is scanned unless the
// document is known to repeat no key. Keys are compared by length first: most differ
// there, which keeps the scan cheap.
uint32_t Document::find_member(uint32_t obj, std::string_view key) const {
  if (obj >= node_count_) return 0;
  const Node* const nodes = nodes_.data();
  if (nodes[obj].type != Type::Object) return 0;
  const bool first_wins = object_keys_unique(obj);
  const uint32_t count = nodes[obj].count;
  const char* const source = source_.data();
  const char* const arena = arena_.data();
  uint32_t found = 0;
  uint32_t key_index = first_child(obj);
  for (uint32_t m = 0; m < count; ++m) {
    const Node& k = nodes[key_index];
    if (k.str_len == key.size() &&
        same_bytes((k.escaped ? arena : source) + k.str_off, key.data(), key.size())) {
      found = key_index + 1;
      if (first_wins) break;
    }
    key_index = nodes[key_index + 1].next;
  }
  return found;
}

namespace {

// Flags, in the high bit of each byte, the bytes of `word` that a string literal must
// escape: control characters, '"' and '\\'. As in special_string_bytes, only the lowest
// flag is exact.
inline uint64_t escaped_string_bytes(uint64_t word) {
  constexpr uint64_t ones = 0x0101010101010101ull;
  constexpr uint64_t highs = 0x8080808080808080ull;
  const uint64_t quote = word ^ (ones * '"');
  const uint64_t backslash = word ^ (ones * '\\');
  const uint64_t below_space = word - ones * 0x20;
  return ((below_space & ~word) | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash)) &
         highs;
}

inline bool needs_escape(unsigned char c) { return c < 0x20 || c == '"' || c == '\\'; }

template <typename Word>
inline uint64_t load_bytes(const char* p) {
  Word w;
  std::memcpy(&w, p, sizeof w);
  return w;
}

}  // namespace

char* write_double(char* first, double d) {
  // A value with k <= 6 decimals is m / 10^k for the integer m = round(|d| * 10^k): below
  // 2^50 that product is within a quarter of m, and the division, exact operands rounded
  // once, gives back |d| exactly when the text "m with k decimals" reads back as `d`. The
  // smallest such k has the fewest digits, which is what std::to_chars finds.
  static constexpr double kPow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6};
  const double a = std::fabs(d);
  if (!(a < 0x1p50)) return std::to_chars(first, first + kMaxNumberChars, d).ptr;
  for (int k = 0; k <= 6; ++k) {
    const double scaled = a * kPow10[k];
    if (!(scaled < 0x1p50)) break;
    const auto m = static_cast<uint64_t>(scaled + 0.5);
    if (static_cast<double>(m) / kPow10[k] != a) continue;
    char digits[24];
    const auto n = static_cast<int>(std::to_chars(digits, digits + sizeof digits, m).ptr - digits);
    // Lengths without the sign, as std::to_chars compares them: fixed "123.45",
    // "0.0012", "1200"; scientific "1.2345e+02", "1.2e-03", "1.2e+03".
    int significant = n;
    if (k == 0) {
      while (significant > 1 && digits[significant - 1] == '0') --significant;
    }
    const int exponent = n - 1 - k;
    const int exponent_digits = std::abs(exponent) >= 100 ? 3 : 2;
    const int scientific = (significant > 1 ? significant + 1 : 1) + 2 + exponent_digits;
    const int fixed = (n > k ? n - k : 1) + (k > 0 ? 1 + k : 0);
    if (fixed > scientific) break;
    char* out = first;
    if (std::signbit(d)) *out++ = '-';
    if (n > k) {
      std::memcpy(out, digits, static_cast<size_t>(n - k));
      out += n - k;
      if (k > 0) {
        *out++ = '.';
        std::memcpy(out, digits + (n - k), static_cast<size_t>(k));
        out += k;
      }
    } else {
      *out++ = '0';
      *out++ = '.';
      std::memset(out, '0', static_cast<size_t>(k - n));
      out += k - n;
      std::memcpy(out, digits, static_cast<size_t>(n));
      out += n;
    }
    return out;
  }
  return std::to_chars(first, first + kMaxNumberChars, d).ptr;
}

// Eight bytes at a time: the last word of a string overlaps the one before it, and a
// shorter string is assembled from overlapping reads of its bytes, so no byte is looked at
// on its own.
bool escape_free(std::string_view s) {
  const char* p = s.data();
  const size_t n = s.size();
  uint64_t flags = 0;
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) flags |= escaped_string_bytes(load_bytes<uint64_t>(p + i));
    flags |= escaped_string_bytes(load_bytes<uint64_t>(p + n - 8));
  } else if (n >= 4) {
    flags = escaped_string_bytes(load_bytes<uint32_t>(p) | load_bytes<uint32_t>(p + n - 4) << 32);
  } else if (n > 0) {
    // Bytes 0, n / 2 and n - 1 are all the bytes; the rest of the word is a plain 'a'.
    const uint64_t word = 0x6161616161000000ull | static_cast<unsigned char>(p[0]) |
                          static_cast<uint64_t>(static_cast<unsigned char>(p[n / 2])) << 8 |
                          static_cast<uint64_t>(static_cast<unsigned char>(p[n - 1])) << 16;
    flags = escaped_string_bytes(word);
  }
  // A flag can be false only above a true one, whatever the byte order: none means none.
  return flags == 0;
}

void append_quoted(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 2);
  out += '"';
  // Most text needs no escape: it is copied in one go.
  if (escape_free(s)) {
    out += s;
    out += '"';
    return;
  }
  size_t run_begin = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (!needs_escape(c)) continue;
    out.append(s.data() + run_begin, i - run_begin);
    run_begin = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: {
        const char escape[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(escape, 6);
      }
    }
  }
  out.append(s.data() + run_begin, s.size() - run_begin);
  out += '"';
}

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* const end = p + s.size();
  while (p != end) {
    // Text is mostly ASCII: test eight bytes at a time for a set high bit.
    while (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, sizeof word);
      if (word & 0x8080808080808080ull) break;
      p += 8;
    }
    if (p == end) break;
    if (*p < 0x80) {
      ++p;
      continue;
    }
    const size_t length = utf8_sequence_length(p, static_cast<size_t>(end - p));
    if (length == 0) return false;
    p += length;
  }
  return true;
}

}  // namespace switchboard::json
