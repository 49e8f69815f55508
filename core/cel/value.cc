#include "core/cel/value.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "core/json/document.h"

namespace switchboard::cel {

struct Value::Heap {
  virtual ~Heap() = default;
};
struct Value::StringHeap final : Heap {
  explicit StringHeap(std::string s) : text(std::move(s)) {}
  std::string text;
};
struct Value::ListHeap final : Heap {
  explicit ListHeap(ValueList v) : items(std::move(v)) {}
  ValueList items;
};
struct Value::MapHeap final : Heap {
  explicit MapHeap(MapEntries e) : entries(std::move(e)) {}
  MapEntries entries;
};

Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::String;
  auto heap = std::make_shared<const StringHeap>(std::move(s));
  v.text_ = heap->text;
  v.heap_ = std::move(heap);
  return v;
}
Value Value::bytes(std::string s) {
  Value v = string(std::move(s));
  v.kind_ = Kind::Bytes;
  return v;
}
Value Value::list(ValueList items) {
  Value v;
  v.kind_ = Kind::List;
  v.heap_ = std::make_shared<const ListHeap>(std::move(items));
  return v;
}
Value Value::map(MapEntries entries) {
  Value v;
  v.kind_ = Kind::Map;
  // Not const: unique_map() may edit the entries while this Value is their only holder.
  v.heap_ = std::make_shared<MapHeap>(std::move(entries));
  return v;
}
Value Value::json(const json::Document* doc, uint32_t node) {
  const json::Node& n = doc->node(node);
  switch (n.type) {
    case json::Type::Null:
      return null();
    case json::Type::False:
      return boolean(false);
    case json::Type::True:
      return boolean(true);
    case json::Type::Number:
      return dbl(doc->number_value(node), doc->raw(node));
    case json::Type::String:
      return string_view(doc->string_value(node));
    case json::Type::Array:
    case json::Type::Object: {
      Value v;
      v.kind_ = n.type == json::Type::Array ? Kind::List : Kind::Map;
      v.doc_ = doc;
      v.node_ = node;
      return v;
    }
  }
  return null();
}
Value Value::timestamp(Time t) {
  Value v;
  v.kind_ = Kind::Timestamp;
  v.s_.t = t;
  return v;
}
Value Value::duration(Time d) {
  Value v;
  v.kind_ = Kind::Duration;
  v.s_.t = d;
  return v;
}
Value Value::type(std::string_view static_name) {
  Value v;
  v.kind_ = Kind::Type;
  v.text_ = static_name;
  return v;
}
Value Value::error(std::string message) {
  Value v = string(std::move(message));
  v.kind_ = Kind::Error;
  return v;
}

const ValueList& Value::owned_list() const {
  static const ValueList empty;
  if (kind_ != Kind::List || doc_ != nullptr || !heap_) return empty;
  return static_cast<const ListHeap&>(*heap_).items;
}

const MapEntries& Value::owned_map() const {
  static const MapEntries empty;
  if (kind_ != Kind::Map || doc_ != nullptr || !heap_) return empty;
  return static_cast<const MapHeap&>(*heap_).entries;
}

MapEntries* Value::unique_map() {
  if (kind_ != Kind::Map || doc_ != nullptr || !heap_ || heap_.use_count() != 1) return nullptr;
  return &const_cast<MapHeap&>(static_cast<const MapHeap&>(*heap_)).entries;
}

size_t Value::size() const {
  if (doc_ != nullptr) return doc_->node(node_).count;
  if (kind_ == Kind::List) return owned_list().size();
  if (kind_ == Kind::Map) return owned_map().size();
  return 0;
}

Value Value::element(size_t i) const {
  if (doc_ != nullptr) {
    uint32_t child = json::Document::first_child(node_);
    for (size_t k = 0; k < i; ++k) child = doc_->node(child).next;
    return json(doc_, child);
  }
  return owned_list()[i];
}

void Value::elements(ValueList& out) const {
  out.clear();
  if (doc_ != nullptr) {
    out.reserve(doc_->node(node_).count);
    uint32_t child = json::Document::first_child(node_);
    for (uint32_t k = 0; k < doc_->node(node_).count; ++k) {
      out.push_back(json(doc_, child));
      child = doc_->node(child).next;
    }
    return;
  }
  out = owned_list();
}

