// The CRDs in crds/ and the route loader (core/route/spec_yaml.cc) describe the same
// documents twice: once for the API server, once for the controller and the routers. This
// test holds them together, so that what `kubectl apply` accepts the controller can load,
// and what the loader refuses the API server refuses first.
//
// Nothing here lists the fields of a spec: they are walked out of the CRD, and for each one
// a document is generated from the schema and fed to both sides. The schema side is a
// small validator for the parts of OpenAPI v3 the CRDs use, with the CRDs' CEL rules run
// by Switchboard's own CEL (the same language the API server runs them in).
//
// It also renders the field tables of docs/resources.md from the CRDs and checks that the
// page is current; SWITCHBOARD_UPDATE_DOCS=1 rewrites it (scripts/update-resources-doc.sh).

#include <gtest/gtest.h>
#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/cel/program.h"
#include "core/json/document.h"
#include "core/route/spec.h"
#include "core/route/spec_yaml.h"
#include "core/route/processor.h"
#include "core/route/table.h"
#include "core/route/transform_tests.h"

#ifndef SWITCHBOARD_SOURCE_DIR
#error "SWITCHBOARD_SOURCE_DIR must name the source tree (tests/CMakeLists.txt sets it)"
#endif

namespace switchboard::route {
namespace {

std::string SourceFile(const std::string& relative) {
  return std::string(SWITCHBOARD_SOURCE_DIR) + "/" + relative;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The one version of a CRD, and its schema.
YAML::Node CrdVersion(const std::string& file) {
  const YAML::Node crd = YAML::LoadFile(SourceFile(file));
  return crd["spec"]["versions"][0];
}

YAML::Node CrdSchema(const std::string& file) {
  const YAML::Node version = CrdVersion(file);
  return version["schema"]["openAPIV3Schema"];
}

// ---------------------------------------------------------------------------------------
// Documents as the API server hands them over: JSON, with the types the schema gives.

struct Doc {
  enum class Kind { Null, Bool, Int, String, List, Object };
  Kind kind = Kind::Null;
  bool b = false;
  int64_t i = 0;
  std::string s;
  std::vector<Doc> items;         // List
  std::vector<std::string> keys;  // Object, in order, parallel to values
  std::vector<Doc> values;

  static Doc Null() { return Doc(); }
  static Doc Bool(bool v) {
    Doc d;
    d.kind = Kind::Bool;
    d.b = v;
    return d;
  }
  static Doc Int(int64_t v) {
    Doc d;
    d.kind = Kind::Int;
    d.i = v;
    return d;
  }
  static Doc Str(std::string v) {
    Doc d;
    d.kind = Kind::String;
    d.s = std::move(v);
    return d;
  }
  static Doc List(std::vector<Doc> v = {}) {
    Doc d;
    d.kind = Kind::List;
    d.items = std::move(v);
    return d;
  }
  static Doc Object() {
    Doc d;
    d.kind = Kind::Object;
    return d;
  }

  Doc* Find(std::string_view key) {
    for (size_t k = 0; k < keys.size(); ++k) {
      if (keys[k] == key) return &values[k];
    }
    return nullptr;
  }
  const Doc* Find(std::string_view key) const { return const_cast<Doc*>(this)->Find(key); }
  Doc& Set(const std::string& key, Doc v) {
    if (Doc* d = Find(key)) return *d = std::move(v);
    keys.push_back(key);
    values.push_back(std::move(v));
    return values.back();
  }
  void Erase(std::string_view key) {
    for (size_t k = 0; k < keys.size(); ++k) {
      if (keys[k] == key) {
        keys.erase(keys.begin() + static_cast<std::ptrdiff_t>(k));
        values.erase(values.begin() + static_cast<std::ptrdiff_t>(k));
        return;
      }
    }
  }
  void Clear() {
    keys.clear();
    values.clear();
  }
};

void AppendJson(const Doc& d, std::string& out) {
  switch (d.kind) {
    case Doc::Kind::Null: out += "null"; return;
    case Doc::Kind::Bool: out += d.b ? "true" : "false"; return;
    case Doc::Kind::Int: out += std::to_string(d.i); return;
    case Doc::Kind::String: json::append_quoted(out, d.s); return;
    case Doc::Kind::List:
      out += '[';
      for (size_t k = 0; k < d.items.size(); ++k) {
        if (k) out += ',';
        AppendJson(d.items[k], out);
      }
      out += ']';
      return;
    case Doc::Kind::Object:
      out += '{';
      for (size_t k = 0; k < d.keys.size(); ++k) {
        if (k) out += ',';
        json::append_quoted(out, d.keys[k]);
        out += ':';
        AppendJson(d.values[k], out);
      }
      out += '}';
      return;
  }
}

std::string Json(const Doc& d) {
  std::string out;
  AppendJson(d, out);
  return out;
}

// ---------------------------------------------------------------------------------------
// Schema nodes. A path names a node below `spec`: property names, "[]" for the items of an
// array, "*" for the values of a map (additionalProperties).

using Path = std::vector<std::string>;

std::string PathText(const Path& p) {
  std::string out;
  for (const auto& seg : p) {
    if (seg == "[]") out += "[]";
    else out += (out.empty() ? "" : ".") + seg;
  }
  return out.empty() ? "<spec>" : out;
}

// The field name the loader puts in its errors, for the documents built below (the first
// item of a list, the key "a" of a map).
std::string LoaderField(const Path& p) {
  std::string out;
  for (const auto& seg : p) {
    if (seg == "[]") out += "[0]";
    else out += (out.empty() ? "" : ".") + (seg == "*" ? std::string("a") : seg);
  }
  return out;
}

bool Flag(const YAML::Node& s, const char* key) { return s[key] && s[key].as<bool>(); }
std::string TypeOf(const YAML::Node& s) { return s["type"] ? s["type"].as<std::string>() : ""; }
bool IsAny(const YAML::Node& s) {
  return TypeOf(s).empty() && Flag(s, "x-kubernetes-preserve-unknown-fields");
}
bool IsIntOrString(const YAML::Node& s) { return Flag(s, "x-kubernetes-int-or-string"); }
bool IsMap(const YAML::Node& s) {
  return s["additionalProperties"] && s["additionalProperties"].IsMap();
}

YAML::Node Child(const YAML::Node& s, const std::string& seg) {
  if (seg == "[]") return s["items"];
  if (seg == "*") return s["additionalProperties"];
  return s["properties"][seg];
}

// yaml-cpp's Node::operator= writes through to the node assigned to; reset() rebinds.
YAML::Node At(const YAML::Node& root, const Path& p) {
  YAML::Node s = root;
  for (const auto& seg : p) s.reset(Child(s, seg));
  return s;
}

bool IsRequired(const YAML::Node& parent, const std::string& name) {
  if (!parent["required"]) return false;
  for (const auto& r : parent["required"]) {
    if (r.as<std::string>() == name) return true;
  }
  return false;
}

std::vector<std::string> PropertyNames(const YAML::Node& s) {
  std::vector<std::string> out;
  if (s["properties"]) {
    for (const auto& kv : s["properties"]) out.push_back(kv.first.as<std::string>());
  }
  return out;
}

struct Field {
  Path path;
  YAML::Node schema;
};

// Every node below `s`, parents before children.
void Collect(const YAML::Node& s, const Path& path, std::vector<Field>& out) {
  if (s["properties"]) {
    for (const auto& kv : s["properties"]) {
      Path p = path;
      p.push_back(kv.first.as<std::string>());
      out.push_back({p, kv.second});
      Collect(kv.second, p, out);
    }
  }
  for (const char* seg : {"[]", "*"}) {
    YAML::Node c = Child(s, seg);
    if (c && c.IsMap()) {
      Path p = path;
      p.push_back(seg);
      out.push_back({p, c});
      Collect(c, p, out);
    }
  }
}

std::vector<Field> Fields(const YAML::Node& spec) {
  std::vector<Field> out;
  Collect(spec, {}, out);
  return out;
}

// A YAML value of the CRD file (a default, an enum member) as the document value it stands for.
Doc FromYaml(const YAML::Node& s, const YAML::Node& v) {
  const std::string type = TypeOf(s);
  if (type == "integer") return Doc::Int(v.as<int64_t>());
  if (type == "boolean") return Doc::Bool(v.as<bool>());
  return Doc::Str(v.as<std::string>());
}

// A YAML document as the API server would store it: plain scalars typed as YAML types them
// (so that `maxDeliver: "5"` stays a string, and a schema typo shows as a type error).
Doc FromYamlDocument(const YAML::Node& n) {
  if (n.IsMap()) {
    Doc d = Doc::Object();
    for (const auto& kv : n) d.Set(kv.first.as<std::string>(), FromYamlDocument(kv.second));
    return d;
  }
  if (n.IsSequence()) {
    Doc d = Doc::List();
    for (const auto& v : n) d.items.push_back(FromYamlDocument(v));
    return d;
  }
  if (!n.IsDefined() || n.IsNull()) return Doc::Null();
  if (n.Tag() == "?") {
    if (n.Scalar() == "true" || n.Scalar() == "false") return Doc::Bool(n.Scalar() == "true");
    int64_t i = 0;
    if (YAML::convert<int64_t>::decode(n, i)) return Doc::Int(i);
  }
  return Doc::Str(n.Scalar());
}

// ---------------------------------------------------------------------------------------
// The schema side: OpenAPI v3 as the API server applies it to a custom resource, for the
// keywords the CRDs use, after pruning (so an unknown field is an error here, as with
// kubectl's strict field validation).

size_t CodePoints(std::string_view s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

// Runs a CRD validation rule with Switchboard's CEL, `self` being the value; nullopt when it
// holds.
std::optional<std::string> RuleProblem(const std::string& rule, const Doc& self) {
  cel::Environment env;
  const int slot = env.declare("self");
  auto compiled = cel::Program::compile(rule, env);
  if (auto* diag = std::get_if<cel::Diagnostic>(&compiled)) {
    return "rule does not compile: " + diag->render(rule);
  }
  json::Document doc;
  if (!doc.parse(Json(self))) return "cannot read the value as JSON: " + doc.error();
  cel::Activation activation(env);
  activation.set(slot, cel::Value::json(&doc, 0));
  cel::Value v = std::get<cel::Program>(compiled).evaluate(activation);
  if (v.is_error()) return "rule failed: " + std::string(v.text());
  if (v.kind() != cel::Kind::Bool) return "rule does not return a bool";
  if (!v.bool_value()) return "rule is false";
  return std::nullopt;
}

void Validate(const YAML::Node& s, const Doc& d, const std::string& at,
              std::vector<std::string>& errors) {
  auto fail = [&](const std::string& m) { errors.push_back((at.empty() ? "<spec>" : at) + ": " + m); };
  auto sub = [&](const std::string& key) { return at.empty() ? key : at + "." + key; };
  if (d.kind == Doc::Kind::Null) {
    if (!Flag(s, "nullable")) fail("null is not allowed");
    return;
  }
  if (IsAny(s)) return;
  const std::string type = IsIntOrString(s) ? "int-or-string" : TypeOf(s);
  const bool is_string = d.kind == Doc::Kind::String;
  if (type == "int-or-string") {
    if (d.kind != Doc::Kind::Int && !is_string) return fail("expected an integer or a string");
  } else if ((type == "string" && !is_string) || (type == "integer" && d.kind != Doc::Kind::Int) ||
             (type == "boolean" && d.kind != Doc::Kind::Bool) ||
             (type == "array" && d.kind != Doc::Kind::List) ||
             (type == "object" && d.kind != Doc::Kind::Object)) {
    return fail("expected " + type);
  }
  if (is_string) {
    const size_t n = CodePoints(d.s);
    if (s["minLength"] && n < s["minLength"].as<size_t>()) fail("shorter than minLength");
    if (s["maxLength"] && n > s["maxLength"].as<size_t>()) fail("longer than maxLength");
    // The API server searches for the pattern (Go regexp, RE2 syntax): it is not anchored.
    if (s["pattern"] && !RE2::PartialMatch(d.s, RE2(s["pattern"].as<std::string>()))) {
      fail("'" + d.s + "' does not match " + s["pattern"].as<std::string>());
    }
  }
  if (s["enum"]) {
    bool found = false;
    for (const auto& e : s["enum"]) found = found || Json(FromYaml(s, e)) == Json(d);
    if (!found) fail(Json(d) + " is not one of the enum");
  }
  if (d.kind == Doc::Kind::Int) {
    if (s["minimum"] && d.i < s["minimum"].as<int64_t>()) fail("below minimum");
    if (s["maximum"] && d.i > s["maximum"].as<int64_t>()) fail("above maximum");
  }
  if (d.kind == Doc::Kind::List) {
    if (s["minItems"] && d.items.size() < s["minItems"].as<size_t>()) fail("fewer than minItems");
    if (s["maxItems"] && d.items.size() > s["maxItems"].as<size_t>()) fail("more than maxItems");
    for (size_t k = 0; k < d.items.size(); ++k) {
      Validate(s["items"], d.items[k], at + "[" + std::to_string(k) + "]", errors);
    }
    if (s["x-kubernetes-list-type"] && s["x-kubernetes-list-type"].as<std::string>() == "map") {
      std::set<std::string> seen;
      for (const auto& item : d.items) {
        std::string key;
        for (const auto& k : s["x-kubernetes-list-map-keys"]) {
          const Doc* v = item.Find(k.as<std::string>());
          key += (v ? Json(*v) : "null") + "\n";
        }
        if (!seen.insert(key).second) fail("duplicate entries for the list's map keys");
      }
    }
  }
  if (d.kind == Doc::Kind::Object) {
    const size_t n = d.keys.size();
    if (s["minProperties"] && n < s["minProperties"].as<size_t>()) fail("fewer than minProperties");
    if (s["maxProperties"] && n > s["maxProperties"].as<size_t>()) fail("more than maxProperties");
    for (size_t k = 0; k < n; ++k) {
      if (s["properties"] && s["properties"][d.keys[k]]) {
        Validate(s["properties"][d.keys[k]], d.values[k], sub(d.keys[k]), errors);
      } else if (IsMap(s)) {
        Validate(s["additionalProperties"], d.values[k], sub(d.keys[k]), errors);
      } else if (!Flag(s, "x-kubernetes-preserve-unknown-fields")) {
        fail("unknown field '" + d.keys[k] + "'");
      }
    }
    if (s["required"]) {
      for (const auto& r : s["required"]) {
        if (!d.Find(r.as<std::string>())) fail("missing required field '" + r.as<std::string>() + "'");
      }
    }
    // The structural forms the CRDs use: not {required} and oneOf [{required}...].
    auto has_all = [&](const YAML::Node& branch) {
      for (const auto& r : branch["required"]) {
        if (!d.Find(r.as<std::string>())) return false;
      }
      return true;
    };
    if (s["not"] && has_all(s["not"])) fail("matches the schema under `not`");
    if (s["oneOf"]) {
      int matches = 0;
      for (const auto& branch : s["oneOf"]) matches += has_all(branch) ? 1 : 0;
      if (matches != 1) fail("matches " + std::to_string(matches) + " branches of oneOf");
    }
  }
  if (s["x-kubernetes-validations"]) {
    for (const auto& v : s["x-kubernetes-validations"]) {
      if (auto problem = RuleProblem(v["rule"].as<std::string>(), d)) {
        fail(*problem + " (" + (v["message"] ? v["message"].as<std::string>() : "") + ")");
      }
    }
  }
}

std::vector<std::string> SchemaErrors(const YAML::Node& s, const Doc& d) {
  std::vector<std::string> errors;
  Validate(s, d, "", errors);
  return errors;
}

// ---------------------------------------------------------------------------------------
// Generating documents from the schema.

// Strings that are valid as most things at once: `true` is a CEL expression, a subject, a
// field path and a name. The first that the field's schema takes is used; a new pattern
// that none of them meets fails the test, which names the field, rather than going untested.
const std::vector<std::string>& SampleStrings() {
  static const std::vector<std::string> samples = {
      "true", "30s", "nats://127.0.0.1:4222", "1/1", "sha256:" + std::string(64, '0'),
      "Ready", "2024-01-01T00:00:00Z", "500m"};
  return samples;
}

std::optional<std::string> SampleString(const YAML::Node& s) {
  if (s["enum"]) return s["enum"][0].as<std::string>();
  for (const auto& c : SampleStrings()) {
    if (SchemaErrors(s, Doc::Str(c)).empty()) return c;
  }
  return std::nullopt;
}

// The smallest valid value: required fields only, as few items and entries as allowed.
Doc Minimal(const YAML::Node& s) {
  if (IsAny(s)) {
    Doc d = Doc::Object();
    d.Set("k", Doc::Str("v"));
    return d;
  }
  if (IsIntOrString(s)) return Doc::Str(SampleString(s).value_or("1"));
  const std::string type = TypeOf(s);
  if (type == "string") return Doc::Str(SampleString(s).value_or("<no sample string>"));
  if (type == "integer") {
    if (s["default"]) return Doc::Int(s["default"].as<int64_t>());
    return Doc::Int(s["minimum"] ? s["minimum"].as<int64_t>() : 1);
  }
  if (type == "boolean") return Doc::Bool(s["default"] ? s["default"].as<bool>() : true);
  if (type == "array") {
    Doc d = Doc::List();
    const size_t n = s["minItems"] ? s["minItems"].as<size_t>() : 0;
    for (size_t k = 0; k < n; ++k) d.items.push_back(Minimal(s["items"]));
    return d;
  }
  Doc d = Doc::Object();
  const size_t min_props = s["minProperties"] ? s["minProperties"].as<size_t>() : 0;
  if (IsMap(s)) {
    for (size_t k = 0; k < min_props; ++k) {
      d.Set(std::string(1, static_cast<char>('a' + k)), Minimal(s["additionalProperties"]));
    }
    return d;
  }
  if (s["required"]) {
    for (const auto& r : s["required"]) {
      d.Set(r.as<std::string>(), Minimal(s["properties"][r.as<std::string>()]));
    }
  }
  for (const auto& name : PropertyNames(s)) {
    if (d.keys.size() >= min_props) break;
    if (!d.Find(name)) d.Set(name, Minimal(s["properties"][name]));
  }
  return d;
}

// A minimal valid document that has the node at `path`, holding `leaf` (or a minimal value).
Doc WithField(const YAML::Node& s, const Path& path, size_t from, const Doc* leaf) {
  if (from == path.size()) return leaf ? *leaf : Minimal(s);
  const std::string& seg = path[from];
  const YAML::Node child = Child(s, seg);
  Doc d = Minimal(s);
  if (seg == "[]") {
    if (d.items.empty()) d.items.emplace_back();
    d.items[0] = WithField(child, path, from + 1, leaf);
    return d;
  }
  if (seg == "*") {
    if (d.keys.empty()) d.Set("a", Doc());
    d.values[0] = WithField(child, path, from + 1, leaf);
    return d;
  }
  // In an object that takes exactly one of its fields, this field replaces the one
  // Minimal() chose.
  if (s["maxProperties"] && !IsMap(s) && d.keys.size() >= s["maxProperties"].as<size_t>() &&
      !d.Find(seg)) {
    d.Clear();
  }
  d.Set(seg, WithField(child, path, from + 1, leaf));
  return d;
}

Doc WithField(const YAML::Node& spec, const Path& path, const Doc* leaf = nullptr) {
  return WithField(spec, path, 0, leaf);
}

// The node at `path` in a document built by WithField.
Doc* Locate(Doc& d, const Path& path) {
  Doc* cur = &d;
  for (const auto& seg : path) {
    if (seg == "[]") cur = cur->items.empty() ? nullptr : &cur->items[0];
    else if (seg == "*") cur = cur->values.empty() ? nullptr : &cur->values[0];
    else cur = cur->Find(seg);
    if (cur == nullptr) return nullptr;
  }
  return cur;
}

// ---------------------------------------------------------------------------------------
// The loader side.

struct Loaded {
  bool ok = false;
  RouteSet set;
  std::vector<SpecError> errors;

  std::string Errors() const {
    std::string out;
    for (const auto& e : errors) out += "\n    " + e.render();
    return out;
  }
  bool HasError(const std::string& field, const std::string& message_start) const {
    return std::any_of(errors.begin(), errors.end(), [&](const SpecError& e) {
      return e.field == field && e.message.rfind(message_start, 0) == 0;
    });
  }
};

// Compiles what was loaded, with a named transform for every `use` so that references
// resolve; returns the compiler's errors.
std::vector<std::string> CompileErrors(RouteSet set) {
  std::set<std::string> used;
  for (const auto& r : set.routes) {
    for (const auto& s : r.transform) {
      if (s.kind == StepSpec::Kind::Use) used.insert(s.use);
    }
  }
  for (const auto& name : used) {
    TransformSpec t;
    t.name = name;
    StepSpec step;
    step.kind = StepSpec::Kind::Remove;
    step.remove = {"x"};
    t.steps.push_back(step);
    set.transforms.push_back(t);
  }
  auto result = RouteTable::compile(std::move(set), 1);
  std::vector<std::string> out;
  if (auto* errors = std::get_if<std::vector<SpecError>>(&result)) {
    for (const auto& e : *errors) out.push_back(e.render());
  }
  return out;
}

// One kind with a loader: its CRD, and how the controller hands it a spec.
struct Kind {
  std::string name;
  std::string crd_file;
  std::function<Loaded(const Doc& spec)> load;
  // Fields the loader reads and the compiler refuses, which the schema therefore leaves
  // out: {path of the object, field}.
  std::set<std::pair<std::string, std::string>> refused_by_compiler;

  YAML::Node Spec() const {
    const YAML::Node schema = CrdSchema(crd_file);
    return schema["properties"]["spec"];
  }
};

const Kind& RouteKind() {
  static const Kind kind{
      "EventRoute", "crds/switchboard.dev_eventroutes.yaml",
      [](const Doc& spec) {
        Loaded l;
        RouteSpec r;
        l.ok = load_route_spec_yaml(Json(spec), "probe", r, l.errors);
        l.set.routes.push_back(std::move(r));
        return l;
      },
      {}};
  return kind;
}

const Kind& TransformKind() {
  static const Kind kind{
      "EventTransform", "crds/switchboard.dev_eventtransforms.yaml",
      [](const Doc& spec) {
        // There is no entry point for one EventTransform spec; the object form of a routes
        // file is the same reader.
        Loaded l;
        std::string text =
            R"({"apiVersion":"switchboard.dev/v1alpha1","kind":"EventTransform",)"
            R"("metadata":{"name":"probe"},"spec":)" + Json(spec) + "}";
        l.ok = load_yaml(text, "probe.yaml", l.set, l.errors);
        return l;
      },
      {{"steps[]", "use"}}};
  return kind;
}

// Loader, or failing that the compiler, refuses the document.
bool Refused(const Kind& kind, const Doc& spec, std::string* why = nullptr) {
  Loaded l = kind.load(spec);
  if (!l.ok) {
    if (why) *why = l.Errors();
    return true;
  }
  auto errors = CompileErrors(l.set);
  if (why && !errors.empty()) *why = errors[0];
  return !errors.empty();
}

// ---------------------------------------------------------------------------------------
// Every field: a document that sets it, valid by the schema, loads and compiles.

void EveryFieldLoads(const Kind& kind) {
  const YAML::Node spec = kind.Spec();
  const std::vector<Field> fields = Fields(spec);
  ASSERT_GT(fields.size(), 10u);
  for (const auto& f : fields) {
    SCOPED_TRACE(kind.name + " " + PathText(f.path));
    if (f.schema["type"] && TypeOf(f.schema) == "string" && !f.schema["enum"]) {
      EXPECT_TRUE(SampleString(f.schema)) << "no sample string meets the schema of this field";
    }
    Doc doc = WithField(spec, f.path);
    auto schema_errors = SchemaErrors(spec, doc);
    EXPECT_TRUE(schema_errors.empty()) << Json(doc) << "\n  " << schema_errors[0];
    Loaded l = kind.load(doc);
    EXPECT_TRUE(l.ok) << Json(doc) << l.Errors();
    if (l.ok) {
      auto errors = CompileErrors(l.set);
      EXPECT_TRUE(errors.empty()) << Json(doc) << "\n  " << errors[0];
    }
  }
}

// The objects of a spec that have named fields, the spec itself first.
std::vector<Field> ObjectLevels(const YAML::Node& spec) {
  std::vector<Field> levels = {{{}, spec}};
  for (const auto& f : Fields(spec)) {
    if (f.schema["properties"]) levels.push_back(f);
  }
  return levels;
}

// Every name any of the CRDs or the loader uses somewhere, plus near misses: the loader
// must refuse each of them wherever the schema does not have it.
std::set<std::string> Vocabulary() {
  std::set<std::string> words = {"name",  "routes", "transforms", "kind",     "apiVersion",
                                 "metadata", "spec", "status",    "filtr",    "destination",
                                 "sources", "queue_group", "ackwait", "max_deliver", "type",
                                 "value", "headerz", "subjects", "dead_letter", "x"};
  for (const char* file : {"crds/switchboard.dev_eventroutes.yaml",
                           "crds/switchboard.dev_eventtransforms.yaml",
                           "crds/switchboard.dev_eventrouters.yaml"}) {
    std::vector<Field> all;
    Collect(CrdSchema(file), {}, all);
    for (const auto& f : all) {
      if (f.path.back() != "[]" && f.path.back() != "*") words.insert(f.path.back());
    }
  }
  return words;
}

void UnknownFieldsAreRefused(const Kind& kind) {
  const YAML::Node spec = kind.Spec();
  const std::set<std::string> vocabulary = Vocabulary();
  for (const auto& level : ObjectLevels(spec)) {
    const std::vector<std::string> props = PropertyNames(level.schema);
    const std::string where = LoaderField(level.path);
    SCOPED_TRACE(kind.name + " " + PathText(level.path));
    for (const auto& word : vocabulary) {
      if (std::find(props.begin(), props.end(), word) != props.end()) continue;
      Doc doc = WithField(spec, level.path);
      Doc* obj = Locate(doc, level.path);
      ASSERT_NE(obj, nullptr);
      obj->Set(word, Doc::Str("x"));
      EXPECT_FALSE(SchemaErrors(spec, doc).empty()) << word;
      Loaded l = kind.load(doc);
      const std::string field = where.empty() ? word : where + "." + word;
      if (kind.refused_by_compiler.count({PathText(level.path), word})) {
        // The loader reads it, so it must not be refused as unknown; the compiler refuses it.
        std::string why;
        EXPECT_TRUE(Refused(kind, doc, &why)) << Json(doc);
        continue;
      }
      EXPECT_FALSE(l.ok) << "the loader accepts '" << word << "', which the schema does not have: "
                         << Json(doc);
      EXPECT_TRUE(l.HasError(field, "unknown field '" + word + "'"))
          << "expected unknown field at " << field << l.Errors();
      // The loader's suggestions come from its own list of fields at this level: each one it
      // makes must be a field the schema has.
      for (const auto& e : l.errors) {
        const std::string marker = "(did you mean '";
        size_t at = e.message.find(marker);
        if (at == std::string::npos) continue;
        std::string hint = e.message.substr(at + marker.size());
        hint = hint.substr(0, hint.find('\''));
        const bool known = std::find(props.begin(), props.end(), hint) != props.end() ||
                           kind.refused_by_compiler.count({PathText(level.path), hint});
        EXPECT_TRUE(known) << "the loader knows a field '" << hint << "' that the schema lacks";
      }
    }
  }
}

// Leaving a field out: refused by the schema exactly when refused by the loader, and every
// required field is refused when missing.
void RequiredFieldsAgree(const Kind& kind) {
  const YAML::Node spec = kind.Spec();
  for (const auto& f : Fields(spec)) {
    const std::string& name = f.path.back();
    if (name == "[]" || name == "*") continue;
    SCOPED_TRACE(kind.name + " " + PathText(f.path));
    Doc doc = WithField(spec, f.path);
    Path parent(f.path.begin(), f.path.end() - 1);
    Doc* obj = Locate(doc, parent);
    ASSERT_NE(obj, nullptr);
    obj->Erase(name);
    const bool schema_ok = SchemaErrors(spec, doc).empty();
    Loaded l = kind.load(doc);
    EXPECT_EQ(schema_ok, l.ok) << "without it: " << Json(doc) << l.Errors();
    if (IsRequired(At(spec, parent), name)) {
      EXPECT_FALSE(l.ok) << "required, yet the loader takes it missing";
    }
  }
}

// Bounds: every integer's minimum and maximum are the loader's; a string with minLength 1
// is exactly one the loader refuses empty.
void LimitsAgree(const Kind& kind) {
  const YAML::Node spec = kind.Spec();
  for (const auto& f : Fields(spec)) {
    SCOPED_TRACE(kind.name + " " + PathText(f.path));
    const std::string type = TypeOf(f.schema);
    auto loads = [&](const Doc& v) { return kind.load(WithField(spec, f.path, &v)).ok; };
    if (type == "integer") {
      ASSERT_TRUE(f.schema["minimum"] && f.schema["maximum"]) << "an integer without bounds";
      const auto lo = f.schema["minimum"].as<int64_t>(), hi = f.schema["maximum"].as<int64_t>();
      EXPECT_TRUE(loads(Doc::Int(lo)));
      EXPECT_TRUE(loads(Doc::Int(hi)));
      EXPECT_FALSE(loads(Doc::Int(lo - 1))) << "the loader's minimum is lower than the schema's";
      EXPECT_FALSE(loads(Doc::Int(hi + 1))) << "the loader's maximum is higher than the schema's";
    }
    if (type == "string") {
      // Where the loader says "must not be empty" the schema says minLength: 1; elsewhere a
      // pattern may still refuse "" (the schema is stricter), but never let it through.
      const bool min_length = f.schema["minLength"] && f.schema["minLength"].as<int>() >= 1;
      const bool loader_refuses = !loads(Doc::Str(""));
      if (min_length) {
        EXPECT_TRUE(loader_refuses) << "minLength 1, yet the loader takes \"\"";
      }
      if (loader_refuses) {
        EXPECT_FALSE(SchemaErrors(f.schema, Doc::Str("")).empty()) << "the loader refuses \"\"";
      }
    }
    if (type == "array") {
      const bool non_empty = f.schema["minItems"] && f.schema["minItems"].as<int>() >= 1;
      EXPECT_EQ(non_empty, !loads(Doc::List()))
          << (non_empty ? "minItems 1, yet the loader takes []" : "the loader refuses []");
    }
    if (type == "object" && IsMap(f.schema)) {
      const bool non_empty = f.schema["minProperties"] && f.schema["minProperties"].as<int>() >= 1;
      EXPECT_EQ(non_empty, !loads(Doc::Object()))
          << (non_empty ? "minProperties 1, yet the loader takes {}" : "the loader refuses {}");
    }
  }
}

// Values of every kind in every field: whatever the schema accepts, the loader accepts. (The
// converse does not hold and is not meant to: the schema is stricter on purpose, with
// patterns for subjects, names and durations, and a list where the loader also takes one
// string.)
std::vector<Doc> Probes(const YAML::Node& s) {
  std::vector<Doc> out = {Doc::Null(), Doc::Bool(true), Doc::Int(0), Doc::Int(7), Doc::Str(""),
                          Doc::Object(), Doc::List()};
  for (const char* text : {" ", "x", "a b", "7", "true", "orders.*.created", "orders.>", ">", "*",
                           "a..b", ".a", "a.", "a.*b", "a.>.b", "tab\there", "v\vt", "-1s", "0",
                           "1d", "1.5h", "1h30m", "8760h", "8761h", "+1s", "250ms", "0.5s", "1e3s",
                           "UPPER", "a/b", "nats://x:1", "dns-name.example", "{{ event.x }}.y"}) {
    out.push_back(Doc::Str(text));
  }
  if (s["maxLength"]) out.push_back(Doc::Str(std::string(s["maxLength"].as<size_t>(), 'a')));
  if (s["items"]) out.push_back(Doc::List({Minimal(s["items"]), Minimal(s["items"])}));
  if (IsMap(s)) {
    Doc m = Doc::Object();
    m.Set("a.b", Minimal(s["additionalProperties"]));
    m.Set("", Minimal(s["additionalProperties"]));
    out.push_back(m);
  }
  if (s["minimum"]) out.push_back(Doc::Int(s["minimum"].as<int64_t>()));
  if (s["maximum"]) out.push_back(Doc::Int(s["maximum"].as<int64_t>()));
  return out;
}

void SchemaAcceptedLoads(const Kind& kind) {
  const YAML::Node spec = kind.Spec();
  int accepted = 0;
  for (const auto& f : Fields(spec)) {
    SCOPED_TRACE(kind.name + " " + PathText(f.path));
    for (const Doc& probe : Probes(f.schema)) {
      Doc doc = WithField(spec, f.path, &probe);
      if (!SchemaErrors(spec, doc).empty()) continue;
      ++accepted;
      Loaded l = kind.load(doc);
      EXPECT_TRUE(l.ok) << "the schema accepts " << Json(doc) << l.Errors();
      // A pattern is the schema's whole say on a field's text; where there is one, what it
      // lets through also compiles. (Expressions have none: their meaning is the compiler's.)
      if (l.ok && f.schema["pattern"]) {
        auto errors = CompileErrors(l.set);
        EXPECT_TRUE(errors.empty()) << Json(doc) << "\n  " << errors[0];
      }
    }
  }
  EXPECT_GT(accepted, 100);
}

// Subjects: the patterns are validate_subject() itself, both ways.
TEST(CrdRoute, SubjectPatternsAreTheSubjectRules) {
  const YAML::Node spec = RouteKind().Spec();
  struct Case {
    Path path;
    bool wildcards;
  };
  for (const Case& c : {Case{{"source", "subject"}, true}, Case{{"deadLetter", "subject"}, false}}) {
    const YAML::Node s = At(spec, c.path);
    for (const char* text : {"a", "a.b.c", "*", ">", "a.*", "a.>", "*.*.>", "a.*.c", "", " ", "a..b",
                             ".a", "a.", "a*", "a.b*", ">.a", "a.>.b", "a b", "a\tb", "a\vb",
                             "a\fb", "a\nb", "*a", "a.**", "é.ü", "a-b_c:d/e"}) {
      const bool schema_ok = SchemaErrors(s, Doc::Str(text)).empty();
      EXPECT_EQ(schema_ok, validate_subject(text, c.wildcards, nullptr))
          << PathText(c.path) << " '" << text << "'";
    }
    const bool long_ok = SchemaErrors(s, Doc::Str(std::string(kMaxSubjectLength + 1, 'a'))).empty();
    EXPECT_FALSE(long_ok);
    EXPECT_EQ(s["maxLength"].as<size_t>(), kMaxSubjectLength);
  }
}

// Durations: what the pattern and rules take, the loader reads as the same time as the
// API server's CEL does (both parse Go/CEL duration text), and none overflows the int64
// nanoseconds a JetStream consumer config holds.
TEST(CrdRoute, DurationsLoadAsTheSchemaReadsThem) {
  const YAML::Node spec = RouteKind().Spec();
  const YAML::Node ack = At(spec, {"source", "jetstream", "ackWait"});
  for (const char* text :
       {"1ns", "1us", "1ms", "30s", "1m30s", "1.5h", "8760h", "0.001s", "2h45m10s500ms"}) {
    EXPECT_TRUE(SchemaErrors(ack, Doc::Str(text)).empty()) << text;
    int64_t ms = -1;
    EXPECT_TRUE(parse_duration_ms(text, ms)) << text;
    EXPECT_LE(ms, int64_t{8760} * 3600 * 1000);
  }
  for (const char* text : {"0", "0s", "8760h1ns", "-1s", "1d", "+1s", "1e3s", "1", "s", "1.s", ".5s",
                           "9999999999999999999h", "1 s"}) {
    EXPECT_FALSE(SchemaErrors(ack, Doc::Str(text)).empty()) << text;
  }
}

// ---------------------------------------------------------------------------------------
// Defaults: a document without the field loads as one that sets it to the schema's default
// (the API server fills defaults in; a routes file leaves them out), and another value is
// seen, so the comparison is not vacuous.

Doc OtherValue(const YAML::Node& s, const Doc& def) {
  if (def.kind == Doc::Kind::Int) {
    const int64_t hi = s["maximum"] ? s["maximum"].as<int64_t>() : def.i + 1;
    return Doc::Int(def.i < hi ? def.i + 1 : def.i - 1);
  }
  if (def.kind == Doc::Kind::Bool) return Doc::Bool(!def.b);
  return Doc::Str(def.s == "31s" ? "32s" : "31s");
}

// What the loader made, in a form that shows every field.
std::string LoadedText(const Kind& kind, const Doc& spec) {
  Loaded l = kind.load(spec);
  EXPECT_TRUE(l.ok) << Json(spec) << l.Errors();
  std::string out = canonical_json(l.set);
  for (const auto& t : l.set.transforms) {
    for (const auto& c : t.tests) {
      out += "\ntest " + c.name + " " + c.input.subject + " " + c.input.payload + " " +
             c.expect_json.value_or("-") + " " + c.expect_error.value_or("-");
    }
  }
  return out;
}

std::vector<Field> Defaulted(const Kind& kind) {
  std::vector<Field> out;
  for (const auto& f : Fields(kind.Spec())) {
    if (f.schema["default"]) out.push_back(f);
  }
  return out;
}

void DefaultsAreTheLoaders(const Kind& kind) {
  const YAML::Node spec = kind.Spec();
  for (const auto& f : Defaulted(kind)) {
    SCOPED_TRACE(kind.name + " " + PathText(f.path));
    const Doc def = FromYaml(f.schema, f.schema["default"]);
    EXPECT_TRUE(SchemaErrors(f.schema, def).empty()) << "the default does not meet its own schema";
    Doc without = WithField(spec, f.path);
    Path parent(f.path.begin(), f.path.end() - 1);
    Locate(without, parent)->Erase(f.path.back());
    const Doc other = OtherValue(f.schema, def);
    EXPECT_EQ(LoadedText(kind, without), LoadedText(kind, WithField(spec, f.path, &def)));
    EXPECT_NE(LoadedText(kind, without), LoadedText(kind, WithField(spec, f.path, &other)))
        << "the loader ignores " << Json(other);
  }
}

int64_t DurationMs(const YAML::Node& s) {
  int64_t ms = -1;
  EXPECT_TRUE(parse_duration_ms(s["default"].as<std::string>(), ms));
  return ms;
}

// The same, said field by field against spec.h's defaults; every schema default is here.
TEST(CrdRoute, DefaultsAreSpecHDefaults) {
  const YAML::Node spec = RouteKind().Spec();
  const JetStreamSpec js;
  const RouteSpec route;
  const DestinationSpec dest;
  auto integer = [](int64_t want) {
    return [want](const YAML::Node& s) { return s["default"].as<int64_t>() == want; };
  };
  const std::map<std::string, std::function<bool(const YAML::Node&)>> expected = {
      {"source.jetstream.ackWait", [&](const YAML::Node& s) { return DurationMs(s) == js.ack_wait_ms; }},
      {"source.jetstream.maxDeliver", integer(js.max_deliver)},
      {"source.jetstream.batch", integer(js.batch)},
      {"source.jetstream.maxAckPending", integer(js.max_ack_pending)},
      {"maxPayloadBytes", integer(route.max_payload_bytes)},
      {"destinations[].jetstream",
       [&](const YAML::Node& s) { return s["default"].as<bool>() == dest.jetstream; }},
  };
  std::set<std::string> seen;
  for (const auto& f : Defaulted(RouteKind())) {
    const std::string p = PathText(f.path);
    seen.insert(p);
    auto it = expected.find(p);
    if (it == expected.end()) {
      ADD_FAILURE() << p << " has a default in the CRD; add it here";
      continue;
    }
    EXPECT_TRUE(it->second(f.schema)) << p << ": the CRD says "
                                      << f.schema["default"].as<std::string>();
  }
  for (const auto& [p, check] : expected) {
    EXPECT_TRUE(seen.count(p)) << p << " has no default in the CRD";
  }

  // And loaded from a minimal spec, the loader's values are those defaults.
  Doc doc = WithField(spec, {"source", "jetstream", "stream"});
  RouteSpec r;
  std::vector<SpecError> errors;
  ASSERT_TRUE(load_route_spec_yaml(Json(doc), "minimal", r, errors)) << Json(doc);
  ASSERT_TRUE(r.source.jetstream);
  auto def = [&](const Path& p) { return At(spec, p)["default"]; };
  EXPECT_EQ(r.source.jetstream->ack_wait_ms, DurationMs(At(spec, {"source", "jetstream", "ackWait"})));
  EXPECT_EQ(r.source.jetstream->max_deliver, def({"source", "jetstream", "maxDeliver"}).as<int>());
  EXPECT_EQ(r.source.jetstream->batch, def({"source", "jetstream", "batch"}).as<int>());
  EXPECT_EQ(r.source.jetstream->max_ack_pending, def({"source", "jetstream", "maxAckPending"}).as<int>());
  EXPECT_EQ(r.max_payload_bytes, def({"maxPayloadBytes"}).as<int64_t>());
  EXPECT_EQ(r.destinations.at(0).jetstream, def({"destinations", "[]", "jetstream"}).as<bool>());
  // Defaults the schema cannot state, because they depend on the route's name.
  EXPECT_EQ(r.source.jetstream->durable, "minimal");
  EXPECT_FALSE(At(spec, {"source", "jetstream", "durable"})["default"]);
  EXPECT_FALSE(At(spec, {"source", "queueGroup"})["default"]);
}

TEST(CrdRoute, EveryFieldLoads) { EveryFieldLoads(RouteKind()); }
TEST(CrdRoute, UnknownFieldsAreRefusedAtEveryLevel) { UnknownFieldsAreRefused(RouteKind()); }
TEST(CrdRoute, RequiredFieldsAgree) { RequiredFieldsAgree(RouteKind()); }
TEST(CrdRoute, LimitsAgree) { LimitsAgree(RouteKind()); }
TEST(CrdRoute, WhatTheSchemaAcceptsLoads) { SchemaAcceptedLoads(RouteKind()); }
TEST(CrdRoute, DefaultsAreTheLoaders) { DefaultsAreTheLoaders(RouteKind()); }

TEST(CrdRoute, StepsTakeExactlyOneKind) {
  const YAML::Node spec = RouteKind().Spec();
  const YAML::Node step = At(spec, {"transform", "[]"});
  const std::vector<std::string> kinds = PropertyNames(step);
  EXPECT_EQ(kinds, (std::vector<std::string>{"set", "remove", "rename", "payload", "use"}));
  for (size_t a = 0; a < kinds.size(); ++a) {
    for (size_t b = a + 1; b < kinds.size(); ++b) {
      Doc two = Minimal(step);
      two.Clear();
      two.Set(kinds[a], Minimal(step["properties"][kinds[a]]));
      two.Set(kinds[b], Minimal(step["properties"][kinds[b]]));
      // The CEL rule says it, not only maxProperties: its message is the one users see.
      ASSERT_TRUE(step["x-kubernetes-validations"]);
      EXPECT_TRUE(RuleProblem(step["x-kubernetes-validations"][0]["rule"].as<std::string>(), two));
      Doc doc = WithField(spec, {"transform", "[]"}, &two);
      EXPECT_FALSE(SchemaErrors(spec, doc).empty());
      EXPECT_FALSE(RouteKind().load(doc).ok) << Json(doc);
    }
  }
}

// ---------------------------------------------------------------------------------------
// EventTransform.

TEST(CrdTransform, EveryFieldLoads) { EveryFieldLoads(TransformKind()); }
TEST(CrdTransform, UnknownFieldsAreRefusedAtEveryLevel) { UnknownFieldsAreRefused(TransformKind()); }
TEST(CrdTransform, RequiredFieldsAgree) { RequiredFieldsAgree(TransformKind()); }
TEST(CrdTransform, LimitsAgree) { LimitsAgree(TransformKind()); }
TEST(CrdTransform, WhatTheSchemaAcceptsLoads) { SchemaAcceptedLoads(TransformKind()); }
TEST(CrdTransform, DefaultsAreTheLoaders) { DefaultsAreTheLoaders(TransformKind()); }

// A route's steps and a named transform's are the same schema, except `use`.
TEST(CrdTransform, StepsAreARoutesStepsWithoutUse) {
  const YAML::Node route_step = At(RouteKind().Spec(), {"transform", "[]"});
  const YAML::Node transform_step = At(TransformKind().Spec(), {"steps", "[]"});
  for (const auto& name : PropertyNames(transform_step)) {
    EXPECT_EQ(YAML::Dump(route_step["properties"][name]),
              YAML::Dump(transform_step["properties"][name]))
        << name;
  }
  std::vector<std::string> without_use = PropertyNames(route_step);
  without_use.erase(std::find(without_use.begin(), without_use.end(), "use"));
  EXPECT_EQ(PropertyNames(transform_step), without_use);
}

TEST(CrdTransform, UseIsRefusedByTheSchemaAndTheCompiler) {
  const YAML::Node spec = TransformKind().Spec();
  Doc step = Doc::Object();
  step.Set("use", Doc::Str("other"));
  Doc doc = WithField(spec, {"steps", "[]"}, &step);
  EXPECT_FALSE(SchemaErrors(spec, doc).empty());
  // Without strict field validation the API server prunes the field instead, which leaves
  // an empty step: that too is refused.
  const Doc empty = Doc::Object();
  EXPECT_FALSE(SchemaErrors(spec, WithField(spec, {"steps", "[]"}, &empty)).empty());
  Loaded l = TransformKind().load(doc);
  ASSERT_TRUE(l.ok) << l.Errors();
  auto errors = CompileErrors(l.set);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("a named transform cannot use another transform"), std::string::npos)
      << errors[0];
}

TEST(CrdTransform, TestInputsAndExpectationsAgree) {
  const YAML::Node spec = TransformKind().Spec();
  struct Case {
    std::string input, expect;
    bool ok;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"data":{"a":1}})", R"({"data":{"a":1}})", true},
           {R"({"raw":"not json"})", R"({"error":"not_json"})", true},
           {R"({})", R"({"data":null})", true},
           {R"({"data":[1,"two",null]})", R"({"data":"text"})", true},
           {R"({"subject":"a.b","headers":{"h":"v"},"data":7})", R"({"data":7})", true},
           {R"({"data":{},"raw":"x"})", R"({"data":{}})", false},
           {R"({"data":{}})", R"({"data":{},"error":"x"})", false},
           {R"({"data":{}})", R"({})", false},
           {R"({"data":{}})", R"({"error":""})", false},
       }) {
    SCOPED_TRACE(c.input + " " + c.expect);
    std::string item = R"({"name":"case","input":)" + c.input + R"(,"expect":)" + c.expect + "}";
    Doc value = FromYamlDocument(YAML::Load(item));
    Doc doc = WithField(spec, {"tests", "[]"}, &value);
    const auto schema_errors = SchemaErrors(spec, doc);
    EXPECT_EQ(schema_errors.empty(), c.ok) << (schema_errors.empty() ? "" : schema_errors[0]);
    Loaded l = TransformKind().load(doc);
    EXPECT_EQ(l.ok, c.ok) << Json(doc) << l.Errors();
  }
}

