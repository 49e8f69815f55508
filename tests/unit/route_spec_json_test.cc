#include "core/route/spec_json.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/json/document.h"
#include "core/route/spec_yaml.h"
#include "core/route/table.h"

namespace switchboard::route {
namespace {

std::string Describe(const std::vector<SpecError>& errors) {
  std::string out;
  for (const auto& e : errors) {
    out += e.at.file + ":" + std::to_string(e.at.line) + ":" + std::to_string(e.at.column) + " [" + e.object +
           "] " + e.field + ": " + e.message + (e.object_incomplete ? "" : " (object read whole)") + "\n";
  }
  return out;
}

std::string Where(const Location& at) {
  return at.file + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) + (at.block ? "b" : "") +
         std::to_string(at.block_indent);
}

void DumpSteps(std::string& out, const std::vector<StepSpec>& steps, bool positions) {
  for (const auto& s : steps) {
    if (positions) out += " step@" + Where(s.at);
    for (const auto& [k, v] : s.set) out += positions ? " " + k + "@" + Where(v.at) : "";
    if (positions && s.kind == StepSpec::Kind::Payload) out += " payload@" + Where(s.payload.at);
  }
}

// Everything a loader fills in: the canonical JSON (every field of every route and
// transform) and what it leaves out (transform tests) and, with `positions`, every location.
std::string Dump(const RouteSet& set, bool positions) {
  std::string out = canonical_json(set) + "\n";
  for (const auto& r : set.routes) {
    out += "route " + r.name;
    if (positions) {
      out += " @" + Where(r.at) + " subject@" + Where(r.source.subject.at);
      if (r.filter) out += " filter@" + Where(r.filter->at);
      for (const auto& d : r.destinations) {
        out += " dest@" + Where(d.subject.at);
        for (const auto& [k, v] : d.headers) out += " " + k + "@" + Where(v.at);
      }
    }
    DumpSteps(out, r.transform, positions);
    out += "\n";
  }
  for (const auto& t : set.transforms) {
    out += "transform " + t.name + (positions ? " @" + Where(t.at) : "");
    DumpSteps(out, t.steps, positions);
    for (const auto& c : t.tests) {
      out += " test " + c.name + (positions ? "@" + Where(c.at) : "") + " " + c.input.subject + " " +
             c.input.payload + " -> " + c.expect_json.value_or("-") + " / " + c.expect_error.value_or("-");
      for (const auto& [k, v] : c.input.headers) out += " " + k + "=" + v;
    }
    out += "\n";
  }
  return out;
}

// A YAML document as JSON text, one member or element a line (so that positions in it
// are worth comparing), scalars typed as the YAML loader types test data.
void ToJson(const YAML::Node& n, std::string& out, int indent) {
  std::string pad(static_cast<size_t>(indent + 2), ' ');
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      out += "null";
      return;
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "?") {
        json::Document d;
        if (s == "true" || s == "false" || s == "null" || (d.parse(s) && d.node(0).type == json::Type::Number)) {
          out += s;
          return;
        }
      }
      json::append_quoted(out, s);
      return;
    }
    case YAML::NodeType::Sequence: {
      out += "[\n";
      for (size_t i = 0; i < n.size(); ++i) {
        out += pad;
        ToJson(n[i], out, indent + 2);
        out += i + 1 < n.size() ? ",\n" : "\n";
      }
      out += std::string(static_cast<size_t>(indent), ' ') + "]";
      return;
    }
    case YAML::NodeType::Map: {
      out += "{\n";
      size_t i = 0;
      for (const auto& kv : n) {
        out += pad;
        json::append_quoted(out, kv.first.Scalar());
        out += ": ";
        ToJson(kv.second, out, indent + 2);
        out += ++i < n.size() ? ",\n" : "\n";
      }
      out += std::string(static_cast<size_t>(indent), ' ') + "}";
      return;
    }
  }
}

std::string ToJson(const YAML::Node& n) {
  std::string out;
  ToJson(n, out, 0);
  return out + "\n";
}

struct Both {
  bool yaml_ok = false, json_ok = false;
  RouteSet yaml, json;
  std::vector<SpecError> yaml_errors, json_errors;
};

// The same JSON text through both loaders.
Both LoadBoth(std::string_view text) {
  Both b;
  b.yaml_ok = load_yaml(text, "routes.json", b.yaml, b.yaml_errors);
  b.json_ok = load_json(text, "routes.json", b.json, b.json_errors);
  return b;
}

