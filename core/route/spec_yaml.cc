#include "core/route/spec_yaml.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "core/cel/diagnostic.h"
#include "core/cel/time.h"
#include "core/json/document.h"

namespace switchboard::route {

std::string SpecError::render() const {
  std::string out;
  if (!at.file.empty()) out += at.file + ":";
  if (at.line > 0) out += std::to_string(at.line) + ":" + std::to_string(at.column) + ":";
  if (!out.empty()) out += " ";
  if (!object.empty()) out += object + (field.empty() ? ": " : ", ");
  if (!field.empty()) out += field + ": ";
  out += message;
  if (!snippet.empty()) out += "\n" + snippet;
  return out;
}

bool parse_duration_ms(std::string_view text, int64_t& ms) {
  auto d = cel::time::parse_duration(text);
  if (!d || d->seconds < 0 || d->nanos < 0) return false;
  ms = d->seconds * 1000 + d->nanos / 1'000'000;
  return true;
}

namespace {

// Walks YAML nodes, recording errors with their path and position instead of throwing.
class Reader {
 public:
  Reader(std::string_view text, std::string file, std::vector<SpecError>& errors)
      : file_(std::move(file)), errors_(errors) {
    std::string t(text);
    std::istringstream in(t);
    std::string line;
    while (std::getline(in, line)) lines_.push_back(line);
  }

  Location loc(const YAML::Node& n) const {
    Location l;
    l.file = file_;
    YAML::Mark m = n.Mark();
    if (m.line < 0) return l;
    m.line += line_offset_;
    l.line = m.line + 1;
    l.column = m.column + 1;
    if (static_cast<size_t>(m.line) < lines_.size()) {
      const std::string& src = lines_[static_cast<size_t>(m.line)];
      char c = static_cast<size_t>(m.column) < src.size() ? src[static_cast<size_t>(m.column)] : ' ';
      if (c == '\'' || c == '"') {
        l.column += 1;
      } else if (c == '|' || c == '>') {
        l.block = true;
        l.line += 1;
        if (static_cast<size_t>(m.line + 1) < lines_.size()) {
          const std::string& next = lines_[static_cast<size_t>(m.line + 1)];
          l.block_indent = static_cast<int>(next.find_first_not_of(' '));
          if (l.block_indent < 0) l.block_indent = 0;
        }
        l.column = l.block_indent + 1;
      }
    }
    return l;
  }

  void error(const YAML::Node& n, const std::string& object, const std::string& field,
             std::string message) {
    errors_.push_back(SpecError{loc(n), object, field, std::move(message), ""});
  }

  // Checks that a map has only the allowed keys.
  bool fields(const YAML::Node& n, const std::string& object, const std::string& path,
              const std::vector<std::string>& allowed) {
    if (!n.IsMap()) {
      error(n, object, path, "expected a mapping");
      return false;
    }
    bool ok = true;
    for (const auto& kv : n) {
      std::string key = kv.first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string hint = cel::closest_match(key, allowed);
        error(kv.first, object, join(path, key),
              "unknown field '" + key + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
        errors_.back().object_incomplete = false;
        ok = false;
      }
    }
    return ok;
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  bool string(const YAML::Node& n, const std::string& object, const std::string& path,
              std::string& out, bool required = false) {
    if (!n) {
      if (required) errors_.push_back(SpecError{Location{file_}, object, path, "is required", ""});
      return !required;
    }
    if (!n.IsScalar()) {
      error(n, object, path, "expected a string");
      return false;
    }
    out = n.Scalar();
    if (required && out.empty()) {
      error(n, object, path, "must not be empty");
      return false;
    }
    return true;
  }

  bool located(const YAML::Node& n, const std::string& object, const std::string& path,
               Located& out, bool required = false) {
    if (!string(n, object, path, out.text, required)) return false;
    if (n) out.at = loc(n);
    return true;
  }

  template <typename T>
  bool integer(const YAML::Node& n, const std::string& object, const std::string& path, T& out,
               T min, T max) {
    if (!n) return true;
    long long v;
    if (!n.IsScalar() || !YAML::convert<long long>::decode(n, v) || v < min || v > max) {
      error(n, object, path,
            "expected an integer from " + std::to_string(min) + " to " + std::to_string(max));
      return false;
    }
    out = static_cast<T>(v);
    return true;
  }

  bool boolean(const YAML::Node& n, const std::string& object, const std::string& path, bool& out) {
    if (!n) return true;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, out)) {
      error(n, object, path, "expected true or false");
      return false;
    }
    return true;
  }

