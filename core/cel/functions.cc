#include "core/cel/functions.h"

#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/cel/time.h"
#include "core/json/document.h"

namespace switchboard::cel {

Value no_overload(std::string_view fn, const Value* args, size_t n) {
  std::string msg = "no matching overload for '";
  msg += fn;
  msg += "' applied to (";
  for (size_t i = 0; i < n; ++i) {
    if (i) msg += ", ";
    msg += type_name(args[i]);
  }
  msg += ")";
  return Value::error(std::move(msg));
}

namespace {

// --- The step budget, for work proportional to the size of the data ---

Value over_budget(const EvalState& st) {
  return Value::error("evaluation exceeded its budget of " + std::to_string(st.max_steps) +
                      " steps");
}

bool charge(EvalState& st, uint64_t n) {
  if (st.exhausted || st.steps > st.max_steps || n > st.max_steps - st.steps) {
    st.exhausted = true;
    return false;
  }
  st.steps += n;
  return true;
}

// Charges one step per element of a list or map, nested ones included, and per KiB of
// text in them, and stops as soon as the budget is spent. Values share structure:
// [1].map(a, [a, a]).map(a, [a, a])... builds in a few steps a list whose full traversal
// (by ==, in, format) is exponential, and a list can hold one long string many times.
bool charge_container(const Value& v, EvalState& st);

// Inline for the common operands, scalars and short strings; containers are walked out of
// line.
inline bool charge_elements(const Value& v, EvalState& st) {
  if (v.kind() == Kind::String || v.kind() == Kind::Bytes) return charge(st, v.text().size() / 1024);
  if (v.kind() != Kind::List && v.kind() != Kind::Map) return true;
  return charge_container(v, st);
}

bool charge_container(const Value& v, EvalState& st) {
  if (v.is_json()) {
    // A JSON subtree is stored flat: its size is known without walking it.
    const json::Node& n = v.json_doc()->node(v.json_node());
    return charge(st, n.next - v.json_node() + (n.end - n.begin) / 1024);
  }
  if (!charge(st, v.size())) return false;
  if (v.kind() == Kind::List) {
    for (const Value& item : v.owned_list()) {
      if (!charge_elements(item, st)) return false;
    }
  } else {
    for (const auto& entry : v.owned_map()) {
      if (!charge_elements(entry.first, st) || !charge_elements(entry.second, st)) return false;
    }
  }
  return true;
}

// --- UTF-8 helpers: CEL string indices and sizes count code points. ---

size_t utf8_len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  return 4;
}

size_t code_points(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); i += utf8_len(static_cast<unsigned char>(s[i]))) ++n;
  return n;
}

// Byte offset of code point `cp` (cp may equal the count: the end).
size_t byte_offset(std::string_view s, size_t cp) {
  size_t i = 0;
  while (cp > 0 && i < s.size()) {
    i += utf8_len(static_cast<unsigned char>(s[i]));
    --cp;
  }
  return std::min(i, s.size());
}

std::string format_double(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}

Value check_size(std::string s, const EvalState& st, bool bytes = false) {
  if (s.size() > st.max_string_bytes) {
    return Value::error("result of " + std::to_string(s.size()) + " bytes exceeds the limit of " +
                        std::to_string(st.max_string_bytes));
  }
  return bytes ? Value::bytes(std::move(s)) : Value::string(std::move(s));
}

// --- Arithmetic ---