void ExpectSame(std::string_view text) {
  Both b = LoadBoth(text);
  EXPECT_EQ(b.json_ok, b.yaml_ok) << text;
  EXPECT_EQ(Describe(b.json_errors), Describe(b.yaml_errors)) << text;
  EXPECT_EQ(Dump(b.json, true), Dump(b.yaml, true)) << text;
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Route files of the repository: the examples, the data-plane bench's tables and the
// route fuzzer's seeds (good and bad).
std::vector<std::filesystem::path> Fixtures() {
  std::vector<std::filesystem::path> out;
  const std::filesystem::path root(SWITCHBOARD_SOURCE_DIR);
  for (const char* dir : {"examples", "examples/k8s", "bench/dataplane/routes", "tests/fuzz/corpus/route"}) {
    for (const auto& e : std::filesystem::directory_iterator(root / dir)) {
      if (e.path().extension() == ".yaml") out.push_back(e.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(LoadJson, FixturesLoadAsTheYamlLoaderLoadsThem) {
  int files = 0, loaded = 0;
  for (const auto& path : Fixtures()) {
    SCOPED_TRACE(path.string());
    std::vector<YAML::Node> docs;
    try {
      docs = YAML::LoadAll(ReadFile(path));
    } catch (const YAML::Exception&) {
      continue;  // not YAML at all: nothing to turn into JSON
    }
    ++files;
    RouteSet from_yaml, from_json;
    std::vector<SpecError> yaml_errors, json_errors;
    bool yaml_ok = load_yaml_file(path.string(), from_yaml, yaml_errors);
    bool json_ok = true;
    for (const auto& doc : docs) {
      std::string text = ToJson(doc);
      ExpectSame(text);
      json_ok &= load_json(text, "routes.json", from_json, json_errors);
    }
    if (yaml_ok) {
      ++loaded;
      EXPECT_TRUE(json_ok) << Describe(json_errors);
      // The same set, wherever each value stood.
      EXPECT_EQ(Dump(from_json, false), Dump(from_yaml, false));
    }
  }
  EXPECT_GE(files, 10);
  EXPECT_GE(loaded, 8);
}

TEST(LoadJson, CanonicalTableKeepsItsHash) {
  for (const auto& path : Fixtures()) {
    SCOPED_TRACE(path.string());
    RouteSet set;
    std::vector<SpecError> errors;
    if (!load_yaml_file(path.string(), set, errors)) continue;
    const std::string canonical = canonical_json(set);
    RouteSet again;
    ASSERT_TRUE(load_json(canonical, "routes.json", again, errors)) << Describe(errors);
    EXPECT_EQ(canonical_json(again), canonical);
    ExpectSame(canonical);
  }
}

// Bad input, each in JSON, which the YAML loader reads too: the two loaders give the same
// errors at the same positions.
TEST(LoadJson, BadInputGivesTheYamlLoadersErrors) {
  const std::vector<std::string> bad = {
      R"({"routes": [{"name": "a", "sorce": {"subject": "x"}, "destinations": [{"subject": "y"}]}]})",
      R"({"routes": [{"name": "a", "source": {"subject": "x", "jetstream": {"stream": "S", "ackWait": "soon",
          "maxDeliver": 0, "backoff": "1s", "batch": 4097, "maxAckPending": "many", "durabel": "d"}},
          "destinations": [{"subject": "y", "headers": ["x"], "jetstream": "maybe"}], "maxPayloadBytes": 1.5}]})",
      R"({"routes": [{"name": "c", "source": {"subject": "a", "jetstream": {"stream": "S", "ackWait": "-1s",
          "backoff": ["1s", "later"]}},
        "transform": [{"set": []}, {"remove": {"a": "b"}}, {"rename": ["a"]}, {"payload": ["a"]},
          {"use": {"a": "b"}}, 7, {"set": {"a": "1"}, "remove": "b"}, {"sett": {"a": "1"}}],
        "destinations": [{"subject": "c"}, 5, {"subjekt": "d"}], "maxPayloadBytes": 67108865}]})",
      R"({"routes": [{"source": {"subject": ""}, "destinations": []}, {"name": "a"}, {"name": "a",
          "source": {"subject": "x"}, "destinations": [{"subject": "y"}], "filter": {"x": 1},
          "deadLetter": {"subj": "z"}}]})",
      R"({"routes": {"name": "a"}, "transforms": "x"})",
      R"({"routs": []})",
      R"(["a", "b"])",
      R"({"transforms": [{"name": "t"}, {"name": "t", "steps": [{"use": "u"}], "tests": [{"name": "x",
          "input": {"data": 1, "raw": "r"}, "expect": {"data": 1}}, {"input": {}, "expect": {}},
          {"name": "y", "expect": {"error": "e"}}, {"name": "z", "input": {"headers": {"a": [1]}},
          "expect": {"data": 1, "error": "e"}}, "w"], "tset": 1}]})",
      R"({"kind": "EventRoute", "apiVersion": "v1"})",
      R"({"kind": "Service", "apiVersion": "switchboard.dev/v1alpha1"})",
      R"({"kind": "EventRoute", "apiVersion": "switchboard.dev/v1alpha1", "metadata": {}})",
      R"({"kind": "EventRoute", "apiVersion": "switchboard.dev/v1alpha1", "metadata": {"name": "r"}})",
      R"({"kind": "EventRoute", "apiVersion": "switchboard.dev/v1alpha1", "metadata": {"name": "r"},
          "spec": {"name": "r", "source": {"subject": "a"}, "destinations": [{"subject": "b"}]}})",
      R"({"kind": "EventTransform", "apiVersion": "switchboard.dev/v1alpha1", "metadata": {"name": "t"},
          "spec": {"steps": 3}})",
      R"({"apiVersion": "switchboard.dev/v1alpha1"})",
  };
  for (const auto& text : bad) {
    Both b = LoadBoth(text);
    EXPECT_FALSE(b.json_ok) << text;
    EXPECT_FALSE(b.json_errors.empty()) << text;
    ExpectSame(text);
  }
}

