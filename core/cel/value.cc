#include "core/cel/value.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "core/json/document.h"

namespace switchboard::cel {

void Value::destroy(Heap* h) {
  switch (h->kind) {
    case HeapKind::String:
      delete static_cast<StringHeap*>(h);
      return;
    case HeapKind::List:
      delete static_cast<ListHeap*>(h);
      return;
    case HeapKind::Map:
      delete static_cast<MapHeap*>(h);
      return;
  }
}

Value Value::text_value(Kind kind, std::string s) {
  Value v;
  v.r_.kind = kind;
  auto* heap = new StringHeap(std::move(s));
  v.r_.a.str = heap->text.data();
  v.r_.b.len = heap->text.size();
  v.r_.heap = heap;
  return v;
}

Value Value::string(std::string s) { return text_value(Kind::String, std::move(s)); }
Value Value::bytes(std::string s) { return text_value(Kind::Bytes, std::move(s)); }
Value Value::error(std::string message) { return text_value(Kind::Error, std::move(message)); }

Value Value::list(ValueList items) {
  Value v;
  v.r_.kind = Kind::List;
  v.r_.heap = new ListHeap(std::move(items));
  return v;
}
Value Value::map(MapEntries entries) {
  Value v;
  v.r_.kind = Kind::Map;
  v.r_.heap = new MapHeap(std::move(entries));
  return v;
}
Value Value::timestamp(Time t) {
  Value v;
  v.r_.kind = Kind::Timestamp;
  v.r_.a.i = t.seconds;
  v.r_.aux = static_cast<uint32_t>(t.nanos);
  return v;
}
Value Value::duration(Time d) {
  Value v = timestamp(d);
  v.r_.kind = Kind::Duration;
  return v;
}
Value Value::type(std::string_view static_name) {
  Value v;
  v.r_.kind = Kind::Type;
  v.r_.a.str = static_name.data();
  v.r_.b.len = static_name.size();
  return v;
}

Value Value::element(size_t i) const {
  if (r_.json) {
    uint32_t child = json::Document::first_child(r_.aux);
    for (size_t k = 0; k < i; ++k) child = r_.a.doc->node(child).next;
    return json(r_.a.doc, child);
  }
  return owned_list()[i];
}

void Value::elements(ValueList& out) const {
  out.clear();
  if (r_.json) {
    const json::Document* doc = r_.a.doc;
    out.reserve(doc->node(r_.aux).count);
    uint32_t child = json::Document::first_child(r_.aux);
    for (uint32_t k = 0; k < doc->node(r_.aux).count; ++k) {
      out.push_back(json(doc, child));
      child = doc->node(child).next;
    }
    return;
  }
  out = owned_list();
}

namespace {

// Map keys compare as numbers across int/uint/double, like CEL's heterogeneous equality.
inline bool key_equals(const Value& a, const Value& b) {
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
  if (r_.json) {
    if (key.kind() != Kind::String) return {};
    uint32_t member = r_.a.doc->find_member(r_.aux, key.text());
    if (member == 0) return {};
    found = true;
    return json(r_.a.doc, member);
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
  if (r_.json) {
    const json::Document* doc = r_.a.doc;
    uint32_t child = json::Document::first_child(r_.aux);
    for (uint32_t k = 0; k < doc->node(r_.aux).count; ++k) {
      out.push_back(json(doc, child));
      child = doc->node(doc->node(child).next).next;  // past the key, then its value
    }
    return;
  }
  for (const auto& entry : owned_map()) out.push_back(entry.first);
}

Value Value::detach() const {
  switch (r_.kind) {
    case Kind::String:
      return r_.heap ? *this : string(std::string(text()));
    case Kind::Double:
      return dbl(r_.a.d);
    case Kind::List: {
      // elements(), not element(i): on a JSON array the latter walks i siblings.
      ValueList items;
      elements(items);
      for (Value& item : items) item = item.detach();
      return list(std::move(items));
    }
    case Kind::Map: {
      if (!r_.json) {
        MapEntries entries;
        for (const auto& [k, v] : owned_map()) entries.emplace_back(k.detach(), v.detach());
        return map(std::move(entries));
      }
      // A key may repeat in JSON, and lookups see its last value (Document::find_member).
      // An owned map must have unique keys, and first-match lookups: keep each key once,
      // at its first position, with its last value.
      MapEntries entries;
      std::unordered_map<std::string_view, size_t> position;
      const json::Document* doc = r_.a.doc;
      uint32_t child = json::Document::first_child(r_.aux);
      for (uint32_t k = 0; k < doc->node(r_.aux).count; ++k) {
        uint32_t value_node = doc->node(child).next;
        std::string_view key = doc->string_value(child);
        Value value = json(doc, value_node).detach();
        auto [it, first] = position.emplace(key, entries.size());
        if (first) {
          entries.emplace_back(string(std::string(key)), std::move(value));
        } else {
          entries[it->second].second = std::move(value);
        }
        child = doc->node(value_node).next;
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

namespace detail {

bool equal_lists(const Value& a, const Value& b) {
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

bool equal_maps(const Value& a, const Value& b) {
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

}  // namespace detail

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