// A duration computed by arithmetic must fit in int64 nanoseconds (about ±292 years), as
// in the reference implementations; a parsed one may span ±10,000 years.
bool fits_nanos(Time d) {
  int64_t ns;
  return !__builtin_mul_overflow(d.seconds, int64_t{1'000'000'000}, &ns) &&
         !__builtin_add_overflow(ns, int64_t{d.nanos}, &ns);
}

Value time_add(Time a, Time b, bool timestamp) {
  Time r = timestamp ? time::normalize_timestamp(a.seconds + b.seconds, int64_t{a.nanos} + b.nanos)
                     : time::normalize_duration(a.seconds + b.seconds, int64_t{a.nanos} + b.nanos);
  if (timestamp ? !time::timestamp_in_range(r) : !fits_nanos(r)) {
    return Value::error(timestamp ? "timestamp out of range" : "duration out of range");
  }
  return timestamp ? Value::timestamp(r) : Value::duration(r);
}

Time negate(Time t) { return Time{-t.seconds, -t.nanos}; }

Value fn_add(const Expr&, Value* a, size_t, EvalState& st) {
  Kind k0 = a[0].kind(), k1 = a[1].kind();
  if (k0 == k1) {
    switch (k0) {
      case Kind::Int: {
        int64_t r;
        if (__builtin_add_overflow(a[0].int_value(), a[1].int_value(), &r))
          return Value::error("integer overflow in addition");
        return Value::integer(r);
      }
      case Kind::Uint: {
        uint64_t r;
        if (__builtin_add_overflow(a[0].uint_value(), a[1].uint_value(), &r))
          return Value::error("unsigned integer overflow in addition");
        return Value::uinteger(r);
      }
      case Kind::Double:
        return Value::dbl(a[0].double_value() + a[1].double_value());
      case Kind::String:
      case Kind::Bytes: {
        std::string s;
        s.reserve(a[0].text().size() + a[1].text().size());
        s += a[0].text();
        s += a[1].text();
        return check_size(std::move(s), st, k0 == Kind::Bytes);
      }
      case Kind::List: {
        if (a[0].size() + a[1].size() > st.max_string_bytes)
          return Value::error("list concatenation exceeds the size limit");
        // elements(), not element(i): on a JSON array the latter walks i siblings.
        ValueList items, tail;
        a[0].elements(items);
        a[1].elements(tail);
        items.insert(items.end(), tail.begin(), tail.end());
        return Value::list(std::move(items));
      }
      case Kind::Duration:
        return time_add(a[0].time_value(), a[1].time_value(), false);
      default:
        break;
    }
  }
  if (k0 == Kind::Timestamp && k1 == Kind::Duration)
    return time_add(a[0].time_value(), a[1].time_value(), true);
  if (k0 == Kind::Duration && k1 == Kind::Timestamp)
    return time_add(a[1].time_value(), a[0].time_value(), true);
  return no_overload("_+_", a, 2);
}

Value fn_sub(const Expr&, Value* a, size_t, EvalState&) {
  Kind k0 = a[0].kind(), k1 = a[1].kind();
  if (k0 == k1) {
    switch (k0) {
      case Kind::Int: {
        int64_t r;
        if (__builtin_sub_overflow(a[0].int_value(), a[1].int_value(), &r))
          return Value::error("integer overflow in subtraction");
        return Value::integer(r);
      }
      case Kind::Uint: {
        uint64_t r;
        if (__builtin_sub_overflow(a[0].uint_value(), a[1].uint_value(), &r))
          return Value::error("unsigned integer overflow in subtraction");
        return Value::uinteger(r);
      }
      case Kind::Double:
        return Value::dbl(a[0].double_value() - a[1].double_value());
      case Kind::Duration:
        return time_add(a[0].time_value(), negate(a[1].time_value()), false);
      case Kind::Timestamp:
        return time_add(a[0].time_value(), negate(a[1].time_value()), false);
      default:
        break;
    }
  }
  if (k0 == Kind::Timestamp && k1 == Kind::Duration)
    return time_add(a[0].time_value(), negate(a[1].time_value()), true);
  return no_overload("_-_", a, 2);
}

Value fn_mul(const Expr&, Value* a, size_t, EvalState&) {
  Kind k0 = a[0].kind();
  if (k0 == a[1].kind()) {
    if (k0 == Kind::Int) {
      int64_t r;
      if (__builtin_mul_overflow(a[0].int_value(), a[1].int_value(), &r))
        return Value::error("integer overflow in multiplication");
      return Value::integer(r);
    }
    if (k0 == Kind::Uint) {
      uint64_t r;
      if (__builtin_mul_overflow(a[0].uint_value(), a[1].uint_value(), &r))
        return Value::error("unsigned integer overflow in multiplication");
      return Value::uinteger(r);
    }
    if (k0 == Kind::Double) return Value::dbl(a[0].double_value() * a[1].double_value());
  }
  return no_overload("_*_", a, 2);
}

Value fn_div(const Expr&, Value* a, size_t, EvalState&) {
  Kind k0 = a[0].kind();
  if (k0 == a[1].kind()) {
    if (k0 == Kind::Int) {
      if (a[1].int_value() == 0) return Value::error("division by zero");
      if (a[0].int_value() == INT64_MIN && a[1].int_value() == -1)
        return Value::error("integer overflow in division");
      return Value::integer(a[0].int_value() / a[1].int_value());
    }
    if (k0 == Kind::Uint) {
      if (a[1].uint_value() == 0) return Value::error("division by zero");
      return Value::uinteger(a[0].uint_value() / a[1].uint_value());
    }
    if (k0 == Kind::Double) return Value::dbl(a[0].double_value() / a[1].double_value());
  }
  return no_overload("_/_", a, 2);
}

Value fn_mod(const Expr&, Value* a, size_t, EvalState&) {
  Kind k0 = a[0].kind();
  if (k0 == a[1].kind()) {
    if (k0 == Kind::Int) {
      if (a[1].int_value() == 0) return Value::error("modulus by zero");
      if (a[0].int_value() == INT64_MIN && a[1].int_value() == -1)
        return Value::error("integer overflow in modulus");
      return Value::integer(a[0].int_value() % a[1].int_value());
    }
    if (k0 == Kind::Uint) {
      if (a[1].uint_value() == 0) return Value::error("modulus by zero");
      return Value::uinteger(a[0].uint_value() % a[1].uint_value());
    }
  }
  return no_overload("_%_", a, 2);
}

// --- Comparison ---

// Equality visits at most the elements of the left operand, and none when two containers
// differ in size.
bool charge_equality(const Value* a, EvalState& st) {
  if (a[0].kind() == a[1].kind() && a[0].size() != a[1].size()) return true;
  return charge_elements(a[0], st);
}

Value fn_eq(const Expr&, Value* a, size_t, EvalState& st) {
  if (!charge_equality(a, st)) return over_budget(st);
  return Value::boolean(equals(a[0], a[1]));
}
Value fn_ne(const Expr&, Value* a, size_t, EvalState& st) {
  if (!charge_equality(a, st)) return over_budget(st);
  return Value::boolean(!equals(a[0], a[1]));
}

template <bool (*Pred)(int)>
Value relational(const Expr& e, Value* a, size_t, EvalState&) {
  bool ok = false;
  int c = compare(a[0], a[1], ok);
  if (!ok) return no_overload(e.name, a, 2);
  if (c == 2) return Value::boolean(false);  // NaN is unordered
  return Value::boolean(Pred(c));
}
bool lt(int c) { return c < 0; }
bool le(int c) { return c <= 0; }
bool gt(int c) { return c > 0; }
bool ge(int c) { return c >= 0; }

Value fn_in(const Expr&, Value* a, size_t, EvalState& st) {
  if (a[1].kind() == Kind::List) {
    // Comparing with each element visits at most the elements of the list.
    if (!charge_elements(a[1], st)) return over_budget(st);
    // Literal lists are owned: scan them in place, without a copy per event.
    if (!a[1].is_json()) {
      for (const Value& item : a[1].owned_list()) {
        if (equals(a[0], item)) return Value::boolean(true);
      }
      return Value::boolean(false);
    }
    ValueList items;
    a[1].elements(items);
    for (const Value& item : items) {
      if (equals(a[0], item)) return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  if (a[1].kind() == Kind::Map) {
    bool found = false;
    a[1].find(a[0], found);
    return Value::boolean(found);
  }
  return no_overload("@in", a, 2);
}

}  // namespace

Value index_value(const Value& c, const Value& k) {
  if (c.kind() == Kind::List) {
    int64_t i;
    if (k.kind() == Kind::Int) {
      i = k.int_value();
    } else if (k.kind() == Kind::Uint) {
      if (k.uint_value() > static_cast<uint64_t>(INT64_MAX)) return Value::error("index out of range");
      i = static_cast<int64_t>(k.uint_value());
    } else if (k.kind() == Kind::Double) {
      double d = k.double_value();
      if (d != std::trunc(d) || std::isnan(d)) return Value::error("list index is not an integer");
      if (d < -1e18 || d > 1e18) return Value::error("index out of range");
      i = static_cast<int64_t>(d);
    } else {
      Value args[2] = {c, k};
      return no_overload("_[_]", args, 2);
    }
    if (i < 0 || static_cast<uint64_t>(i) >= c.size()) {
      return Value::error("index " + std::to_string(i) + " out of range for a list of size " +
                          std::to_string(c.size()));
    }
    return c.element(static_cast<size_t>(i));
  }
  if (c.kind() == Kind::Map) {
    Kind kk = k.kind();
    if (kk != Kind::String && kk != Kind::Int && kk != Kind::Uint && kk != Kind::Bool &&
        kk != Kind::Double) {
      Value args[2] = {c, k};
      return no_overload("_[_]", args, 2);
    }
    bool found = false;
    Value v = c.find(k, found);
    if (!found) return Value::error("no such key: " + debug_string(k));
    return v;
  }
  Value args[2] = {c, k};
  return no_overload("_[_]", args, 2);
}

namespace {

// --- Strings ---

Value fn_size(const Expr&, Value* a, size_t, EvalState&) {
  switch (a[0].kind()) {
    case Kind::String:
      return Value::integer(static_cast<int64_t>(code_points(a[0].text())));
    case Kind::Bytes:
      return Value::integer(static_cast<int64_t>(a[0].text().size()));
    case Kind::List:
    case Kind::Map:
      return Value::integer(static_cast<int64_t>(a[0].size()));
    default:
      return no_overload("size", a, 1);
  }
}

bool both_strings(const Value* a) { return a[0].kind() == Kind::String && a[1].kind() == Kind::String; }

Value fn_contains(const Expr& e, Value* a, size_t, EvalState&) {
  if (!both_strings(a)) return no_overload(e.name, a, 2);
  return Value::boolean(a[0].text().find(a[1].text()) != std::string_view::npos);
}
Value fn_starts_with(const Expr& e, Value* a, size_t, EvalState&) {
  if (!both_strings(a)) return no_overload(e.name, a, 2);
  return Value::boolean(a[0].text().starts_with(a[1].text()));
}
Value fn_ends_with(const Expr& e, Value* a, size_t, EvalState&) {
  if (!both_strings(a)) return no_overload(e.name, a, 2);
  return Value::boolean(a[0].text().ends_with(a[1].text()));
}

// RE2 matches in time linear in the text, but when a pattern's DFA outgrows its memory RE2
// falls back to an NFA that costs a few ns per byte per instruction of the program: 7 s for
// 1 MiB of text and a pattern of 1,800 instructions. A step per 64 bytes per instruction
// bounds that worst case to about ten times the time of plain steps.
bool charge_match(EvalState& st, size_t text_bytes, const RE2& re) {
  return charge(st, text_bytes * static_cast<uint64_t>(re.ProgramSize()) / 64);
}

Value fn_matches(const Expr& e, Value* a, size_t, EvalState& st) {
  if (!both_strings(a)) return no_overload(e.name, a, 2);
  re2::StringPiece text(a[0].text().data(), a[0].text().size());
  if (e.regex) {
    if (!charge_match(st, text.size(), *e.regex)) return over_budget(st);
    return Value::boolean(RE2::PartialMatch(text, *e.regex));
  }
  // Compiling costs over 100 ns per byte of pattern, repeated on every call: a step per
  // byte keeps a long pattern matched in a loop within the budget.
  if (!charge(st, a[1].text().size())) return over_budget(st);
  RE2::Options opts;
  opts.set_log_errors(false);
  opts.set_max_mem(static_cast<int64_t>(st.max_regex_memory));
  RE2 re(re2::StringPiece(a[1].text().data(), a[1].text().size()), opts);
  // A few bytes of pattern can compile to thousands of instructions (\pL{20}: 24,000) at up
  // to 3 us each: a step per byte of pattern does not pay for that, 32 per instruction does.
  // A pattern over the limits pays whatever budget is left, so that no loop can compile it
  // again, and its error is what the expression returns if nothing runs after it.
  const auto program = static_cast<uint64_t>(re.ok() ? re.ProgramSize() : 0);
  if (re.error_code() == RE2::ErrorPatternTooLarge || program > st.max_regex_program) {
    (void)charge(st, st.steps < st.max_steps ? st.max_steps - st.steps : 0);
    if (program == 0) {
      return Value::error("regular expression too large (over " + std::to_string(st.max_regex_memory) +
                          " bytes of RE2 memory)");
    }
    return Value::error("regular expression too large (program size " + std::to_string(program) + ", limit " +
                        std::to_string(st.max_regex_program) + ")");
  }
  if (!re.ok()) return Value::error("invalid regular expression: " + re.error());
  if (!charge(st, program * 32) || !charge_match(st, text.size(), re)) return over_budget(st);
  return Value::boolean(RE2::PartialMatch(text, re));
}

Value fn_lower_ascii(const Expr& e, Value* a, size_t, EvalState&) {
  if (a[0].kind() != Kind::String) return no_overload(e.name, a, 1);
  std::string s(a[0].text());
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return Value::string(std::move(s));
}

Value fn_upper_ascii(const Expr& e, Value* a, size_t, EvalState&) {
  if (a[0].kind() != Kind::String) return no_overload(e.name, a, 1);
  std::string s(a[0].text());
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return Value::string(std::move(s));
}

bool get_int(const Value& v, int64_t& out) {
  if (v.kind() != Kind::Int) return false;
  out = v.int_value();
  return true;
}

Value fn_char_at(const Expr& e, Value* a, size_t, EvalState&) {
  int64_t i;
  if (a[0].kind() != Kind::String || !get_int(a[1], i)) return no_overload(e.name, a, 2);
  std::string_view s = a[0].text();
  size_t n = code_points(s);
  if (i < 0 || static_cast<size_t>(i) > n) return Value::error("index out of range: " + std::to_string(i));
  if (static_cast<size_t>(i) == n) return Value::string("");
  size_t b = byte_offset(s, static_cast<size_t>(i));
  return Value::string(std::string(s.substr(b, utf8_len(static_cast<unsigned char>(s[b])))));
}

Value fn_index_of(const Expr& e, Value* a, size_t n, EvalState&) {
  int64_t offset = 0;
  if (!both_strings(a) || (n == 3 && !get_int(a[2], offset))) return no_overload(e.name, a, n);
  std::string_view s = a[0].text(), sub = a[1].text();
  size_t len = code_points(s);
  if (offset < 0 || static_cast<size_t>(offset) > len)
    return Value::error("index out of range: " + std::to_string(offset));
  size_t start = byte_offset(s, static_cast<size_t>(offset));
  size_t pos = s.find(sub, start);
  if (pos == std::string_view::npos) return Value::integer(-1);
  return Value::integer(static_cast<int64_t>(code_points(s.substr(0, pos))));
}

Value fn_last_index_of(const Expr& e, Value* a, size_t n, EvalState&) {
  if (!both_strings(a)) return no_overload(e.name, a, n);
  std::string_view s = a[0].text(), sub = a[1].text();
  size_t len = code_points(s);
  int64_t offset = static_cast<int64_t>(len);
  if (n == 3 && !get_int(a[2], offset)) return no_overload(e.name, a, n);
  if (offset < 0 || static_cast<size_t>(offset) > len)
    return Value::error("index out of range: " + std::to_string(offset));
  size_t start = byte_offset(s, static_cast<size_t>(offset));
  size_t pos = s.rfind(sub, start);
  if (pos == std::string_view::npos) return Value::integer(-1);
  return Value::integer(static_cast<int64_t>(code_points(s.substr(0, pos))));
}

Value fn_replace(const Expr& e, Value* a, size_t n, EvalState& st) {
  int64_t limit = -1;
  if (!both_strings(a) || a[2].kind() != Kind::String || (n == 4 && !get_int(a[3], limit)))
    return no_overload(e.name, a, n);
  std::string_view s = a[0].text(), from = a[1].text(), to = a[2].text();
  std::string out;
  size_t i = 0;
  int64_t done = 0;
  while (limit < 0 || done < limit) {
    size_t pos;
    if (from.empty()) {
      // An empty pattern matches before every code point and at the end.
      if (i > s.size()) break;
      out += to;
      ++done;
      if (i == s.size()) { i = s.size() + 1; break; }
      size_t len = utf8_len(static_cast<unsigned char>(s[i]));
      out += s.substr(i, len);
      i += len;
      if (out.size() > st.max_string_bytes) break;
      continue;
    }
    pos = s.find(from, i);
    if (pos == std::string_view::npos) break;
    out += s.substr(i, pos - i);
    out += to;
    i = pos + from.size();
    ++done;
    if (out.size() > st.max_string_bytes) break;
  }
  if (i < s.size()) out += s.substr(i);
  return check_size(std::move(out), st);
}

Value fn_split(const Expr& e, Value* a, size_t n, EvalState&) {
  int64_t limit = -1;
  if (!both_strings(a) || (n == 3 && !get_int(a[2], limit))) return no_overload(e.name, a, n);
  std::string_view s = a[0].text(), sep = a[1].text();
  ValueList parts;
  if (limit == 0) return Value::list({});
  if (sep.empty()) {
    size_t i = 0;
    while (i < s.size()) {
      if (limit > 0 && static_cast<int64_t>(parts.size()) == limit - 1) {
        parts.push_back(Value::string(std::string(s.substr(i))));
        return Value::list(std::move(parts));
      }
      size_t len = utf8_len(static_cast<unsigned char>(s[i]));
      parts.push_back(Value::string(std::string(s.substr(i, len))));
      i += len;
    }
    return Value::list(std::move(parts));
  }
  size_t i = 0;
  while (true) {
    if (limit > 0 && static_cast<int64_t>(parts.size()) == limit - 1) break;
    size_t pos = s.find(sep, i);
    if (pos == std::string_view::npos) break;
    parts.push_back(Value::string(std::string(s.substr(i, pos - i))));
    i = pos + sep.size();
  }
  parts.push_back(Value::string(std::string(s.substr(i))));
  return Value::list(std::move(parts));
}

Value fn_substring(const Expr& e, Value* a, size_t n, EvalState&) {
  int64_t start, end;
  if (a[0].kind() != Kind::String || !get_int(a[1], start)) return no_overload(e.name, a, n);
  std::string_view s = a[0].text();
  auto len = static_cast<int64_t>(code_points(s));
  end = len;
  if (n == 3 && !get_int(a[2], end)) return no_overload(e.name, a, n);
  if (start < 0 || start > len) return Value::error("index out of range: " + std::to_string(start));
  if (end < 0 || end > len) return Value::error("index out of range: " + std::to_string(end));
  if (end < start) {
    return Value::error("invalid substring range: start " + std::to_string(start) + " > end " +
                        std::to_string(end));
  }
  size_t b = byte_offset(s, static_cast<size_t>(start));
  size_t eb = byte_offset(s, static_cast<size_t>(end));
  return Value::string(std::string(s.substr(b, eb - b)));
}

// Unicode White_Space code points, as the strings extension trims them.
bool is_space_cp(uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

uint32_t decode_at(std::string_view s, size_t i, size_t& len) {
  auto b = static_cast<unsigned char>(s[i]);
  len = std::min(utf8_len(b), s.size() - i);
  if (len == 1) return b;
  uint32_t cp = b & (0xFF >> (len + 1));
  for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return cp;
}

Value fn_trim(const Expr& e, Value* a, size_t, EvalState&) {
  if (a[0].kind() != Kind::String) return no_overload(e.name, a, 1);
  std::string_view s = a[0].text();
  size_t b = 0;
  while (b < s.size()) {
    size_t len;
    if (!is_space_cp(decode_at(s, b, len))) break;
    b += len;
  }
  size_t end = s.size();
  while (end > b) {
    size_t start = end - 1;
    while (start > b && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t len;
    if (!is_space_cp(decode_at(s, start, len))) break;
    end = start;
  }
  return Value::string(std::string(s.substr(b, end - b)));
}

Value fn_join(const Expr& e, Value* a, size_t n, EvalState& st) {
  if (a[0].kind() != Kind::List || (n == 2 && a[1].kind() != Kind::String))
    return no_overload(e.name, a, n);
  std::string_view sep = n == 2 ? a[1].text() : std::string_view();
  std::string out;
  ValueList items;
  a[0].elements(items);
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].kind() != Kind::String) return Value::error("join: list element is not a string");
    if (i) out += sep;
    out += items[i].text();
    // Checked as it grows: a list can hold the same long string many times over.
    if (out.size() > st.max_string_bytes) break;
  }
  return check_size(std::move(out), st);
}

Value fn_reverse(const Expr& e, Value* a, size_t, EvalState&) {
  if (a[0].kind() != Kind::String) return no_overload(e.name, a, 1);
  std::string_view s = a[0].text();
  std::string out;
  out.reserve(s.size());
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    out += s.substr(start, end - start);
    end = start;
  }
  return Value::string(std::move(out));
}

Value fn_quote(const Expr& e, Value* a, size_t, EvalState&) {
  if (a[0].kind() != Kind::String) return no_overload(e.name, a, 1);
  std::string out = "\"";
  for (char c : a[0].text()) {
    switch (c) {
      case '\a': out += "\\a"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\v': out += "\\v"; break;
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      default: out += c;
    }
  }
  out += '"';
  return Value::string(std::move(out));
}

// --- format ---

// Formats `v` as %s does. Stops early, leaving the result longer than `limit`, once it is:
// a list can hold the same long string many times over, and the caller refuses the
// result anyway.
std::string format_plain(const Value& v, bool& ok, size_t limit);

std::string format_plain_list(const Value& v, bool& ok, size_t limit) {
  std::string out = "[";
  ValueList items;
  v.elements(items);
  for (size_t i = 0; i < items.size() && out.size() <= limit; ++i) {
    if (i) out += ", ";
    out += format_plain(items[i], ok, limit);
  }
  return out + "]";
}

std::string format_plain(const Value& v, bool& ok, size_t limit) {
  switch (v.kind()) {
    case Kind::Null: return "null";
    case Kind::Bool: return v.bool_value() ? "true" : "false";
    case Kind::Int: return std::to_string(v.int_value());
    case Kind::Uint: return std::to_string(v.uint_value());
    case Kind::Double: return format_double(v.double_value());
    case Kind::String:
    case Kind::Bytes: return std::string(v.text());
    case Kind::Type: return std::string(v.text());
    case Kind::Timestamp: return time::format_timestamp(v.time_value());
    case Kind::Duration: return time::format_duration(v.time_value());
    case Kind::List: return format_plain_list(v, ok, limit);
    case Kind::Map: {
      ValueList ks;
      v.keys(ks);
      std::vector<std::pair<std::string, std::string>> entries;
      size_t total = 0;
      for (const Value& k : ks) {
        bool found = false;
        entries.emplace_back(format_plain(k, ok, limit), format_plain(v.find(k, found), ok, limit));
        total += entries.back().first.size() + entries.back().second.size();
        if (total > limit) return std::string(total, ' ');
      }
      std::sort(entries.begin(), entries.end());
      std::string out = "{";
      for (size_t i = 0; i < entries.size(); ++i) {
        if (i) out += ", ";
        out += entries[i].first + ": " + entries[i].second;
      }
      return out + "}";
    }
    case Kind::Error: ok = false; return "";
  }
  return "";
}

bool non_finite(const Value& v, std::string& out) {
  if (v.kind() != Kind::Double || std::isfinite(v.double_value())) return false;
  out += format_double(v.double_value());
  return true;
}

std::string to_base(uint64_t u, int base, bool upper) {
  if (u == 0) return "0";
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string s;
  while (u) {
    s += digits[u % static_cast<uint64_t>(base)];
    u /= static_cast<uint64_t>(base);
  }
  std::reverse(s.begin(), s.end());
  return s;
}

bool format_integer(const Value& v, int base, bool upper, std::string& out) {
  if (v.kind() == Kind::Int) {
    int64_t i = v.int_value();
    uint64_t mag = i < 0 ? 0 - static_cast<uint64_t>(i) : static_cast<uint64_t>(i);
    if (i < 0) out += '-';
    out += to_base(mag, base, upper);
    return true;
  }
  if (v.kind() == Kind::Uint) {
    out += to_base(v.uint_value(), base, upper);
    return true;
  }
  if (v.kind() == Kind::Bool && base == 2) {
    out += v.bool_value() ? "1" : "0";
    return true;
  }
  return false;
}

Value fn_format(const Expr& e, Value* a, size_t, EvalState& st) {
  if (a[0].kind() != Kind::String || a[1].kind() != Kind::List) return no_overload(e.name, a, 2);
  std::string_view f = a[0].text();
  const Value& args = a[1];
  if (!charge_elements(args, st)) return over_budget(st);
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%') {
      out += f[i];
      continue;
    }
    if (++i >= f.size()) return Value::error("format: unterminated '%'");
    if (f[i] == '%') {
      out += '%';
      continue;
    }
    int precision = -1;
    if (f[i] == '.') {
      ++i;
      precision = 0;
      while (i < f.size() && f[i] >= '0' && f[i] <= '9') precision = precision * 10 + (f[i++] - '0');
      if (i >= f.size()) return Value::error("format: unterminated '%'");
    }
    char verb = f[i];
    if (next >= args.size()) {
      return Value::error("format: not enough arguments for '%" + std::string(1, verb) + "'");
    }
    Value arg = args.element(next++);
    switch (verb) {
      case 's': {
        bool ok = true;
        out += format_plain(arg, ok, st.max_string_bytes);
        if (!ok) return Value::error("format: cannot format argument with %s");
        break;
      }
      case 'd':
        if (non_finite(arg, out)) break;
        if (arg.kind() == Kind::Bool || !format_integer(arg, 10, false, out))
          return Value::error("format: %d requires an integer, found " + std::string(type_name(arg)));
        break;
      case 'b':
      case 'o':
        if (!format_integer(arg, verb == 'b' ? 2 : 8, false, out) ||
            (verb == 'o' && arg.kind() == Kind::Bool))
          return Value::error(std::string("format: %") + verb + " requires an integer, found " +
                              std::string(type_name(arg)));
        break;
      case 'x':
      case 'X': {
        bool upper = verb == 'X';
        if (arg.kind() == Kind::String || arg.kind() == Kind::Bytes) {
          const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
          for (unsigned char c : arg.text()) {
            out += digits[c >> 4];
            out += digits[c & 15];
          }
        } else if (arg.kind() == Kind::Bool || !format_integer(arg, 16, upper, out)) {
          return Value::error(std::string("format: %") + verb + " requires an integer, string or bytes, found " +
                              std::string(type_name(arg)));
        }
        break;
      }
      case 'f':
      case 'e': {
        if (non_finite(arg, out)) break;
        double d;
        if (arg.kind() == Kind::Double) d = arg.double_value();
        else if (arg.kind() == Kind::Int) d = static_cast<double>(arg.int_value());
        else if (arg.kind() == Kind::Uint) d = static_cast<double>(arg.uint_value());
        else
          return Value::error(std::string("format: %") + verb + " requires a number, found " +
                              std::string(type_name(arg)));
        char buf[512];
        int p = precision < 0 ? 6 : std::min(precision, 100);
        std::snprintf(buf, sizeof buf, verb == 'f' ? "%.*f" : "%.*e", p, d);
        out += buf;
        break;
      }
      default:
        return Value::error("format: unknown verb '%" + std::string(1, verb) + "'");
    }
    if (out.size() > st.max_string_bytes) return Value::error("format: result too large");
  }
  return check_size(std::move(out), st);
}

