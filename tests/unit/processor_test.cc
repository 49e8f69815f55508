#include "core/route/processor.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/route/spec_yaml.h"
#include "core/route/table.h"
#include "core/route/transform_tests.h"

namespace switchboard::route {
namespace {

std::shared_ptr<const RouteTable> Table(std::string_view yaml) {
  RouteSet set;
  std::vector<SpecError> errors;
  if (!load_yaml(yaml, "routes.yaml", set, errors)) {
    ADD_FAILURE() << "load failed: " << (errors.empty() ? "" : errors[0].render());
    return nullptr;
  }
  auto c = RouteTable::compile(std::move(set), 1);
  if (auto* e = std::get_if<std::vector<SpecError>>(&c)) {
    ADD_FAILURE() << "compile failed: " << (e->empty() ? "" : (*e)[0].render());
    return nullptr;
  }
  return std::get<std::shared_ptr<const RouteTable>>(c);
}

// A one-route table: source `in`, one destination `out`, the given lines spliced in (each
// indented as a route field).
std::shared_ptr<const RouteTable> OneRoute(std::string_view fields) {
  std::string yaml = "routes:\n  - name: r\n    source: {subject: in}\n";
  yaml += fields;
  if (yaml.find("destinations:") == std::string::npos) yaml += "    destinations: [{subject: out}]\n";
  return Table(yaml);
}

Result RunRoute(const RouteTable& table, std::string_view payload, const Headers* headers = nullptr,
           std::string_view subject = "in", uint32_t route = 0) {
  Processor p;
  return p.process_route(table, route, Message{subject, headers, payload});
}

// The single output's payload, or a description of why there is none.
std::string Output(const Result& r) {
  if (r.outcome == Result::Outcome::Filtered) return "<filtered>";
  if (r.outcome == Result::Outcome::Failed) {
    return "<failed " + std::string(reason_label(r.reason)) + " at " + r.step + ": " + r.error + ">";
  }
  if (r.outputs.size() != 1) return "<" + std::to_string(r.outputs.size()) + " outputs>";
  return r.outputs[0].payload;
}

std::string Transformed(std::string_view fields, std::string_view payload) {
  auto t = OneRoute(fields);
  if (!t) return "<no table>";
  return Output(RunRoute(*t, payload));
}

TEST(Processor, FilterTrueAndFalse) {
  auto t = OneRoute("    filter: 'event.amount >= 100.0'\n");
  ASSERT_TRUE(t);
  Result yes = RunRoute(*t, R"({"amount": 250.50})");
  EXPECT_EQ(yes.outcome, Result::Outcome::Published);
  EXPECT_EQ(yes.route, 0u);
  ASSERT_EQ(yes.outputs.size(), 1u);
  EXPECT_EQ(yes.outputs[0].subject, "out");
  EXPECT_EQ(yes.outputs[0].payload, R"({"amount": 250.50})");
  EXPECT_FALSE(yes.outputs[0].jetstream);
  EXPECT_TRUE(yes.outputs[0].headers.empty());

  Result no = RunRoute(*t, R"({"amount": 20})");
  EXPECT_EQ(no.outcome, Result::Outcome::Filtered);
  EXPECT_TRUE(no.outputs.empty());
  EXPECT_EQ(no.step, "");
  EXPECT_EQ(no.error, "");
}

TEST(Processor, FilterThatIsNotBool) {
  auto t = OneRoute("    filter: 'event.amount'\n");
  ASSERT_TRUE(t);
  Result r = RunRoute(*t, R"({"amount": 1.5})");
  EXPECT_EQ(r.outcome, Result::Outcome::Failed);
  EXPECT_EQ(r.reason, FailureReason::Filter);
  EXPECT_EQ(r.step, "filter");
  EXPECT_EQ(r.error, "filter returned double, not bool");
  EXPECT_TRUE(r.outputs.empty());
  EXPECT_EQ(Output(RunRoute(*t, R"({"amount": null})")),
            "<failed filter at filter: filter returned null_type, not bool>");
}

TEST(Processor, FilterThatFails) {
  auto t = OneRoute("    filter: 'event.missing > 1'\n");
  ASSERT_TRUE(t);
  EXPECT_EQ(Output(RunRoute(*t, R"({"present": 1})")), "<failed filter at filter: no such key: 'missing'>");
  EXPECT_EQ(Output(RunRoute(*t, R"([1, 2])")).rfind("<failed filter at filter: ", 0), 0u);
}

TEST(Processor, SetCreatesNestedObjects) {
  EXPECT_EQ(Transformed("    transform: [{set: {a.b.c: '1', top: '\"t\"'}}]\n", R"({"x": 1})"),
            R"({"x":1,"a":{"b":{"c":1}},"top":"t"})");
}

TEST(Processor, SetReplacesInsideExistingObjects) {
  EXPECT_EQ(Transformed("    transform: [{set: {a.b: '5'}}]\n", R"({"a": {"b": 1, "k": [1, 2]}, "z": 0})"),
            R"({"a":{"b":5,"k":[1, 2]},"z":0})");
}

TEST(Processor, SetThroughANonObjectFails) {
  EXPECT_EQ(Transformed("    transform: [{set: {a.b: '1'}}]\n", R"({"a": 3})"),
            // JSON numbers are CEL doubles.
            "<failed transform at transform[0].set.a.b: cannot set 'b': the value there is double, "
            "not an object>");
  EXPECT_EQ(Transformed("    transform: [{set: {a: '1'}}]\n", R"([1])"),
            "<failed transform at transform[0].set.a: cannot set 'a': the value there is list, not "
            "an object>");
}

TEST(Processor, SetExpressionError) {
  EXPECT_EQ(Transformed("    transform: [{set: {x: '1', y: event.nope}}]\n", R"({})"),
            "<failed transform at transform[0].set.y: no such key: 'nope'>");
}

TEST(Processor, Remove) {
  EXPECT_EQ(Transformed("    transform: [{remove: [internal, meta.trace, not.there, gone]}]\n",
                        R"({"id": 1, "internal": {"a": 1}, "meta": {"trace": "t", "keep": true}})"),
            R"({"id":1,"meta":{"keep":true}})");
  EXPECT_EQ(Transformed("    transform: [{remove: x}]\n", R"("text")"),
            "<failed transform at transform[0].remove: the payload is string, not an object>");
}

TEST(Processor, RenameNested) {
  EXPECT_EQ(Transformed("    transform: [{rename: {a.b: c.d, cust: customer, absent: x}}]\n",
                        R"({"a": {"b": 1, "k": 2}, "cust": {"tier" : "gold"}})"),
            R"({"a":{"k":2},"c":{"d":1},"customer":{"tier" : "gold"}})");
  EXPECT_EQ(Transformed("    transform: [{rename: {a: b.c}}]\n", R"({"a": 1, "b": 2})"),
            "<failed transform at transform[0].rename.a: cannot set 'c': the value there is double, "
            "not an object>");
  EXPECT_EQ(Transformed("    transform: [{rename: {a: b}}]\n", R"(null)"),
            "<failed transform at transform[0].rename: the payload is null_type, not an object>");
}

TEST(Processor, PayloadReplacement) {
  EXPECT_EQ(Transformed("    transform: [{payload: '{\"id\": event.id, \"ok\": event.s == \"x\", \"subj\": subject}'}]\n",
                        R"({"id": 12345678901234567890, "s": "x", "other": 1})"),
            R"({"id":12345678901234567890,"ok":true,"subj":"in"})");
  EXPECT_EQ(Transformed("    transform: [{payload: 'event.list'}]\n", R"({"list": [1, 2.50]})"),
            "[1, 2.50]");
  EXPECT_EQ(Transformed("    transform: [{payload: '[1, \"a\", null, true, 2.5]'}]\n", R"({})"),
            R"([1,"a",null,true,2.5])");
  EXPECT_EQ(Transformed("    transform: [{payload: 'event.nope'}]\n", R"({})"),
            "<failed transform at transform[0].payload: no such key: 'nope'>");
}

TEST(Processor, EncodesEveryKind) {
  EXPECT_EQ(Transformed("    transform:\n      - payload: >-\n          {\"b\": b\"hi\", \"t\": "
                        "timestamp(\"2026-01-01T00:00:00Z\"), \"d\": duration(\"90s\"), \"u\": 7u,"
                        " \"n\": -3, 1: \"int key\", true: \"bool key\"}\n",
                        R"({})"),
            R"({"b":"aGk=","t":"2026-01-01T00:00:00Z","d":"90s","u":7,"n":-3,"1":"int key","true":"bool key"})");
}

TEST(Processor, NamedTransform) {
  auto t = Table(R"yaml(routes:
  - name: r
    source: {subject: in}
    transform:
      - use: norm
      - set: {after: 'event.region'}
    destinations: [{subject: out}]
transforms:
  - name: norm
    steps:
      - set: {region: 'event.region.upperAscii()'}
      - rename: {cust: customer}
)yaml");
  ASSERT_TRUE(t);
  EXPECT_EQ(Output(RunRoute(*t, R"({"region": "eu", "cust": 1})")),
            R"({"region":"EU","customer":1,"after":"EU"})");
  EXPECT_EQ(Output(RunRoute(*t, R"({"cust": 1})")),
            "<failed transform at transform[0] (norm.steps[0]).set.region: no such key: 'region'>");
}

TEST(Processor, StepsSeePreviousSteps) {
  EXPECT_EQ(Transformed("    transform:\n"
                        "      - set: {x: '1'}\n"
                        "      - set: {y: 'event.x + 1'}\n"
                        "      - rename: {y: z}\n"
                        "      - set: {w: 'event.z * 10'}\n"
                        "      - remove: x\n",
                        R"({})"),
            R"({"z":2,"w":20})");
}

TEST(Processor, ExpressionsOfOneSetStepSeeTheEventBeforeIt) {
  EXPECT_EQ(Transformed("    transform: [{set: {x: '5', y: 'event.x'}}]\n", R"({"x": 1})"),
            R"({"x":5,"y":1})");
}

TEST(Processor, UntouchedValuesKeepTheirBytes) {
  EXPECT_EQ(Transformed("    transform: [{set: {z: '1'}}]\n",
                        R"({"id": 12345678901234567890, "amount": 250.50, "x": {"a" : 1}, "y": {"s": "\u00e9"}})"),
            R"({"id":12345678901234567890,"amount":250.50,"x":{"a" : 1},"y":{"s": "\u00e9"},"z":1})");
  // A string member of an edited object is a decoded value: its escapes are written anew,
  // the value is the same.
  EXPECT_EQ(Transformed("    transform: [{set: {z: '1'}}]\n", R"({"s": "\u00e9\/"})"),
            "{\"s\":\"\xc3\xa9/\",\"z\":1}");
  // A value copied by an expression keeps its bytes too.
  EXPECT_EQ(Transformed("    transform: [{set: {copy: 'event.x', amt: 'event.amount'}}]\n",
                        R"({"amount": 1.10, "x": {"a" : 1e2}})"),
            R"({"amount":1.10,"x":{"a" : 1e2},"copy":{"a" : 1e2},"amt":1.10})");
}

// Members of a compact event that an edit leaves alone are copied from its text, several
// at a time; the output is what writing them one by one gives, which the same event with
// spacing (written member by member) shows.
TEST(Processor, UntouchedMembersOfACompactEventAreWrittenAsTheyCame) {
  // A space after each ':' and ',' of the outer object (the cases hold no braces, brackets,
  // colons or commas inside strings).
  auto spaced = [](std::string_view text) {
    std::string out;
    int depth = 0;
    for (char c : text) {
      out += c;
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') --depth;
      if ((c == ':' || c == ',') && depth == 1) out += ' ';
    }
    return out;
  };
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"    transform: [{set: {z: '1'}}, {remove: [b]}]\n",
       R"({"a":1.50,"b":"x","c":[1,2],"d":{"e":true},"n":null,"f":false,"s":"t"})"},
      {"    transform: [{set: {d.e: 'false', a: 'event.a * 2.0'}}]\n",
       R"({"a":1.5,"b":"x","d":{"e":true,"g":-0.0},"h":"\u00e9","i":{"j":[]}})"},
      // A repeated key: every position keeps the value of its last occurrence.
      {"    transform: [{set: {z: '1'}}]\n", R"({"a":1,"b":2,"a":3,"c":"x","b":"y"})"},
      // The same value set again, a value moved, a key with an escape.
      {"    transform: [{set: {t: 'true', s: 'event.s'}}, {rename: {m: mm}}]\n",
       R"({"t":true,"s":"x","m":5,"k\"q":1,"u":null})"},
      // A map built from source strings: a key and a value from the event, but not a member.
      {"    transform: [{payload: '{event.a: event.b, event.map(k, k)[1]: event.b}'}]\n", R"({"a":"k","b":1})"},
      {"    transform: [{payload: '{event.l[0]: event.l[1]}'}]\n", R"({"l":["k",1]})"},
  };
  for (const auto& [steps, compact] : cases) {
    const std::string out = Transformed(steps, compact);
    EXPECT_EQ(out.find("<failed"), std::string::npos) << out;
    EXPECT_EQ(out, Transformed(steps, spaced(compact))) << compact;
  }
  EXPECT_EQ(Transformed(cases[0].first, cases[0].second),
            R"({"a":1.50,"c":[1,2],"d":{"e":true},"n":null,"f":false,"s":"t","z":1})");
  EXPECT_EQ(Transformed(cases[2].first, cases[2].second), R"({"a":3,"b":"y","a":3,"c":"x","b":"y","z":1})");
  EXPECT_EQ(Transformed(cases[4].first, cases[4].second), R"({"k":1,"b":1})");
  EXPECT_EQ(Transformed(cases[5].first, cases[5].second), R"({"k":1})");
}

