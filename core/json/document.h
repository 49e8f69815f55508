// A parsed JSON document that remembers where every value came from, so that a value
// copied unchanged into an output keeps its exact source bytes (a 64-bit id survives,
// "1.50" stays "1.50"). Parsing into a reused Document allocates nothing once warm.
#pragma once

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
  // every use. An Object notes in str_off whether its keys repeat, once looked up.
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
  std::string_view source() const { return source_; }
  bool empty() const { return nodes_.empty(); }
  static constexpr uint32_t root() { return 0; }
  const Node& node(uint32_t i) const { return nodes_[i]; }
  uint32_t size() const { return static_cast<uint32_t>(nodes_.size()); }

  std::string_view raw(uint32_t i) const {
    return std::string_view(source_).substr(nodes_[i].begin, nodes_[i].end - nodes_[i].begin);
  }
  // Decoded text of a String node.
  std::string_view string_value(uint32_t i) const;
  double number_value(uint32_t i) const;
  // True when a Number node is integral and fits int64 / uint64.
  bool int64_value(uint32_t i, int64_t& out) const;
  bool uint64_value(uint32_t i, uint64_t& out) const;

  // Index of the value of member `key` in object `obj`, or 0 when absent (0 is the root
  // and never a member). When a key occurs more than once, the last occurrence wins.
  uint32_t find_member(uint32_t obj, std::string_view key) const;
  // First child of an array or object (for objects: the first key). Step with node(i).next.
  static constexpr uint32_t first_child(uint32_t i) { return i + 1; }

 private:
  struct Parser;  // the parse state machine, defined in document.cc

  std::string source_;
  std::string arena_;
  // Mutable for one thing only: the first find_member() on an object records in the
  // object's node whether its keys repeat (see keys_unique).
  mutable std::vector<Node> nodes_;
  std::string error_;
  bool keys_unique(uint32_t obj) const;
  // Indices of the arrays/objects still open during parse(); a member so a warm parse
  // does not allocate, and an explicit stack so deep nesting cannot overflow the C++ stack.
  std::vector<uint32_t> open_containers_;
};

// Appends `s` as a JSON string literal (quotes included), escaping what JSON requires.
void append_quoted(std::string& out, std::string_view s);

// True when `s` is valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view s);

}  // namespace switchboard::json
