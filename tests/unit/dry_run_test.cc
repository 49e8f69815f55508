#include "router/dry_run.h"

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/route/spec_yaml.h"
#include "core/route/table.h"

namespace switchboard::router {
namespace {

// Test names keep files apart: TempDir() is shared by every test of the run.
std::string WriteFile(std::string_view name, std::string_view text) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string path = ::testing::TempDir() + "switchboard_dry_run_" + info->name() + "_" +
                     std::string(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// The hash `check` prints, computed the way the router computes it.
std::string HashOf(const std::string& path) {
  route::RouteSet set;
  std::vector<route::SpecError> errors;
  if (!route::load_yaml_file(path, set, errors)) return "<load failed>";
  auto c = route::RouteTable::compile(std::move(set), 1);
  if (!std::holds_alternative<std::shared_ptr<const route::RouteTable>>(c)) return "<compile failed>";
  return std::get<std::shared_ptr<const route::RouteTable>>(c)->hash();
}

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

Outcome Check(const std::string& routes) {
  DryRunOptions opts;
  opts.routes_path = routes;
  std::ostringstream out, err;
  Outcome r;
  r.code = run_check(opts, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

Outcome RouteEvents(const std::string& routes, std::string_view events, bool explain = false) {
  DryRunOptions opts;
  opts.routes_path = routes;
  opts.explain = explain;
  std::istringstream in{std::string(events)};
  std::ostringstream out, err;
  Outcome r;
  r.code = run_test(opts, in, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

constexpr std::string_view kRoutes = R"yaml(routes:
  - name: big
    source: {subject: 'orders.*'}
    filter: 'event.amount > 100'
    transform: [{set: {big: 'true'}}]
    destinations:
      - subject: 'big.{{ event.region }}'
        headers: {x-by: '"sb"'}
    deadLetter: {subject: dlq}
  - name: audit
    source: {subject: 'orders.>'}
    destinations: [{subject: audit}]
transforms:
  - name: t
    steps: [{remove: x}]
    tests:
      - name: removes x
        input: {data: {x: 1, y: 2}}
        expect: {data: {y: 2}}
)yaml";

TEST(DryRunCheck, ValidRoutes) {
  const std::string path = WriteFile("routes.yaml", kRoutes);
  Outcome r = Check(path);
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out, path + ": 2 routes, 1 transform, 1/1 transform tests passed; table " +
                       HashOf(path) + "\n");
}

TEST(DryRunCheck, FailingTransformTest) {
  const std::string path = WriteFile("routes.yaml", R"yaml(transforms:
  - name: t
    steps: [{remove: x}]
    tests:
      - name: good
        input: {data: {x: 1, y: 2}}
        expect: {data: {y: 2}}
      - name: wrong
        input: {data: {x: 1, y: 2}}
        expect: {data: {y: 3}}
      - name: no error
        input: {data: {x: 1}}
        expect: {error: boom}
)yaml");
  Outcome r = Check(path);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "error: transform 't', test 'wrong': at .y: expected 3, got 2\n"
            "error: transform 't', test 'no error': expected an error containing 'boom', got "
            "output {}\n");
  EXPECT_EQ(r.out, path + ": 0 routes, 1 transform, 1/3 transform tests passed; table " +
                       HashOf(path) + "\n");
}

TEST(DryRunCheck, InvalidRoutesListEveryError) {
  const std::string path = WriteFile("routes.yaml", R"yaml(routes:
  - name: r
    source: {subject: a}
    filtr: 'true'
    destinations: [{subject: 'out.{{ evnt.x }}'}]
  - name: s
    source: {subject: 'a..b'}
    destinations: [{subject: out}]
)yaml");
  Outcome r = Check(path);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "error: " + path + ":4:5: route 'r', filtr: unknown field 'filtr' (did you mean "
            "'filter'?)\n"
            "error: " + path + ":5:38: route 'r', destinations[0].subject: undeclared reference to "
            "'evnt' (did you mean 'event'?)\n"
            " | out.{{ evnt.x }}\n"
            " |        ^\n"
            "error: " + path + ":7:24: route 's', source.subject: invalid subject: empty token at "
            "position 2 in 'a..b'\n"
            "3 errors in " + path + "\n");
}

TEST(DryRunCheck, OneError) {
  const std::string path = WriteFile("routes.yaml", "routes: [{name: r, source: {subject: a}}]\n");
  Outcome r = Check(path);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "error: " + path + ":1:10: route 'r', destinations: needs at least one "
                   "destination\n1 error in " + path + "\n");
}

TEST(DryRunCheck, MissingOrUnreadableRoutes) {
  Outcome r = Check("");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "error: --routes FILE is required\n");
  EXPECT_EQ(r.out, "");
  r = Check("/nonexistent/routes.yaml");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "error: /nonexistent/routes.yaml: cannot read the file\n"
            "1 error in /nonexistent/routes.yaml\n");
}