// --- Conversions ---

Value fn_int(const Expr& e, Value* a, size_t, EvalState&) {
  const Value& v = a[0];
  switch (v.kind()) {
    case Kind::Int:
      return v;
    case Kind::Uint:
      if (v.uint_value() > static_cast<uint64_t>(INT64_MAX)) return Value::error("int out of range");
      return Value::integer(static_cast<int64_t>(v.uint_value()));
    case Kind::Double: {
      double d = v.double_value();
      // The bounds exclude ±2^63 themselves: they do not round-trip.
      if (!(d > -9223372036854775808.0 && d < 9223372036854775808.0))
        return Value::error("int out of range");
      return Value::integer(static_cast<int64_t>(d));
    }
    case Kind::String: {
      int64_t i;
      std::string_view s = v.text();
      auto r = std::from_chars(s.data(), s.data() + s.size(), i);
      if (r.ec != std::errc() || r.ptr != s.data() + s.size())
        return Value::error("cannot convert '" + std::string(s) + "' to int");
      return Value::integer(i);
    }
    case Kind::Timestamp:
      return Value::integer(v.time_value().seconds);
    default:
      return no_overload(e.name, a, 1);
  }
}

Value fn_uint(const Expr& e, Value* a, size_t, EvalState&) {
  const Value& v = a[0];
  switch (v.kind()) {
    case Kind::Uint:
      return v;
    case Kind::Int:
      if (v.int_value() < 0) return Value::error("uint out of range");
      return Value::uinteger(static_cast<uint64_t>(v.int_value()));
    case Kind::Double: {
      double d = v.double_value();
      if (!(d > -1.0 && d < 18446744073709551616.0)) return Value::error("uint out of range");
      return Value::uinteger(static_cast<uint64_t>(d));
    }
    case Kind::String: {
      uint64_t u;
      std::string_view s = v.text();
      auto r = std::from_chars(s.data(), s.data() + s.size(), u);
      if (r.ec != std::errc() || r.ptr != s.data() + s.size())
        return Value::error("cannot convert '" + std::string(s) + "' to uint");
      return Value::uinteger(u);
    }
    default:
      return no_overload(e.name, a, 1);
  }
}

