// A parsed JSON document that remembers where every value came from, so that a value
// copied unchanged into an output keeps its exact source bytes (a 64-bit id survives,
// "1.50" stays "1.50"). Parsing into a reused Document allocates nothing once warm.
#pragma once

#include <bit>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::json {

enum class Type : uint8_t { Null, False, True, Number, String, Array, Object };

struct Limits {
  uint32_t max_depth = 128;          // arrays/objects nested deeper are refused
  size_t max_bytes = 16u << 20;      // longer inputs are refused
};

// One value in document order (pre-order). Children of an array follow it; an object's
// members follow it as key (a String node), value, key, value, ...
struct Node {
  Type type;
  bool escaped = false;     // String: the source has escapes, decoded text lives in the arena
  bool integral = false;    // Number: no fraction and no exponent
  bool has_number = false;  // Number: str_off/str_len hold the value (see number_value)
  uint32_t begin = 0;     // raw span in source(): [begin, end)
  uint32_t end = 0;
  uint32_t count = 0;     // Array: elements; Object: members
  uint32_t next = 0;      // index of the node after this whole subtree
  // String: decoded text, in source() or arena() (see escaped). A Number with has_number
  // keeps the bits of its double here instead, read once at parse time rather than on
  // every use. An Object notes in str_off whether its keys repeat (see keys_unique).
  uint32_t str_off = 0;
  uint32_t str_len = 0;
};

class Document {
 public:
  // Parses `text` (copied). On failure returns false and sets error() to a message with
  // the byte offset ("invalid UTF-8 in string at byte 17"). Refuses: syntax errors,
  // invalid UTF-8 (also in escapes: lone surrogates), nesting over the limit, trailing
  // content, inputs over max_bytes.
  bool parse(std::string_view text, const Limits& limits = {});

  const std::string& error() const { return error_; }
  std::string_view source() const { return std::string_view(source_.data(), source_size_); }
  bool empty() const { return node_count_ == 0; }
  static constexpr uint32_t root() { return 0; }
  const Node& node(uint32_t i) const { return nodes_[i]; }
  uint32_t size() const { return node_count_; }

  std::string_view raw(uint32_t i) const { return raw_of(nodes_[i]); }
  std::string_view raw_of(const Node& n) const {
    return std::string_view(source_.data() + n.begin, n.end - n.begin);
  }
  // Decoded text of a String node. Inline, as number_value: every read of an event's field
  // by an expression goes through one of them.
  std::string_view string_value(uint32_t i) const {
    const Node& n = nodes_[i];
    if (n.type != Type::String) return {};
    return text_of(n);
  }
  // string_value of a node known to be a String.
  std::string_view text_of(const Node& n) const {
    return std::string_view((n.escaped ? arena_ : source_).data() + n.str_off, n.str_len);
  }
  double number_value(uint32_t i) const {
    const Node& n = nodes_[i];
    if (n.type == Type::Number && n.has_number) {
      return std::bit_cast<double>((static_cast<uint64_t>(n.str_len) << 32) | n.str_off);
    }
    return parse_number_value(i);
  }
  // True when a Number node is integral and fits int64 / uint64.
  bool int64_value(uint32_t i, int64_t& out) const;
  bool uint64_value(uint32_t i, uint64_t& out) const;

  // Index of the value of member `key` in object `obj`, or 0 when absent (0 is the root
  // and never a member). When a key occurs more than once, the last occurrence wins.
  uint32_t find_member(uint32_t obj, std::string_view key) const;
  // True when object `obj` repeats no key. Checked on the first lookup in the object (by
  // this or by find_member) and remembered; objects with more than 32 members are not
  // checked and answer false.
  bool keys_unique(uint32_t obj) const;
  // First child of an array or object (for objects: the first key). Step with node(i).next.
  static constexpr uint32_t first_child(uint32_t i) { return i + 1; }

 private:
  struct Parser;  // the parse state machine, defined in document.cc

  // Zero bytes after the input in source_: the parser reads the input 16 bytes at a time.
  static constexpr size_t kSourcePadding = 16;

  std::string source_;  // the input, then kSourcePadding zero bytes
  size_t source_size_ = 0;
  std::string arena_;
  // Only the first node_count_ are the document's: the array keeps its size from parse to
  // parse and the parser overwrites nodes in place, rather than appending (and
  // value-initializing) each one. Mutable for one thing only: the first find_member() on
  // an object records in the object's node whether its keys repeat (see keys_unique).
  mutable std::vector<Node> nodes_;
  uint32_t node_count_ = 0;
  std::string error_;
  bool object_keys_unique(uint32_t obj) const;  // keys_unique of a node known to be an object
  bool check_keys_unique(uint32_t obj) const;
  double parse_number_value(uint32_t i) const;
};

// Appends `s` as a JSON string literal (quotes included), escaping what JSON requires.
void append_quoted(std::string& out, std::string_view s);
// True when no byte of `s` needs an escape in a JSON string literal: a writer can copy
// `s` between quotes as it is.
bool escape_free(std::string_view s);

// Writes `d` as std::to_chars(first, last, d) does (the shortest text that reads back as
// `d`, fixed or scientific, whichever is shorter, fixed on a tie) into at least
// kMaxNumberChars bytes, and returns the end. The common number in an event (a few
// decimals, under 2^50 in all) is written without the general shortest-digits search.
// Infinities and NaN are the caller's to refuse.
inline constexpr size_t kMaxNumberChars = 32;
char* write_double(char* first, double d);

// True when `s` is valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view s);

}  // namespace switchboard::json