  // JetStream takes durations in int64 nanoseconds; a year keeps every value far from
  // overflow and is longer than any sensible ack wait or backoff. The CRD has the same bounds.
  static constexpr int64_t kMaxDurationMs = 8760LL * 3600 * 1000;

  bool duration(const YAML::Node& n, const std::string& object, const std::string& path,
                int64_t& ms, bool positive = false) {
    if (!n) return true;
    int64_t v = 0;
    if (!n.IsScalar() || !parse_duration_ms(n.Scalar(), v) || v > kMaxDurationMs || (positive && v <= 0)) {
      error(n, object, path,
            std::string("expected a duration such as 30s, 1m or 250ms") + (positive ? ", more than 0" : "") +
                ", at most 8760h");
      return false;
    }
    ms = v;
    return true;
  }

  bool steps(const YAML::Node& n, const std::string& object, const std::string& path,
             std::vector<StepSpec>& out) {
    if (!n) return true;
    if (!n.IsSequence()) {
      error(n, object, path, "expected a list of steps");
      return false;
    }
    bool ok = true;
    for (size_t i = 0; i < n.size(); ++i) {
      const YAML::Node s = n[i];
      std::string p = path + "[" + std::to_string(i) + "]";
      if (!fields(s, object, p, {"set", "remove", "rename", "payload", "use"})) {
        ok = false;
        continue;
      }
      if (s.size() != 1) {
        error(s, object, p, "a step has exactly one of set, remove, rename, payload, use");
        ok = false;
        continue;
      }
      StepSpec step;
      step.at = loc(s);
      const auto& kv = *s.begin();
      std::string kind = kv.first.Scalar();
      const YAML::Node v = kv.second;
      std::string vp = p + "." + kind;
      if (kind == "set") {
        step.kind = StepSpec::Kind::Set;
        if (!v.IsMap() || v.size() == 0) {
          error(v, object, vp, "expected a mapping of field paths to expressions");
          ok = false;
          continue;
        }
        for (const auto& f : v) {
          Located e;
          ok &= located(f.second, object, vp + "." + f.first.Scalar(), e, true);
          step.set.emplace_back(f.first.Scalar(), std::move(e));
        }
      } else if (kind == "remove") {
        step.kind = StepSpec::Kind::Remove;
        if (v.IsScalar()) {
          step.remove.push_back(v.Scalar());
        } else if (v.IsSequence() && v.size() > 0) {
          for (const auto& f : v) {
            std::string path_text;
            ok &= string(f, object, vp, path_text, true);
            step.remove.push_back(path_text);
          }
        } else {
          error(v, object, vp, "expected a field path or a list of field paths");
          ok = false;
        }
      } else if (kind == "rename") {
        step.kind = StepSpec::Kind::Rename;
        if (!v.IsMap() || v.size() == 0) {
          error(v, object, vp, "expected a mapping of old field paths to new ones");
          ok = false;
          continue;
        }
        for (const auto& f : v) {
          std::string to;
          ok &= string(f.second, object, vp + "." + f.first.Scalar(), to, true);
          step.rename.emplace_back(f.first.Scalar(), to);
        }
      } else if (kind == "payload") {
        step.kind = StepSpec::Kind::Payload;
        ok &= located(v, object, vp, step.payload, true);
      } else {
        step.kind = StepSpec::Kind::Use;
        ok &= string(v, object, vp, step.use, true);
      }
      out.push_back(std::move(step));
    }
    return ok;
  }

