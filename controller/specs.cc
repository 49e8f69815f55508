#include "controller/specs.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "core/json/document.h"
#include "core/route/processor.h"
#include "core/route/spec_yaml.h"

namespace switchboard::controller {

namespace {

std::string render_errors(const std::vector<route::SpecError>& errors) {
  std::string out;
  for (const auto& e : errors) {
    if (!out.empty()) out += '\n';
    out += e.render();
  }
  return bounded_text(std::move(out));
}

bool safe_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.' || c == '-' || c == '/';
}

bool yaml_keyword(const std::string& s) {
  std::string l;
  for (char c : s) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::set<std::string> kWords = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"};
  return kWords.count(l) > 0;
}

// A string that YAML reads back as the same string without quotes.
bool plain_ok(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) != 0 || s[0] == '_')) return false;
  if (!std::all_of(s.begin(), s.end(), safe_char)) return false;
  return !yaml_keyword(s);
}

bool has_control(const std::string& s, bool allow_newline) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u == '\n' && allow_newline) continue;
    if (u == '\t') continue;
    if (u < 0x20 || u == 0x7f) return true;
  }
  return false;
}

std::string json_quoted(const std::string& s) {
  std::string out;
  json::append_quoted(out, s);
  return out;
}

// A literal block keeps every character where it was, so that a position inside an
// expression is a position in the user's text. It cannot hold every string: those it
// would change fall back to a double-quoted scalar.
bool block_ok(const std::string& s) {
  if (s.empty() || s[0] == '\n' || s[0] == ' ' || s[0] == '\t' || has_control(s, true)) return false;
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find('\n', start);
    if (end == std::string::npos) end = s.size();
    std::string_view line(s.data() + start, end - start);
    if (!line.empty() && line.find_first_not_of(" \t") == std::string_view::npos) return false;
    start = end + 1;
  }
  return true;
}

std::string block_scalar(const std::string& s, int indent) {
  size_t trailing = 0;
  while (trailing < s.size() && s[s.size() - 1 - trailing] == '\n') ++trailing;
  std::string out = trailing == 0 ? "|-" : trailing == 1 ? "|" : "|+";
  std::string pad(static_cast<size_t>(indent), ' ');
  std::string body = s.substr(0, s.size() - trailing);
  size_t start = 0;
  while (start <= body.size()) {
    size_t end = body.find('\n', start);
    if (end == std::string::npos) end = body.size();
    std::string_view line(body.data() + start, end - start);
    out += '\n';
    if (!line.empty()) out += pad + std::string(line);
    start = end + 1;
  }
  for (size_t i = 1; i < trailing; ++i) out += '\n';
  return out;
}

std::string string_scalar(const std::string& s, int indent) {
  if (plain_ok(s)) return s;
  if (s.find('\n') == std::string::npos && !has_control(s, false)) {
    // Quotes that need no escapes keep columns exact (the loader skips the quote).
    if (s.find('"') == std::string::npos && s.find('\\') == std::string::npos) return "\"" + s + "\"";
    if (s.find('\'') == std::string::npos) return "'" + s + "'";
  }
  if (block_ok(s)) return block_scalar(s, indent);
  return json_quoted(s);
}

std::string key_text(const std::string& k) {
  bool plain = !k.empty() && (std::isalnum(static_cast<unsigned char>(k[0])) != 0 || k[0] == '_') &&
               std::all_of(k.begin(), k.end(), safe_char);
  return plain ? k : json_quoted(k);
}

std::string scalar_text(const Json& v, int indent) {
  switch (v.type()) {
    case Json::Null:
      return "null";
    case Json::Boolean:
      return v.as_bool() ? "true" : "false";
    case Json::Number:
      return v.serialize();
    case Json::String:
      return string_scalar(v.as_string(), indent);
    default:
      return v.serialize();  // an empty object or array: {} or []
  }
}

void emit_map(std::string& out, const Json& map, int indent, bool first_inline);
void emit_seq(std::string& out, const Json& seq, int indent);