// ---------------------------------------------------------------------------------------
// EventRouter: no loader reads it, so its rules are checked here directly.

YAML::Node RouterSpec() { return At(CrdSchema("crds/switchboard.dev_eventrouters.yaml"), {"spec"}); }

TEST(CrdRouter, RulesHoldWhereTheyShould) {
  const YAML::Node spec = RouterSpec();
  const YAML::Node auth = At(spec, {"nats", "auth"});
  auto with = [](std::vector<std::string> keys) {
    Doc d = Doc::Object();
    d.Set("secretName", Doc::Str("nats-auth"));
    for (const auto& k : keys) d.Set(k, Doc::Str(k == "userKey" ? "user" : "secret"));
    return d;
  };
  EXPECT_TRUE(SchemaErrors(auth, with({"userKey", "passwordKey"})).empty());
  EXPECT_TRUE(SchemaErrors(auth, with({"tokenKey"})).empty());
  EXPECT_TRUE(SchemaErrors(auth, with({"nkeySeedKey"})).empty());
  EXPECT_TRUE(SchemaErrors(auth, with({"credsKey"})).empty());
  EXPECT_FALSE(SchemaErrors(auth, with({})).empty());
  EXPECT_FALSE(SchemaErrors(auth, with({"userKey"})).empty());
  EXPECT_FALSE(SchemaErrors(auth, with({"passwordKey"})).empty());
  EXPECT_FALSE(SchemaErrors(auth, with({"tokenKey", "credsKey"})).empty());
  EXPECT_FALSE(SchemaErrors(auth, with({"userKey", "passwordKey", "tokenKey"})).empty());

  // Credentials come from the Secret in auth, never from a URL, which is shown in the
  // Deployment's args and in logs.
  const YAML::Node url = At(spec, {"nats", "urls", "[]"});
  EXPECT_TRUE(SchemaErrors(url, Doc::Str("nats://nats.nats:4222")).empty());
  EXPECT_TRUE(SchemaErrors(url, Doc::Str("tls://10.0.0.7:4443")).empty());
  EXPECT_FALSE(SchemaErrors(url, Doc::Str("nats://router:s3cret@nats.nats:4222")).empty());
  EXPECT_FALSE(SchemaErrors(url, Doc::Str("nats://t0ken@nats.nats:4222")).empty());
  EXPECT_FALSE(SchemaErrors(url, Doc::Str("http://nats.nats:4222")).empty());

  const YAML::Node tls = At(spec, {"nats", "tls"});
  Doc t = Doc::Object();
  t.Set("secretName", Doc::Str("nats-tls"));
  EXPECT_TRUE(SchemaErrors(tls, t).empty());
  t.Set("certKey", Doc::Str("tls.crt"));
  EXPECT_FALSE(SchemaErrors(tls, t).empty());
  t.Set("keyKey", Doc::Str("tls.key"));
  EXPECT_TRUE(SchemaErrors(tls, t).empty());

  const YAML::Node req = At(spec, {"routeSelector", "matchExpressions", "[]"});
  auto requirement = [](const std::string& op, std::vector<std::string> values) {
    Doc d = Doc::Object();
    d.Set("key", Doc::Str("team"));
    d.Set("operator", Doc::Str(op));
    if (!values.empty()) {
      Doc list = Doc::List();
      for (auto& v : values) list.items.push_back(Doc::Str(v));
      d.Set("values", list);
    }
    return d;
  };
  EXPECT_TRUE(SchemaErrors(req, requirement("In", {"a"})).empty());
  EXPECT_TRUE(SchemaErrors(req, requirement("NotIn", {"a", "b"})).empty());
  EXPECT_TRUE(SchemaErrors(req, requirement("Exists", {})).empty());
  EXPECT_TRUE(SchemaErrors(req, requirement("DoesNotExist", {})).empty());
  EXPECT_FALSE(SchemaErrors(req, requirement("In", {})).empty());
  EXPECT_FALSE(SchemaErrors(req, requirement("Exists", {"a"})).empty());
  EXPECT_FALSE(SchemaErrors(req, requirement("Matches", {"a"})).empty());

  const YAML::Node hb = At(spec, {"heartbeatInterval"});
  EXPECT_TRUE(SchemaErrors(hb, Doc::Str("5s")).empty());
  EXPECT_FALSE(SchemaErrors(hb, Doc::Str("0")).empty());
  EXPECT_FALSE(SchemaErrors(hb, Doc::Str("2h")).empty());
  const YAML::Node quantity = At(spec, {"resources", "requests", "*"});
  for (const char* q : {"500m", "1", "128Mi", "1.5", "2e3", "1Gi"}) {
    EXPECT_TRUE(SchemaErrors(quantity, Doc::Str(q)).empty()) << q;
  }
  EXPECT_TRUE(SchemaErrors(quantity, Doc::Int(2)).empty());
  for (const char* q : {"", "lots", "1 Gi", "1GB"}) {
    EXPECT_FALSE(SchemaErrors(quantity, Doc::Str(q)).empty()) << q;
  }
}