TEST(DryRunTest, RoutesEvents) {
  const std::string path = WriteFile("routes.yaml", kRoutes);
  Outcome r = RouteEvents(path,
               "{\"subject\": \"orders.eu\", \"headers\": {\"h\": \"v\"}, \"data\": {\"amount\": 500, "
               "\"region\": \"eu\"}}\n"
               "{\"subject\":\"orders.eu\",\"data\":{\"amount\":5}}\n"
               "{\"subject\":\"payments.x\",\"data\":{}}\n"
               "{\"subject\":\"orders.us\",\"raw\":\"plain text\"}\n"
               "{\"subject\":\"orders.us\",\"data\":{\"amount\":1000}}\n"
               "{\"subject\":\"orders.us.extra\"}\n");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out,
            // Line 1: both routes; the untouched copy keeps the input's bytes.
            "{\"route\":\"big\",\"subject\":\"big.eu\",\"headers\":{\"h\":\"v\",\"x-by\":\"sb\"},"
            "\"data\":{\"amount\":500,\"region\":\"eu\",\"big\":true}}\n"
            "{\"route\":\"audit\",\"subject\":\"audit\",\"headers\":{\"h\":\"v\"},\"data\":{\"amount\": "
            "500, \"region\": \"eu\"}}\n"
            // Line 2: filtered by one route, copied by the other.
            "{\"route\":\"big\",\"dropped\":\"filter\"}\n"
            "{\"route\":\"audit\",\"subject\":\"audit\",\"headers\":{},\"data\":{\"amount\":5}}\n"
            // Line 3 matches nothing and prints nothing. Line 4: not JSON.
            "{\"route\":\"big\",\"error\":\"payload is not JSON: expected a value at byte 0\","
            "\"reason\":\"not_json\",\"step\":\"source\",\"deadLetter\":\"dlq\"}\n"
            "{\"route\":\"audit\",\"subject\":\"audit\",\"headers\":{},\"raw\":\"plain text\"}\n"
            // Line 5: the subject template reads a field that is not there.
            "{\"route\":\"big\",\"error\":\"no such key: 'region'\",\"reason\":\"destination\","
            "\"step\":\"destinations[0].subject\",\"deadLetter\":\"dlq\"}\n"
            "{\"route\":\"audit\",\"subject\":\"audit\",\"headers\":{},\"data\":{\"amount\":1000}}\n"
            // Line 6: no data is a null payload.
            "{\"route\":\"audit\",\"subject\":\"audit\",\"headers\":{},\"data\":null}\n");
}