TEST(Processor, NoStepsPassesThePayloadThroughUnchanged) {
  const std::string payload = "{ \"id\" : 12345678901234567890 ,\n \"amount\":250.50 }";
  EXPECT_EQ(Transformed("", payload), payload);
  EXPECT_EQ(Transformed("    filter: 'event.amount > 1.0'\n", payload), payload);
}

TEST(Processor, NonJsonPayload) {
  auto t = Table(R"yaml(routes:
  - name: pass-through
    source: {subject: in}
    filter: 'headers["x-audit"] == "yes" && subject == "in"'
    destinations: [{subject: audit}]
  - name: reads-event
    source: {subject: in}
    filter: 'event.amount > 1'
    destinations: [{subject: out}]
  - name: reads-event-in-subject
    source: {subject: in}
    destinations: [{subject: 'out.{{ event.region }}'}]
)yaml");
  ASSERT_TRUE(t);
  Headers headers = {{"x-audit", "yes"}};
  Processor p;
  std::vector<Result> results;
  p.process(*t, Message{"in", &headers, "this is not JSON"}, results);
  EXPECT_EQ(p.json_error(), "invalid literal at byte 0");
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].outcome, Result::Outcome::Published);
  ASSERT_EQ(results[0].outputs.size(), 1u);
  EXPECT_EQ(results[0].outputs[0].payload, "this is not JSON");
  EXPECT_EQ(results[0].outputs[0].subject, "audit");
  for (int i : {1, 2}) {
    EXPECT_EQ(results[i].outcome, Result::Outcome::Failed);
    EXPECT_EQ(results[i].reason, FailureReason::NotJson);
    EXPECT_EQ(reason_label(results[i].reason), "not_json");
    EXPECT_EQ(results[i].step, "source");
    EXPECT_EQ(results[i].error, "payload is not JSON: invalid literal at byte 0");
  }
  // A pass-through route sees `event` as null when the payload is not JSON.
  EXPECT_EQ(Output(RunRoute(*t, "", &headers)), "");
  p.process(*t, Message{"in", &headers, "{}"}, results);
  EXPECT_EQ(p.json_error(), "");
}