TEST(LoadJson, UnknownFieldNamesTheClosestAtItsPosition) {
  RouteSet set;
  std::vector<SpecError> errors;
  EXPECT_FALSE(load_json("{\"routes\": [\n  {\"name\": \"a\", \"sorce\": {\"subject\": \"x\"},\n"
                         "   \"destinations\": [{\"subject\": \"y\"}]}]}\n",
                         "routes.json", set, errors));
  EXPECT_EQ(Describe(errors),
            "routes.json:2:18 [route 'a'] sorce: unknown field 'sorce' (did you mean 'source'?) (object read whole)\n"
            "routes.json:2:3 [route 'a'] source: is required\n");
}

TEST(LoadJson, InvalidJsonHasAPosition) {
  RouteSet set;
  std::vector<SpecError> errors;
  EXPECT_FALSE(load_json("{\"routes\": [\n  {\"name\": \"a\",,\n", "routes.json", set, errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].at.line, 2);
  EXPECT_EQ(errors[0].at.column, 16);
  EXPECT_EQ(errors[0].message.rfind("invalid JSON: ", 0), 0u) << errors[0].message;

  errors.clear();
  EXPECT_FALSE(load_json("{\"routes\": [\"\xff\"]}", "routes.json", set, errors));
  EXPECT_EQ(Describe(errors), "routes.json:1:1 [] : the file is not valid UTF-8\n");
}

// Numbers and booleans as JSON values, or as strings as a quoted YAML scalar would be.
TEST(LoadJson, NumbersAndBooleansAsValuesOrStrings) {
  for (const char* text : {
           R"({"routes": [{"name": "a", "source": {"subject": "x", "jetstream": {"stream": "S", "maxDeliver": 3}},
               "destinations": [{"subject": "y", "jetstream": true}], "maxPayloadBytes": 100}]})",
           R"({"routes": [{"name": "a", "source": {"subject": "x", "jetstream": {"stream": "S", "maxDeliver": "3"}},
               "destinations": [{"subject": "y", "jetstream": "true"}], "maxPayloadBytes": "+100"}]})",
       }) {
    RouteSet set;
    std::vector<SpecError> errors;
    ASSERT_TRUE(load_json(text, "routes.json", set, errors)) << Describe(errors);
    ASSERT_EQ(set.routes.size(), 1u);
    EXPECT_EQ(set.routes[0].source.jetstream->max_deliver, 3);
    EXPECT_TRUE(set.routes[0].destinations[0].jetstream);
    EXPECT_EQ(set.routes[0].max_payload_bytes, 100);
    ExpectSame(text);
  }
}

// A key given twice: the first one counts, in both loaders.
TEST(LoadJson, ARepeatedKeyReadsTheFirst) {
  const char* text = R"({"routes": [{"name": "a", "name": "b", "source": {"subject": "x"}, "filter": "1 > 0",
      "filter": "2 > 0", "destinations": [{"subject": "y"}]}]})";
  ExpectSame(text);
  RouteSet set;
  std::vector<SpecError> errors;
  ASSERT_TRUE(load_json(text, "routes.json", set, errors));
  EXPECT_EQ(set.routes[0].name, "a");
  EXPECT_EQ(set.routes[0].filter->text, "1 > 0");
}

TEST(LoadJson, EmptyAndNullDocuments) {
  RouteSet set;
  std::vector<SpecError> errors;
  EXPECT_TRUE(load_json("null", "routes.json", set, errors));
  EXPECT_TRUE(load_json(R"({"routes": [], "transforms": []})", "routes.json", set, errors));
  EXPECT_FALSE(load_json("", "routes.json", set, errors));
  EXPECT_TRUE(set.routes.empty());
}

}  // namespace
}  // namespace switchboard::route