  bool route(const YAML::Node& n, std::string name, const std::string& path, RouteSpec& r) {
    if (!n.IsMap()) {
      error(n, "route " + path, "", "expected a mapping");
      return false;
    }
    bool ok = true;
    if (path != "spec") ok &= string(n["name"], "route " + path, "name", name, true);
    std::string object = name.empty() ? "route " + path : "route '" + name + "'";
    std::vector<std::string> allowed = {"router", "source", "filter", "transform",
                                        "destinations", "deadLetter", "maxPayloadBytes"};
    if (path != "spec") allowed.insert(allowed.begin(), "name");
    // Unknown fields are reported, and the rest is still read so every error shows.
    ok &= fields(n, object, "", allowed);
    r.at = loc(n);
    r.name = name;
    ok &= string(n["router"], object, "router", r.router);
    const YAML::Node src = n["source"];
    if (!src) {
      error(n, object, "source", "is required");
      ok = false;
    } else if (fields(src, object, "source", {"subject", "queueGroup", "jetstream"})) {
      ok &= located(src["subject"], object, "source.subject", r.source.subject, true);
      ok &= string(src["queueGroup"], object, "source.queueGroup", r.source.queue_group);
      const YAML::Node js = src["jetstream"];
      if (js) {
        JetStreamSpec j;
        if (fields(js, object, "source.jetstream",
                   {"stream", "durable", "ackWait", "maxDeliver", "backoff", "batch",
                    "maxAckPending"})) {
          ok &= string(js["stream"], object, "source.jetstream.stream", j.stream, true);
          ok &= string(js["durable"], object, "source.jetstream.durable", j.durable);
          ok &= duration(js["ackWait"], object, "source.jetstream.ackWait", j.ack_wait_ms, true);
          ok &= integer<int32_t>(js["maxDeliver"], object, "source.jetstream.maxDeliver",
                                 j.max_deliver, 1, 1000);
          ok &= integer<int32_t>(js["batch"], object, "source.jetstream.batch", j.batch, 1, 4096);
          ok &= integer<int32_t>(js["maxAckPending"], object, "source.jetstream.maxAckPending",
                                 j.max_ack_pending, 1, 1'000'000);
          const YAML::Node b = js["backoff"];
          if (b) {
            if (!b.IsSequence()) {
              error(b, object, "source.jetstream.backoff", "expected a list of durations");
              ok = false;
            } else {
              for (size_t i = 0; i < b.size(); ++i) {
                int64_t ms = 0;
                ok &= duration(b[i], object, "source.jetstream.backoff[" + std::to_string(i) + "]", ms);
                j.backoff_ms.push_back(ms);
              }
            }
          }
          if (j.durable.empty()) j.durable = name;
        } else {
          ok = false;
        }
        r.source.jetstream = std::move(j);
      }
    } else {
      ok = false;
    }
    if (n["filter"]) {
      Located f;
      ok &= located(n["filter"], object, "filter", f, true);
      r.filter = std::move(f);
    }
    ok &= steps(n["transform"], object, "transform", r.transform);
    const YAML::Node dests = n["destinations"];
    if (!dests || !dests.IsSequence() || dests.size() == 0) {
      error(dests ? dests : n, object, "destinations", "needs at least one destination");
      ok = false;
    } else {
      for (size_t i = 0; i < dests.size(); ++i) {
        std::string p = "destinations[" + std::to_string(i) + "]";
        DestinationSpec d;
        if (!fields(dests[i], object, p, {"subject", "headers", "jetstream"})) {
          ok = false;
          continue;
        }
        ok &= located(dests[i]["subject"], object, p + ".subject", d.subject, true);
        ok &= boolean(dests[i]["jetstream"], object, p + ".jetstream", d.jetstream);
        const YAML::Node h = dests[i]["headers"];
        if (h) {
          if (!h.IsMap()) {
            error(h, object, p + ".headers", "expected a mapping of header names to expressions");
            ok = false;
          } else {
            for (const auto& kv : h) {
              Located e;
              ok &= located(kv.second, object, p + ".headers." + kv.first.Scalar(), e, true);
              d.headers.emplace_back(kv.first.Scalar(), std::move(e));
            }
          }
        }
        r.destinations.push_back(std::move(d));
      }
    }
    const YAML::Node dl = n["deadLetter"];
    if (dl) {
      if (fields(dl, object, "deadLetter", {"subject"})) {
        std::string s;
        ok &= string(dl["subject"], object, "deadLetter.subject", s, true);
        r.dead_letter = s;
      } else {
        ok = false;
      }
    }
    ok &= integer<int64_t>(n["maxPayloadBytes"], object, "maxPayloadBytes", r.max_payload_bytes, 1,
                           64 << 20);
    return ok;
  }