// The payload is parsed when the first route that reads it runs, and once per event: a
// route that never reads it (a pass-through, or one that looks only at the subject and
// headers) costs no parse and passes any bytes.
TEST(Processor, OnlyRoutesThatReadThePayloadParseIt) {
  auto t = Table(R"yaml(routes:
  - name: pass-through
    source: {subject: in}
    destinations: [{subject: copy}]
  - name: reads-event
    source: {subject: in}
    filter: 'event.amount > 1'
    destinations: [{subject: out}]
)yaml");
  ASSERT_TRUE(t);
  Processor p;
  const std::string deep = std::string(5000, '[') + std::string(5000, ']');
  for (const std::string& payload : {std::string("not JSON"), deep}) {
    p.prepare_event(Message{"in", nullptr, payload});
    Result pass = p.run_prepared(*t, 0, Message{"in", nullptr, payload});
    EXPECT_EQ(p.json_error(), "") << "the pass-through route parsed the payload";
    EXPECT_EQ(Output(pass), payload);
    Result reads = p.run_prepared(*t, 1, Message{"in", nullptr, payload});
    EXPECT_EQ(reads.reason, FailureReason::NotJson);
    EXPECT_NE(p.json_error(), "");
  }
  // A JSON event: the reading route sees it, whichever route ran first.
  const std::string good = R"({"amount": 5})";
  p.prepare_event(Message{"in", nullptr, good});
  EXPECT_EQ(Output(p.run_prepared(*t, 1, Message{"in", nullptr, good})), good);
  EXPECT_EQ(Output(p.run_prepared(*t, 0, Message{"in", nullptr, good})), good);
  EXPECT_EQ(p.json_error(), "");
}