// After "key:" (or "-"): the value on the same line, or nested below.
void emit_after_key(std::string& out, const Json& v, int indent) {
  if (v.is_object() && v.size() > 0) {
    out += '\n';
    emit_map(out, v, indent + 2, false);
  } else if (v.is_array() && v.size() > 0) {
    out += '\n';
    emit_seq(out, v, indent + 2);
  } else {
    out += ' ' + scalar_text(v, indent + 2) + '\n';
  }
}

void emit_map(std::string& out, const Json& map, int indent, bool first_inline) {
  std::string pad(static_cast<size_t>(indent), ' ');
  bool first = true;
  for (const auto& [k, v] : map.as_object()) {
    if (!(first && first_inline)) out += pad;
    first = false;
    out += key_text(k) + ':';
    emit_after_key(out, v, indent);
  }
}

void emit_seq(std::string& out, const Json& seq, int indent) {
  std::string pad(static_cast<size_t>(indent), ' ');
  for (const auto& item : seq.as_array()) {
    out += pad + "-";
    if (item.is_object() && item.size() > 0) {
      out += ' ';
      emit_map(out, item, indent + 2, true);
    } else if (item.is_array() && item.size() > 0) {
      out += ' ' + item.serialize() + '\n';  // flow style: JSON is YAML
    } else {
      out += ' ' + scalar_text(item, indent + 2) + '\n';
    }
  }
}

void add_use(const std::vector<route::StepSpec>& steps, std::vector<std::string>& uses) {
  for (const auto& s : steps) {
    if (s.kind == route::StepSpec::Kind::Use && std::find(uses.begin(), uses.end(), s.use) == uses.end()) {
      uses.push_back(s.use);
    }
  }
}

bool starts_with(const std::string& s, std::string_view prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

}  // namespace

std::string object_document(const Json& object, const std::string& kind) {
  std::string out = "apiVersion: switchboard.dev/v1alpha1\nkind: " + kind + "\nmetadata:\n  name: " +
                    string_scalar(string_at(object, {"metadata", "name"}), 4) + "\nspec:";
  const Json* spec = find(object, {"spec"});
  emit_after_key(out, spec == nullptr ? Json::object() : *spec, 0);
  return out;
}

std::string document_name(const std::string& kind, const std::string& name) {
  std::string k;
  for (char c : kind) k += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return k + "/" + name;
}

std::string object_fingerprint(const Json& object) {
  const Json* spec = find(object, {"spec"});
  return string_at(object, {"metadata", "uid"}) + "/" + std::to_string(int_at(object, {"metadata", "generation"})) +
         "/" + (spec == nullptr ? std::string("null") : spec->serialize());
}

std::string route_identity(const Json& route) {
  return string_at(route, {"metadata", "uid"}) + "/" + std::to_string(int_at(route, {"metadata", "generation"}));
}

LoadedTransform load_transform(const Json& transform) {
  LoadedTransform t;
  t.name = string_at(transform, {"metadata", "name"});
  t.generation = int_at(transform, {"metadata", "generation"});
  t.fingerprint = object_fingerprint(transform);
  route::RouteSet set;
  t.loaded = route::load_yaml(object_document(transform, "EventTransform"), document_name("EventTransform", t.name),
                              set, t.errors) &&
             set.transforms.size() == 1;
  if (t.loaded) t.spec = std::move(set.transforms[0]);
  return t;
}

TransformIndex load_transforms(const std::vector<Json>& transforms) {
  TransformIndex index;
  for (const auto& t : transforms) {
    LoadedTransform lt = load_transform(t);
    std::string name = lt.name;
    index.emplace(std::move(name), std::move(lt));
  }
  return index;
}

std::string reason_for(const route::SpecError& e, const std::string& route_name) {
  if (starts_with(e.object, "transform '")) return reasons::kInvalidTransform;
  if (!e.object.empty() && e.object != "route '" + route_name + "'" && !starts_with(e.object, "route ")) {
    return reasons::kInvalidSpec;
  }
  const std::string& f = e.field;
  if (starts_with(f, "filter")) return reasons::kInvalidFilter;
  if (starts_with(f, "transform")) {
    return starts_with(e.message, "unknown transform") ? reasons::kUnknownTransform : reasons::kInvalidTransform;
  }
  if (starts_with(f, "destinations")) return reasons::kInvalidDestination;
  if (starts_with(f, "deadLetter")) return reasons::kInvalidDeadLetter;
  if (starts_with(f, "source")) return reasons::kInvalidSource;
  return reasons::kInvalidSpec;
}