// The router's defaults are the `switchboard-router run` flags' defaults (docs/router.md).
TEST(CrdRouter, DefaultsAreTheRoutersFlags) {
  const YAML::Node spec = RouterSpec();
  EXPECT_EQ(At(spec, {"replicas"})["default"].as<int>(), 2);
  EXPECT_EQ(At(spec, {"logLevel"})["default"].as<std::string>(), "info");
  EXPECT_EQ(At(spec, {"heartbeatInterval"})["default"].as<std::string>(), "5s");
  EXPECT_EQ(At(spec, {"shutdownGracePeriod"})["default"].as<std::string>(), "20s");
  EXPECT_EQ(At(spec, {"metricsPort"})["default"].as<int>(), 9090);
  std::vector<std::string> levels;
  for (const auto& l : At(spec, {"logLevel"})["enum"]) levels.push_back(l.as<std::string>());
  EXPECT_EQ(levels, (std::vector<std::string>{"debug", "info", "warn", "error"}));
  const std::string router_doc = ReadFile(SourceFile("docs/router.md"));
  EXPECT_NE(router_doc.find("`--heartbeat` (5s)"), std::string::npos);
  EXPECT_NE(router_doc.find("`--log-level debug|info|warn|error`"), std::string::npos);
  EXPECT_NE(router_doc.find("within `--grace` (20s)"), std::string::npos);
}