TEST(Processor, MaxPayloadBytes) {
  auto t = OneRoute("    maxPayloadBytes: 10\n");
  ASSERT_TRUE(t);
  EXPECT_EQ(Output(RunRoute(*t, "[1,2,3,44]")), "[1,2,3,44]");  // exactly 10 bytes
  Result r = RunRoute(*t, "[1,2,3,444]");
  EXPECT_EQ(r.outcome, Result::Outcome::Failed);
  EXPECT_EQ(r.reason, FailureReason::TooLarge);
  EXPECT_EQ(reason_label(r.reason), "too_large");
  EXPECT_EQ(r.step, "source");
  EXPECT_EQ(r.error, "payload of 11 bytes exceeds maxPayloadBytes 10");
  // Checked before parsing: a large non-JSON payload is too large, not "not JSON".
  EXPECT_EQ(Output(RunRoute(*t, "not json at all")),
            "<failed too_large at source: payload of 15 bytes exceeds maxPayloadBytes 10>");
}

std::string Subject(std::string_view template_text, std::string_view payload) {
  auto t = OneRoute("    destinations: [{subject: '" + std::string(template_text) + "'}]\n");
  if (!t) return "<no table>";
  Result r = RunRoute(*t, payload);
  if (r.outcome != Result::Outcome::Published) return Output(r);
  return r.outputs.at(0).subject;
}

