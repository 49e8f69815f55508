// The value every expression produces and consumes. Scalars live inline; strings, lists
// and maps are either owned (shared, immutable) or borrowed from the JSON document of the
// event being evaluated, so that reading `event.amount` or `event.region` allocates
// nothing. A borrowed value never outlives the evaluation that produced it.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json/document.h"

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

// 32 bytes: the evaluator copies, moves and destroys Values at every step, so their size
// and the cost of their reference counting are on every event's path. Scalars and borrowed
// text need no heap; owned strings, lists and maps live in one reference-counted block.
class Value {
 public:
  Value() = default;  // null
  // Copies and moves take the representation whole: two 16-byte moves, not a load and a
  // store per field.
  Value(const Value& other) noexcept : r_(other.r_) {
    if (r_.heap != nullptr) retain(r_.heap);
  }
  Value(Value&& other) noexcept : r_(other.r_) {
    other.r_.heap = nullptr;
    other.r_.kind = Kind::Null;
  }
  Value& operator=(const Value& other) noexcept {
    if (other.r_.heap != nullptr) retain(other.r_.heap);
    Heap* old = r_.heap;
    r_ = other.r_;
    if (old != nullptr) release(old);
    return *this;
  }
  Value& operator=(Value&& other) noexcept {
    if (this == &other) return *this;
    Heap* old = r_.heap;
    r_ = other.r_;
    other.r_.heap = nullptr;
    other.r_.kind = Kind::Null;
    if (old != nullptr) release(old);
    return *this;
  }
  ~Value() {
    if (r_.heap != nullptr) release(r_.heap);
  }

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

  Kind kind() const { return r_.kind; }
  bool is_error() const { return r_.kind == Kind::Error; }

  bool bool_value() const { return r_.a.b; }
  int64_t int_value() const { return r_.a.i; }
  uint64_t uint_value() const { return r_.a.u; }
  double double_value() const { return r_.a.d; }
  Time time_value() const { return Time{r_.a.i, static_cast<int32_t>(r_.aux)}; }
  // String/Bytes text, type name, error message; empty for other kinds.
  std::string_view text() const {
    return has_text(r_.kind) ? std::string_view(r_.a.str, r_.b.len) : std::string_view();
  }
  // True when text() is known to need no escape in a JSON string literal: it was read from
  // one that had none. (False says nothing.)
  bool text_escape_free() const { return r_.escape_free; }
  // For a Double read unchanged from JSON: its exact source text, else empty.
  std::string_view raw_json() const {
    return r_.kind == Kind::Double ? std::string_view(r_.b.str, r_.aux) : std::string_view();
  }

  // Lists and maps: owned or JSON-backed.
  bool is_json() const { return r_.json; }
  const json::Document* json_doc() const { return r_.json ? r_.a.doc : nullptr; }
  uint32_t json_node() const { return r_.json ? r_.aux : 0; }
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
  enum class HeapKind : uint8_t { String, List, Map };
  // The reference-counted block behind an owned string, list or map. Counts are atomic:
  // a program's literals are shared by every thread that evaluates it.
  struct Heap {
    explicit Heap(HeapKind k) : kind(k) {}
    std::atomic<uint32_t> refs{1};
    HeapKind kind;
  };
  struct StringHeap;
  struct ListHeap;
  struct MapHeap;

  static constexpr bool has_text(Kind k) {
    constexpr uint32_t kTextKinds = (1u << static_cast<unsigned>(Kind::String)) |
                                    (1u << static_cast<unsigned>(Kind::Bytes)) |
                                    (1u << static_cast<unsigned>(Kind::Type)) |
                                    (1u << static_cast<unsigned>(Kind::Error));
    return ((kTextKinds >> static_cast<unsigned>(k)) & 1u) != 0;
  }
  static void retain(Heap* h) { h->refs.fetch_add(1, std::memory_order_relaxed); }
  // The sole holder frees without an atomic read-modify-write: nobody else can take a
  // reference from it at that point.
  static void release(Heap* h) {
    if (h->refs.load(std::memory_order_acquire) == 1 ||
        h->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      destroy(h);
    }
  }
  static void destroy(Heap* h);
  static Value text_value(Kind kind, std::string s);