// ---------------------------------------------------------------------------------------
// The CRD files themselves: complete enough for `kubectl explain`, bounded enough for the
// API server's CEL cost estimates, and consistent with each other.

struct Crd {
  std::string file, kind, plural, short_name;
};

const std::vector<Crd>& Crds() {
  static const std::vector<Crd> crds = {
      {"crds/switchboard.dev_eventroutes.yaml", "EventRoute", "eventroutes", "eroute"},
      {"crds/switchboard.dev_eventtransforms.yaml", "EventTransform", "eventtransforms", "etransform"},
      {"crds/switchboard.dev_eventrouters.yaml", "EventRouter", "eventrouters", "erouter"},
  };
  return crds;
}

void Lint(const YAML::Node& s, const std::string& at, bool root, std::vector<std::string>& problems) {
  auto problem = [&](const std::string& m) { problems.push_back(at + ": " + m); };
  const bool any = IsAny(s);
  const bool int_or_string = IsIntOrString(s);
  const std::string type = TypeOf(s);
  // The API server owns these three: metadata may not be described at all, and apiVersion
  // and kind are checked before the schema sees them.
  const bool owned = at == "metadata" || at == "apiVersion" || at == "kind";
  if (type.empty() && !any && !int_or_string) problem("no type");
  if (!s["description"] && !(owned && at == "metadata")) problem("no description");
  if (type == "string" && !s["maxLength"] && !s["enum"] && !owned) {
    problem("a string without maxLength");
  }
  if (int_or_string && !s["maxLength"]) problem("an int-or-string without maxLength");
  if (type == "array" && !s["maxItems"]) problem("an array without maxItems");
  if (IsMap(s) && !s["maxProperties"]) problem("a map without maxProperties");
  if (type == "integer" && !s["format"]) problem("an integer without format");
  if (any && !s["description"]) problem("no description");
  if (s["pattern"]) {
    const std::string p = s["pattern"].as<std::string>();
    RE2 re(p);
    if (!re.ok()) problem("pattern does not compile: " + re.error());
    // Unanchored, a pattern only has to match somewhere in the text.
    if (p.front() != '^' || p.back() != '$') problem("pattern not anchored: " + p);
  }
  if (s["default"]) {
    auto errors = SchemaErrors(s, FromYaml(s, s["default"]));
    if (!errors.empty()) problem("default does not meet the schema: " + errors[0]);
  }
  if (s["x-kubernetes-validations"]) {
    for (const auto& v : s["x-kubernetes-validations"]) {
      if (!v["message"]) problem("a rule without a message");
      cel::Environment env;
      env.declare("self");
      auto compiled = cel::Program::compile(v["rule"].as<std::string>(), env);
      if (auto* d = std::get_if<cel::Diagnostic>(&compiled)) {
        problem("rule does not compile: " + d->message);
      }
    }
  }
  if (s["required"]) {
    for (const auto& r : s["required"]) {
      const std::string name = r.as<std::string>();
      if (!s["properties"][name]) problem("requires '" + name + "', not a property");
    }
  }
  if (s["x-kubernetes-list-type"] && s["x-kubernetes-list-type"].as<std::string>() == "map") {
    for (const auto& k : s["x-kubernetes-list-map-keys"]) {
      const YAML::Node items = s["items"];
      const std::string key = k.as<std::string>();
      if (!IsRequired(items, key) && !items["properties"][key]["default"]) {
        problem("list map key '" + key + "' neither required nor defaulted");
      }
    }
  }
  for (const auto& kv : s["properties"] ? s["properties"] : YAML::Node()) {
    const std::string name = kv.first.as<std::string>();
    Lint(kv.second, root ? name : at + "." + name, false, problems);
  }
  if (s["items"]) Lint(s["items"], at + "[]", false, problems);
  if (IsMap(s)) Lint(s["additionalProperties"], at + ".*", false, problems);
}