Value fn_double(const Expr& e, Value* a, size_t, EvalState&) {
  const Value& v = a[0];
  switch (v.kind()) {
    case Kind::Double:
      return Value::dbl(v.double_value());
    case Kind::Int:
      return Value::dbl(static_cast<double>(v.int_value()));
    case Kind::Uint:
      return Value::dbl(static_cast<double>(v.uint_value()));
    case Kind::String: {
      std::string_view s = v.text();
      if (s == "NaN") return Value::dbl(std::numeric_limits<double>::quiet_NaN());
      if (s == "Infinity" || s == "+Infinity" || s == "inf" || s == "+inf")
        return Value::dbl(std::numeric_limits<double>::infinity());
      if (s == "-Infinity" || s == "-inf") return Value::dbl(-std::numeric_limits<double>::infinity());
      double d;
      auto r = std::from_chars(s.data(), s.data() + s.size(), d);
      if (r.ec == std::errc::result_out_of_range) {
        d = std::strtod(std::string(s).c_str(), nullptr);
      } else if (r.ec != std::errc() || r.ptr != s.data() + s.size()) {
        return Value::error("cannot convert '" + std::string(s) + "' to double");
      }
      return Value::dbl(d);
    }
    default:
      return no_overload(e.name, a, 1);
  }
}