TEST(Processor, SubjectTemplates) {
  EXPECT_EQ(Subject("orders.{{ event.region }}.large", R"({"region": "eu"})"), "orders.eu.large");
  EXPECT_EQ(Subject("{{ event.a }}.{{event.b}}", R"({"a": "x", "b": "y"})"), "x.y");
  EXPECT_EQ(Subject("v.{{ event.version }}", R"({"version": 2.50})"), "v.2.50");
  EXPECT_EQ(Subject("v.{{ event.version }}", R"({"version": 1e3})"), "v.1e3");
  EXPECT_EQ(Subject("n.{{ event.n }}", R"({"n": 7})"), "n.7");
  EXPECT_EQ(Subject("n.{{ event.n }}", R"({"n": -7})"), "n.-7");
  EXPECT_EQ(Subject("id.{{ event.id }}", R"({"id": 12345678901234567890})"), "id.12345678901234567890");
  EXPECT_EQ(Subject("b.{{ event.b }}", R"({"b": true})"), "b.true");
  EXPECT_EQ(Subject("c.{{ 3.0 * 0.5 }}", R"({})"), "c.1.5");
  EXPECT_EQ(Subject("u.{{ 7u }}", R"({})"), "u.7");
  EXPECT_EQ(Subject("s.{{ subject }}", R"({})"), "s.in");
}

TEST(Processor, SubjectTemplateFailures) {
  EXPECT_EQ(Subject("orders.{{ event.region }}.large", R"({"region": ""})"),
            "<failed destination at destinations[0].subject: rendered subject is invalid: empty "
            "token at position 7 in 'orders..large'>");
  EXPECT_EQ(Subject("orders.{{ event.region }}", R"({"region": "a b"})"),
            "<failed destination at destinations[0].subject: rendered subject is invalid: "
            "whitespace at position 8 in 'orders.a b'>");
  EXPECT_EQ(Subject("orders.{{ event.region }}", R"({"region": "*"})"),
            "<failed destination at destinations[0].subject: rendered subject is invalid: wildcard "
            "'*' not allowed in a concrete subject at position 7 in 'orders.*'>");
  EXPECT_EQ(Subject("orders.{{ event.region }}", R"({"region": ["eu"]})"),
            "<failed destination at destinations[0].subject: subject template produced list, not "
            "a string or number>");
  EXPECT_EQ(Subject("orders.{{ event.region }}", R"({"region": null})"),
            "<failed destination at destinations[0].subject: subject template produced null_type, "
            "not a string or number>");
  EXPECT_EQ(Subject("orders.{{ event.region }}", R"({})"),
            "<failed destination at destinations[0].subject: no such key: 'region'>");
  EXPECT_EQ(Subject("x.{{ double(\"NaN\") }}", R"({})"),
            "<failed destination at destinations[0].subject: subject template produced double, not "
            "a string or number>");
}

