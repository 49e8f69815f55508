// Every limit on what a route may make the router do (docs/routes.md, "Limits"), each with
// an input just over it: a table that goes over a compile-time limit is refused with the
// reason, and an event that goes over a run-time limit fails on that route with a fixed
// reason label and a message that names the limit. tests/integration/router_abuse_test.cc
// sends the same kinds of input to the real router process.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/cel/program.h"
#include "core/cel/value.h"
#include "core/json/document.h"
#include "core/route/processor.h"
#include "core/route/spec_yaml.h"
#include "core/route/table.h"

namespace switchboard::route {
namespace {

// The table, or the rendered errors that refused it.
std::variant<std::shared_ptr<const RouteTable>, std::string> Compile(std::string_view yaml) {
  RouteSet set;
  std::vector<SpecError> errors;
  std::string rendered;
  if (!load_yaml(yaml, "routes.yaml", set, errors)) {
    for (const auto& e : errors) rendered += e.render() + "\n";
    return "load: " + rendered;
  }
  auto c = RouteTable::compile(std::move(set), 1);
  if (auto* e = std::get_if<std::vector<SpecError>>(&c)) {
    for (const auto& err : *e) rendered += err.render() + "\n";
    return rendered;
  }
  return std::get<std::shared_ptr<const RouteTable>>(c);
}

std::shared_ptr<const RouteTable> Table(std::string_view yaml) {
  auto c = Compile(yaml);
  if (auto* e = std::get_if<std::string>(&c)) {
    ADD_FAILURE() << "refused: " << *e;
    return nullptr;
  }
  return std::get<std::shared_ptr<const RouteTable>>(c);
}

std::string Refusal(std::string_view yaml) {
  auto c = Compile(yaml);
  if (auto* e = std::get_if<std::string>(&c)) return *e;
  return "<compiled>";
}

// A one-route table on subject `in` with the given route fields (indented as such).
std::string OneRoute(std::string_view fields) {
  std::string yaml = "routes:\n  - name: r\n    source: {subject: in}\n";
  yaml += fields;
  if (yaml.find("destinations:") == std::string::npos) yaml += "    destinations: [{subject: out}]\n";
  return yaml;
}

Result RunEvent(const RouteTable& table, std::string_view payload, const Headers* headers = nullptr,
           uint32_t route = 0) {
  Processor p;
  return p.process_route(table, route, Message{"in", headers, payload});
}

// "reason at step: error" for a failure, the outcome otherwise.
std::string Failure(const Result& r) {
  if (r.outcome == Result::Outcome::Published) return "<published>";
  if (r.outcome == Result::Outcome::Filtered) return "<filtered>";
  return std::string(reason_label(r.reason)) + " at " + r.step + ": " + r.error;
}

std::string Json(std::string_view field, const std::string& value) {
  return "{\"" + std::string(field) + "\":\"" + value + "\"}";
}

// --- Expression cost ---

TEST(Limits, StepBudgetFailsTheEvent) {
  // 10^5 innermost evaluations: over 100,000 steps whatever each one costs.
  const std::string l = "[0,1,2,3,4,5,6,7,8,9]";
  auto t = Table(OneRoute("    filter: '" + l + ".all(a, " + l + ".all(b, " + l + ".all(c, " + l + ".all(d, " + l +
                          ".all(e, event.x == 1)))))'\n"));
  ASSERT_TRUE(t);
  EXPECT_EQ(Failure(RunEvent(*t, R"({"x":1})")), "filter at filter: evaluation exceeded its budget of 100000 steps");
  // The same route on a cheap event path still works: the budget is per evaluation.
  auto cheap = Table(OneRoute("    filter: '" + l + ".all(a, event.x == 1)'\n"));
  ASSERT_TRUE(cheap);
  EXPECT_EQ(Failure(RunEvent(*cheap, R"({"x":1})")), "<published>");
}

// --- Regular expressions ---

TEST(Limits, LiteralPatternOverTheProgramSizeIsRefused) {
  // 2,104 RE2 instructions.
  const std::string refusal = Refusal(OneRoute("    filter: 'event.s.matches(\"a{1000}a{1000}a{100}\")'\n"));
  EXPECT_NE(refusal.find("regular expression too large (program size 2104, limit 2000)"), std::string::npos)
      << refusal;
  EXPECT_NE(refusal.find("route 'r', filter"), std::string::npos) << refusal;
  // Under the limit it compiles.
  EXPECT_EQ(Refusal(OneRoute("    filter: 'event.s.matches(\"a{1000}a{900}\")'\n")), "<compiled>");
}

TEST(Limits, ComputedPatternOverTheProgramSizeFailsTheEvent) {
  auto t = Table(OneRoute("    filter: 'event.s.matches(event.p)'\n"));
  ASSERT_TRUE(t);
  EXPECT_EQ(Failure(RunEvent(*t, R"({"s":"aaa","p":"a{1000}a{1000}a{100}"})")),
            "filter at filter: regular expression too large (program size 2104, limit 2000)");
  EXPECT_EQ(Failure(RunEvent(*t, R"({"s":"aaa","p":"a+"})")), "<published>");
}

TEST(Limits, ComputedPatternOverTheRegexMemoryFailsTheEvent) {
  // Six bytes that RE2 cannot compile within 1 MiB: it gives up, and the evaluation with it
  // (the work was done, so the budget is spent: a loop cannot repeat it).
  auto t = Table(OneRoute("    filter: '[1,2,3].exists(x, event.s.matches(event.p)) || true'\n"));
  ASSERT_TRUE(t);
  const Result r = RunEvent(*t, R"({"s":"a","p":"\\pL{1000}"})");
  EXPECT_EQ(r.outcome, Result::Outcome::Failed);
  EXPECT_EQ(r.reason, FailureReason::Filter);
  EXPECT_EQ(r.error, "evaluation exceeded its budget of 100000 steps");
}

TEST(Limits, CompilingComputedPatternsIsCharged) {
  // \pL{20} is 7 bytes and 23,864 instructions, about 60 ms to compile: charged by its
  // program size, one compile spends the budget instead of thousands running for minutes.
  auto t = Table(OneRoute("    filter: '[1,2,3,4,5,6,7,8,9,10].map(x, [1,2,3,4,5,6,7,8,9,10].map(y, "
                          "[1,2,3,4,5,6,7,8,9,10].exists(z, event.s.matches(event.p)))) == []'\n"));
  ASSERT_TRUE(t);
  EXPECT_EQ(Failure(RunEvent(*t, R"({"s":"a","p":"\\pL{20}"})")),
            "filter at filter: evaluation exceeded its budget of 100000 steps");
}

TEST(Limits, MatchingLongTextIsChargedByProgramSize) {
  // An NFA-bound pattern of 1,809 instructions over 1 MiB takes seconds per call. Charged
  // per byte and instruction, the call is refused before it runs.
  auto t = Table(OneRoute("    maxPayloadBytes: 2097152\n"
                          "    filter: 'event.s.matches(\"(a|b)*a(a|b){600}c\")'\n"));
  ASSERT_TRUE(t);
  std::string text;
  for (size_t i = 0; i < (1u << 20); ++i) text += (i * 7919) % 3 == 0 ? 'a' : 'b';
  EXPECT_EQ(Failure(RunEvent(*t, Json("s", text))), "filter at filter: evaluation exceeded its budget of 100000 steps");
  // The same pattern over a short text is cheap.
  EXPECT_EQ(Failure(RunEvent(*t, Json("s", "abababc"))), "<filtered>");
}

// --- Payload size ---

TEST(Limits, PayloadOverMaxPayloadBytesFailsAsTooLarge) {
  auto t = Table(OneRoute(""));  // the default: 1 MiB
  ASSERT_TRUE(t);
  const std::string big = Json("s", std::string((1u << 20) - 7, 'x'));  // 1 MiB + 1
  ASSERT_EQ(big.size(), (1u << 20) + 1);
  EXPECT_EQ(Failure(RunEvent(*t, big)), "too_large at source: payload of 1048577 bytes exceeds maxPayloadBytes 1048576");
}

// --- What a route builds: set values and the output payload ---

TEST(Limits, OutputOverMaxPayloadBytesFailsAsTooLarge) {
  // A list that holds a 300 KiB string four times: 1.5 MiB of output from a 300 KiB input.
  auto t = Table(OneRoute("    transform:\n      - set: {copies: '[event.s, event.s, event.s, event.s]'}\n"));
  ASSERT_TRUE(t);
  EXPECT_EQ(Failure(RunEvent(*t, Json("s", std::string(300 * 1024, 'x')))),
            "too_large at transform: output exceeds maxPayloadBytes 1048576");
  // The encoder stops early: 1,000 references to a 100 KiB event never become 100 MB.
  std::string many = "[";
  for (int i = 0; i < 1000; ++i) many += std::string(i ? "," : "") + "event";
  many += "]";
  auto wide = Table(OneRoute("    transform:\n      - set: {copies: '" + many + "'}\n"));
  ASSERT_TRUE(wide);
  EXPECT_EQ(Failure(RunEvent(*wide, Json("s", std::string(100 * 1024, 'x')))),
            "too_large at transform: output exceeds maxPayloadBytes 1048576");
  // A small output from the same route passes.
  EXPECT_EQ(Failure(RunEvent(*t, Json("s", "x"))), "<published>");
}

TEST(Limits, EncoderStopsOnceOverTheLimit) {
  // 1,000 references to one 100 KiB event would be 100 MB of output: the encoder gives up
  // at the first element past the limit instead of building it.
  json::Document doc;
  ASSERT_TRUE(doc.parse(Json("s", std::string(100 * 1024, 'x'))));
  cel::ValueList items(1000, cel::Value::json(&doc, json::Document::root()));
  std::string out, error;
  EXPECT_FALSE(encode_json(cel::Value::list(std::move(items)), out, error, 1 << 20));
  EXPECT_EQ(error, "output of more than 1048576 bytes");
  EXPECT_LT(out.size(), (1u << 20) + 2 * doc.source().size());
}

TEST(Limits, StringBuiltOverTheLimitFailsTheTransform) {
  auto t = Table(OneRoute("    maxPayloadBytes: 4194304\n"
                          "    transform:\n      - set: {twice: 'event.s + event.s'}\n"));
  ASSERT_TRUE(t);
  const Result r = RunEvent(*t, Json("s", std::string(600 * 1024, 'x')));
  EXPECT_EQ(r.outcome, Result::Outcome::Failed);
  EXPECT_EQ(r.reason, FailureReason::Transform);
  EXPECT_EQ(r.step, "transform[0].set.twice");
  EXPECT_NE(r.error.find("exceeds the limit of 1048576"), std::string::npos) << r.error;
}

// --- Templates: subjects and header values ---

TEST(Limits, RenderedSubjectOverTheLimitFailsTheDestination) {
  // NATS servers refuse a protocol line over 4 KiB (max_control_line) and close the
  // connection: a subject built from event data must never get that far.
  auto t = Table(OneRoute("    destinations: [{subject: 'out.{{ event.s }}'}]\n"));
  ASSERT_TRUE(t);
  EXPECT_EQ(Failure(RunEvent(*t, Json("s", std::string(1021, 'x')))),
            "destination at destinations[0].subject: rendered subject is invalid: subject longer than 1024 bytes "
            "(1025)");
  EXPECT_EQ(Failure(RunEvent(*t, Json("s", std::string(1020, 'x')))), "<published>");  // 1024 bytes
}

TEST(Limits, LiteralSubjectsOverTheLimitAreRefused) {
  const std::string long_subject = "a." + std::string(1030, 'b');
  std::string refusal = Refusal(OneRoute("    destinations: [{subject: '" + long_subject + "'}]\n"));
  EXPECT_NE(refusal.find("destinations[0].subject: invalid subject: subject longer than 1024 bytes (1032)"),
            std::string::npos)
      << refusal;
  refusal = Refusal("routes:\n  - name: r\n    source: {subject: '" + long_subject +
                    "'}\n    destinations: [{subject: out}]\n");
  EXPECT_NE(refusal.find("source.subject: invalid subject: subject longer than 1024 bytes"), std::string::npos)
      << refusal;
  refusal = Refusal(OneRoute("    deadLetter: {subject: '" + long_subject + "'}\n"));
  EXPECT_NE(refusal.find("deadLetter.subject: invalid subject: subject longer than 1024 bytes"), std::string::npos)
      << refusal;
}

TEST(Limits, RenderedHeaderOverTheLimitFailsTheDestination) {
  auto t = Table(OneRoute("    destinations: [{subject: out, headers: {x-copy: 'event.s'}}]\n"));
  ASSERT_TRUE(t);
  EXPECT_EQ(Failure(RunEvent(*t, Json("s", std::string(4097, 'x')))),
            "destination at destinations[0].headers.x-copy: header value of 4097 bytes exceeds the limit of 4096");
  EXPECT_EQ(Failure(RunEvent(*t, Json("s", std::string(4096, 'x')))), "<published>");
}

// --- Headers an event arrives with ---

TEST(Limits, TooManyOrTooLargeHeadersFailAsTooLarge) {
  auto t = Table(OneRoute(""));
  ASSERT_TRUE(t);
  Headers many;
  size_t bytes = 0;
  for (int i = 0; i < 257; ++i) {
    many.emplace_back("h" + std::to_string(i), "v");
    bytes += many.back().first.size() + 1;
  }
  EXPECT_EQ(Failure(RunEvent(*t, "{}", &many)), "too_large at source: 257 headers of " + std::to_string(bytes) +
                                               " bytes exceed the limit of 256 headers and 65536 bytes");
  many.pop_back();
  EXPECT_EQ(Failure(RunEvent(*t, "{}", &many)), "<published>");

  Headers large = {{"big", std::string(64 * 1024, 'v')}};
  EXPECT_EQ(Failure(RunEvent(*t, "{}", &large)),
            "too_large at source: 1 headers of 65539 bytes exceed the limit of 256 headers and 65536 bytes");
  // A route that never reads the payload fails the same way: the limit is on the event.
  auto passthrough = Table(OneRoute("    filter: 'subject == \"in\"'\n"));
  ASSERT_TRUE(passthrough);
  EXPECT_EQ(RunEvent(*passthrough, "not json", &large).reason, FailureReason::TooLarge);
}

// --- Fan-out ---

std::string Destinations(size_t n) {
  std::string d = "    destinations:\n";
  for (size_t i = 0; i < n; ++i) d += "      - subject: out." + std::to_string(i) + "\n";
  return d;
}

TEST(Limits, MoreDestinationsThanTheLimitAreRefused) {
  const std::string refusal = Refusal(OneRoute(Destinations(17)));
  EXPECT_NE(refusal.find("route 'r', destinations: 17 destinations, more than the limit of 16 per route"),
            std::string::npos)
      << refusal;
  EXPECT_EQ(Refusal(OneRoute(Destinations(16))), "<compiled>");
}

TEST(Limits, PublishesPerEventOverTheLimitFailTheLaterRoutes) {
  // Five routes of 16 destinations match `in`: 80 publishes, over 64. The first four in
  // declaration order publish; the fifth fails. A route on another subject is unaffected.
  std::string yaml = "routes:\n";
  for (int r = 0; r < 5; ++r) {
    yaml += "  - name: r" + std::to_string(r) + "\n    source: {subject: " + (r == 2 ? "'>'" : "in") + "}\n" +
            Destinations(16);
  }
  yaml += "  - name: other\n    source: {subject: elsewhere}\n" + Destinations(16);
  auto t = Table(yaml);
  ASSERT_TRUE(t);
  Processor p;
  const Message in{"in", nullptr, "{}"};
  std::vector<Result> results;
  p.process(*t, in, results);
  ASSERT_EQ(results.size(), 5u);
  size_t published = 0;
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(Failure(results[i]), "<published>") << i;
    published += results[i].outputs.size();
  }
  EXPECT_EQ(published, kMaxPublishesPerEvent);
  EXPECT_EQ(Failure(results[4]),
            "destination at destinations: fan-out limit: routes declared before this one already publish this "
            "event 64 times, and 16 more would exceed 64");
  // The router runs one route at a time, and gets the same answer.
  EXPECT_EQ(Failure(p.process_route(*t, 4, in)), Failure(results[4]));
  EXPECT_EQ(Failure(p.process_route(*t, 3, in)), "<published>");
  // `elsewhere` matches `>` and `other`: 32 publishes.
  results.clear();
  p.process(*t, Message{"elsewhere", nullptr, "{}"}, results);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(Failure(results[0]), "<published>");
  EXPECT_EQ(Failure(results[1]), "<published>");
}

}  // namespace
}  // namespace switchboard::route