namespace {

// Map keys compare as numbers across int/uint/double, like CEL's heterogeneous equality.
bool key_equals(const Value& a, const Value& b) {
  if (a.kind() == b.kind()) {
    switch (a.kind()) {
      case Kind::String:
        return a.text() == b.text();
      case Kind::Int:
        return a.int_value() == b.int_value();
      case Kind::Uint:
        return a.uint_value() == b.uint_value();
      case Kind::Bool:
        return a.bool_value() == b.bool_value();
      default:
        return equals(a, b);
    }
  }
  return equals(a, b);
}

}  // namespace

Value Value::find(const Value& key, bool& found) const {
  found = false;
  if (doc_ != nullptr) {
    if (key.kind() != Kind::String) return {};
    uint32_t member = doc_->find_member(node_, key.text());
    if (member == 0) return {};
    found = true;
    return json(doc_, member);
  }
  for (const auto& [k, v] : owned_map()) {
    if (key_equals(k, key)) {
      found = true;
      return v;
    }
  }
  return {};
}

void Value::keys(ValueList& out) const {
  out.clear();
  if (doc_ != nullptr) {
    uint32_t child = json::Document::first_child(node_);
    for (uint32_t k = 0; k < doc_->node(node_).count; ++k) {
      out.push_back(string_view(doc_->string_value(child)));
      child = doc_->node(doc_->node(child).next).next;  // past the key, then its value
    }
    return;
  }
  for (const auto& entry : owned_map()) out.push_back(entry.first);
}

Value Value::detach() const {
  switch (kind_) {
    case Kind::String:
      return heap_ ? *this : string(std::string(text_));
    case Kind::Double:
      return dbl(s_.d);
    case Kind::List: {
      // elements(), not element(i): on a JSON array the latter walks i siblings.
      ValueList items;
      elements(items);
      for (Value& item : items) item = item.detach();
      return list(std::move(items));
    }
    case Kind::Map: {
      if (doc_ == nullptr) {
        MapEntries entries;
        for (const auto& [k, v] : owned_map()) entries.emplace_back(k.detach(), v.detach());
        return map(std::move(entries));
      }
      // A key may repeat in JSON, and lookups see its last value (Document::find_member).
      // An owned map must have unique keys, and first-match lookups: keep each key once,
      // at its first position, with its last value.
      MapEntries entries;
      std::unordered_map<std::string_view, size_t> position;
      uint32_t child = json::Document::first_child(node_);
      for (uint32_t k = 0; k < doc_->node(node_).count; ++k) {
        uint32_t value_node = doc_->node(child).next;
        std::string_view key = doc_->string_value(child);
        Value value = json(doc_, value_node).detach();
        auto [it, first] = position.emplace(key, entries.size());
        if (first) {
          entries.emplace_back(string(std::string(key)), std::move(value));
        } else {
          entries[it->second].second = std::move(value);
        }
        child = doc_->node(value_node).next;
      }
      return map(std::move(entries));
    }
    default:
      return *this;
  }
}

std::string_view type_name(Kind k) {
  switch (k) {
    case Kind::Null:
      return "null_type";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Uint:
      return "uint";
    case Kind::Double:
      return "double";
    case Kind::String:
      return "string";
    case Kind::Bytes:
      return "bytes";
    case Kind::List:
      return "list";
    case Kind::Map:
      return "map";
    case Kind::Timestamp:
      return "google.protobuf.Timestamp";
    case Kind::Duration:
      return "google.protobuf.Duration";
    case Kind::Type:
      return "type";
    case Kind::Error:
      return "error";
  }
  return "unknown";
}

std::string_view type_name(const Value& v) { return type_name(v.kind()); }

