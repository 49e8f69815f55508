// The rules of the route spec's shape, written once and walked over any parsed tree: the
// YAML loader (spec_yaml.cc, yaml-cpp nodes) and the JSON loader (spec_json.cc, core/json
// values) each wrap their nodes in a small handle that meets SpecNode, so a field, a bound
// or an error message cannot differ between the two. Private to the two loaders.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/cel/diagnostic.h"
#include "core/json/document.h"
#include "core/route/spec.h"
#include "core/route/spec_yaml.h"  // parse_duration_ms

namespace switchboard::route::detail {

// Where a node starts, 0-based, as the parser reports it; line -1 when unknown.
struct Mark {
  int line = -1;
  int column = 0;
};

// What the reader needs of a parsed node. A handle may be absent (a member that is not
// there): it then converts to false and is nothing else.
template <typename N>
concept SpecNode = requires(const N n, std::string_view key, std::string& out, long long& i, bool& b) {
  { static_cast<bool>(n) } -> std::same_as<bool>;
  { n.is_map() } -> std::same_as<bool>;
  { n.is_list() } -> std::same_as<bool>;
  { n.is_scalar() } -> std::same_as<bool>;  // a string, number or boolean
  { n.is_null() } -> std::same_as<bool>;
  { n.scalar() } -> std::convertible_to<std::string_view>;  // a scalar's text; empty otherwise
  { n.get(key) } -> std::same_as<N>;        // a map's member, or an absent handle
  { n.size() } -> std::same_as<size_t>;     // members of a map, elements of a list
  { n.mark() } -> std::same_as<Mark>;
  { n.to_integer(i) } -> std::same_as<bool>;
  { n.to_boolean(b) } -> std::same_as<bool>;
  // A scalar as JSON, typed the way the source language types it.
  n.append_scalar_json(out);
  // for_each_member(f): f(key, value) for each member of a map, in order.
  // for_each_element(f): f(index, element) for each element of a list.
};

// Source lines, for turning a mark into a Location that points inside quotes and at the
// first line of a block scalar.
std::vector<std::string> split_lines(std::string_view text);
Location location_of(const std::string& file, const std::vector<std::string>& lines, Mark m);

// Returns the 1-based line of the first byte that is not UTF-8, or 0.
int invalid_utf8_line(std::string_view text);
// Names must be unique: they key metrics, consumers and errors. False when one repeats.
bool check_unique_names(const RouteSet& set, std::vector<SpecError>& errors);

// JetStream takes durations in int64 nanoseconds; a year keeps every value far from
// overflow and is longer than any sensible ack wait or backoff. The CRD has the same bounds.
inline constexpr int64_t kMaxDurationMs = 8760LL * 3600 * 1000;

using Allowed = std::initializer_list<std::string_view>;

// Walks nodes, recording errors with their path and position instead of throwing.
template <SpecNode N>
class SpecReader {
 public:
  SpecReader(std::string_view text, std::string file, std::vector<SpecError>& errors)
      : file_(std::move(file)), errors_(errors), lines_(split_lines(text)) {}

  // Documents of a YAML stream are parsed one at a time; marks count from the document's
  // first line.
  void set_line_offset(int offset) { line_offset_ = offset; }

  Location loc(const N& n) const {
    Mark m = n.mark();
    if (m.line >= 0) m.line += line_offset_;
    return location_of(file_, lines_, m);
  }

  void error(const N& n, const std::string& object, const std::string& field, std::string message) {
    errors_.push_back(SpecError{loc(n), object, field, std::move(message), ""});
  }