TEST(DryRunTest, Explain) {
  const std::string path = WriteFile("routes.yaml", kRoutes);
  Outcome r = RouteEvents(path,
               "{\"subject\":\"orders.eu\",\"data\":{\"amount\":500,\"region\":\"eu\"}}\n"
               "{\"subject\":\"orders.eu\",\"data\":{\"amount\":5}}\n"
               "{\"subject\":\"orders.eu\",\"data\":{\"amount\":\"x\"}}\n"
               "{\"subject\":\"orders.eu\",\"raw\":\"text\"}\n"
               "{\"subject\":\"orders.eu.x\",\"data\":1}\n"
               "{\"subject\":\"other\",\"data\":1}\n",
               true);
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.err, "");
  const std::string big = "source subject 'orders.*' matches; filter 'event.amount > 100' ";
  const std::string audit = "\"explain\":\"source subject 'orders.>' matches\"";
  EXPECT_EQ(r.out,
            "{\"route\":\"big\",\"subject\":\"big.eu\",\"headers\":{\"x-by\":\"sb\"},\"data\":"
            "{\"amount\":500,\"region\":\"eu\",\"big\":true},\"explain\":\"" + big + "returned true\"}\n"
            "{\"route\":\"audit\",\"subject\":\"audit\",\"headers\":{},\"data\":{\"amount\":500,"
            "\"region\":\"eu\"}," + audit + "}\n"
            "{\"route\":\"big\",\"dropped\":\"filter\",\"explain\":\"" + big + "returned false\"}\n"
            "{\"route\":\"audit\",\"subject\":\"audit\",\"headers\":{},\"data\":{\"amount\":5}," +
                audit + "}\n"
            "{\"route\":\"big\",\"error\":\"no matching overload for '_>_' applied to (string, int)\",\"reason\":\"filter\","
            "\"step\":\"filter\",\"deadLetter\":\"dlq\",\"explain\":\"" + big + "failed\"}\n"
            "{\"route\":\"audit\",\"subject\":\"audit\",\"headers\":{},\"data\":{\"amount\":\"x\"}," +
                audit + "}\n"
            // The payload is refused before the filter could run.
            "{\"route\":\"big\",\"error\":\"payload is not JSON: invalid literal at byte 0\","
            "\"reason\":\"not_json\",\"step\":\"source\",\"deadLetter\":\"dlq\",\"explain\":\"" + big +
                "was not run\"}\n"
            "{\"route\":\"audit\",\"subject\":\"audit\",\"headers\":{},\"raw\":\"text\"," + audit + "}\n"
            "{\"route\":\"big\",\"explain\":\"source subject 'orders.*' does not match "
            "'orders.eu.x'\"}\n"
            "{\"route\":\"audit\",\"subject\":\"audit\",\"headers\":{},\"data\":1," + audit + "}\n"
            "{\"route\":\"big\",\"explain\":\"source subject 'orders.*' does not match 'other'\"}\n"
            "{\"route\":\"audit\",\"explain\":\"source subject 'orders.>' does not match 'other'\"}\n");
}

TEST(DryRunTest, ExplainTooLarge) {
  const std::string path = WriteFile("routes.yaml", R"yaml(routes:
  - name: small
    source: {subject: a}
    filter: 'true'
    maxPayloadBytes: 4
    destinations: [{subject: b}]
)yaml");
  Outcome r = RouteEvents(path, "{\"subject\":\"a\",\"data\":[1,2,3]}\n", true);
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out,
            "{\"route\":\"small\",\"error\":\"payload of 7 bytes exceeds maxPayloadBytes 4\","
            "\"reason\":\"too_large\",\"step\":\"source\",\"explain\":\"source subject 'a' matches; "
            "filter 'true' was not run\"}\n");
}