Value fn_string(const Expr& e, Value* a, size_t, EvalState&) {
  const Value& v = a[0];
  switch (v.kind()) {
    case Kind::String:
      return v;
    case Kind::Int:
      return Value::string(std::to_string(v.int_value()));
    case Kind::Uint:
      return Value::string(std::to_string(v.uint_value()));
    case Kind::Double:
      return Value::string(format_double(v.double_value()));
    case Kind::Bool:
      return Value::string(v.bool_value() ? "true" : "false");
    case Kind::Bytes:
      if (!json::valid_utf8(v.text())) return Value::error("bytes are not valid UTF-8");
      return Value::string(std::string(v.text()));
    case Kind::Timestamp:
      return Value::string(time::format_timestamp(v.time_value()));
    case Kind::Duration:
      return Value::string(time::format_duration(v.time_value()));
    case Kind::Type:
      return Value::string(std::string(v.text()));
    default:
      return no_overload(e.name, a, 1);
  }
}

Value fn_bytes(const Expr& e, Value* a, size_t, EvalState&) {
  if (a[0].kind() == Kind::Bytes) return a[0];
  if (a[0].kind() == Kind::String) return Value::bytes(std::string(a[0].text()));
  return no_overload(e.name, a, 1);
}

Value fn_bool(const Expr& e, Value* a, size_t, EvalState&) {
  if (a[0].kind() == Kind::Bool) return a[0];
  if (a[0].kind() == Kind::String) {
    std::string_view s = a[0].text();
    if (s == "1" || s == "t" || s == "true" || s == "TRUE" || s == "True") return Value::boolean(true);
    if (s == "0" || s == "f" || s == "false" || s == "FALSE" || s == "False") return Value::boolean(false);
    return Value::error("cannot convert '" + std::string(s) + "' to bool");
  }
  return no_overload(e.name, a, 1);
}

