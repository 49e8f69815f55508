#include "core/route/processor.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "core/cel/time.h"

namespace switchboard::route {

using cel::Kind;
using cel::Value;

namespace {
constexpr int kEvent = 0, kSubject = 1, kHeaders = 2;  // slots in Environment::routing()
constexpr int kMaxEncodeDepth = 128;


// Text of a scalar used in a subject or a header.
bool scalar_text(const Value& v, std::string& out) {
  char buf[json::kMaxNumberChars];
  switch (v.kind()) {
    case Kind::String:
      out += v.text();
      return true;
    case Kind::Int: {
      auto r = std::to_chars(buf, buf + sizeof buf, v.int_value());
      out.append(buf, r.ptr);
      return true;
    }
    case Kind::Uint: {
      auto r = std::to_chars(buf, buf + sizeof buf, v.uint_value());
      out.append(buf, r.ptr);
      return true;
    }
    case Kind::Double: {
      if (!v.raw_json().empty()) {
        out += v.raw_json();
        return true;
      }
      if (!std::isfinite(v.double_value())) return false;
      out.append(buf, json::write_double(buf, v.double_value()));
      return true;
    }
    case Kind::Bool:
      out += v.bool_value() ? "true" : "false";
      return true;
    default:
      return false;
  }
}

// Field-path edits on the working event. Only the maps along the path become owned;
// every other value stays JSON-backed and is written back byte for byte. An owned map
// that nothing else holds is edited in place instead of being copied for every edit.

// Keys in member order. A JSON key that repeats keeps every position, each with the
// value of its last occurrence: what key-by-key lookups (find_member) see.
void fill_entries(const Value& m, cel::MapEntries& entries) {
  if (!m.is_json()) {
    entries.assign(m.owned_map().begin(), m.owned_map().end());
    return;
  }
  const json::Document& doc = *m.json_doc();
  const uint32_t count = doc.node(m.json_node()).count;
  uint32_t key = json::Document::first_child(m.json_node());
  for (uint32_t k = 0; k < count; ++k) {
    const uint32_t value = key + 1;
    entries.emplace_back(Value::json(&doc, key), Value::json(&doc, value));
    key = doc.node(value).next;
  }
  // Repeated keys are rare, and the document knows when an object has none.
  if (doc.keys_unique(m.json_node())) return;
  // Objects with many members get a hash map instead of pairs.
  if (count > 16) {
    std::unordered_map<std::string_view, size_t> last;
    last.reserve(count);
    for (size_t i = 0; i < entries.size(); ++i) last[entries[i].first.text()] = i;
    if (last.size() != entries.size()) {
      for (auto& entry : entries) entry.second = entries[last[entry.first.text()]].second;
    }
    return;
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    for (size_t j = entries.size() - 1; j > i; --j) {
      if (entries[j].first.text() == entries[i].first.text()) {
        entries[i].second = entries[j].second;
        break;
      }
    }
  }
}

// Owned maps of earlier events are kept for reuse (see Processor::spare_maps_), within
// these bounds; others are freed.
constexpr size_t kMaxSpareMaps = 16;
constexpr size_t kMaxSpareMapEntries = 64;
constexpr int kMaxRecycleDepth = 16;

// An owned map with no entries and room for `capacity`, held by nothing else.
Value take_map(std::vector<Value>& spares, size_t capacity) {
  if (spares.empty()) {
    cel::MapEntries entries;
    entries.reserve(capacity);
    return Value::map(std::move(entries));
  }
  Value m = std::move(spares.back());
  spares.pop_back();
  m.unique_map()->reserve(capacity);
  return m;
}

// Keeps `v`, and the maps nested in it, for take_map when nothing else holds them.
void recycle_maps(std::vector<Value>& spares, Value& v, int depth = 0) {
  cel::MapEntries* entries = v.unique_map();
  if (entries == nullptr || depth > kMaxRecycleDepth) return;
  for (auto& entry : *entries) {
    if (entry.second.kind() == Kind::Map && !entry.second.is_json()) {
      recycle_maps(spares, entry.second, depth + 1);
    }
  }
  entries->clear();
  if (spares.size() < kMaxSpareMaps && entries->capacity() <= kMaxSpareMapEntries) {
    spares.push_back(std::move(v));
  }
}

// Turns a map into one this Value alone holds, and returns its entries for editing.
cel::MapEntries& editable_entries(Value& m, std::vector<Value>& spares) {
  if (cel::MapEntries* entries = m.unique_map()) return *entries;
  Value copy = take_map(spares, m.size() + 1);  // + 1: the common edit adds a key
  cel::MapEntries& entries = *copy.unique_map();
  fill_entries(m, entries);
  m = std::move(copy);  // the entries stay where they are
  return entries;
}

cel::MapEntries::iterator find_entry(cel::MapEntries& entries, const std::string& key) {
  return std::find_if(entries.begin(), entries.end(), [&](const auto& e) {
    return e.first.kind() == Kind::String && e.first.text() == key;
  });
}

// New keys borrow their text from the path, which the route table owns and which
// outlives the working event.
bool set_path(Value& root, const FieldPath& path, size_t i, Value v, std::string& error,
              std::vector<Value>& spares) {
  if (root.kind() != Kind::Map) {
    error = "cannot set '" + path[i] + "': the value there is " + std::string(cel::type_name(root)) +
            ", not an object";
    return false;
  }
  cel::MapEntries& entries = editable_entries(root, spares);
  auto it = find_entry(entries, path[i]);
  if (i + 1 == path.size()) {
    if (it != entries.end()) it->second = std::move(v);
    else entries.emplace_back(Value::string_view(path[i]), std::move(v));
    return true;
  }
  if (it == entries.end()) {
    entries.emplace_back(Value::string_view(path[i]), take_map(spares, 1));
    it = entries.end() - 1;
  }
  return set_path(it->second, path, i + 1, std::move(v), error, spares);
}

// True when every step of the path below `i` names a member of a map.
bool has_path(const Value& root, const FieldPath& path, size_t i) {
  const Value* at = &root;
  Value child;
  for (; i < path.size(); ++i) {
    if (at->kind() != Kind::Map) return false;
    bool found = false;
    child = at->find(Value::string_view(path[i]), found);
    if (!found) return false;
    at = &child;
  }
  return true;
}

// Removes the field; returns its value through `removed` when present. A missing field
// changes nothing, so an untouched event keeps its source bytes.
bool remove_path(Value& root, const FieldPath& path, size_t i, Value* removed,
                 std::vector<Value>& spares) {
  for (Value* at = &root;; ++i) {
    if (at->kind() != Kind::Map) return false;
    // A map this Value alone holds is searched in place; before any other is copied, the
    // rest of the path must be there.
    if (at->unique_map() == nullptr && !has_path(*at, path, i)) return false;
    cel::MapEntries& entries = editable_entries(*at, spares);
    auto it = find_entry(entries, path[i]);
    if (it == entries.end()) return false;
    if (i + 1 == path.size()) {
      if (removed) *removed = std::move(it->second);
      entries.erase(it);
      return true;
    }
    at = &it->second;
  }
}

std::string dotted(const FieldPath& p) {
  std::string s;
  for (const auto& part : p) s += (s.empty() ? "" : ".") + part;
  return s;
}

}  // namespace

void append_base64(std::string& out, std::string_view in) {
  static const char* kChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += kChars[v >> 18];
    out += kChars[(v >> 12) & 63];
    out += kChars[(v >> 6) & 63];
    out += kChars[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kChars[v >> 18];
    out += kChars[(v >> 12) & 63];
    out += i + 1 < in.size() ? kChars[(v >> 6) & 63] : '=';
    out += '=';
  }
}

std::string_view reason_label(FailureReason r) {
  switch (r) {
    case FailureReason::NotJson: return "not_json";
    case FailureReason::TooLarge: return "too_large";
    case FailureReason::Filter: return "filter";
    case FailureReason::Transform: return "transform";
    case FailureReason::Destination: return "destination";
    case FailureReason::Encode: return "encode";
  }
  return "unknown";
}

namespace {

// Writes JSON into a string through a cursor. Room is made ahead (doubling) and the string
// is cut back to what was written when the writer finishes, so a comma or a key costs
// stores instead of a call that checks the capacity each time.
class JsonWriter {
 public:
  // `doc`: the document the event was read from (or null), whose members written as
  // they came are copied from its source text.
  JsonWriter(std::string& out, size_t expected, const json::Document* doc = nullptr)
      : out_(out), doc_(doc) {
    const size_t used = out_.size();
    out_.resize(used + expected);
    at_ = out_.data() + used;
    end_ = out_.data() + out_.size();
  }
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;
  ~JsonWriter() { out_.resize(size()); }