TEST(Processor, HeadersCopiedAndOverridden) {
  auto t = OneRoute(R"yaml(    destinations:
      - subject: out
        headers:
          x-b: '"new"'
          x-c: 'headers["x-a"] + "!"'
          x-n: 'event.n'
          x-d: 'event.d'
)yaml");
  ASSERT_TRUE(t);
  Headers in = {{"x-a", "1"}, {"x-b", "2"}};
  Result r = RunRoute(*t, R"({"n": 42, "d": 2.50})", &in);
  ASSERT_EQ(r.outcome, Result::Outcome::Published) << Output(r);
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_EQ(r.outputs[0].headers,
            (Headers{{"x-a", "1"}, {"x-b", "new"}, {"x-c", "1!"}, {"x-n", "42"}, {"x-d", "2.50"}}));
  // The message's own headers are left alone.
  EXPECT_EQ(in, (Headers{{"x-a", "1"}, {"x-b", "2"}}));
}

TEST(Processor, RepeatedInputHeaders) {
  auto t = OneRoute(R"yaml(    filter: 'headers["x"] == "first"'
    destinations:
      - subject: out
        headers: {x: '"set"'}
)yaml");
  ASSERT_TRUE(t);
  Headers in = {{"x", "first"}, {"x", "second"}};
  Result r = RunRoute(*t, "{}", &in);
  ASSERT_EQ(r.outcome, Result::Outcome::Published) << Output(r);
  EXPECT_EQ(r.outputs.at(0).headers, (Headers{{"x", "set"}, {"x", "set"}}));
}

std::string HeaderFailure(std::string_view expr, std::string_view payload) {
  auto t = OneRoute("    destinations: [{subject: out, headers: {h: '" + std::string(expr) + "'}}]\n");
  if (!t) return "<no table>";
  return Output(RunRoute(*t, payload));
}

TEST(Processor, HeaderFailures) {
  EXPECT_EQ(HeaderFailure("event.m", R"({"m": {"a": 1}})"),
            "<failed destination at destinations[0].headers.h: header value is map, not a string>");
  EXPECT_EQ(HeaderFailure("event.l", R"({"l": []})"),
            "<failed destination at destinations[0].headers.h: header value is list, not a string>");
  EXPECT_EQ(HeaderFailure("\"a\\nb\"", R"({})"),
            "<failed destination at destinations[0].headers.h: header value contains a line break>");
  EXPECT_EQ(HeaderFailure("event.s", R"({"s": "a\rb"})"),
            "<failed destination at destinations[0].headers.h: header value contains a line break>");
  EXPECT_EQ(HeaderFailure("event.nope", R"({})"),
            "<failed destination at destinations[0].headers.h: no such key: 'nope'>");
}

TEST(Processor, EncodeFailure) {
  auto t = OneRoute("    transform: [{set: {x: 'double(\"NaN\")'}}]\n");
  ASSERT_TRUE(t);
  Result r = RunRoute(*t, R"({"a": 1})");
  EXPECT_EQ(r.outcome, Result::Outcome::Failed);
  EXPECT_EQ(r.reason, FailureReason::Encode);
  EXPECT_EQ(reason_label(r.reason), "encode");
  EXPECT_EQ(r.step, "transform");
  EXPECT_EQ(r.error, "cannot write nan as JSON");
  EXPECT_EQ(Transformed("    transform: [{payload: '[1.0 / 0.0]'}]\n", "{}"),
            "<failed encode at transform: cannot write inf as JSON>");
}

TEST(Processor, MultipleDestinations) {
  auto t = OneRoute(R"yaml(    transform: [{set: {seen: 'true'}}]
    destinations:
      - subject: 'a.{{ event.k }}'
        headers: {which: '"first"'}
      - subject: b
        jetstream: true
      - subject: c
        headers: {which: '"third"'}
)yaml");
  ASSERT_TRUE(t);
  Headers in = {{"keep", "k"}};
  Result r = RunRoute(*t, R"({"k": "v"})", &in);
  ASSERT_EQ(r.outcome, Result::Outcome::Published) << Output(r);
  ASSERT_EQ(r.outputs.size(), 3u);
  EXPECT_EQ(r.outputs[0].subject, "a.v");
  EXPECT_EQ(r.outputs[1].subject, "b");
  EXPECT_EQ(r.outputs[2].subject, "c");
  for (const auto& o : r.outputs) EXPECT_EQ(o.payload, R"({"k":"v","seen":true})");
  EXPECT_FALSE(r.outputs[0].jetstream);
  EXPECT_TRUE(r.outputs[1].jetstream);
  EXPECT_FALSE(r.outputs[2].jetstream);
  EXPECT_EQ(r.outputs[0].headers, (Headers{{"keep", "k"}, {"which", "first"}}));
  EXPECT_EQ(r.outputs[1].headers, (Headers{{"keep", "k"}}));
  EXPECT_EQ(r.outputs[2].headers, (Headers{{"keep", "k"}, {"which", "third"}}));
}