  union First {
    int64_t i;  // first: `{}` zeroes all eight bytes
    bool b;
    uint64_t u;
    double d;  // Timestamp/Duration: seconds in i
    const char* str;  // text kinds: the text
    const json::Document* doc;
  };
  union Second {
    size_t len;       // text kinds: length of a.str
    const char* str;  // Double: raw JSON text (length aux)
  };
  struct Repr {
    Kind kind = Kind::Null;
    bool json = false;         // List/Map backed by a JSON document: a.doc, node aux
    bool escape_free = false;  // see text_escape_free()
    // JSON node index; Double: length of the raw JSON text; Timestamp/Duration: nanos.
    uint32_t aux = 0;
    First a{};
    Second b{};
    Heap* heap = nullptr;
  };
  Repr r_;

  Value(Kind kind, First a, Second b, uint32_t aux = 0, bool json = false,
        bool escape_free = false) noexcept
      : r_{kind, json, escape_free, aux, a, b, nullptr} {}
};

static_assert(sizeof(Value) == 32);

struct Value::StringHeap final : Heap {
  explicit StringHeap(std::string s) : Heap(HeapKind::String), text(std::move(s)) {}
  std::string text;
};
struct Value::ListHeap final : Heap {
  explicit ListHeap(ValueList v) : Heap(HeapKind::List), items(std::move(v)) {}
  ValueList items;
};
struct Value::MapHeap final : Heap {
  explicit MapHeap(MapEntries e) : Heap(HeapKind::Map), entries(std::move(e)) {}
  MapEntries entries;
};

// The scalar factories and JSON reads are inline: the evaluator makes one per step. Each
// returns a constructor call, which builds the Value in the caller's slot.
inline Value Value::boolean(bool b) {
  First a{};  // all eight bytes
  a.b = b;
  return Value(Kind::Bool, a, Second{});
}
inline Value Value::integer(int64_t i) { return Value(Kind::Int, First{.i = i}, Second{}); }
inline Value Value::uinteger(uint64_t u) { return Value(Kind::Uint, First{.u = u}, Second{}); }
inline Value Value::dbl(double d, std::string_view raw_json) {
  // JSON number literals are far shorter than 4 GiB (documents address bytes with 32 bits).
  if (raw_json.size() > UINT32_MAX) raw_json = {};
  return Value(Kind::Double, First{.d = d}, Second{.str = raw_json.data()},
               static_cast<uint32_t>(raw_json.size()));
}
inline Value Value::string_view(std::string_view borrowed) {
  return Value(Kind::String, First{.str = borrowed.data()}, Second{.len = borrowed.size()});
}
[[gnu::always_inline]] inline Value Value::json(const json::Document* doc, uint32_t node) {
  const json::Node& n = doc->node(node);
  switch (n.type) {
    case json::Type::Null:
      return Value();
    case json::Type::False:
      return boolean(false);
    case json::Type::True:
      return boolean(true);
    case json::Type::Number:
      return dbl(doc->number_value(node), doc->raw_of(n));
    case json::Type::String: {
      // The parser refuses control characters, and '"' or '\\' make a string escaped.
      const std::string_view text = doc->text_of(n);
      return Value(Kind::String, First{.str = text.data()}, Second{.len = text.size()}, 0, false,
                   !n.escaped);
    }
    case json::Type::Array:
      return Value(Kind::List, First{.doc = doc}, Second{}, node, true);
    case json::Type::Object:
      return Value(Kind::Map, First{.doc = doc}, Second{}, node, true);
  }
  return Value();
}

namespace detail {
// Constant-initialized, unlike function-local statics, which test a guard on every call.
inline const ValueList kNoItems;
inline const MapEntries kNoEntries;
}  // namespace detail

inline const ValueList& Value::owned_list() const {
  if (r_.kind != Kind::List || r_.heap == nullptr) return detail::kNoItems;
  return static_cast<const ListHeap*>(r_.heap)->items;
}
inline const MapEntries& Value::owned_map() const {
  if (r_.kind != Kind::Map || r_.heap == nullptr) return detail::kNoEntries;
  return static_cast<const MapHeap*>(r_.heap)->entries;
}
inline MapEntries* Value::unique_map() {
  if (r_.kind != Kind::Map || r_.heap == nullptr ||
      r_.heap->refs.load(std::memory_order_acquire) != 1) {
    return nullptr;
  }
  return &static_cast<MapHeap*>(r_.heap)->entries;
}
[[gnu::always_inline]] inline size_t Value::size() const {
  if (r_.json) return r_.a.doc->node(r_.aux).count;
  if (r_.kind == Kind::List) return owned_list().size();
  if (r_.kind == Kind::Map) return owned_map().size();
  return 0;
}

