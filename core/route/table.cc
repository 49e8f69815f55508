#include "core/route/table.h"

#include <openssl/evp.h>

#include <map>
#include <set>

#include "core/json/document.h"

namespace switchboard::route {

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

namespace {

constexpr int kEvent = 0;  // slot of `event` in Environment::routing()

void put(std::string& out, std::string_view key, std::string_view value, bool& first) {
  if (!first) out += ',';
  first = false;
  json::append_quoted(out, key);
  out += ':';
  json::append_quoted(out, value);
}

void put_raw(std::string& out, std::string_view key, std::string_view raw, bool& first) {
  if (!first) out += ',';
  first = false;
  json::append_quoted(out, key);
  out += ':';
  out += raw;
}

std::string steps_json(const std::vector<StepSpec>& steps) {
  std::string out = "[";
  for (size_t i = 0; i < steps.size(); ++i) {
    const StepSpec& s = steps[i];
    if (i) out += ',';
    out += '{';
    bool first = true;
    switch (s.kind) {
      case StepSpec::Kind::Set: {
        std::string m = "{";
        bool f = true;
        for (const auto& [k, v] : s.set) put(m, k, v.text, f);
        put_raw(out, "set", m + "}", first);
        break;
      }
      case StepSpec::Kind::Remove: {
        std::string l = "[";
        for (size_t k = 0; k < s.remove.size(); ++k) {
          if (k) l += ',';
          json::append_quoted(l, s.remove[k]);
        }
        put_raw(out, "remove", l + "]", first);
        break;
      }
      case StepSpec::Kind::Rename: {
        std::string m = "{";
        bool f = true;
        for (const auto& [k, v] : s.rename) put(m, k, v, f);
        put_raw(out, "rename", m + "}", first);
        break;
      }
      case StepSpec::Kind::Payload:
        put(out, "payload", s.payload.text, first);
        break;
      case StepSpec::Kind::Use:
        put(out, "use", s.use, first);
        break;
    }
    out += '}';
  }
  return out + "]";
}

std::string ms(int64_t v) { return "\"" + std::to_string(v) + "ms\""; }

}  // namespace

namespace {

// One route or transform of the canonical JSON: also what its reuse key covers.
std::string route_json(const RouteSpec& r) {
  std::string out = "{";
  bool first = true;
  put(out, "name", r.name, first);
  if (!r.router.empty()) put(out, "router", r.router, first);
  std::string src = "{";
  bool f = true;
  put(src, "subject", r.source.subject.text, f);
  if (!r.source.queue_group.empty()) put(src, "queueGroup", r.source.queue_group, f);
  if (r.source.jetstream) {
    const JetStreamSpec& j = *r.source.jetstream;
    std::string js = "{";
    bool g = true;
    put(js, "stream", j.stream, g);
    put(js, "durable", j.durable, g);
    put_raw(js, "ackWait", ms(j.ack_wait_ms), g);
    put_raw(js, "maxDeliver", std::to_string(j.max_deliver), g);
    std::string b = "[";
    for (size_t k = 0; k < j.backoff_ms.size(); ++k) b += (k ? "," : "") + ms(j.backoff_ms[k]);
    put_raw(js, "backoff", b + "]", g);
    put_raw(js, "batch", std::to_string(j.batch), g);
    put_raw(js, "maxAckPending", std::to_string(j.max_ack_pending), g);
    put_raw(src, "jetstream", js + "}", f);
  }
  put_raw(out, "source", src + "}", first);
  if (r.filter) put(out, "filter", r.filter->text, first);
  if (!r.transform.empty()) put_raw(out, "transform", steps_json(r.transform), first);
  std::string d = "[";
  for (size_t k = 0; k < r.destinations.size(); ++k) {
    const DestinationSpec& ds = r.destinations[k];
    if (k) d += ',';
    d += '{';
    bool g = true;
    put(d, "subject", ds.subject.text, g);
    if (!ds.headers.empty()) {
      std::string h = "{";
      bool hf = true;
      for (const auto& [name, e] : ds.headers) put(h, name, e.text, hf);
      put_raw(d, "headers", h + "}", g);
    }
    if (ds.jetstream) put_raw(d, "jetstream", "true", g);
    d += '}';
  }
  put_raw(out, "destinations", d + "]", first);
  if (r.dead_letter) {
    std::string dl = "{";
    bool g = true;
    put(dl, "subject", *r.dead_letter, g);
    put_raw(out, "deadLetter", dl + "}", first);
  }
  put_raw(out, "maxPayloadBytes", std::to_string(r.max_payload_bytes), first);
  return out + "}";
}

std::string transform_json(const TransformSpec& t) {
  std::string out = "{";
  bool first = true;
  put(out, "name", t.name, first);
  put_raw(out, "steps", steps_json(t.steps), first);
  return out + "}";
}

std::string join_json(const std::vector<std::string>& routes, const std::vector<std::string>& transforms) {
  size_t size = 32;
  for (const auto& r : routes) size += r.size() + 1;
  for (const auto& t : transforms) size += t.size() + 1;
  std::string out;
  out.reserve(size);
  out += "{\"routes\":[";
  for (size_t i = 0; i < routes.size(); ++i) {
    if (i) out += ',';
    out += routes[i];
  }
  out += "],\"transforms\":[";
  for (size_t i = 0; i < transforms.size(); ++i) {
    if (i) out += ',';
    out += transforms[i];
  }
  return out + "]}";
}

}  // namespace

std::string canonical_json(const RouteSet& set) {
  std::vector<std::string> routes, transforms;
  for (const auto& r : set.routes) routes.push_back(route_json(r));
  for (const auto& t : set.transforms) transforms.push_back(transform_json(t));
  return join_json(routes, transforms);
}

namespace {

FieldPath split_path(const std::string& p) {
  FieldPath out;
  size_t start = 0;
  while (true) {
    size_t dot = p.find('.', start);
    out.push_back(p.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return out;
}

class Compiler {
 public:
  Compiler(const cel::Limits& limits, std::vector<SpecError>& errors)
      : limits_(limits), errors_(errors) {}

  // Compiles one expression; records a positioned error on failure.
  // Only [offset, end) of the text is the expression; the rest is kept for the snippet.
  std::optional<cel::Program> expr(const Located& e, const std::string& object,
                                   const std::string& field, size_t offset = 0,
                                   size_t end = std::string::npos) {
    auto r = cel::Program::compile(std::string_view(e.text).substr(offset, end - offset),
                                   cel::Environment::routing(), limits_);
    if (auto* p = std::get_if<cel::Program>(&r)) return std::move(*p);
    const auto& d = std::get<cel::Diagnostic>(r);
    // Positions count from the start of the YAML scalar.
    cel::Diagnostic whole = cel::make_diagnostic(e.text, static_cast<uint32_t>(offset + d.offset), d.message);
    Location at = e.at;
    if (at.line > 0) {
      if (whole.line == 1 && !at.block) {
        at.column += static_cast<int>(whole.column) - 1;
      } else {
        at.line += static_cast<int>(whole.line) - 1;
        at.column = at.block_indent + static_cast<int>(whole.column);
      }
    }
    errors_.push_back(SpecError{at, object, field, d.message, whole.excerpt(e.text)});
    return std::nullopt;
  }

  void error(const Location& at, const std::string& object, const std::string& field,
             std::string message) {
    errors_.push_back(SpecError{at, object, field, std::move(message), ""});
  }

  bool path(const std::string& p, const Location& at, const std::string& object,
            const std::string& field, FieldPath& out) {
    out = split_path(p);
    for (const auto& part : out) {
      if (part.empty()) {
        error(at, object, field, "field path '" + p + "' has an empty segment");
        return false;
      }
    }
    return true;
  }

  bool steps(const std::vector<StepSpec>& in, const std::string& object, const std::string& prefix,
             const std::map<std::string, const CompiledTransform*>* named, std::vector<CompiledStep>& out,
             bool& needs_json, const std::string& origin_suffix = "") {
    bool ok = true;
    for (size_t i = 0; i < in.size(); ++i) {
      const StepSpec& s = in[i];
      std::string field = prefix + "[" + std::to_string(i) + "]";
      if (s.kind == StepSpec::Kind::Use) {
        if (named == nullptr) {
          error(s.at, object, field + ".use", "a named transform cannot use another transform");
          ok = false;
          continue;
        }
        auto it = named->find(s.use);
        if (it == named->end()) {
          std::vector<std::string> names;
          for (const auto& [n, t] : *named) names.push_back(n);
          std::string hint = cel::closest_match(s.use, names);
          error(s.at, object, field + ".use",
                "unknown transform '" + s.use + "'" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
          ok = false;
          continue;
        }
        // The transform's own compilation reported its mistakes, once and at their own step
        // index; compiling it again for each route that uses it would repeat them.
        const CompiledTransform& t = *it->second;
        needs_json = needs_json || t.needs_json;
        for (const CompiledStep& step : t.steps) {
          CompiledStep c = step;
          c.origin = field + " (" + s.use + "." + step.origin + ")";
          out.push_back(std::move(c));
        }
        continue;
      }
      CompiledStep c;
      c.kind = s.kind;
      c.origin = field + origin_suffix;
      needs_json = true;
      switch (s.kind) {
        case StepSpec::Kind::Set:
          for (const auto& [p, e] : s.set) {
            FieldPath fp;
            auto prog = expr(e, object, field + ".set." + p);
            if (!path(p, e.at, object, field + ".set", fp) || !prog) {
              ok = false;
              continue;
            }
            c.set.emplace_back(std::move(fp), std::move(*prog));
          }
          break;
        case StepSpec::Kind::Remove:
          for (const auto& p : s.remove) {
            FieldPath fp;
            if (!path(p, s.at, object, field + ".remove", fp)) ok = false;
            c.remove.push_back(std::move(fp));
          }
          break;
        case StepSpec::Kind::Rename:
          for (const auto& [from, to] : s.rename) {
            FieldPath a, b;
            if (!path(from, s.at, object, field + ".rename", a) ||
                !path(to, s.at, object, field + ".rename", b)) {
              ok = false;
              continue;
            }
            c.rename.emplace_back(std::move(a), std::move(b));
          }
          break;
        case StepSpec::Kind::Payload: {
          auto prog = expr(s.payload, object, field + ".payload");
          if (!prog) {
            ok = false;
            break;
          }
          needs_json = needs_json || prog->references(kEvent);
          c.payload = std::move(*prog);
          break;
        }
        case StepSpec::Kind::Use:
          break;
      }
      out.push_back(std::move(c));
    }
    return ok;
  }

  bool subject_template(const Located& s, const std::string& object, const std::string& field,
                        SubjectTemplate& out, bool& needs_json) {
    const std::string& t = s.text;
    size_t i = 0;
    std::string literal;
    bool ok = true;
    while (i < t.size()) {
      size_t open = t.find("{{", i);
      if (open == std::string::npos) {
        literal += t.substr(i);
        break;
      }
      literal += t.substr(i, open - i);
      size_t close = t.find("}}", open + 2);
      if (close == std::string::npos) {
        error(s.at, object, field, "'{{' without a closing '}}' in subject template");
        return false;
      }
      auto prog = expr(s, object, field, open + 2, close);
      if (prog) {
        needs_json = needs_json || prog->references(kEvent);
        out.literals.push_back(std::move(literal));
        out.exprs.push_back(std::move(*prog));
      } else {
        ok = false;
      }
      literal.clear();
      i = close + 2;
    }
    out.literals.push_back(std::move(literal));
    if (!ok) return false;
    if (out.exprs.empty()) {
      std::string why;
      if (!validate_subject(t, false, &why)) {
        error(s.at, object, field, "invalid subject: " + why);
        return false;
      }
    }
    return true;
  }

 private:
  const cel::Limits& limits_;
  std::vector<SpecError>& errors_;
};

}  // namespace

std::variant<std::shared_ptr<const RouteTable>, std::vector<SpecError>> RouteTable::compile(
    RouteSet set, uint64_t generation, const cel::Limits& limits, const RouteTable* previous) {
  std::vector<SpecError> errors;
  Compiler c(limits, errors);
  auto table = std::make_shared<RouteTable>();
  table->generation_ = generation;
  table->limits_ = limits;
  std::vector<std::string> route_texts, transform_texts;
  for (const auto& r : set.routes) route_texts.push_back(route_json(r));
  for (const auto& t : set.transforms) transform_texts.push_back(transform_json(t));
  table->canonical_ = join_json(route_texts, transform_texts);
  table->hash_ = "sha256:" + sha256_hex(table->canonical_);

  // What the previous table compiled, by key. Programs compiled under other limits are
  // not this table's to take.
  std::map<std::string_view, const CompiledRoute*> old_routes;
  std::map<std::string_view, const CompiledTransform*> old_transforms;
  if (previous != nullptr && previous->limits_ == limits) {
    for (const auto& cr : previous->routes_) old_routes.emplace(cr.key, &cr);
    for (const auto& ct : previous->transforms_) old_transforms.emplace(ct.key, &ct);
  }

  std::map<std::string, std::string_view, std::less<>> transform_text_by_name;
  for (size_t i = 0; i < set.transforms.size(); ++i) {
    const TransformSpec& t = set.transforms[i];
    transform_text_by_name.emplace(t.name, transform_texts[i]);
    CompiledTransform ct;
    ct.key = sha256_hex(transform_texts[i]);
    if (auto old = old_transforms.find(ct.key); old != old_transforms.end()) {
      ct.steps = old->second->steps;
      ct.needs_json = old->second->needs_json;
      ++table->stats_.transforms_reused;
    } else {
      c.steps(t.steps, "transform '" + t.name + "'", "steps", nullptr, ct.steps, ct.needs_json);
      ++table->stats_.transforms_compiled;
    }
    ct.spec = std::move(set.transforms[i]);  // `t` is not read after this
    table->transforms_.push_back(std::move(ct));
  }
  // Taken once transforms_ stops growing, so the pointers stay valid.
  std::map<std::string, const CompiledTransform*> named;
  for (const auto& ct : table->transforms_) named[ct.spec.name] = &ct;
  std::set<std::string> names;
  for (size_t ri = 0; ri < set.routes.size(); ++ri) {
    const RouteSpec& r = set.routes[ri];
    CompiledRoute cr;
    std::string object = "route '" + r.name + "'";
    if (!names.insert(r.name).second) c.error(r.at, object, "name", "is used by another route");
    table->total_destinations_ += r.destinations.size();
    // The route's own text, then the text of each transform it uses, in step order.
    std::string keyed = route_texts[ri];
    for (const StepSpec& s : r.transform) {
      if (s.kind != StepSpec::Kind::Use) continue;
      auto t = transform_text_by_name.find(s.use);
      keyed += '\n';
      keyed += t == transform_text_by_name.end() ? std::string_view("-") : t->second;
    }
    cr.key = sha256_hex(keyed);
    if (auto old = old_routes.find(cr.key); old != old_routes.end()) {
      cr.filter = old->second->filter;
      cr.steps = old->second->steps;
      cr.destinations = old->second->destinations;
      cr.needs_json = old->second->needs_json;
      cr.spec = std::move(set.routes[ri]);
      ++table->stats_.routes_reused;
      table->routes_.push_back(std::move(cr));
      continue;
    }
    ++table->stats_.routes_compiled;
    std::string why;
    if (!validate_subject(r.source.subject.text, true, &why)) {
      c.error(r.source.subject.at, object, "source.subject", "invalid subject: " + why);
    }
    if (r.dead_letter && !validate_subject(*r.dead_letter, false, &why)) {
      c.error(r.at, object, "deadLetter.subject", "invalid subject: " + why);
    }
    if (r.filter) {
      if (auto p = c.expr(*r.filter, object, "filter")) {
        cr.needs_json = p->references(kEvent);
        cr.filter = std::move(*p);
      }
    }
    c.steps(r.transform, object, "transform", &named, cr.steps, cr.needs_json);
    if (r.destinations.size() > kMaxDestinationsPerRoute) {
      // Points at the first destination over the limit.
      c.error(r.destinations[kMaxDestinationsPerRoute].subject.at, object, "destinations",
              std::to_string(r.destinations.size()) + " destinations, more than the limit of " +
                  std::to_string(kMaxDestinationsPerRoute) + " per route");
    }
    for (size_t i = 0; i < r.destinations.size(); ++i) {
      const DestinationSpec& d = r.destinations[i];
      std::string field = "destinations[" + std::to_string(i) + "]";
      CompiledDestination cd;
      cd.jetstream = d.jetstream;
      c.subject_template(d.subject, object, field + ".subject", cd.subject, cr.needs_json);
      for (const auto& [name, e] : d.headers) {
        if (name.empty() || name.find_first_of(" :\r\n") != std::string::npos) {
          c.error(e.at, object, field + ".headers", "invalid header name '" + name + "'");
          continue;
        }
        if (auto p = c.expr(e, object, field + ".headers." + name)) {
          cr.needs_json = cr.needs_json || p->references(kEvent);
          cd.headers.emplace_back(name, std::move(*p));
        }
      }
      cr.destinations.push_back(std::move(cd));
    }
    cr.spec = std::move(set.routes[ri]);  // `r` is not read after this
    table->routes_.push_back(std::move(cr));
  }
  if (!errors.empty()) return errors;
  for (uint32_t i = 0; i < table->routes_.size(); ++i) {
    table->trie_.insert(table->routes_[i].spec.source.subject.text, i);
  }
  return std::shared_ptr<const RouteTable>(std::move(table));
}

}  // namespace switchboard::route