TEST(CrdFiles, AreWellFormed) {
  std::set<std::string> short_names;
  for (const auto& c : Crds()) {
    SCOPED_TRACE(c.file);
    const YAML::Node crd = YAML::LoadFile(SourceFile(c.file));
    EXPECT_EQ(crd["apiVersion"].as<std::string>(), "apiextensions.k8s.io/v1");
    EXPECT_EQ(crd["kind"].as<std::string>(), "CustomResourceDefinition");
    EXPECT_EQ(crd["metadata"]["name"].as<std::string>(), c.plural + ".switchboard.dev");
    EXPECT_EQ(c.file, "crds/switchboard.dev_" + c.plural + ".yaml");
    const YAML::Node spec = crd["spec"];
    EXPECT_EQ(spec["group"].as<std::string>(), "switchboard.dev");
    EXPECT_EQ(spec["scope"].as<std::string>(), "Namespaced");
    const YAML::Node names = spec["names"];
    EXPECT_EQ(names["kind"].as<std::string>(), c.kind);
    EXPECT_EQ(names["plural"].as<std::string>(), c.plural);
    EXPECT_EQ(names["listKind"].as<std::string>(), c.kind + "List");
    ASSERT_TRUE(names["shortNames"] && names["shortNames"].size() >= 1);
    EXPECT_EQ(names["shortNames"][0].as<std::string>(), c.short_name);
    for (const auto& n : names["shortNames"]) {
      EXPECT_TRUE(short_names.insert(n.as<std::string>()).second) << "used twice: " << n.as<std::string>();
    }
    bool category = false;
    for (const auto& n : names["categories"]) {
      category = category || n.as<std::string>() == "switchboard";
    }
    EXPECT_TRUE(category);
    ASSERT_EQ(spec["versions"].size(), 1u);
    const YAML::Node v = spec["versions"][0];
    EXPECT_EQ(v["name"].as<std::string>(), "v1alpha1");
    EXPECT_TRUE(v["served"].as<bool>());
    EXPECT_TRUE(v["storage"].as<bool>());
    EXPECT_TRUE(v["subresources"]["status"]);
    // Printer columns: Ready first, Age last, and every path names a schema field.
    const YAML::Node cols = v["additionalPrinterColumns"];
    ASSERT_TRUE(cols && cols.size() >= 3);
    EXPECT_EQ(cols[0]["name"].as<std::string>(), "Ready");
    EXPECT_EQ(cols[0]["jsonPath"].as<std::string>(), R"(.status.conditions[?(@.type=="Ready")].status)");
    EXPECT_EQ(cols[cols.size() - 1]["name"].as<std::string>(), "Age");
    EXPECT_EQ(cols[cols.size() - 1]["type"].as<std::string>(), "date");
    const YAML::Node schema = v["schema"]["openAPIV3Schema"];
    for (const auto& col : cols) {
      std::string path = col["jsonPath"].as<std::string>();
      if (path.rfind(".metadata.", 0) == 0) continue;
      path = path.substr(0, path.find('['));
      Path fields;
      std::stringstream parts(path.substr(1));
      std::string part;
      while (std::getline(parts, part, '.')) fields.push_back(part);
      EXPECT_TRUE(At(schema, fields))
          << col["name"].as<std::string>() << ": " << path << " is not in the schema";
    }
    // Status: the Kubernetes API conventions.
    const YAML::Node status = schema["properties"]["status"]["properties"];
    EXPECT_EQ(TypeOf(status["observedGeneration"]), "integer");
    const YAML::Node cond = status["conditions"];
    EXPECT_EQ(cond["x-kubernetes-list-type"].as<std::string>(), "map");
    EXPECT_EQ(PropertyNames(cond["items"]),
              (std::vector<std::string>{"type", "status", "observedGeneration", "lastTransitionTime",
                                        "reason", "message"}));
    std::vector<std::string> statuses;
    for (const auto& e : cond["items"]["properties"]["status"]["enum"]) {
      statuses.push_back(e.as<std::string>());
    }
    EXPECT_EQ(statuses, (std::vector<std::string>{"True", "False", "Unknown"}));

    std::vector<std::string> problems;
    Lint(schema, "", true, problems);
    for (const auto& p : problems) ADD_FAILURE() << p;
  }
  // The three status condition schemas are one.
  std::set<std::string> conditions;
  for (const auto& c : Crds()) {
    conditions.insert(YAML::Dump(At(CrdSchema(c.file), {"status", "conditions", "[]"})));
  }
  EXPECT_EQ(conditions.size(), 1u);
}