  // YAML test data to JSON text: plain scalars are typed as YAML 1.2's core schema
  // types them; quoted scalars are strings.
  bool to_json(const YAML::Node& n, std::string& out, const std::string& object,
               const std::string& path, int depth = 0) {
    if (depth > 64) {
      error(n, object, path, "nested too deeply");
      return false;
    }
    switch (n.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        out += "null";
        return true;
      case YAML::NodeType::Scalar: {
        const std::string& s = n.Scalar();
        if (n.Tag() != "!" && n.Tag() != "tag:yaml.org,2002:str") {
          if (s == "null" || s == "~" || s.empty()) { out += "null"; return true; }
          if (s == "true" || s == "false") { out += s; return true; }
          json::Document d;
          if (d.parse(s) && d.node(0).type == json::Type::Number) { out += s; return true; }
        }
        json::append_quoted(out, s);
        return true;
      }
      case YAML::NodeType::Sequence: {
        out += '[';
        for (size_t i = 0; i < n.size(); ++i) {
          if (i) out += ',';
          if (!to_json(n[i], out, object, path, depth + 1)) return false;
        }
        out += ']';
        return true;
      }
      case YAML::NodeType::Map: {
        out += '{';
        bool first = true;
        for (const auto& kv : n) {
          if (!first) out += ',';
          first = false;
          json::append_quoted(out, kv.first.Scalar());
          out += ':';
          if (!to_json(kv.second, out, object, path, depth + 1)) return false;
        }
        out += '}';
        return true;
      }
    }
    return false;
  }

  bool test_event(const YAML::Node& n, const std::string& object, const std::string& path,
                  TestEvent& ev) {
    if (!fields(n, object, path, {"subject", "headers", "data", "raw"})) return false;
    bool ok = string(n["subject"], object, path + ".subject", ev.subject);
    if (ev.subject.empty()) ev.subject = "test";
    const YAML::Node h = n["headers"];
    if (h) {
      if (!h.IsMap()) {
        error(h, object, path + ".headers", "expected a mapping of strings");
        ok = false;
      } else {
        for (const auto& kv : h) {
          if (!kv.second.IsScalar()) {
            error(kv.second, object, path + ".headers." + kv.first.Scalar(), "expected a string");
            ok = false;
            continue;
          }
          ev.headers.emplace_back(kv.first.Scalar(), kv.second.Scalar());
        }
      }
    }
    if (n["data"] && n["raw"]) {
      error(n, object, path, "give either data or raw, not both");
      return false;
    }
    if (n["raw"]) ok &= string(n["raw"], object, path + ".raw", ev.payload);
    else if (n["data"]) ok &= to_json(n["data"], ev.payload, object, path + ".data");
    else ev.payload = "null";
    return ok;
  }