TEST(Processor, FailingDestinationDropsEveryOutput) {
  auto t = OneRoute(R"yaml(    destinations:
      - subject: fine
      - subject: 'x.{{ event.missing }}'
)yaml");
  ASSERT_TRUE(t);
  Result r = RunRoute(*t, "{}");
  EXPECT_EQ(r.outcome, Result::Outcome::Failed);
  EXPECT_EQ(r.step, "destinations[1].subject");
  EXPECT_TRUE(r.outputs.empty());
}

TEST(Processor, ReasonLabels) {
  EXPECT_EQ(reason_label(FailureReason::NotJson), "not_json");
  EXPECT_EQ(reason_label(FailureReason::TooLarge), "too_large");
  EXPECT_EQ(reason_label(FailureReason::Filter), "filter");
  EXPECT_EQ(reason_label(FailureReason::Transform), "transform");
  EXPECT_EQ(reason_label(FailureReason::Destination), "destination");
  EXPECT_EQ(reason_label(FailureReason::Encode), "encode");
}

TEST(Processor, ProcessRunsMatchingRoutesInOrderOnTheSameEvent) {
  auto t = Table(R"yaml(routes:
  - name: first
    source: {subject: 'orders.>'}
    transform: [{set: {amount: '0', tag: '"first"'}}]
    destinations: [{subject: one}]
  - name: other
    source: {subject: payments.x}
    destinations: [{subject: never}]
  - name: second
    source: {subject: orders.eu}
    filter: 'event.amount == 5'
    transform: [{set: {tag: '"second"'}}]
    destinations: [{subject: two}]
  - name: third
    source: {subject: 'orders.*'}
    filter: 'event.amount > 100'
    destinations: [{subject: three}]
)yaml");
  ASSERT_TRUE(t);
  Processor p;
  std::vector<Result> results;
  results.emplace_back();  // what the vector held before is kept
  p.process(*t, Message{"orders.eu", nullptr, R"({"amount": 5})"}, results);
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(results[1].route, 0u);
  EXPECT_EQ(Output(results[1]), R"({"amount":0,"tag":"first"})");
  // The second route sees the event as it came in, not as the first route left it.
  EXPECT_EQ(results[2].route, 2u);
  EXPECT_EQ(Output(results[2]), R"({"amount":5,"tag":"second"})");
  EXPECT_EQ(results[3].route, 3u);
  EXPECT_EQ(results[3].outcome, Result::Outcome::Filtered);

  results.clear();
  p.process(*t, Message{"nothing.matches", nullptr, "not json"}, results);
  EXPECT_TRUE(results.empty());

  // The processor is reused: nothing of the previous event leaks into the next one.
  p.process(*t, Message{"orders.eu", nullptr, R"({"amount": 500})"}, results);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(Output(results[0]), R"({"amount":0,"tag":"first"})");
  EXPECT_EQ(results[1].outcome, Result::Outcome::Filtered);
  EXPECT_EQ(Output(results[2]), R"({"amount": 500})");
}

TEST(Processor, RunSteps) {
  auto t = Table(R"yaml(transforms:
  - name: t
    steps: [{set: {a: '1'}}]
  - name: empty
    steps: []
)yaml");
  ASSERT_TRUE(t);
  Processor p;
  const Headers none;
  std::string payload, error;
  const CompiledTransform& tf = t->transforms()[0];
  ASSERT_TRUE(p.run_steps(tf.steps, tf.needs_json, Message{"s", &none, R"({"b": 2})"}, payload, error));
  EXPECT_EQ(payload, R"({"b":2,"a":1})");
  EXPECT_FALSE(p.run_steps(tf.steps, tf.needs_json, Message{"s", &none, "oops"}, payload, error));
  EXPECT_EQ(error, "payload is not JSON: expected a value at byte 0");
  EXPECT_FALSE(p.run_steps(tf.steps, tf.needs_json, Message{"s", &none, "[]"}, payload, error));
  EXPECT_EQ(error,
            "steps[0].set.a: cannot set 'a': the value there is list, not an object");
  const CompiledTransform& empty = t->transforms()[1];
  EXPECT_FALSE(empty.needs_json);
  ASSERT_TRUE(p.run_steps(empty.steps, empty.needs_json, Message{"s", &none, "raw"}, payload, error));
  EXPECT_EQ(payload, "raw");
}