  const json::Document* document() const { return doc_; }

  // Bytes in the string so far, the part before the writer included.
  size_t size() const { return static_cast<size_t>(at_ - out_.data()); }

  void put(char c) {
    reserve(1);
    *at_++ = c;
  }
  void put(std::string_view s) {
    reserve(s.size());
    copy(s);
  }
  // `s` as a JSON string. Text known to need no escape (Value::text_escape_free) is not
  // scanned for one.
  void put_quoted(std::string_view s, bool known_escape_free = false) {
    if (!known_escape_free && !json::escape_free(s)) return put_escaped(s);
    reserve(s.size() + 2);
    *at_++ = '"';
    copy(s);
    *at_++ = '"';
  }
  // `"key":`, after a comma unless it is the first member.
  void put_key(const Value& key, bool first) {
    const std::string_view s = key.text();
    if (!key.text_escape_free() && !json::escape_free(s)) {
      if (!first) put(',');
      put_escaped(s);
      put(':');
      return;
    }
    reserve(s.size() + 4);
    if (!first) *at_++ = ',';
    *at_++ = '"';
    copy(s);
    *at_++ = '"';
    *at_++ = ':';
  }

 private:
  void copy(std::string_view s) {
    if (!s.empty()) std::memcpy(at_, s.data(), s.size());
    at_ += s.size();
  }
  [[gnu::noinline]] void put_escaped(std::string_view s) {
    std::string escaped;
    json::append_quoted(escaped, s);
    put(escaped);
  }
  void reserve(size_t n) {
    if (static_cast<size_t>(end_ - at_) < n) grow(n);
  }
  [[gnu::noinline]] void grow(size_t n) {
    const size_t used = size();
    out_.resize(std::max(2 * out_.size(), used + n + 64));
    at_ = out_.data() + used;
    end_ = out_.data() + out_.size();
  }