Value fn_dyn(const Expr&, Value* a, size_t, EvalState&) { return a[0]; }

Value fn_type(const Expr&, Value* a, size_t, EvalState&) { return Value::type(type_name(a[0])); }

Value fn_timestamp(const Expr& e, Value* a, size_t, EvalState&) {
  if (a[0].kind() == Kind::Timestamp) return a[0];
  if (a[0].kind() == Kind::Int) {
    Time t{a[0].int_value(), 0};
    if (!time::timestamp_in_range(t)) return Value::error("timestamp out of range");
    return Value::timestamp(t);
  }
  if (a[0].kind() == Kind::String) {
    auto t = time::parse_timestamp(a[0].text());
    if (!t) return Value::error("cannot parse timestamp '" + std::string(a[0].text()) + "'");
    return Value::timestamp(*t);
  }
  return no_overload(e.name, a, 1);
}

Value fn_duration(const Expr& e, Value* a, size_t, EvalState&) {
  if (a[0].kind() == Kind::Duration) return a[0];
  if (a[0].kind() == Kind::String) {
    auto d = time::parse_duration(a[0].text());
    if (!d) return Value::error("cannot parse duration '" + std::string(a[0].text()) + "'");
    return Value::duration(*d);
  }
  return no_overload(e.name, a, 1);
}