  bool transform(const YAML::Node& n, std::string name, const std::string& path, TransformSpec& t) {
    if (!n.IsMap()) {
      error(n, "transform " + path, "", "expected a mapping");
      return false;
    }
    bool ok = true;
    if (path != "spec") ok &= string(n["name"], "transform " + path, "name", name, true);
    std::string object = name.empty() ? "transform " + path : "transform '" + name + "'";
    std::vector<std::string> allowed = {"steps", "tests"};
    if (path != "spec") allowed.insert(allowed.begin(), "name");
    ok &= fields(n, object, "", allowed);
    t.at = loc(n);
    t.name = name;
    if (!n["steps"]) {
      error(n, object, "steps", "is required");
      ok = false;
    }
    ok &= steps(n["steps"], object, "steps", t.steps);
    const YAML::Node tests = n["tests"];
    if (tests) {
      if (!tests.IsSequence()) {
        error(tests, object, "tests", "expected a list of test cases");
        return false;
      }
      for (size_t i = 0; i < tests.size(); ++i) {
        std::string p = "tests[" + std::to_string(i) + "]";
        const YAML::Node c = tests[i];
        if (!fields(c, object, p, {"name", "input", "expect"})) {
          ok = false;
          continue;
        }
        TransformTest tc;
        tc.at = loc(c);
        ok &= string(c["name"], object, p + ".name", tc.name, true);
        if (!c["input"]) {
          error(c, object, p + ".input", "is required");
          ok = false;
          continue;
        }
        ok &= test_event(c["input"], object, p + ".input", tc.input);
        const YAML::Node e = c["expect"];
        if (!e || !fields(e, object, p + ".expect", {"data", "error"}) || e.size() != 1) {
          error(e ? e : c, object, p + ".expect", "expects exactly one of data or error");
          ok = false;
          continue;
        }
        if (e["data"]) {
          std::string j;
          ok &= to_json(e["data"], j, object, p + ".expect.data");
          tc.expect_json = j;
        } else {
          std::string s;
          ok &= string(e["error"], object, p + ".expect.error", s, true);
          tc.expect_error = s;
        }
        t.tests.push_back(std::move(tc));
      }
    }
    return ok;
  }

  bool document(const YAML::Node& doc, RouteSet& out) {
    if (doc.IsNull()) return true;
    if (!doc.IsMap()) {
      error(doc, "", "", "expected a mapping with routes and transforms, or a Kubernetes object");
      return false;
    }
    if (doc["kind"] || doc["apiVersion"]) return object(doc, out);
    if (!fields(doc, "", "", {"routes", "transforms"})) return false;
    bool ok = true;
    for (const char* key : {"routes", "transforms"}) {
      const YAML::Node list = doc[key];
      if (!list) continue;
      if (!list.IsSequence()) {
        error(list, "", key, "expected a list");
        ok = false;
        continue;
      }
      for (size_t i = 0; i < list.size(); ++i) {
        std::string p = std::string(key) + "[" + std::to_string(i) + "]";
        if (key[0] == 'r') {
          RouteSpec r;
          ok &= route(list[i], "", p, r);
          out.routes.push_back(std::move(r));
        } else {
          TransformSpec t;
          ok &= transform(list[i], "", p, t);
          out.transforms.push_back(std::move(t));
        }
      }
    }
    return ok;
  }