  // Checks that a map has only the allowed keys (and `name` too when `named`).
  bool fields(const N& n, const std::string& object, const std::string& path, Allowed allowed,
              bool named = false) {
    if (!n.is_map()) {
      error(n, object, path, "expected a mapping");
      return false;
    }
    bool ok = true;
    n.for_each_member([&](const N& key_node, const N&) {
      std::string_view key = key_node.scalar();
      if (named && key == "name") return;
      for (std::string_view a : allowed) {
        if (a == key) return;
      }
      std::vector<std::string> candidates;
      if (named) candidates.emplace_back("name");
      for (std::string_view a : allowed) candidates.emplace_back(a);
      std::string k(key);
      std::string hint = cel::closest_match(k, candidates);
      error(key_node, object, join(path, k),
            "unknown field '" + k + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
      errors_.back().object_incomplete = false;
      ok = false;
    });
    return ok;
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  bool string(const N& n, const std::string& object, const std::string& path, std::string& out,
              bool required = false) {
    if (!n) {
      if (required) errors_.push_back(SpecError{Location{file_}, object, path, "is required", ""});
      return !required;
    }
    if (!n.is_scalar()) {
      error(n, object, path, "expected a string");
      return false;
    }
    out = n.scalar();
    if (required && out.empty()) {
      error(n, object, path, "must not be empty");
      return false;
    }
    return true;
  }

  bool located(const N& n, const std::string& object, const std::string& path, Located& out,
               bool required = false) {
    if (!string(n, object, path, out.text, required)) return false;
    if (n) out.at = loc(n);
    return true;
  }

  template <typename T>
  bool integer(const N& n, const std::string& object, const std::string& path, T& out, T min, T max) {
    if (!n) return true;
    long long v = 0;
    if (!n.is_scalar() || !n.to_integer(v) || v < min || v > max) {
      error(n, object, path, "expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
      return false;
    }
    out = static_cast<T>(v);
    return true;
  }

  bool boolean(const N& n, const std::string& object, const std::string& path, bool& out) {
    if (!n) return true;
    if (!n.is_scalar() || !n.to_boolean(out)) {
      error(n, object, path, "expected true or false");
      return false;
    }
    return true;
  }

  bool duration(const N& n, const std::string& object, const std::string& path, int64_t& ms,
                bool positive = false) {
    if (!n) return true;
    int64_t v = 0;
    if (!n.is_scalar() || !parse_duration_ms(n.scalar(), v) || v > kMaxDurationMs || (positive && v <= 0)) {
      error(n, object, path,
            std::string("expected a duration such as 30s, 1m or 250ms") + (positive ? ", more than 0" : "") +
                ", at most 8760h");
      return false;
    }
    ms = v;
    return true;
  }

  // A step's one member, `kind: v`. False when the step is left out (it cannot be read).
  bool step_value(const std::string& kind, const N& v, const std::string& object, const std::string& p,
                  StepSpec& step, bool& ok) {
    std::string vp = p + "." + kind;
    if (kind == "set") {
      step.kind = StepSpec::Kind::Set;
      if (!v.is_map() || v.size() == 0) {
        error(v, object, vp, "expected a mapping of field paths to expressions");
        ok = false;
        return false;
      }
      v.for_each_member([&](const N& k, const N& value) {
        Located e;
        std::string key(k.scalar());
        ok &= located(value, object, vp + "." + key, e, true);
        step.set.emplace_back(std::move(key), std::move(e));
      });
    } else if (kind == "remove") {
      step.kind = StepSpec::Kind::Remove;
      if (v.is_scalar()) {
        step.remove.emplace_back(v.scalar());
      } else if (v.is_list() && v.size() > 0) {
        v.for_each_element([&](size_t, const N& f) {
          std::string path_text;
          ok &= string(f, object, vp, path_text, true);
          step.remove.push_back(std::move(path_text));
        });
      } else {
        error(v, object, vp, "expected a field path or a list of field paths");
        ok = false;
      }
    } else if (kind == "rename") {
      step.kind = StepSpec::Kind::Rename;
      if (!v.is_map() || v.size() == 0) {
        error(v, object, vp, "expected a mapping of old field paths to new ones");
        ok = false;
        return false;
      }
      v.for_each_member([&](const N& k, const N& value) {
        std::string from(k.scalar()), to;
        ok &= string(value, object, vp + "." + from, to, true);
        step.rename.emplace_back(std::move(from), std::move(to));
      });
    } else if (kind == "payload") {
      step.kind = StepSpec::Kind::Payload;
      ok &= located(v, object, vp, step.payload, true);
    } else {
      step.kind = StepSpec::Kind::Use;
      ok &= string(v, object, vp, step.use, true);
    }
    return true;
  }

  bool step(const N& s, const std::string& object, const std::string& p, std::vector<StepSpec>& out) {
    if (!fields(s, object, p, {"set", "remove", "rename", "payload", "use"})) return false;
    if (s.size() != 1) {
      error(s, object, p, "a step has exactly one of set, remove, rename, payload, use");
      return false;
    }
    StepSpec step;
    step.at = loc(s);
    bool ok = true, kept = false;
    // The one member, read where it is handed over: handles are never assigned (a
    // yaml-cpp Node's assignment merges the memory of whole documents).
    s.for_each_member([&](const N& k, const N& v) { kept = step_value(std::string(k.scalar()), v, object, p, step, ok); });
    if (!kept) return false;
    out.push_back(std::move(step));
    return ok;
  }

  bool steps(const N& n, const std::string& object, const std::string& path, std::vector<StepSpec>& out) {
    if (!n) return true;
    if (!n.is_list()) {
      error(n, object, path, "expected a list of steps");
      return false;
    }
    bool ok = true;
    n.for_each_element([&](size_t i, const N& s) {
      ok &= step(s, object, path + "[" + std::to_string(i) + "]", out);
    });
    return ok;
  }

  bool jetstream(const N& js, const std::string& object, const std::string& name, JetStreamSpec& j) {
    if (!fields(js, object, "source.jetstream",
                {"stream", "durable", "ackWait", "maxDeliver", "backoff", "batch", "maxAckPending"})) {
      return false;
    }
    bool ok = string(js.get("stream"), object, "source.jetstream.stream", j.stream, true);
    ok &= string(js.get("durable"), object, "source.jetstream.durable", j.durable);
    ok &= duration(js.get("ackWait"), object, "source.jetstream.ackWait", j.ack_wait_ms, true);
    ok &= integer<int32_t>(js.get("maxDeliver"), object, "source.jetstream.maxDeliver", j.max_deliver, 1, 1000);
    ok &= integer<int32_t>(js.get("batch"), object, "source.jetstream.batch", j.batch, 1, 4096);
    ok &= integer<int32_t>(js.get("maxAckPending"), object, "source.jetstream.maxAckPending", j.max_ack_pending,
                           1, 1'000'000);
    const N b = js.get("backoff");
    if (b) {
      if (!b.is_list()) {
        error(b, object, "source.jetstream.backoff", "expected a list of durations");
        ok = false;
      } else {
        b.for_each_element([&](size_t i, const N& d) {
          int64_t ms = 0;
          ok &= duration(d, object, "source.jetstream.backoff[" + std::to_string(i) + "]", ms);
          j.backoff_ms.push_back(ms);
        });
      }
    }
    if (j.durable.empty()) j.durable = name;
    return ok;
  }

  // A destination whose fields were checked.
  bool destination(const N& n, const std::string& object, const std::string& p, DestinationSpec& d) {
    bool ok = located(n.get("subject"), object, p + ".subject", d.subject, true);
    ok &= boolean(n.get("jetstream"), object, p + ".jetstream", d.jetstream);
    const N h = n.get("headers");
    if (!h) return ok;
    if (!h.is_map()) {
      error(h, object, p + ".headers", "expected a mapping of header names to expressions");
      return false;
    }
    h.for_each_member([&](const N& k, const N& value) {
      Located e;
      std::string name(k.scalar());
      ok &= located(value, object, p + ".headers." + name, e, true);
      d.headers.emplace_back(std::move(name), std::move(e));
    });
    return ok;
  }

  // `path` is "spec" for the spec of an EventRoute (named by its metadata), else where the
  // route stands in a list ("routes[3]"), its name then one of its fields.
  bool route(const N& n, std::string name, const std::string& path, RouteSpec& r) {
    if (!n.is_map()) {
      error(n, "route " + path, "", "expected a mapping");
      return false;
    }
    bool ok = true;
    const bool listed = path != "spec";
    if (listed) ok &= string(n.get("name"), "route " + path, "name", name, true);
    std::string object = name.empty() ? "route " + path : "route '" + name + "'";
    // Unknown fields are reported, and the rest is still read so every error shows.
    ok &= fields(n, object, "",
                 {"router", "source", "filter", "transform", "destinations", "deadLetter", "maxPayloadBytes"},
                 listed);
    r.at = loc(n);
    r.name = name;
    ok &= string(n.get("router"), object, "router", r.router);
    const N src = n.get("source");
    if (!src) {
      error(n, object, "source", "is required");
      ok = false;
    } else if (fields(src, object, "source", {"subject", "queueGroup", "jetstream"})) {
      ok &= located(src.get("subject"), object, "source.subject", r.source.subject, true);
      ok &= string(src.get("queueGroup"), object, "source.queueGroup", r.source.queue_group);
      const N js = src.get("jetstream");
      if (js) {
        JetStreamSpec j;
        ok &= jetstream(js, object, name, j);
        r.source.jetstream = std::move(j);
      }
    } else {
      ok = false;
    }
    const N filter = n.get("filter");
    if (filter) {
      Located f;
      ok &= located(filter, object, "filter", f, true);
      r.filter = std::move(f);
    }
    ok &= steps(n.get("transform"), object, "transform", r.transform);
    const N dests = n.get("destinations");
    if (!dests || !dests.is_list() || dests.size() == 0) {
      error(dests ? dests : n, object, "destinations", "needs at least one destination");
      ok = false;
    } else {
      dests.for_each_element([&](size_t i, const N& dn) {
        std::string p = "destinations[" + std::to_string(i) + "]";
        if (!fields(dn, object, p, {"subject", "headers", "jetstream"})) {
          ok = false;
          return;
        }
        DestinationSpec d;
        ok &= destination(dn, object, p, d);
        r.destinations.push_back(std::move(d));
      });
    }
    const N dl = n.get("deadLetter");
    if (dl) {
      if (fields(dl, object, "deadLetter", {"subject"})) {
        std::string s;
        ok &= string(dl.get("subject"), object, "deadLetter.subject", s, true);
        r.dead_letter = s;
      } else {
        ok = false;
      }
    }
    ok &= integer<int64_t>(n.get("maxPayloadBytes"), object, "maxPayloadBytes", r.max_payload_bytes, 1, 64 << 20);
    return ok;
  }

  // Test data to JSON text, scalars typed as the source language types them.
  bool to_json(const N& n, std::string& out, const std::string& object, const std::string& path, int depth = 0) {
    if (depth > 64) {
      error(n, object, path, "nested too deeply");
      return false;
    }
    if (!n || n.is_null()) {
      out += "null";
      return true;
    }
    if (n.is_scalar()) {
      n.append_scalar_json(out);
      return true;
    }
    bool ok = true;
    if (n.is_list()) {
      out += '[';
      n.for_each_element([&](size_t i, const N& e) {
        if (!ok) return;
        if (i) out += ',';
        ok = to_json(e, out, object, path, depth + 1);
      });
      out += ']';
      return ok;
    }
    out += '{';
    bool first = true;
    n.for_each_member([&](const N& k, const N& v) {
      if (!ok) return;
      if (!first) out += ',';
      first = false;
      json::append_quoted(out, k.scalar());
      out += ':';
      ok = to_json(v, out, object, path, depth + 1);
    });
    out += '}';
    return ok;
  }

  bool test_event(const N& n, const std::string& object, const std::string& path, TestEvent& ev) {
    if (!fields(n, object, path, {"subject", "headers", "data", "raw"})) return false;
    bool ok = string(n.get("subject"), object, path + ".subject", ev.subject);
    if (ev.subject.empty()) ev.subject = "test";
    const N h = n.get("headers");
    if (h) {
      if (!h.is_map()) {
        error(h, object, path + ".headers", "expected a mapping of strings");
        ok = false;
      } else {
        h.for_each_member([&](const N& k, const N& v) {
          std::string key(k.scalar());
          if (!v.is_scalar()) {
            error(v, object, path + ".headers." + key, "expected a string");
            ok = false;
            return;
          }
          ev.headers.emplace_back(std::move(key), std::string(v.scalar()));
        });
      }
    }
    const N data = n.get("data"), raw = n.get("raw");
    if (data && raw) {
      error(n, object, path, "give either data or raw, not both");
      return false;
    }
    if (raw) ok &= string(raw, object, path + ".raw", ev.payload);
    else if (data) ok &= to_json(data, ev.payload, object, path + ".data");
    else ev.payload = "null";
    return ok;
  }

  bool transform_test(const N& c, const std::string& object, const std::string& p, TransformSpec& t) {
    if (!fields(c, object, p, {"name", "input", "expect"})) return false;
    TransformTest tc;
    tc.at = loc(c);
    bool ok = string(c.get("name"), object, p + ".name", tc.name, true);
    const N input = c.get("input");
    if (!input) {
      error(c, object, p + ".input", "is required");
      return false;
    }
    ok &= test_event(input, object, p + ".input", tc.input);
    const N e = c.get("expect");
    if (!e || !fields(e, object, p + ".expect", {"data", "error"}) || e.size() != 1) {
      error(e ? e : c, object, p + ".expect", "expects exactly one of data or error");
      return false;
    }
    if (const N data = e.get("data")) {
      std::string j;
      ok &= to_json(data, j, object, p + ".expect.data");
      tc.expect_json = j;
    } else {
      std::string s;
      ok &= string(e.get("error"), object, p + ".expect.error", s, true);
      tc.expect_error = s;
    }
    t.tests.push_back(std::move(tc));
    return ok;
  }

  bool transform(const N& n, std::string name, const std::string& path, TransformSpec& t) {
    if (!n.is_map()) {
      error(n, "transform " + path, "", "expected a mapping");
      return false;
    }
    bool ok = true;
    const bool listed = path != "spec";
    if (listed) ok &= string(n.get("name"), "transform " + path, "name", name, true);
    std::string object = name.empty() ? "transform " + path : "transform '" + name + "'";
    ok &= fields(n, object, "", {"steps", "tests"}, listed);
    t.at = loc(n);
    t.name = name;
    const N steps_node = n.get("steps");
    if (!steps_node) {
      error(n, object, "steps", "is required");
      ok = false;
    }
    ok &= steps(steps_node, object, "steps", t.steps);
    const N tests = n.get("tests");
    if (!tests) return ok;
    if (!tests.is_list()) {
      error(tests, object, "tests", "expected a list of test cases");
      return false;
    }
    tests.for_each_element([&](size_t i, const N& c) {
      ok &= transform_test(c, object, "tests[" + std::to_string(i) + "]", t);
    });
    return ok;
  }

  // A whole document: `routes:` and `transforms:` lists, or one Kubernetes object.
  bool document(const N& doc, RouteSet& out) {
    if (doc.is_null()) return true;
    if (!doc.is_map()) {
      error(doc, "", "", "expected a mapping with routes and transforms, or a Kubernetes object");
      return false;
    }
    if (doc.get("kind") || doc.get("apiVersion")) return object(doc, out);
    if (!fields(doc, "", "", {"routes", "transforms"})) return false;
    bool ok = true;
    for (const char* key : {"routes", "transforms"}) {
      const N list = doc.get(key);
      if (!list) continue;
      if (!list.is_list()) {
        error(list, "", key, "expected a list");
        ok = false;
        continue;
      }
      list.for_each_element([&](size_t i, const N& item) {
        std::string p = std::string(key) + "[" + std::to_string(i) + "]";
        if (key[0] == 'r') {
          RouteSpec r;
          ok &= route(item, "", p, r);
          out.routes.push_back(std::move(r));
        } else {
          TransformSpec t;
          ok &= transform(item, "", p, t);
          out.transforms.push_back(std::move(t));
        }
      });
    }
    return ok;
  }

  bool object(const N& doc, RouteSet& out) {
    std::string kind, api;
    // Both are checked, so that both errors show.
    bool ok = string(doc.get("kind"), "", "kind", kind, true);
    ok = string(doc.get("apiVersion"), "", "apiVersion", api, true) && ok;
    if (!ok) return false;
    if (api != "switchboard.dev/v1alpha1") {
      error(doc.get("apiVersion"), "", "apiVersion", "expected switchboard.dev/v1alpha1, found " + api);
      return false;
    }
    if (kind == "EventRouter") return true;  // fleets are the controller's business
    if (kind != "EventRoute" && kind != "EventTransform") {
      error(doc.get("kind"), "", "kind", "expected EventRoute or EventTransform, found " + kind);
      return false;
    }
    const N meta = doc.get("metadata");
    if (!meta || !meta.is_map() || !meta.get("name")) {
      error(doc, kind, "metadata.name", "is required");
      return false;
    }
    std::string name(meta.get("name").scalar());
    const N spec = doc.get("spec");
    if (!spec) {
      error(doc, kind + " '" + name + "'", "spec", "is required");
      return false;
    }
    if (kind == "EventRoute") {
      RouteSpec r;
      ok = route(spec, name, "spec", r);
      out.routes.push_back(std::move(r));
    } else {
      TransformSpec t;
      ok = transform(spec, name, "spec", t);
      out.transforms.push_back(std::move(t));
    }
    return ok;
  }

 private:
  std::string file_;
  std::vector<SpecError>& errors_;
  std::vector<std::string> lines_;
  int line_offset_ = 0;
};

}  // namespace switchboard::route::detail