// --- Time accessors ---

enum class Field { FullYear, Month, Date, DayOfMonth, DayOfWeek, DayOfYear, Hours, Minutes, Seconds, Millis };

template <Field F>
Value time_accessor(const Expr& e, Value* a, size_t n, EvalState&) {
  if (a[0].kind() == Kind::Duration && n == 1) {
    Time d = a[0].time_value();
    switch (F) {
      case Field::Hours: return Value::integer(d.seconds / 3600);
      case Field::Minutes: return Value::integer(d.seconds / 60);
      case Field::Seconds: return Value::integer(d.seconds);
      case Field::Millis: return Value::integer(d.nanos / 1'000'000);
      default: return no_overload(e.name, a, n);
    }
  }
  if (a[0].kind() != Kind::Timestamp || (n == 2 && a[1].kind() != Kind::String))
    return no_overload(e.name, a, n);
  Time t = a[0].time_value();
  auto c = time::to_civil(t, n == 2 ? a[1].text() : std::string_view("UTC"));
  if (!c) return Value::error("unknown time zone '" + std::string(a[1].text()) + "'");
  switch (F) {
    case Field::FullYear: return Value::integer(c->year);
    case Field::Month: return Value::integer(c->month - 1);
    case Field::Date: return Value::integer(c->day);
    case Field::DayOfMonth: return Value::integer(c->day - 1);
    case Field::DayOfWeek: return Value::integer(c->day_of_week);
    case Field::DayOfYear: return Value::integer(c->day_of_year);
    case Field::Hours: return Value::integer(c->hour);
    case Field::Minutes: return Value::integer(c->minute);
    case Field::Seconds: return Value::integer(c->second);
    case Field::Millis: return Value::integer(t.nanos / 1'000'000);
  }
  return no_overload(e.name, a, n);
}