RouteCheck check_route(const Json& route_object, const TransformIndex& transforms) {
  RouteCheck c;
  const std::string name = string_at(route_object, {"metadata", "name"});
  route::RouteSet loaded;
  std::vector<route::SpecError> errors;
  bool ok = route::load_yaml(object_document(route_object, "EventRoute"), document_name("EventRoute", name), loaded,
                             errors);
  if (!ok || loaded.routes.size() != 1) {
    c.reason = errors.empty() ? reasons::kInvalidSpec : reason_for(errors.front(), name);
    c.message = errors.empty() ? "the spec could not be read" : render_errors(errors);
    return c;
  }
  c.spec = loaded.routes[0];
  add_use(c.spec.transform, c.uses);

  route::RouteSet set;
  set.routes.push_back(c.spec);
  for (const auto& use : c.uses) {
    auto it = transforms.find(use);
    if (it == transforms.end()) continue;  // compile reports it, with a "did you mean"
    if (!it->second.loaded) {
      c.reason = reasons::kInvalidTransform;
      c.message = bounded_text("uses transform '" + use + "', which is invalid:\n" + render_errors(it->second.errors));
      return c;
    }
    set.transforms.push_back(it->second.spec);
  }
  // A misspelt `use` gets a "did you mean" from the names the compiler sees, so then it
  // sees every transform of the namespace; their own errors are theirs, not the route's.
  bool missing = std::any_of(c.uses.begin(), c.uses.end(),
                             [&](const std::string& u) { return transforms.find(u) == transforms.end(); });
  std::set<std::string> suggestions;
  if (missing) {
    for (const auto& [n, t] : transforms) {
      if (!t.loaded || std::find(c.uses.begin(), c.uses.end(), n) != c.uses.end()) continue;
      set.transforms.push_back(t.spec);
      suggestions.insert("transform '" + n + "'");
    }
  }
  auto compiled = route::RouteTable::compile(std::move(set), 0);
  if (auto* errs = std::get_if<std::vector<route::SpecError>>(&compiled)) {
    std::vector<route::SpecError> mine;
    for (const auto& e : *errs) {
      if (suggestions.count(e.object) == 0) mine.push_back(e);
    }
    if (!mine.empty()) {
      c.reason = reason_for(mine.front(), name);
      c.message = render_errors(mine);
      return c;
    }
  }
  c.ok = true;
  return c;
}

TransformCheck check_transform(const Json& transform) {
  TransformCheck c;
  LoadedTransform lt = load_transform(transform);
  if (!lt.loaded) {
    c.message = lt.errors.empty() ? "the spec could not be read" : render_errors(lt.errors);
    return c;
  }
  route::RouteSet set;
  set.transforms.push_back(lt.spec);
  auto compiled = route::RouteTable::compile(std::move(set), 0);
  if (auto* errs = std::get_if<std::vector<route::SpecError>>(&compiled)) {
    c.message = render_errors(*errs);
    return c;
  }
  c.compiled = true;
  route::Processor processor;
  c.results = route::run_transform_tests(*std::get<std::shared_ptr<const route::RouteTable>>(compiled), processor);
  c.passed = static_cast<int>(std::count_if(c.results.begin(), c.results.end(), [](const auto& r) { return r.passed; }));
  return c;
}