// CEL type name of a value ("int", "list", "google.protobuf.Timestamp", ...).
std::string_view type_name(const Value& v);
std::string_view type_name(Kind k);

// equals and compare (below) are inline, as every comparison in a filter runs them; lists
// and maps are compared out of line.
namespace detail {

bool equal_lists(const Value& a, const Value& b);
bool equal_maps(const Value& a, const Value& b);

inline bool is_numeric(Kind k) { return k == Kind::Int || k == Kind::Uint || k == Kind::Double; }

// Int and uint compare with a double after converting to double, as CEL implementations
// do: 9223372036854775807 and 9223372036854775808.0 are then equal.
inline int compare_double(double x, double y) {
  if (std::isnan(x) || std::isnan(y)) return 2;
  return x < y ? -1 : (x > y ? 1 : 0);
}

template <typename T>
inline int sign_of_difference(T x, T y) {
  return x < y ? -1 : (x > y ? 1 : 0);
}

inline int compare_numeric(const Value& a, const Value& b) {
  switch (a.kind()) {
    case Kind::Int:
      if (b.kind() == Kind::Int) return sign_of_difference(a.int_value(), b.int_value());
      if (b.kind() == Kind::Uint) {
        if (a.int_value() < 0) return -1;
        return sign_of_difference(static_cast<uint64_t>(a.int_value()), b.uint_value());
      }
      return compare_double(static_cast<double>(a.int_value()), b.double_value());
    case Kind::Uint:
      if (b.kind() == Kind::Uint) return sign_of_difference(a.uint_value(), b.uint_value());
      if (b.kind() == Kind::Int) {
        if (b.int_value() < 0) return 1;
        return sign_of_difference(a.uint_value(), static_cast<uint64_t>(b.int_value()));
      }
      return compare_double(static_cast<double>(a.uint_value()), b.double_value());
    default: {
      double y = b.kind() == Kind::Double ? b.double_value()
                 : b.kind() == Kind::Int  ? static_cast<double>(b.int_value())
                                          : static_cast<double>(b.uint_value());
      return compare_double(a.double_value(), y);
    }
  }
}

inline int compare_time(Time a, Time b) {
  if (a.seconds != b.seconds) return a.seconds < b.seconds ? -1 : 1;
  if (a.nanos != b.nanos) return a.nanos < b.nanos ? -1 : 1;
  return 0;
}

}  // namespace detail

// CEL equality (heterogeneous across numeric kinds, false across other kinds; NaN is
// unequal to everything). Errors must be handled by the caller.
inline bool equals(const Value& a, const Value& b) {
  if (detail::is_numeric(a.kind()) && detail::is_numeric(b.kind())) {
    return detail::compare_numeric(a, b) == 0;
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::Null:
      return true;
    case Kind::Bool:
      return a.bool_value() == b.bool_value();
    case Kind::String:
    case Kind::Bytes:
    case Kind::Type:
    case Kind::Error:
      return a.text() == b.text();
    case Kind::Timestamp:
    case Kind::Duration:
      return detail::compare_time(a.time_value(), b.time_value()) == 0;
    case Kind::List:
      return detail::equal_lists(a, b);
    case Kind::Map:
      return detail::equal_maps(a, b);
    default:
      return false;
  }
}

// Ordering for <, <=, >, >= (numeric across kinds, strings, bytes, bools, times).
// Returns false in `ok` when the kinds cannot be ordered. NaN compares unordered: cmp
// is then 2.
inline int compare(const Value& a, const Value& b, bool& ok) {
  ok = true;
  if (detail::is_numeric(a.kind()) && detail::is_numeric(b.kind())) {
    return detail::compare_numeric(a, b);
  }
  if (a.kind() == b.kind()) {
    switch (a.kind()) {
      case Kind::Bool:
        return static_cast<int>(a.bool_value()) - static_cast<int>(b.bool_value());
      case Kind::String:
      case Kind::Bytes: {
        int c = a.text().compare(b.text());
        return c < 0 ? -1 : (c > 0 ? 1 : 0);
      }
      case Kind::Timestamp:
      case Kind::Duration:
        return detail::compare_time(a.time_value(), b.time_value());
      default:
        break;
    }
  }
  ok = false;
  return 0;
}

// A debugging/diagnostic rendering in CEL-ish syntax.
std::string debug_string(const Value& v);

}  // namespace switchboard::cel