// Names are sorted so that lookup is a binary search.
const FunctionDef kFunctions[] = {
    {"@in", true, false, 2, 2, fn_in},
    {"_!=_", true, false, 2, 2, fn_ne},
    {"_%_", true, false, 2, 2, fn_mod},
    {"_*_", true, false, 2, 2, fn_mul},
    {"_+_", true, false, 2, 2, fn_add},
    {"_-_", true, false, 2, 2, fn_sub},
    {"_/_", true, false, 2, 2, fn_div},
    {"_<=_", true, false, 2, 2, relational<le>},
    {"_<_", true, false, 2, 2, relational<lt>},
    {"_==_", true, false, 2, 2, fn_eq},
    {"_>=_", true, false, 2, 2, relational<ge>},
    {"_>_", true, false, 2, 2, relational<gt>},
    {"bool", true, false, 1, 1, fn_bool},
    {"bytes", true, false, 1, 1, fn_bytes},
    {"charAt", false, true, 2, 2, fn_char_at},
    {"contains", false, true, 2, 2, fn_contains},
    {"double", true, false, 1, 1, fn_double},
    {"duration", true, false, 1, 1, fn_duration},
    {"dyn", true, false, 1, 1, fn_dyn},
    {"endsWith", false, true, 2, 2, fn_ends_with},
    {"format", false, true, 2, 2, fn_format},
    {"getDate", false, true, 1, 2, time_accessor<Field::Date>},
    {"getDayOfMonth", false, true, 1, 2, time_accessor<Field::DayOfMonth>},
    {"getDayOfWeek", false, true, 1, 2, time_accessor<Field::DayOfWeek>},
    {"getDayOfYear", false, true, 1, 2, time_accessor<Field::DayOfYear>},
    {"getFullYear", false, true, 1, 2, time_accessor<Field::FullYear>},
    {"getHours", false, true, 1, 2, time_accessor<Field::Hours>},
    {"getMilliseconds", false, true, 1, 2, time_accessor<Field::Millis>},
    {"getMinutes", false, true, 1, 2, time_accessor<Field::Minutes>},
    {"getMonth", false, true, 1, 2, time_accessor<Field::Month>},
    {"getSeconds", false, true, 1, 2, time_accessor<Field::Seconds>},
    {"indexOf", false, true, 2, 3, fn_index_of},
    {"int", true, false, 1, 1, fn_int},
    {"join", false, true, 1, 2, fn_join},
    {"lastIndexOf", false, true, 2, 3, fn_last_index_of},
    {"lowerAscii", false, true, 1, 1, fn_lower_ascii},
    {"matches", true, true, 2, 2, fn_matches},
    {"replace", false, true, 3, 4, fn_replace},
    {"reverse", false, true, 1, 1, fn_reverse},
    {"size", true, true, 1, 1, fn_size},
    {"split", false, true, 2, 3, fn_split},
    {"startsWith", false, true, 2, 2, fn_starts_with},
    {"string", true, false, 1, 1, fn_string},
    {"strings.quote", true, false, 1, 1, fn_quote},
    {"substring", false, true, 2, 3, fn_substring},
    {"timestamp", true, false, 1, 1, fn_timestamp},
    {"trim", false, true, 1, 1, fn_trim},
    {"type", true, false, 1, 1, fn_type},
    {"uint", true, false, 1, 1, fn_uint},
    {"upperAscii", false, true, 1, 1, fn_upper_ascii},
};

[[maybe_unused]] const bool kSorted = [] {
  for (size_t i = 1; i < std::size(kFunctions); ++i) {
    if (!(kFunctions[i - 1].name < kFunctions[i].name)) std::abort();
  }
  return true;
}();

}  // namespace

const FunctionDef* find_function(std::string_view name) {
  auto it = std::lower_bound(std::begin(kFunctions), std::end(kFunctions), name,
                             [](const FunctionDef& f, std::string_view n) { return f.name < n; });
  if (it == std::end(kFunctions) || it->name != name) return nullptr;
  return it;
}

std::vector<std::string> function_names() {
  std::vector<std::string> names;
  for (const auto& f : kFunctions) {
    if (f.name[0] != '_' && f.name[0] != '@') names.emplace_back(f.name);
  }
  return names;
}

}  // namespace switchboard::cel
