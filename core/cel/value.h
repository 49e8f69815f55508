// The value every expression produces and consumes. Scalars live inline; strings, lists
// and maps are either owned (shared, immutable) or borrowed from the JSON document of the
// event being evaluated, so that reading `event.amount` or `event.region` allocates
// nothing. A borrowed value never outlives the evaluation that produced it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::json {
class Document;
}

namespace switchboard::cel {

enum class Kind : uint8_t {
  Null,
  Bool,
  Int,
  Uint,
  Double,
  String,
  Bytes,
  List,
  Map,
  Timestamp,
  Duration,
  Type,
  Error,
};

// Seconds and nanoseconds; for a timestamp since the Unix epoch (UTC).
struct Time {
  int64_t seconds = 0;
  int32_t nanos = 0;  // 0..999'999'999 for timestamps; same sign as seconds for durations
};

class Value;
using ValueList = std::vector<Value>;
using MapEntries = std::vector<std::pair<Value, Value>>;

class Value {
 public:
  Value() = default;  // null

  static Value null() { return Value(); }
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value uinteger(uint64_t u);
  static Value dbl(double d, std::string_view raw_json = {});
  static Value string(std::string s);
  static Value string_view(std::string_view borrowed);  // caller keeps the text alive
  static Value bytes(std::string s);
  static Value list(ValueList items);
  static Value map(MapEntries entries);  // caller guarantees unique keys
  static Value json(const json::Document* doc, uint32_t node);  // any JSON node
  static Value timestamp(Time t);
  static Value duration(Time d);
  static Value type(std::string_view static_name);  // name must have static storage
  static Value error(std::string message);

  Kind kind() const { return kind_; }
  bool is_error() const { return kind_ == Kind::Error; }

  bool bool_value() const { return s_.b; }
  int64_t int_value() const { return s_.i; }
  uint64_t uint_value() const { return s_.u; }
  double double_value() const { return s_.d; }
  Time time_value() const { return s_.t; }
  // String/Bytes text, type name, error message.
  std::string_view text() const { return text_; }
  // For a Double read unchanged from JSON: its exact source text, else empty.
  std::string_view raw_json() const { return kind_ == Kind::Double ? text_ : std::string_view(); }

  // Lists and maps: owned or JSON-backed.
  bool is_json() const { return doc_ != nullptr; }
  const json::Document* json_doc() const { return doc_; }
  uint32_t json_node() const { return node_; }
  size_t size() const;  // list elements / map entries
  // List element i (i < size()).
  Value element(size_t i) const;
  // Map lookup with CEL key equality (1 == 1u == 1.0); found=false when absent.
  Value find(const Value& key, bool& found) const;
  // All list elements, in order; linear also for JSON-backed lists.
  void elements(ValueList& out) const;
  // Map keys in iteration order.
  void keys(ValueList& out) const;
  // Owned containers (valid only when !is_json()).
  const ValueList& owned_list() const;
  const MapEntries& owned_map() const;
  // The entries of an owned map that no other Value shares, for editing in place (copy on
  // write); nullptr when the map is JSON-backed or shared. Editing must keep keys unique.
  MapEntries* unique_map();

  // Makes a borrowed value self-contained (copies JSON-backed data into owned values).
  Value detach() const;

 private:
  struct Heap;
  struct StringHeap;
  struct ListHeap;
  struct MapHeap;

  Kind kind_ = Kind::Null;
  uint32_t node_ = 0;
  union Scalar {
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    Time t;
  } s_{};
  std::string_view text_;
  const json::Document* doc_ = nullptr;
  std::shared_ptr<const Heap> heap_;
};

// The scalar factories are inline: the evaluator makes one per step.
inline Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::Bool;
  v.s_.b = b;
  return v;
}
inline Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::Int;
  v.s_.i = i;
  return v;
}
inline Value Value::uinteger(uint64_t u) {
  Value v;
  v.kind_ = Kind::Uint;
  v.s_.u = u;
  return v;
}
inline Value Value::dbl(double d, std::string_view raw_json) {
  Value v;
  v.kind_ = Kind::Double;
  v.s_.d = d;
  v.text_ = raw_json;
  return v;
}
inline Value Value::string_view(std::string_view borrowed) {
  Value v;
  v.kind_ = Kind::String;
  v.text_ = borrowed;
  return v;
}

// CEL type name of a value ("int", "list", "google.protobuf.Timestamp", ...).
std::string_view type_name(const Value& v);
std::string_view type_name(Kind k);

// CEL equality (heterogeneous across numeric kinds, false across other kinds; NaN is
// unequal to everything). Errors must be handled by the caller.
bool equals(const Value& a, const Value& b);

// Ordering for <, <=, >, >= (numeric across kinds, strings, bytes, bools, times).
// Returns false in `ok` when the kinds cannot be ordered. NaN compares unordered: cmp
// is then 2.
int compare(const Value& a, const Value& b, bool& ok);

// A debugging/diagnostic rendering in CEL-ish syntax.
std::string debug_string(const Value& v);

}  // namespace switchboard::cel