TEST(DryRunTest, MalformedLinesAreReportedAndTheRestRouted) {
  const std::string path = WriteFile("routes.yaml", kRoutes);
  Outcome r = RouteEvents(path,
               "{oops\n"
               "{\"subject\":\"orders.eu\",\"data\":{\"amount\":1}}\n"
               "\n"
               "   \t\n"
               "{\"subject\":\"orders.eu\",\"data\":1,\"raw\":\"x\"}\n"
               "{\"subject\":\"orders.eu\",\"extra\":1}\n"
               "{\"subject\":\"orders..eu\",\"data\":{}}\n"
               "{\"subject\":\"orders.*\",\"data\":{}}\n"
               "{\"data\":{}}\n"
               "[1]\n"
               "{\"subject\":7}\n"
               "{\"subject\":\"a\",\"headers\":[]}\n"
               "{\"subject\":\"a\",\"headers\":{\"h\":1}}\n"
               "{\"subject\":\"a\",\"raw\":{}}\n"
               "{\"subject\":\"orders.us\",\"data\":{\"amount\":2}}");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "11 input lines were not events\n");
  EXPECT_EQ(r.out,
            "{\"line\":1,\"error\":\"not JSON: expected a string key at byte 1\"}\n"
            "{\"route\":\"big\",\"dropped\":\"filter\"}\n"
            "{\"route\":\"audit\",\"subject\":\"audit\",\"headers\":{},\"data\":{\"amount\":1}}\n"
            "{\"line\":5,\"error\":\"give either data or raw, not both\"}\n"
            "{\"line\":6,\"error\":\"unknown field 'extra' (expected subject, headers, data or "
            "raw)\"}\n"
            "{\"line\":7,\"error\":\"invalid subject: empty token at position 7 in 'orders..eu'\"}\n"
            "{\"line\":8,\"error\":\"invalid subject: wildcard '*' not allowed in a concrete "
            "subject at position 7 in 'orders.*'\"}\n"
            "{\"line\":9,\"error\":\"invalid subject: subject is empty\"}\n"
            "{\"line\":10,\"error\":\"expected an object with subject, headers and data\"}\n"
            "{\"line\":11,\"error\":\"subject must be a string\"}\n"
            "{\"line\":12,\"error\":\"headers must be an object of strings\"}\n"
            "{\"line\":13,\"error\":\"header 'h' must be a string\"}\n"
            "{\"line\":14,\"error\":\"raw must be a string\"}\n"
            "{\"route\":\"big\",\"dropped\":\"filter\"}\n"
            "{\"route\":\"audit\",\"subject\":\"audit\",\"headers\":{},\"data\":{\"amount\":2}}\n");
}

TEST(DryRunTest, OneMalformedLine) {
  const std::string path = WriteFile("routes.yaml", kRoutes);
  Outcome r = RouteEvents(path, "nope\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "1 input line was not events\n");
  EXPECT_EQ(r.out, "{\"line\":1,\"error\":\"not JSON: invalid literal at byte 0\"}\n");
}

TEST(DryRunTest, InvalidRoutes) {
  const std::string path = WriteFile("routes.yaml", R"yaml(routes:
  - name: r
    source: {subject: a}
    filter: 'nope'
    destinations: [{subject: b}]
)yaml");
  Outcome r = RouteEvents(path, "{\"subject\":\"a\",\"data\":{}}\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "error: " + path + ":4:14: route 'r', filter: undeclared reference to 'nope'\n"
            " | nope\n"
            " | ^\n"
            "1 error in " + path + "\n");
}

TEST(DryRunTest, EventsFromAFile) {
  const std::string routes = WriteFile("routes.yaml", kRoutes);
  const std::string events = WriteFile("events.jsonl", "{\"subject\":\"orders.x.y\",\"data\":[]}\n");
  DryRunOptions opts;
  opts.routes_path = routes;
  opts.events_path = events;
  std::istringstream in("{\"subject\":\"ignored\",\"data\":{}}\n");
  std::ostringstream out, err;
  EXPECT_EQ(run_test(opts, in, out, err), 0);
  EXPECT_EQ(out.str(), "{\"route\":\"audit\",\"subject\":\"audit\",\"headers\":{},\"data\":[]}\n");
  EXPECT_EQ(err.str(), "");

  opts.events_path = "/nonexistent/events.jsonl";
  std::ostringstream out2, err2;
  EXPECT_EQ(run_test(opts, in, out2, err2), 1);
  EXPECT_EQ(out2.str(), "");
  EXPECT_EQ(err2.str(), "error: cannot read /nonexistent/events.jsonl\n");
}

TEST(DryRunTest, NoEvents) {
  const std::string path = WriteFile("routes.yaml", kRoutes);
  Outcome r = RouteEvents(path, "");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "");
}

}  // namespace
}  // namespace switchboard::router