namespace {

bool is_numeric(Kind k) { return k == Kind::Int || k == Kind::Uint || k == Kind::Double; }

// Int and uint compare with a double after converting to double, as CEL implementations
// do: 9223372036854775807 and 9223372036854775808.0 are then equal.
int compare_double(double x, double y) {
  if (std::isnan(x) || std::isnan(y)) return 2;
  return x < y ? -1 : (x > y ? 1 : 0);
}

int compare_numeric(const Value& a, const Value& b) {
  auto sgn = [](auto x, auto y) { return x < y ? -1 : (x > y ? 1 : 0); };
  switch (a.kind()) {
    case Kind::Int:
      if (b.kind() == Kind::Int) return sgn(a.int_value(), b.int_value());
      if (b.kind() == Kind::Uint) {
        if (a.int_value() < 0) return -1;
        return sgn(static_cast<uint64_t>(a.int_value()), b.uint_value());
      }
      return compare_double(static_cast<double>(a.int_value()), b.double_value());
    case Kind::Uint:
      if (b.kind() == Kind::Uint) return sgn(a.uint_value(), b.uint_value());
      if (b.kind() == Kind::Int) {
        if (b.int_value() < 0) return 1;
        return sgn(a.uint_value(), static_cast<uint64_t>(b.int_value()));
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

int compare_time(Time a, Time b) {
  if (a.seconds != b.seconds) return a.seconds < b.seconds ? -1 : 1;
  if (a.nanos != b.nanos) return a.nanos < b.nanos ? -1 : 1;
  return 0;
}

}  // namespace

bool equals(const Value& a, const Value& b) {
  if (is_numeric(a.kind()) && is_numeric(b.kind())) return compare_numeric(a, b) == 0;
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
      return compare_time(a.time_value(), b.time_value()) == 0;
    case Kind::List: {
      size_t n = a.size();
      if (n != b.size()) return false;
      // element(i) walks i siblings of a JSON array: such a list is listed once instead.
      ValueList xs, ys;
      if (a.is_json()) a.elements(xs);
      if (b.is_json()) b.elements(ys);
      const ValueList& left = a.is_json() ? xs : a.owned_list();
      const ValueList& right = b.is_json() ? ys : b.owned_list();
      for (size_t i = 0; i < n; ++i) {
        if (!equals(left[i], right[i])) return false;
      }
      return true;
    }
    case Kind::Map: {
      if (a.size() != b.size()) return false;
      ValueList ks;
      a.keys(ks);
      for (const Value& k : ks) {
        bool fa = false, fb = false;
        Value va = a.find(k, fa);
        Value vb = b.find(k, fb);
        if (!fb || !equals(va, vb)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

int compare(const Value& a, const Value& b, bool& ok) {
  ok = true;
  if (is_numeric(a.kind()) && is_numeric(b.kind())) return compare_numeric(a, b);
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
        return compare_time(a.time_value(), b.time_value());
      default:
        break;
    }
  }
  ok = false;
  return 0;
}

std::string debug_string(const Value& v) {
  switch (v.kind()) {
    case Kind::Null:
      return "null";
    case Kind::Bool:
      return v.bool_value() ? "true" : "false";
    case Kind::Int:
      return std::to_string(v.int_value());
    case Kind::Uint:
      return std::to_string(v.uint_value()) + "u";
    case Kind::Double: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g", v.double_value());
      return buf;
    }
    case Kind::String:
      return "\"" + std::string(v.text()) + "\"";
    case Kind::Bytes:
      return "b\"" + std::string(v.text()) + "\"";
    case Kind::List: {
      std::string out = "[";
      ValueList items;
      v.elements(items);
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        out += debug_string(items[i]);
      }
      return out + "]";
    }
    case Kind::Map: {
      std::string out = "{";
      ValueList ks;
      v.keys(ks);
      bool first = true;
      for (const Value& k : ks) {
        bool found = false;
        if (!first) out += ", ";
        first = false;
        out += debug_string(k) + ": " + debug_string(v.find(k, found));
      }
      return out + "}";
    }
    case Kind::Timestamp:
      return "timestamp(" + std::to_string(v.time_value().seconds) + "s+" +
             std::to_string(v.time_value().nanos) + "ns)";
    case Kind::Duration:
      return "duration(" + std::to_string(v.time_value().seconds) + "s+" +
             std::to_string(v.time_value().nanos) + "ns)";
    case Kind::Type:
      return std::string(v.text());
    case Kind::Error:
      return "error(" + std::string(v.text()) + ")";
  }
  return "?";
}

}  // namespace switchboard::cel