TEST(CrdFiles, RouterHasTheScaleSubresource) {
  const YAML::Node v = CrdVersion("crds/switchboard.dev_eventrouters.yaml");
  const YAML::Node scale = v["subresources"]["scale"];
  ASSERT_TRUE(scale);
  EXPECT_EQ(scale["specReplicasPath"].as<std::string>(), ".spec.replicas");
  EXPECT_EQ(scale["statusReplicasPath"].as<std::string>(), ".status.replicas");
  EXPECT_EQ(scale["labelSelectorPath"].as<std::string>(), ".status.selector");
  const YAML::Node status = v["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"];
  EXPECT_EQ(TypeOf(status["replicas"]), "integer");
  EXPECT_EQ(TypeOf(status["selector"]), "string");
}

// ---------------------------------------------------------------------------------------
// docs/resources.md: the field tables are rendered from the CRDs.

std::string TypeText(const YAML::Node& s) {
  if (IsAny(s)) return "any JSON";
  if (IsIntOrString(s)) return "quantity";
  const std::string type = TypeOf(s);
  if (type == "array") return "[]" + TypeText(s["items"]);
  if (IsMap(s)) return "map[string]" + TypeText(s["additionalProperties"]);
  if (type == "string" && s["enum"]) {
    std::string out;
    for (const auto& e : s["enum"]) out += (out.empty() ? "" : " \\| ") + e.as<std::string>();
    return "enum: " + out;
  }
  const bool duration =
      s["pattern"] && s["pattern"].as<std::string>().find("(ns|us|ms|s|m|h)") != std::string::npos;
  if (type == "string" && duration) return "duration";
  if (type == "integer" && s["minimum"] && s["maximum"]) {
    return "integer, " + s["minimum"].as<std::string>() + " to " + s["maximum"].as<std::string>();
  }
  return type;
}