  std::string& out_;
  const json::Document* doc_;
  char* at_;
  char* end_;
};

// Text of a scalar for JSON output; false for NaN and the infinities.
bool put_scalar(const Value& v, JsonWriter& w) {
  char buf[json::kMaxNumberChars];
  switch (v.kind()) {
    case Kind::Int:
      w.put(std::string_view(buf, std::to_chars(buf, buf + sizeof buf, v.int_value()).ptr - buf));
      return true;
    case Kind::Uint:
      w.put(std::string_view(buf, std::to_chars(buf, buf + sizeof buf, v.uint_value()).ptr - buf));
      return true;
    case Kind::Double:
      if (!v.raw_json().empty()) {
        w.put(v.raw_json());
        return true;
      }
      if (!std::isfinite(v.double_value())) return false;
      w.put(std::string_view(buf, json::write_double(buf, v.double_value())));
      return true;
    case Kind::Bool:
      w.put(v.bool_value() ? std::string_view("true") : std::string_view("false"));
      return true;
    default:
      return false;
  }
}

// When map entry (key, value) is a member of an object of the source document as it came,
// written with no spacing, so that what encode() would write for it is its source text:
// that text, [begin, end) in the source. Keys and strings read from the source point into
// it, numbers keep their source text, true, false and null read the same whichever copy
// is written, and an object or array is a node of the document. A key whose value was
// replaced, or a repeated key (whose value is that of its last occurrence), does not start
// its value where the source does.
bool member_text(const char* source, const char* source_end, const json::Document* doc, const Value& key,
                 const Value& value, const char*& begin, const char*& end) {
  if (key.kind() != Kind::String || !key.text_escape_free()) return false;
  const char* k = key.text().data();
  const char* p = k + key.text().size();
  // `"key":` then the value, all inside the source.
  if (k <= source || p + 2 >= source_end || k[-1] != '"' || p[0] != '"' || p[1] != ':') return false;
  p += 2;
  switch (value.kind()) {
    case Kind::String: {
      const std::string_view t = value.text();
      if (!value.text_escape_free() || t.data() != p + 1 || *p != '"') return false;
      end = p + t.size() + 2;  // the closing quote: a string without escapes holds none
      if (end > source_end || end[-1] != '"') return false;
      break;
    }
    case Kind::Double: {
      const std::string_view raw = value.raw_json();
      if (raw.data() != p || raw.empty()) return false;
      end = p + raw.size();
      break;
    }
    case Kind::Bool:
    case Kind::Null: {
      const std::string_view literal =
          value.kind() == Kind::Null ? "null" : value.bool_value() ? "true" : "false";
      if (static_cast<size_t>(source_end - p) < literal.size() ||
          std::memcmp(p, literal.data(), literal.size()) != 0) {
        return false;
      }
      end = p + literal.size();
      break;
    }
    case Kind::List:
    case Kind::Map: {
      if (value.json_doc() != doc) return false;
      const json::Node& n = doc->node(value.json_node());
      if (source + n.begin != p) return false;
      end = source + n.end;
      break;
    }
    default:
      return false;
  }
  begin = k - 1;
  return true;
}

bool encode(const Value& v, JsonWriter& w, std::string& error, size_t max_bytes, int depth) {
  if (depth > kMaxEncodeDepth) {
    error = "value nested deeper than " + std::to_string(kMaxEncodeDepth) + " levels";
    return false;
  }
  if (w.size() > max_bytes) {
    error = "output of more than " + std::to_string(max_bytes) + " bytes";
    return false;
  }
  if (v.is_json()) {
    w.put(v.json_doc()->raw(v.json_node()));
    return true;
  }
  switch (v.kind()) {
    case Kind::Null:
      w.put("null");
      return true;
    case Kind::Bool:
    case Kind::Int:
    case Kind::Uint:
      return put_scalar(v, w);
    case Kind::Double:
      if (!put_scalar(v, w)) {
        error = "cannot write " + cel::debug_string(v) + " as JSON";
        return false;
      }
      return true;
    case Kind::String:
    case Kind::Type:
      w.put_quoted(v.text(), v.text_escape_free());
      return true;
    case Kind::Bytes: {
      std::string base64;
      append_base64(base64, v.text());
      w.put_quoted(base64);
      return true;
    }
    case Kind::Timestamp:
      w.put_quoted(cel::time::format_timestamp(v.time_value()));
      return true;
    case Kind::Duration:
      w.put_quoted(cel::time::format_duration(v.time_value()));
      return true;
    case Kind::List: {
      w.put('[');
      bool first = true;
      for (const Value& item : v.owned_list()) {
        if (!first) w.put(',');
        first = false;
        if (!encode(item, w, error, max_bytes, depth + 1)) return false;
      }
      w.put(']');
      return true;
    }
    case Kind::Map: {
      w.put('{');
      bool first = true;
      const cel::MapEntries& entries = v.owned_map();
      // Members of the source as they came, in a row: copied as one run of its text.
      const json::Document* doc = w.document();
      const char* source = doc != nullptr ? doc->source().data() : nullptr;
      const char* source_end = doc != nullptr ? source + doc->source().size() : nullptr;
      const char* run_begin = nullptr;
      const char* run_end = nullptr;
      auto flush_run = [&] {
        if (run_begin == nullptr) return;
        if (!first) w.put(',');
        w.put(std::string_view(run_begin, static_cast<size_t>(run_end - run_begin)));
        first = false;
        run_begin = nullptr;
      };
      for (size_t i = 0; i < entries.size(); ++i) {
        const char* begin = nullptr;
        const char* end = nullptr;
        if (doc != nullptr && member_text(source, source_end, doc, entries[i].first, entries[i].second, begin, end)) {
          // The next member of the same object: a comma alone between them.
          if (run_begin != nullptr && begin == run_end + 1 && *run_end == ',') {
            run_end = end;
          } else {
            flush_run();
            run_begin = begin;
            run_end = end;
          }
          continue;
        }
        flush_run();
        const auto& [k, val] = entries[i];
        if (k.kind() == Kind::String) {
          w.put_key(k, first);
        } else {
          std::string key;
          if (!scalar_text(k, key)) {
            error = "map key of type " + std::string(cel::type_name(k)) + " cannot be a JSON key";
            return false;
          }
          w.put_key(Value::string_view(key), first);
        }
        first = false;
        if (!encode(val, w, error, max_bytes, depth + 1)) return false;
      }
      flush_run();
      w.put('}');
      return true;
    }
    case Kind::Error:
      error = std::string(v.text());
      return false;
  }
  return false;
}

}  // namespace

bool encode_json(const Value& v, std::string& out, std::string& error, size_t max_bytes, int depth,
                 const json::Document* source) {
  // Room for what a transform usually writes: an edited event about the size of the input.
  JsonWriter w(out, std::max<size_t>(out.capacity() - out.size(), 64), source);
  return encode(v, w, error, max_bytes, depth);
}

Processor::Processor() : activation_(cel::Environment::routing()) {}

void Processor::prepare(const Message& msg) {
  activation_.set(kSubject, Value::string_view(msg.subject));
  // The previous message's headers map is refilled when nothing else kept it, which saves
  // its allocations.
  Value& headers_value = activation_.at(kHeaders);
  cel::MapEntries* headers = headers_value.unique_map();
  if (headers == nullptr) {
    headers_value = Value::map({});
    headers = headers_value.unique_map();
  }
  headers->clear();
  headers_error_.clear();
  if (msg.headers != nullptr) {
    // Checked before the headers are looked at: over the limits the event fails on every
    // route (run_route), and the duplicate check below stays small.
    size_t header_bytes = 0;
    for (const auto& [k, v] : *msg.headers) header_bytes += k.size() + v.size();
    if (msg.headers->size() > kMaxEventHeaders || header_bytes > kMaxEventHeaderBytes) {
      headers_error_ = std::to_string(msg.headers->size()) + " headers of " + std::to_string(header_bytes) +
                       " bytes exceed the limit of " + std::to_string(kMaxEventHeaders) + " headers and " +
                       std::to_string(kMaxEventHeaderBytes) + " bytes";
    }
  }
  if (msg.headers != nullptr && headers_error_.empty()) {
    for (const auto& [k, v] : *msg.headers) {
      // NATS allows repeated headers; the first value wins, as Go's Header.Get does.
      bool dup = false;
      for (const auto& e : *headers) dup = dup || e.first.text() == k;
      if (!dup) headers->emplace_back(Value::string_view(k), Value::string_view(v));
    }
  }
  // Parsed the first time a route of this event reads it (parse_payload): a route that
  // never looks at the payload, such as a pass-through, costs no parse.
  payload_ = msg.payload;
  parse_pending_ = true;
  parsed_ = false;
  json_error_.clear();
  activation_.set(kEvent, Value::null());
}

void Processor::parse_payload() {
  if (!parse_pending_) return;
  parse_pending_ = false;
  parsed_ = doc_.parse(payload_);
  if (!parsed_) json_error_ = doc_.error();
}

bool Processor::apply_steps(const std::vector<CompiledStep>& steps, Value& event, std::string& where,
                            std::string& error) {
  for (const auto& step : steps) {
    switch (step.kind) {
      case StepSpec::Kind::Set: {
        // Every expression of one step sees the event as it was before the step.
        std::vector<Value>& values = set_values_;
        values.clear();
        for (const auto& [path, program] : step.set) {
          Value v = program.evaluate(activation_);
          if (v.is_error()) {
            where = step.origin + ".set." + dotted(path);
            error = std::string(v.text());
            return false;
          }
          values.push_back(std::move(v));
        }
        release_event();
        for (size_t i = 0; i < step.set.size(); ++i) {
          if (!set_path(event, step.set[i].first, 0, std::move(values[i]), error, spare_maps_)) {
            where = step.origin + ".set." + dotted(step.set[i].first);
            return false;
          }
        }
        values.clear();
        break;
      }
      case StepSpec::Kind::Remove:
        release_event();
        if (event.kind() != Kind::Map) {
          where = step.origin + ".remove";
          error = "the payload is " + std::string(cel::type_name(event)) + ", not an object";
          return false;
        }
        for (const auto& path : step.remove) remove_path(event, path, 0, nullptr, spare_maps_);
        break;
      case StepSpec::Kind::Rename:
        release_event();
        if (event.kind() != Kind::Map) {
          where = step.origin + ".rename";
          error = "the payload is " + std::string(cel::type_name(event)) + ", not an object";
          return false;
        }
        for (const auto& [from, to] : step.rename) {
          Value moved;
          if (!remove_path(event, from, 0, &moved, spare_maps_)) continue;
          if (!set_path(event, to, 0, std::move(moved), error, spare_maps_)) {
            where = step.origin + ".rename." + dotted(from);
            return false;
          }
        }
        break;
      case StepSpec::Kind::Payload: {
        Value v = step.payload->evaluate(activation_);
        if (v.is_error()) {
          where = step.origin + ".payload";
          error = std::string(v.text());
          return false;
        }
        event = std::move(v);
        break;
      }
      case StepSpec::Kind::Use:
        break;
    }
    activation_.set(kEvent, event);
  }
  return true;
}

bool Processor::run_steps(const std::vector<CompiledStep>& steps, bool needs_json, const Message& msg,
                          std::string& payload, std::string& error) {
  prepare(msg);
  if (needs_json) parse_payload();
  if (needs_json && !parsed_) {
    error = "payload is not JSON: " + json_error_;
    return false;
  }
  Value event = parsed_ ? Value::json(&doc_, 0) : Value::null();
  EventScope scope(*this, event);
  activation_.set(kEvent, event);
  std::string where;
  if (!apply_steps(steps, event, where, error)) {
    error = where + ": " + error;
    return false;
  }
  payload.clear();
  if (steps.empty()) {
    payload = msg.payload;
    return true;
  }
  return encode_json(event, payload, error, SIZE_MAX, 0, parsed_ ? &doc_ : nullptr);
}

Result Processor::process_route(const RouteTable& table, uint32_t index, const Message& msg) {
  prepare(msg);
  return run_route(table, index, msg);
}

// Edits of the working event happen in place when the activation does not hold it too.
void Processor::release_event() { activation_.set(kEvent, Value()); }

Processor::EventScope::~EventScope() {
  processor_.release_event();
  recycle_maps(processor_.spare_maps_, event_);
}

Result Processor::run_route(const RouteTable& table, uint32_t index, const Message& msg) {
  const CompiledRoute& route = table.routes()[index];
  Result r;
  r.route = index;
  auto fail = [&](FailureReason reason, std::string step, std::string error) {
    r.outcome = Result::Outcome::Failed;
    r.reason = reason;
    r.step = std::move(step);
    r.error = std::move(error);
    r.outputs.clear();
    return r;
  };
  if (static_cast<int64_t>(msg.payload.size()) > route.spec.max_payload_bytes) {
    return fail(FailureReason::TooLarge, "source",
                "payload of " + std::to_string(msg.payload.size()) + " bytes exceeds maxPayloadBytes " +
                    std::to_string(route.spec.max_payload_bytes));
  }
  if (!headers_error_.empty()) return fail(FailureReason::TooLarge, "source", headers_error_);
  if (route.needs_json) parse_payload();
  if (route.needs_json && !parsed_) {
    return fail(FailureReason::NotJson, "source", "payload is not JSON: " + json_error_);
  }
  Value event = parsed_ ? Value::json(&doc_, 0) : Value::null();
  EventScope scope(*this, event);
  activation_.set(kEvent, event);
  if (route.filter) {
    Value keep = route.filter->evaluate(activation_);
    if (keep.is_error()) return fail(FailureReason::Filter, "filter", std::string(keep.text()));
    if (keep.kind() != Kind::Bool) {
      return fail(FailureReason::Filter, "filter",
                  "filter returned " + std::string(cel::type_name(keep)) + ", not bool");
    }
    if (!keep.bool_value()) {
      r.outcome = Result::Outcome::Filtered;
      return r;
    }
  }
  std::string where, error;
  if (!apply_steps(route.steps, event, where, error)) {
    return fail(FailureReason::Transform, where, error);
  }
  std::string payload;
  if (route.steps.empty()) {
    payload = msg.payload;
  } else {
    // Room for a transform that adds a little: one allocation instead of a doubling series.
    payload.reserve(msg.payload.size() + msg.payload.size() / 4 + 16);
    // The output is held to the same maxPayloadBytes as the input.
    const auto max_out = static_cast<size_t>(route.spec.max_payload_bytes);
    if (!encode_json(event, payload, error, max_out, 0, parsed_ ? &doc_ : nullptr) || payload.size() > max_out) {
      if (payload.size() <= max_out) return fail(FailureReason::Encode, "transform", error);
      return fail(FailureReason::TooLarge, "transform",
                  "output exceeds maxPayloadBytes " + std::to_string(max_out));
    }
  }
  const size_t before = publishes_before(table, index, msg.subject);
  if (before + route.destinations.size() > kMaxPublishesPerEvent) {
    return fail(FailureReason::Destination, "destinations",
                "fan-out limit: routes declared before this one already publish this event " +
                    std::to_string(before) + " times, and " + std::to_string(route.destinations.size()) +
                    " more would exceed " + std::to_string(kMaxPublishesPerEvent));
  }
  for (size_t d = 0; d < route.destinations.size(); ++d) {
    const CompiledDestination& dest = route.destinations[d];
    // Only failures name the destination: no string building on the way to success.
    auto field = [d] { return "destinations[" + std::to_string(d) + "]"; };
    Published out;
    out.jetstream = dest.jetstream;
    for (size_t i = 0; i < dest.subject.exprs.size(); ++i) {
      out.subject += dest.subject.literals[i];
      Value part = dest.subject.exprs[i].evaluate(activation_);
      if (part.is_error()) return fail(FailureReason::Destination, field() + ".subject", std::string(part.text()));
      if (!scalar_text(part, out.subject)) {
        return fail(FailureReason::Destination, field() + ".subject",
                    "subject template produced " + std::string(cel::type_name(part)) +
                        ", not a string or number");
      }
    }
    out.subject += dest.subject.literals.back();
    if (!dest.subject.exprs.empty()) {
      std::string why;
      if (!validate_subject(out.subject, false, &why)) {
        return fail(FailureReason::Destination, field() + ".subject", "rendered subject is invalid: " + why);
      }
    }
    if (msg.headers != nullptr) out.headers = *msg.headers;
    for (const auto& [name, program] : dest.headers) {
      Value hv = program.evaluate(activation_);
      std::string text;
      if (hv.is_error()) return fail(FailureReason::Destination, field() + ".headers." + name, std::string(hv.text()));
      if (!scalar_text(hv, text)) {
        return fail(FailureReason::Destination, field() + ".headers." + name,
                    "header value is " + std::string(cel::type_name(hv)) + ", not a string");
      }
      if (text.find_first_of("\r\n") != std::string::npos) {
        return fail(FailureReason::Destination, field() + ".headers." + name,
                    "header value contains a line break");
      }
      if (text.size() > kMaxHeaderValueBytes) {
        return fail(FailureReason::Destination, field() + ".headers." + name,
                    "header value of " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                        std::to_string(kMaxHeaderValueBytes));
      }
      bool replaced = false;
      for (auto& h : out.headers) {
        if (h.first == name) {
          h.second = text;
          replaced = true;
        }
      }
      if (!replaced) out.headers.emplace_back(name, std::move(text));
    }
    out.payload = d + 1 == route.destinations.size() ? std::move(payload) : payload;
    r.outputs.push_back(std::move(out));
  }
  r.outcome = Result::Outcome::Published;
  return r;
}

size_t Processor::publishes_before(const RouteTable& table, uint32_t route, std::string_view subject) {
  if (table.total_destinations() <= kMaxPublishesPerEvent) return 0;
  fanout_matched_.clear();
  table.match(subject, fanout_matched_);
  size_t n = 0;
  for (uint32_t i : fanout_matched_) {
    if (i < route) n += table.routes()[i].destinations.size();
  }
  return n;
}

void Processor::process(const RouteTable& table, const Message& msg, std::vector<Result>& out) {
  matched_.clear();
  table.match(msg.subject, matched_);
  if (matched_.empty()) return;
  prepare(msg);  // parsed at most once, whatever the number of routes
  for (uint32_t index : matched_) out.push_back(run_route(table, index, msg));
}

}  // namespace switchboard::route