  bool object(const YAML::Node& doc, RouteSet& out) {
    std::string kind, api, name;
    // Both are checked, so that both errors show.
    bool ok = string(doc["kind"], "", "kind", kind, true);
    ok = string(doc["apiVersion"], "", "apiVersion", api, true) && ok;
    if (!ok) return false;
    if (api != "switchboard.dev/v1alpha1") {
      error(doc["apiVersion"], "", "apiVersion", "expected switchboard.dev/v1alpha1, found " + api);
      return false;
    }
    if (kind == "EventRouter") return true;  // fleets are the controller's business
    if (kind != "EventRoute" && kind != "EventTransform") {
      error(doc["kind"], "", "kind", "expected EventRoute or EventTransform, found " + kind);
      return false;
    }
    const YAML::Node meta = doc["metadata"];
    if (!meta || !meta.IsMap() || !meta["name"]) {
      error(doc, kind, "metadata.name", "is required");
      return false;
    }
    name = meta["name"].Scalar();
    const YAML::Node spec = doc["spec"];
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

 public:
  // Documents are parsed one at a time; marks count from the document's first line.
  int line_offset_ = 0;
};

// yaml-cpp 0.7's LoadAll never returns on some inputs (a file holding just "," allocates
// until memory runs out), while Load on one document does. So documents are split here, at
// "---" and "..." lines, and each is loaded alone. Returns (first line, text) pairs.
std::vector<std::pair<int, std::string>> split_documents(std::string_view text) {
  std::vector<std::pair<int, std::string>> docs;
  std::string current;
  int start = 0, line_no = 0;
  size_t i = 0;
  while (i <= text.size()) {
    size_t end = text.find('\n', i);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(i, end - i);
    bool marker = line.substr(0, 3) == "---" || line.substr(0, 3) == "...";
    marker = marker && (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
    if (marker) {
      if (current.find_first_not_of(" \t\r\n") != std::string::npos) docs.emplace_back(start, current);
      current.clear();
      start = line_no + 1;
      if (line.substr(0, 3) == "---" && line.size() > 4) {
        // Content after "--- " belongs to the new document, on its first line.
        current.assign(line.size(), ' ');
        current.replace(4, std::string::npos, line.substr(4));
        start = line_no;
        current += '\n';
      }
    } else {
      current += line;
      // The last segment has no newline of its own; adding one would move end-of-file
      // errors down a line.
      if (end != text.size()) current += '\n';
    }
    if (end == text.size()) break;
    i = end + 1;
    ++line_no;
  }
  if (current.find_first_not_of(" \t\r\n") != std::string::npos) docs.emplace_back(start, current);
  return docs;
}

// Names, keys and expressions end up in JSON (the canonical table, payloads): the input
// must be UTF-8. Returns the 1-based line of the first invalid byte, or 0.
int invalid_utf8_line(std::string_view text) {
  if (json::valid_utf8(text)) return 0;
  int line = 1;
  size_t i = 0;
  while (i < text.size()) {
    size_t end = text.find('\n', i);
    if (end == std::string_view::npos) end = text.size();
    if (!json::valid_utf8(text.substr(i, end - i))) return line;
    i = end + 1;
    ++line;
  }
  return line;
}

}  // namespace

bool load_yaml(std::string_view text, const std::string& file, RouteSet& out,
               std::vector<SpecError>& errors) {
  size_t before = errors.size();
  if (int bad = invalid_utf8_line(text)) {
    errors.push_back(SpecError{Location{file, bad, 1}, "", "", "the file is not valid UTF-8", ""});
    return false;
  }
  Reader reader(text, file, errors);
  bool ok = true;
  for (const auto& [first_line, doc_text] : split_documents(text)) {
    YAML::Node doc;
    try {
      doc = YAML::Load(doc_text);
    } catch (const YAML::Exception& e) {
      Location l{file, e.mark.line + first_line + 1, e.mark.column + 1};
      errors.push_back(SpecError{l, "", "", "invalid YAML: " + e.msg, ""});
      ok = false;
      continue;
    }
    reader.line_offset_ = first_line;
    ok &= reader.document(doc, out);
  }
  // Names must be unique: they key metrics, consumers and errors.
  std::set<std::string> seen;
  for (const auto& r : out.routes) {
    if (!r.name.empty() && !seen.insert(r.name).second) {
      errors.push_back(SpecError{r.at, "route '" + r.name + "'", "name", "is used by another route", ""});
      ok = false;
    }
  }
  seen.clear();
  for (const auto& t : out.transforms) {
    if (!t.name.empty() && !seen.insert(t.name).second) {
      errors.push_back(
          SpecError{t.at, "transform '" + t.name + "'", "name", "is used by another transform", ""});
      ok = false;
    }
  }
  return ok && errors.size() == before;
}

bool load_yaml_file(const std::string& path, RouteSet& out, std::vector<SpecError>& errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors.push_back(SpecError{Location{path}, "", "", "cannot read the file", ""});
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return load_yaml(ss.str(), path, out, errors);
}

bool load_route_spec_yaml(std::string_view text, const std::string& name, RouteSpec& out,
                          std::vector<SpecError>& errors) {
  size_t before = errors.size();
  if (int bad = invalid_utf8_line(text)) {
    errors.push_back(SpecError{Location{"", bad, 1}, "route '" + name + "'", "spec",
                               "the spec is not valid UTF-8", ""});
    return false;
  }
  Reader reader(text, "", errors);
  YAML::Node spec;
  try {
    spec = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    errors.push_back(SpecError{Location{"", e.mark.line + 1, e.mark.column + 1},
                               "route '" + name + "'", "spec", "invalid YAML: " + e.msg, ""});
    return false;
  }
  return reader.route(spec, name, "spec", out) && errors.size() == before;
}

}  // namespace switchboard::route