// Descriptions are plain text for `kubectl explain`; in a Markdown table, outside code
// spans, `<router>` would read as an HTML tag and `*` as emphasis.
std::string Escape(const std::string& text) {
  std::string out;
  bool code = false;
  for (char c : text) {
    if (c == '`') code = !code;
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else if (!code && c == '<') out += "&lt;";
    else if (!code && c == '*') out += "\\*";
    else out += c;
  }
  return out;
}

void Rows(const YAML::Node& s, const std::string& prefix, std::string& out) {
  for (const auto& kv : s["properties"] ? s["properties"] : YAML::Node()) {
    const std::string name = kv.first.as<std::string>();
    const YAML::Node f = kv.second;
    const std::string path = prefix + name;
    std::string def = f["default"] ? "`" + f["default"].as<std::string>() + "`" : "";
    // Conditions are metav1.Condition in all three kinds; the page describes them once.
    const bool conditions = name == "conditions" && prefix == "status.";
    std::string type = conditions ? "[]Condition" : TypeText(f);
    if (IsRequired(s, name)) type += ", required";
    out += "| `" + path + "` | " + type + " | " + def + " | " +
           Escape(f["description"] ? f["description"].as<std::string>() : "") + " |\n";
    if (f["properties"]) Rows(f, path + ".", out);
    if (f["items"] && f["items"]["properties"] && !conditions) Rows(f["items"], path + "[].", out);
  }
}