TEST(JsonDifference, Equal) {
  EXPECT_EQ(json_difference(R"({"a":1,"b":[1,2],"c":{"d":null}})",
                            R"({ "c" : {"d": null}, "b": [1.0, 2e0], "a": 1 })"),
            "");
  EXPECT_EQ(json_difference(R"("\u00e9")", R"("é")"), "");
  EXPECT_EQ(json_difference("true", "true"), "");
}

TEST(JsonDifference, Messages) {
  EXPECT_EQ(json_difference("1", "2"), "at $: expected 1, got 2");
  EXPECT_EQ(json_difference(R"({"a":{"b":"x"}})", R"({"a":{"b":"y"}})"),
            R"(at .a.b: expected "x", got "y")");
  EXPECT_EQ(json_difference(R"({"a":1})", R"({"a":"1"})"), R"(at .a: expected 1, got "1")");
  EXPECT_EQ(json_difference("true", "false"), "at $: expected true, got false");
  EXPECT_EQ(json_difference("null", "{}"), "at $: expected null, got {}");
  EXPECT_EQ(json_difference("[1,2]", "[1]"), "at $: expected 2 elements, got 1");
  EXPECT_EQ(json_difference(R"({"l":[1,{"m":2}]})", R"({"l":[1,{"m":3}]})"),
            "at .l[1].m: expected 2, got 3");
  EXPECT_EQ(json_difference(R"({"a":1,"b":[2]})", R"({"a":1})"), "at .b: missing (expected [2])");
  EXPECT_EQ(json_difference(R"({"a":1})", R"({"a":1,"c":[1, 2]})"),
            "at .c: unexpected field (got [1, 2])");
  EXPECT_EQ(json_difference(R"({"a":1})", "{\"a\":1} x"),
            "output is not JSON: unexpected content after the value at byte 8 (got {\"a\":1} x)");
  EXPECT_EQ(json_difference("{", "{}"), "expected value is not JSON: expected a string key at byte 1 (end of input)");
}

TEST(JsonDifference, LargeIntegersCompareExactly) {
  // Equal as doubles, but a mangled 64-bit id is a real difference.
  EXPECT_EQ(json_difference("12345678901234567890", "12345678901234567891"),
            "at $: expected 12345678901234567890, got 12345678901234567891");
  EXPECT_EQ(json_difference(R"({"id":9007199254740993})", R"({"id":9007199254740992})"),
            "at .id: expected 9007199254740993, got 9007199254740992");
  EXPECT_EQ(json_difference("-9007199254740993", "-9007199254740993"), "");
  EXPECT_EQ(json_difference("100", "1e2"), "");
}

TEST(TransformTests, PassAndFail) {
  auto t = Table(R"yaml(transforms:
  - name: norm
    steps:
      - set: {region: 'event.region.upperAscii()'}
    tests:
      - name: passes
        input: {data: {region: eu, id: 1}}
        expect: {data: {id: 1, region: EU}}
      - name: wrong value
        input: {data: {region: eu}}
        expect: {data: {region: eu}}
      - name: expected error happens
        input: {data: {}}
        expect: {error: "no such key"}
      - name: other error
        input: {data: {}}
        expect: {error: "something else"}
      - name: error expected, output produced
        input: {data: {region: us}}
        expect: {error: "no such key"}
      - name: unexpected failure
        input: {raw: "not json"}
        expect: {data: {}}
  - name: second
    steps: [{remove: x}]
    tests:
      - name: uses subject and headers
        input: {subject: a.b, headers: {h: v}, data: {x: 1, y: 2}}
        expect: {data: {y: 2}}
)yaml");
  ASSERT_TRUE(t);
  Processor p;
  auto results = run_transform_tests(*t, p);
  ASSERT_EQ(results.size(), 7u);
  std::vector<std::string> got;
  for (const auto& r : results) {
    got.push_back(r.transform + "/" + r.test + ": " + (r.passed ? "pass" : "FAIL " + r.difference));
  }
  EXPECT_EQ(got, (std::vector<std::string>{
                     "norm/passes: pass",
                     R"(norm/wrong value: FAIL at .region: expected "eu", got "EU")",
                     "norm/expected error happens: pass",
                     "norm/other error: FAIL expected an error containing 'something else', got: "
                     "steps[0].set.region: no such key: 'region'",
                     "norm/error expected, output produced: FAIL expected an error containing 'no "
                     "such key', got output {\"region\":\"US\"}",
                     "norm/unexpected failure: FAIL failed: payload is not JSON: invalid literal at "
                     "byte 0",
                     "second/uses subject and headers: pass",
                 }));
}

}  // namespace
}  // namespace switchboard::route