bool selector_matches(const Json& selector, const Json& labels) {
  auto label = [&](const std::string& key) -> const Json* {
    const Json* v = find(labels, {key});
    return v != nullptr && v->is_string() ? v : nullptr;
  };
  if (const Json* ml = find(selector, {"matchLabels"}); ml != nullptr && ml->is_object()) {
    for (const auto& [k, v] : ml->as_object()) {
      const Json* have = label(k);
      if (have == nullptr || !v.is_string() || have->as_string() != v.as_string()) return false;
    }
  }
  if (const Json* me = find(selector, {"matchExpressions"}); me != nullptr && me->is_array()) {
    for (const auto& req : me->as_array()) {
      const std::string key = string_at(req, {"key"});
      const std::string op = string_at(req, {"operator"});
      const Json* have = label(key);
      bool in_values = false;
      if (const Json* values = find(req, {"values"}); have != nullptr && values != nullptr && values->is_array()) {
        for (const auto& v : values->as_array()) in_values |= v.is_string() && v.as_string() == have->as_string();
      }
      if (op == "In" && !in_values) return false;
      if (op == "NotIn" && in_values) return false;
      if (op == "Exists" && have == nullptr) return false;
      if (op == "DoesNotExist" && have != nullptr) return false;
      if (op != "In" && op != "NotIn" && op != "Exists" && op != "DoesNotExist") return false;
    }
  }
  return true;
}

bool router_selects(const Json& router, const Json& route_object) {
  if (string_at(router, {"metadata", "namespace"}) != string_at(route_object, {"metadata", "namespace"})) return false;
  const std::string named = string_at(route_object, {"spec", "router"});
  if (!named.empty()) return named == string_at(router, {"metadata", "name"});
  const Json* selector = find(router, {"spec", "routeSelector"});
  if (selector == nullptr || !selector->is_object()) return false;
  const Json* labels = find(route_object, {"metadata", "labels"});
  return selector_matches(*selector, labels == nullptr ? Json::object() : *labels);
}

std::vector<const Json*> selected_routes(const Json& router, const std::vector<Json>& routes) {
  std::vector<const Json*> selected;
  for (const auto& r : routes) {
    // A route being deleted leaves the table first: its JetStream consumer is deleted
    // only once no pod runs it any more (a running pod would create it again).
    if (router_selects(router, r) && find(r, {"metadata", "deletionTimestamp"}) == nullptr) selected.push_back(&r);
  }
  std::sort(selected.begin(), selected.end(), [](const Json* a, const Json* b) {
    return string_at(*a, {"metadata", "name"}) < string_at(*b, {"metadata", "name"});
  });
  return selected;
}

RouterTable table_of_checked(const std::vector<std::pair<const Json*, const RouteCheck*>>& checked,
                           const TransformIndex& transforms, const route::RouteTable* previous) {
  RouterTable t;
  std::set<std::string> used;
  for (const auto& [r, c] : checked) {
    const std::string name = string_at(*r, {"metadata", "name"});
    if (!c->ok) {
      t.left_out.push_back(name);
      continue;
    }
    used.insert(c->uses.begin(), c->uses.end());
    t.routes[name] = int_at(*r, {"metadata", "generation"});
    t.route_ids[name] = route_identity(*r);
    t.set.routes.push_back(c->spec);
  }
  for (const auto& name : used) t.set.transforms.push_back(transforms.at(name).spec);  // std::set: sorted
  auto compiled = route::RouteTable::compile(t.set, 0, {}, previous);
  if (auto* errs = std::get_if<std::vector<route::SpecError>>(&compiled)) {
    t.error = render_errors(*errs);
    return t;
  }
  t.compiled = std::get<std::shared_ptr<const route::RouteTable>>(std::move(compiled));
  t.canonical = t.compiled->canonical_json();
  t.hash = t.compiled->hash();
  return t;
}

RouterTable build_table(const Json& router, const std::vector<Json>& routes, const TransformIndex& transforms) {
  std::vector<const Json*> selected = selected_routes(router, routes);
  std::vector<RouteCheck> checks;
  checks.reserve(selected.size());
  for (const Json* r : selected) checks.push_back(check_route(*r, transforms));
  std::vector<std::pair<const Json*, const RouteCheck*>> checked;
  for (size_t i = 0; i < selected.size(); ++i) checked.emplace_back(selected[i], &checks[i]);
  return table_of_checked(checked, transforms);
}

}  // namespace switchboard::controller