std::string Table(const Crd& c) {
  const YAML::Node schema = CrdSchema(c.file);
  std::string out = "| field | type | default | description |\n|---|---|---|---|\n";
  for (const char* part : {"spec", "status"}) {
    const YAML::Node s = schema["properties"][part];
    out += "| `" + std::string(part) + "` | object |  | " +
           Escape(s["description"].as<std::string>()) + " |\n";
    Rows(s, std::string(part) + ".", out);
  }
  return out;
}

TEST(CrdDocs, ResourcesDocIsCurrent) {
  const std::string path = SourceFile("docs/resources.md");
  std::string doc = ReadFile(path);
  ASSERT_FALSE(doc.empty()) << path;
  std::string updated = doc;
  for (const auto& c : Crds()) {
    const std::string begin = "<!-- fields of " + c.kind + ": generated from " + c.file + " -->\n";
    const std::string end = "<!-- end of the fields of " + c.kind + " -->";
    size_t b = updated.find(begin);
    size_t e = updated.find(end);
    ASSERT_TRUE(b != std::string::npos && e != std::string::npos && b < e)
        << "docs/resources.md needs the markers\n" << begin << end;
    b += begin.size();
    updated.replace(b, e - b, Table(c));
  }
  if (std::getenv("SWITCHBOARD_UPDATE_DOCS") != nullptr && updated != doc) {
    std::ofstream(path, std::ios::binary) << updated;
    doc = updated;
  }
  if (doc != updated) {
    // The first line that differs says more than two whole pages.
    std::istringstream a(doc), b(updated);
    std::string la, lb;
    while (std::getline(a, la) && std::getline(b, lb) && la == lb) {
    }
    ADD_FAILURE() << "docs/resources.md is out of date: run scripts/update-resources-doc.sh\n  page: "
                  << la << "\n  CRDs: " << lb;
  }
}

// The examples on the page are valid objects: by the schema, and for routes and transforms,
// by the loader and the compiler; the transform's own tests pass.
TEST(CrdDocs, ExamplesAreValid) {
  const std::string doc = ReadFile(SourceFile("docs/resources.md"));
  std::map<std::string, YAML::Node> schemas;
  for (const auto& c : Crds()) schemas.emplace(c.kind, CrdSchema(c.file));
  int examples = 0;
  size_t at = 0;
  while ((at = doc.find("```yaml\n", at)) != std::string::npos) {
    at += 8;
    const std::string text = doc.substr(at, doc.find("```", at) - at);
    const YAML::Node obj = YAML::Load(text);
    if (!obj["kind"] || !schemas.count(obj["kind"].as<std::string>())) continue;
    ++examples;
    const std::string kind = obj["kind"].as<std::string>();
    SCOPED_TRACE(kind + " example:\n" + text);
    const YAML::Node spec_schema = At(schemas.at(kind), {"spec"});
    auto errors = SchemaErrors(spec_schema, FromYamlDocument(obj["spec"]));
    for (const auto& e : errors) ADD_FAILURE() << e;
    if (kind == "EventRouter") continue;
    RouteSet set;
    std::vector<SpecError> load_errors;
    EXPECT_TRUE(load_yaml(text, "resources.md", set, load_errors))
        << (load_errors.empty() ? "" : load_errors[0].render());
    auto compile_errors = CompileErrors(set);
    for (const auto& e : compile_errors) ADD_FAILURE() << e;
    if (kind == "EventTransform" && compile_errors.empty()) {
      auto compiled = RouteTable::compile(set, 1);
      Processor processor;
      const auto& table = *std::get<std::shared_ptr<const RouteTable>>(compiled);
      for (const auto& r : run_transform_tests(table, processor)) {
        EXPECT_TRUE(r.passed) << r.test << ": " << r.difference;
      }
    }
  }
  EXPECT_EQ(examples, 3);
}

}  // namespace
}  // namespace switchboard::route
