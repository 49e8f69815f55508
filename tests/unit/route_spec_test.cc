#include "core/route/spec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/route/spec_yaml.h"

namespace switchboard::route {
namespace {

// One line per error, so a failing expectation shows every field of every error at once.
std::string Describe(const SpecError& e) {
  return e.at.file + ":" + std::to_string(e.at.line) + ":" + std::to_string(e.at.column) + " [" +
         e.object + "] " + e.field + ": " + e.message;
}

std::vector<std::string> Describe(const std::vector<SpecError>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(Describe(e));
  return out;
}

struct Loaded {
  bool ok = false;
  RouteSet set;
  std::vector<SpecError> errors;
};

Loaded Load(std::string_view yaml) {
  Loaded l;
  l.ok = load_yaml(yaml, "routes.yaml", l.set, l.errors);
  return l;
}

// Loads text that must be refused and returns its errors.
std::vector<std::string> Errors(std::string_view yaml) {
  Loaded l = Load(yaml);
  EXPECT_FALSE(l.ok) << yaml;
  return Describe(l.errors);
}

void ExpectLocation(const Location& at, int line, int column, bool block = false,
                    int block_indent = 0) {
  EXPECT_EQ(at.file, "routes.yaml");
  EXPECT_EQ(at.line, line);
  EXPECT_EQ(at.column, column);
  EXPECT_EQ(at.block, block);
  EXPECT_EQ(at.block_indent, block_indent);
}

// Every field of both objects, in the list shape. Line numbers matter below: the text
// starts on line 1.
constexpr std::string_view kEverything = R"yaml(routes:
  - name: everything
    router: edge-1
    source:
      subject: orders.>
      queueGroup: workers
      jetstream:
        stream: ORDERS
        durable: orders-consumer
        ackWait: 30s
        maxDeliver: 7
        backoff: [250ms, 1s, 1m30s]
        batch: 16
        maxAckPending: 500
    filter: 'event.amount > 1'
    transform:
      - set:
          customer.tier: '"gold"'
          total: event.amount * 2
      - remove: [internal, meta.trace]
      - remove: debug
      - rename:
          cust: customer
          a.b: c.d
      - payload: |
          {"wrapped": event}
      - use: normalize
    destinations:
      - subject: out.one
        headers:
          x-a: '"v"'
          x-b: event.id
        jetstream: true
      - subject: 'out.{{ event.region }}'
    deadLetter:
      subject: dlq.orders
    maxPayloadBytes: 2048
  - name: defaults
    source:
      subject: a.b
      jetstream:
        stream: S
    destinations:
      - subject: c
transforms:
  - name: normalize
    steps:
      - set:
          region: event.region.upperAscii()
    tests:
      - name: typed data
        input:
          subject: orders.eu.created
          headers: {x-a: "1", x-b: two}
          data: {id: 7, s: 'x', q: "8", n: null, t: ~, b: true, f: 1.5, l: [1, "2", {k: v}]}
        expect:
          data: {id: 7}
      - name: raw input
        input:
          raw: not json
        expect:
          error: boom
      - name: no data
        input: {}
        expect:
          data: null
)yaml";

TEST(LoadYaml, ListShapeRouteFields) {
  Loaded l = Load(kEverything);
  ASSERT_TRUE(l.ok) << ::testing::PrintToString(Describe(l.errors));
  EXPECT_TRUE(l.errors.empty());
  ASSERT_EQ(l.set.routes.size(), 2u);
  const RouteSpec& r = l.set.routes[0];
  EXPECT_EQ(r.name, "everything");
  EXPECT_EQ(r.router, "edge-1");
  ExpectLocation(r.at, 2, 5);

  EXPECT_EQ(r.source.subject.text, "orders.>");
  ExpectLocation(r.source.subject.at, 5, 16);
  EXPECT_EQ(r.source.queue_group, "workers");
  ASSERT_TRUE(r.source.jetstream.has_value());
  const JetStreamSpec& js = *r.source.jetstream;
  EXPECT_EQ(js.stream, "ORDERS");
  EXPECT_EQ(js.durable, "orders-consumer");
  EXPECT_EQ(js.ack_wait_ms, 30'000);
  EXPECT_EQ(js.max_deliver, 7);
  EXPECT_EQ(js.backoff_ms, (std::vector<int64_t>{250, 1'000, 90'000}));
  EXPECT_EQ(js.batch, 16);
  EXPECT_EQ(js.max_ack_pending, 500);

  ASSERT_TRUE(r.filter.has_value());
  EXPECT_EQ(r.filter->text, "event.amount > 1");
  // Quoted: the column is that of the first character inside the quote.
  ExpectLocation(r.filter->at, 15, 14);

  ASSERT_EQ(r.transform.size(), 6u);
  const StepSpec& set = r.transform[0];
  EXPECT_EQ(set.kind, StepSpec::Kind::Set);
  ExpectLocation(set.at, 17, 9);
  ASSERT_EQ(set.set.size(), 2u);
  EXPECT_EQ(set.set[0].first, "customer.tier");
  EXPECT_EQ(set.set[0].second.text, "\"gold\"");
  ExpectLocation(set.set[0].second.at, 18, 27);
  EXPECT_EQ(set.set[1].first, "total");
  EXPECT_EQ(set.set[1].second.text, "event.amount * 2");
  ExpectLocation(set.set[1].second.at, 19, 18);

  EXPECT_EQ(r.transform[1].kind, StepSpec::Kind::Remove);
  EXPECT_EQ(r.transform[1].remove, (std::vector<std::string>{"internal", "meta.trace"}));
  EXPECT_EQ(r.transform[2].kind, StepSpec::Kind::Remove);
  EXPECT_EQ(r.transform[2].remove, (std::vector<std::string>{"debug"}));

  EXPECT_EQ(r.transform[3].kind, StepSpec::Kind::Rename);
  EXPECT_EQ(r.transform[3].rename,
            (std::vector<std::pair<std::string, std::string>>{{"cust", "customer"}, {"a.b", "c.d"}}));

  EXPECT_EQ(r.transform[4].kind, StepSpec::Kind::Payload);
  EXPECT_EQ(r.transform[4].payload.text, "{\"wrapped\": event}\n");
  // A block scalar starts on the line after '|', at the indentation of its first line.
  ExpectLocation(r.transform[4].payload.at, 26, 11, true, 10);

  EXPECT_EQ(r.transform[5].kind, StepSpec::Kind::Use);
  EXPECT_EQ(r.transform[5].use, "normalize");

  ASSERT_EQ(r.destinations.size(), 2u);
  const DestinationSpec& d0 = r.destinations[0];
  EXPECT_EQ(d0.subject.text, "out.one");
  ExpectLocation(d0.subject.at, 29, 18);
  EXPECT_TRUE(d0.jetstream);
  ASSERT_EQ(d0.headers.size(), 2u);
  EXPECT_EQ(d0.headers[0].first, "x-a");
  EXPECT_EQ(d0.headers[0].second.text, "\"v\"");
  ExpectLocation(d0.headers[0].second.at, 31, 17);
  EXPECT_EQ(d0.headers[1].first, "x-b");
  EXPECT_EQ(d0.headers[1].second.text, "event.id");
  ExpectLocation(d0.headers[1].second.at, 32, 16);
  const DestinationSpec& d1 = r.destinations[1];
  EXPECT_EQ(d1.subject.text, "out.{{ event.region }}");
  ExpectLocation(d1.subject.at, 34, 19);
  EXPECT_FALSE(d1.jetstream);
  EXPECT_TRUE(d1.headers.empty());

  EXPECT_EQ(r.dead_letter, std::optional<std::string>("dlq.orders"));
  EXPECT_EQ(r.max_payload_bytes, 2048);
}

TEST(LoadYaml, ListShapeDefaults) {
  Loaded l = Load(kEverything);
  ASSERT_TRUE(l.ok);
  ASSERT_EQ(l.set.routes.size(), 2u);
  const RouteSpec& r = l.set.routes[1];
  EXPECT_EQ(r.name, "defaults");
  EXPECT_EQ(r.router, "");
  EXPECT_EQ(r.source.queue_group, "");
  ASSERT_TRUE(r.source.jetstream.has_value());
  EXPECT_EQ(r.source.jetstream->stream, "S");
  EXPECT_EQ(r.source.jetstream->durable, "defaults");  // the route's name
  EXPECT_EQ(r.source.jetstream->ack_wait_ms, 30'000);
  EXPECT_EQ(r.source.jetstream->max_deliver, 5);
  EXPECT_TRUE(r.source.jetstream->backoff_ms.empty());
  EXPECT_EQ(r.source.jetstream->batch, 64);
  EXPECT_EQ(r.source.jetstream->max_ack_pending, 1024);
  EXPECT_FALSE(r.filter.has_value());
  EXPECT_TRUE(r.transform.empty());
  EXPECT_FALSE(r.dead_letter.has_value());
  EXPECT_EQ(r.max_payload_bytes, 1 << 20);
}

TEST(LoadYaml, NoJetStreamMeansCoreNats) {
  Loaded l = Load(R"yaml(routes:
  - name: core
    source: {subject: a}
    destinations: [{subject: b}]
)yaml");
  ASSERT_TRUE(l.ok) << ::testing::PrintToString(Describe(l.errors));
  ASSERT_EQ(l.set.routes.size(), 1u);
  EXPECT_FALSE(l.set.routes[0].source.jetstream.has_value());
  EXPECT_TRUE(l.set.transforms.empty());
}

TEST(LoadYaml, ListShapeTransformAndTests) {
  Loaded l = Load(kEverything);
  ASSERT_TRUE(l.ok);
  ASSERT_EQ(l.set.transforms.size(), 1u);
  const TransformSpec& t = l.set.transforms[0];
  EXPECT_EQ(t.name, "normalize");
  ExpectLocation(t.at, 46, 5);
  ASSERT_EQ(t.steps.size(), 1u);
  EXPECT_EQ(t.steps[0].kind, StepSpec::Kind::Set);
  ASSERT_EQ(t.steps[0].set.size(), 1u);
  EXPECT_EQ(t.steps[0].set[0].first, "region");
  EXPECT_EQ(t.steps[0].set[0].second.text, "event.region.upperAscii()");
  ExpectLocation(t.steps[0].set[0].second.at, 49, 19);

  ASSERT_EQ(t.tests.size(), 3u);
  const TransformTest& typed = t.tests[0];
  EXPECT_EQ(typed.name, "typed data");
  ExpectLocation(typed.at, 51, 9);
  EXPECT_EQ(typed.input.subject, "orders.eu.created");
  EXPECT_EQ(typed.input.headers,
            (std::vector<std::pair<std::string, std::string>>{{"x-a", "1"}, {"x-b", "two"}}));
  // Plain scalars are typed; quoted ones stay strings ("8", 'x').
  EXPECT_EQ(typed.input.payload,
            R"({"id":7,"s":"x","q":"8","n":null,"t":null,"b":true,"f":1.5,"l":[1,"2",{"k":"v"}]})");
  EXPECT_EQ(typed.expect_json, std::optional<std::string>(R"({"id":7})"));
  EXPECT_FALSE(typed.expect_error.has_value());

  const TransformTest& raw = t.tests[1];
  EXPECT_EQ(raw.name, "raw input");
  EXPECT_EQ(raw.input.subject, "test");  // the default subject
  EXPECT_TRUE(raw.input.headers.empty());
  EXPECT_EQ(raw.input.payload, "not json");
  EXPECT_FALSE(raw.expect_json.has_value());
  EXPECT_EQ(raw.expect_error, std::optional<std::string>("boom"));

  const TransformTest& none = t.tests[2];
  EXPECT_EQ(none.input.payload, "null");
  EXPECT_EQ(none.expect_json, std::optional<std::string>("null"));
}

// The Kubernetes shape: one object per document, as `kubectl apply -f` takes them.
constexpr std::string_view kObjects = R"yaml(apiVersion: switchboard.dev/v1alpha1
kind: EventRouter
metadata:
  name: fleet
spec:
  replicas: 3
  anything: [goes, here]
---
apiVersion: switchboard.dev/v1alpha1
kind: EventRoute
metadata:
  name: k8s-route
  namespace: default
spec:
  router: fleet
  source:
    subject: orders.*
    queueGroup: q
    jetstream:
      stream: ORDERS
      ackWait: 250ms
      backoff: [1s, 2s]
  filter: event.ok
  transform:
    - use: k8s-transform
  destinations:
    - subject: out
  deadLetter:
    subject: dlq
  maxPayloadBytes: 100
---
apiVersion: switchboard.dev/v1alpha1
kind: EventTransform
metadata:
  name: k8s-transform
spec:
  steps:
    - remove: secret
  tests:
    - name: drops the secret
      input:
        data: {secret: 1, keep: 2}
      expect:
        data: {keep: 2}
)yaml";

TEST(LoadYaml, KubernetesObjects) {
  Loaded l = Load(kObjects);
  ASSERT_TRUE(l.ok) << ::testing::PrintToString(Describe(l.errors));
  // The EventRouter document is the controller's business, not a route.
  ASSERT_EQ(l.set.routes.size(), 1u);
  ASSERT_EQ(l.set.transforms.size(), 1u);

  const RouteSpec& r = l.set.routes[0];
  EXPECT_EQ(r.name, "k8s-route");  // from metadata.name
  EXPECT_EQ(r.router, "fleet");
  ExpectLocation(r.at, 15, 3);
  EXPECT_EQ(r.source.subject.text, "orders.*");
  ExpectLocation(r.source.subject.at, 17, 14);
  EXPECT_EQ(r.source.queue_group, "q");
  ASSERT_TRUE(r.source.jetstream.has_value());
  EXPECT_EQ(r.source.jetstream->stream, "ORDERS");
  EXPECT_EQ(r.source.jetstream->durable, "k8s-route");
  EXPECT_EQ(r.source.jetstream->ack_wait_ms, 250);
  EXPECT_EQ(r.source.jetstream->backoff_ms, (std::vector<int64_t>{1'000, 2'000}));
  ASSERT_TRUE(r.filter.has_value());
  EXPECT_EQ(r.filter->text, "event.ok");
  ExpectLocation(r.filter->at, 23, 11);
  ASSERT_EQ(r.transform.size(), 1u);
  EXPECT_EQ(r.transform[0].use, "k8s-transform");
  ASSERT_EQ(r.destinations.size(), 1u);
  EXPECT_EQ(r.destinations[0].subject.text, "out");
  EXPECT_EQ(r.dead_letter, std::optional<std::string>("dlq"));
  EXPECT_EQ(r.max_payload_bytes, 100);

  const TransformSpec& t = l.set.transforms[0];
  EXPECT_EQ(t.name, "k8s-transform");
  ASSERT_EQ(t.steps.size(), 1u);
  EXPECT_EQ(t.steps[0].kind, StepSpec::Kind::Remove);
  EXPECT_EQ(t.steps[0].remove, (std::vector<std::string>{"secret"}));
  ASSERT_EQ(t.tests.size(), 1u);
  EXPECT_EQ(t.tests[0].name, "drops the secret");
  EXPECT_EQ(t.tests[0].input.payload, R"({"secret":1,"keep":2})");
  EXPECT_EQ(t.tests[0].expect_json, std::optional<std::string>(R"({"keep":2})"));
}

TEST(LoadYaml, EmptyDocumentsAreSkipped) {
  Loaded l = Load("---\n---\n# only a comment\n");
  EXPECT_TRUE(l.ok);
  EXPECT_TRUE(l.errors.empty());
  EXPECT_TRUE(l.set.routes.empty());
  EXPECT_TRUE(l.set.transforms.empty());
}

TEST(LoadYaml, AppendsToWhatTheSetHolds) {
  RouteSet set;
  std::vector<SpecError> errors;
  ASSERT_TRUE(load_yaml("routes: [{name: a, source: {subject: a}, destinations: [{subject: b}]}]",
                        "one.yaml", set, errors));
  ASSERT_TRUE(load_yaml("routes: [{name: b, source: {subject: a}, destinations: [{subject: b}]}]",
                        "two.yaml", set, errors));
  ASSERT_EQ(set.routes.size(), 2u);
  EXPECT_EQ(set.routes[0].name, "a");
  EXPECT_EQ(set.routes[0].at.file, "one.yaml");
  EXPECT_EQ(set.routes[1].name, "b");
  EXPECT_EQ(set.routes[1].at.file, "two.yaml");
}

TEST(LoadYaml, UnknownRouteFieldSuggestsTheClosest) {
  EXPECT_EQ(Errors(R"yaml(routes:
  - name: a
    source:
      subject: a.b
    filtr: 'true'
    destinations:
      - subject: c
)yaml"),
            (std::vector<std::string>{
                "routes.yaml:5:5 [route 'a'] filtr: unknown field 'filtr' (did you mean 'filter'?)"}));
}

TEST(LoadYaml, UnknownFieldWithoutACloseMatch) {
  EXPECT_EQ(Errors(R"yaml(routes:
  - name: a
    source: {subject: a.b}
    destinations: [{subject: c}]
    xyzzy: 1
)yaml"),
            (std::vector<std::string>{"routes.yaml:5:5 [route 'a'] xyzzy: unknown field 'xyzzy'"}));
}

TEST(LoadYaml, UnknownNestedFields) {
  EXPECT_EQ(
      Errors(R"yaml(routes:
  - name: a
    source:
      subjct: a.b
    destinations:
      - subject: c
        header: {}
  - name: b
    source:
      subject: a.b
      jetstream:
        stream: S
        ackwait: 1s
    transform:
      - sett: {x: '1'}
    destinations:
      - subject: c
    deadLetter:
      subj: d
)yaml"),
      (std::vector<std::string>{
          "routes.yaml:4:7 [route 'a'] source.subjct: unknown field 'subjct' (did you mean 'subject'?)",
          "routes.yaml:7:9 [route 'a'] destinations[0].header: unknown field 'header' (did you mean "
          "'headers'?)",
          "routes.yaml:13:9 [route 'b'] source.jetstream.ackwait: unknown field 'ackwait' (did you "
          "mean 'ackWait'?)",
          "routes.yaml:15:9 [route 'b'] transform[0].sett: unknown field 'sett' (did you mean 'set'?)",
          // Too far from 'subject' for a suggestion.
          "routes.yaml:19:7 [route 'b'] deadLetter.subj: unknown field 'subj'",
      }));
}

TEST(LoadYaml, UnknownTopLevelAndTransformFields) {
  EXPECT_EQ(Errors("route: []\n"),
            (std::vector<std::string>{
                "routes.yaml:1:1 [] route: unknown field 'route' (did you mean 'routes'?)"}));
  EXPECT_EQ(Errors(R"yaml(transforms:
  - name: t
    step:
      - remove: x
)yaml"),
            (std::vector<std::string>{
                "routes.yaml:3:5 [transform 't'] step: unknown field 'step' (did you mean 'steps'?)",
                "routes.yaml:2:5 [transform 't'] steps: is required",
            }));
  EXPECT_EQ(Errors(R"yaml(transforms:
  - name: t
    steps: [{remove: x}]
    tests:
      - name: c
        input: {subjet: a, data: 1}
        expect: {data: 1}
)yaml"),
            (std::vector<std::string>{
                "routes.yaml:6:17 [transform 't'] tests[0].input.subjet: unknown field 'subjet' (did "
                "you mean 'subject'?)"}));
}

TEST(LoadYaml, RenderedUnknownField) {
  Loaded l = Load("routes:\n  - name: a\n    source: {subject: a}\n    destinations: [{subject: b}]\n"
                  "    filtr: x\n");
  ASSERT_EQ(l.errors.size(), 1u);
  EXPECT_EQ(l.errors[0].render(),
            "routes.yaml:5:5: route 'a', filtr: unknown field 'filtr' (did you mean 'filter'?)");
}

TEST(LoadYaml, MissingRequiredFields) {
  EXPECT_EQ(Errors(R"yaml(routes:
  - name: no-source
    destinations: [{subject: c}]
  - name: no-destinations
    source: {subject: a}
  - source: {subject: a}
    destinations: [{subject: c}]
  - name: no-subject
    source: {queueGroup: q}
    destinations: [{}]
  - name: no-stream
    source: {subject: a, jetstream: {durable: d}}
    destinations: [{subject: c}]
    deadLetter: {}
)yaml"),
            (std::vector<std::string>{
                "routes.yaml:2:5 [route 'no-source'] source: is required",
                "routes.yaml:4:5 [route 'no-destinations'] destinations: needs at least one destination",
                // An absent key has no position of its own.
                "routes.yaml:0:0 [route routes[2]] name: is required",
                "routes.yaml:0:0 [route 'no-subject'] source.subject: is required",
                "routes.yaml:0:0 [route 'no-subject'] destinations[0].subject: is required",
                "routes.yaml:0:0 [route 'no-stream'] source.jetstream.stream: is required",
                "routes.yaml:0:0 [route 'no-stream'] deadLetter.subject: is required",
            }));
}

TEST(LoadYaml, EmptyRequiredStrings) {
  EXPECT_EQ(Errors(R"yaml(routes:
  - name: ""
    source: {subject: ''}
    destinations: [{subject: c}]
)yaml"),
            (std::vector<std::string>{
                "routes.yaml:2:12 [route routes[0]] name: must not be empty",
                "routes.yaml:3:24 [route routes[0]] source.subject: must not be empty",
            }));
}

TEST(LoadYaml, WrongTypes) {
  EXPECT_EQ(Errors(R"yaml(routes:
  - name: a
    source:
      subject: [a, b]
      jetstream:
        stream: S
        ackWait: soon
        maxDeliver: 0
        backoff: 1s
        batch: 4097
        maxAckPending: many
    filter: {x: 1}
    transform: {set: {}}
    destinations:
      - subject: c
        headers: [x]
        jetstream: maybe
    maxPayloadBytes: 1.5
  - name: b
    source: orders
    destinations: {subject: c}
  - name: c
    source: {subject: a, jetstream: {stream: S, ackWait: -1s, backoff: [1s, later]}}
    transform:
      - set: []
      - remove: {a: b}
      - rename: [a]
      - payload: [a]
      - use: {a: b}
      - 7
    destinations: [{subject: c}]
    maxPayloadBytes: 67108865
)yaml"),
            (std::vector<std::string>{
                "routes.yaml:4:16 [route 'a'] source.subject: expected a string",
                "routes.yaml:7:18 [route 'a'] source.jetstream.ackWait: expected a duration such as "
                "30s, 1m or 250ms, more than 0, at most 8760h",
                "routes.yaml:8:21 [route 'a'] source.jetstream.maxDeliver: expected an integer from 1 "
                "to 1000",
                "routes.yaml:10:16 [route 'a'] source.jetstream.batch: expected an integer from 1 to "
                "4096",
                "routes.yaml:11:24 [route 'a'] source.jetstream.maxAckPending: expected an integer "
                "from 1 to 1000000",
                "routes.yaml:9:18 [route 'a'] source.jetstream.backoff: expected a list of durations",
                "routes.yaml:12:13 [route 'a'] filter: expected a string",
                "routes.yaml:13:16 [route 'a'] transform: expected a list of steps",
                "routes.yaml:17:20 [route 'a'] destinations[0].jetstream: expected true or false",
                "routes.yaml:16:18 [route 'a'] destinations[0].headers: expected a mapping of header "
                "names to expressions",
                "routes.yaml:18:22 [route 'a'] maxPayloadBytes: expected an integer from 1 to "
                "67108864",
                "routes.yaml:20:13 [route 'b'] source: expected a mapping",
                "routes.yaml:21:19 [route 'b'] destinations: needs at least one destination",
                "routes.yaml:23:58 [route 'c'] source.jetstream.ackWait: expected a duration such as "
                "30s, 1m or 250ms, more than 0, at most 8760h",
                "routes.yaml:23:77 [route 'c'] source.jetstream.backoff[1]: expected a duration such "
                "as 30s, 1m or 250ms, at most 8760h",
                "routes.yaml:25:14 [route 'c'] transform[0].set: expected a mapping of field paths to "
                "expressions",
                "routes.yaml:26:17 [route 'c'] transform[1].remove: expected a field path or a list "
                "of field paths",
                "routes.yaml:27:17 [route 'c'] transform[2].rename: expected a mapping of old field "
                "paths to new ones",
                "routes.yaml:28:18 [route 'c'] transform[3].payload: expected a string",
                "routes.yaml:29:14 [route 'c'] transform[4].use: expected a string",
                "routes.yaml:30:9 [route 'c'] transform[5]: expected a mapping",
                "routes.yaml:32:22 [route 'c'] maxPayloadBytes: expected an integer from 1 to "
                "67108864",
            }));
}

TEST(LoadYaml, DocumentAndListTypes) {
  EXPECT_EQ(Errors("- a\n- b\n"),
            (std::vector<std::string>{"routes.yaml:1:1 [] : expected a mapping with routes and "
                                      "transforms, or a Kubernetes object"}));
  EXPECT_EQ(Errors("routes: {name: a}\ntransforms: x\n"),
            (std::vector<std::string>{"routes.yaml:1:9 [] routes: expected a list",
                                      "routes.yaml:2:13 [] transforms: expected a list"}));
}

TEST(LoadYaml, DuplicateNames) {
  EXPECT_EQ(Errors(R"yaml(routes:
  - name: twice
    source: {subject: a}
    destinations: [{subject: b}]
  - name: twice
    source: {subject: c}
    destinations: [{subject: d}]
transforms:
  - name: t
    steps: [{remove: x}]
  - name: t
    steps: [{remove: y}]
)yaml"),
            (std::vector<std::string>{
                "routes.yaml:5:5 [route 'twice'] name: is used by another route",
                "routes.yaml:11:5 [transform 't'] name: is used by another transform",
            }));
}

TEST(LoadYaml, DuplicateNamesAcrossShapes) {
  EXPECT_EQ(Errors(R"yaml(routes:
  - name: same
    source: {subject: a}
    destinations: [{subject: b}]
---
apiVersion: switchboard.dev/v1alpha1
kind: EventRoute
metadata: {name: same}
spec:
  source: {subject: a}
  destinations: [{subject: b}]
)yaml"),
            (std::vector<std::string>{"routes.yaml:10:3 [route 'same'] name: is used by another route"}));
}

TEST(LoadYaml, InvalidYaml) {
  Loaded l = Load("routes:\n  - name: a\n    source: {subject: a\n");
  EXPECT_FALSE(l.ok);
  ASSERT_EQ(l.errors.size(), 1u);
  EXPECT_EQ(l.errors[0].at.file, "routes.yaml");
  EXPECT_EQ(l.errors[0].at.line, 4);
  EXPECT_EQ(l.errors[0].at.column, 1);
  EXPECT_EQ(l.errors[0].object, "");
  EXPECT_EQ(l.errors[0].field, "");
  EXPECT_EQ(l.errors[0].message, "invalid YAML: end of map flow not found");

  EXPECT_EQ(Errors("routes:\n  - name: a\n   bad: indentation\n"),
            (std::vector<std::string>{"routes.yaml:3:4 [] : invalid YAML: end of sequence not found"}));
}

TEST(LoadYaml, StepWithTwoKinds) {
  EXPECT_EQ(Errors(R"yaml(routes:
  - name: a
    source: {subject: a}
    transform:
      - set: {x: '1'}
        remove: y
      - {}
    destinations: [{subject: b}]
)yaml"),
            (std::vector<std::string>{
                "routes.yaml:5:9 [route 'a'] transform[0]: a step has exactly one of set, remove, "
                "rename, payload, use",
                "routes.yaml:7:9 [route 'a'] transform[1]: a step has exactly one of set, remove, "
                "rename, payload, use",
            }));
}

TEST(LoadYaml, WrongApiVersionAndKind) {
  EXPECT_EQ(Errors(R"yaml(apiVersion: switchboard.dev/v1
kind: EventRoute
metadata: {name: a}
spec: {source: {subject: a}, destinations: [{subject: b}]}
)yaml"),
            (std::vector<std::string>{
                "routes.yaml:1:13 [] apiVersion: expected switchboard.dev/v1alpha1, found "
                "switchboard.dev/v1"}));
  EXPECT_EQ(Errors(R"yaml(apiVersion: switchboard.dev/v1alpha1
kind: EventRoutes
metadata: {name: a}
)yaml"),
            (std::vector<std::string>{
                "routes.yaml:2:7 [] kind: expected EventRoute or EventTransform, found EventRoutes"}));
  EXPECT_EQ(Errors("kind: EventRoute\nmetadata: {name: a}\n"),
            (std::vector<std::string>{"routes.yaml:0:0 [] apiVersion: is required"}));
}

TEST(LoadYaml, KubernetesObjectNeedsNameAndSpec) {
  EXPECT_EQ(Errors(R"yaml(apiVersion: switchboard.dev/v1alpha1
kind: EventRoute
metadata: {namespace: x}
spec: {source: {subject: a}, destinations: [{subject: b}]}
---
apiVersion: switchboard.dev/v1alpha1
kind: EventTransform
metadata: {name: t}
)yaml"),
            (std::vector<std::string>{
                "routes.yaml:1:1 [EventRoute] metadata.name: is required",
                "routes.yaml:6:1 [EventTransform 't'] spec: is required",
            }));
}

TEST(LoadYaml, KubernetesSpecErrorsNameTheObject) {
  EXPECT_EQ(Errors(R"yaml(apiVersion: switchboard.dev/v1alpha1
kind: EventRoute
metadata: {name: k}
spec:
  name: not-here
  source: {subject: a}
  destinations: [{subject: b}]
)yaml"),
            (std::vector<std::string>{
                "routes.yaml:5:3 [route 'k'] name: unknown field 'name'"}));
}

TEST(LoadYaml, TransformTestShape) {
  EXPECT_EQ(Errors(R"yaml(transforms:
  - name: t
    steps: [{remove: x}]
    tests:
      - name: both
        input: {data: 1, raw: "1"}
        expect: {data: 1}
      - name: two expectations
        input: {data: 1}
        expect: {data: 1, error: x}
      - name: no expectation
        input: {data: 1}
      - name: no input
        expect: {data: 1}
)yaml"),
            (std::vector<std::string>{
                "routes.yaml:6:16 [transform 't'] tests[0].input: give either data or raw, not both",
                "routes.yaml:10:17 [transform 't'] tests[1].expect: expects exactly one of data or "
                "error",
                "routes.yaml:11:9 [transform 't'] tests[2].expect: expects exactly one of data or "
                "error",
                "routes.yaml:13:9 [transform 't'] tests[3].input: is required",
            }));
}

TEST(LoadYaml, FileThatCannotBeRead) {
  RouteSet set;
  std::vector<SpecError> errors;
  EXPECT_FALSE(load_yaml_file("/nonexistent/routes.yaml", set, errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].render(), "/nonexistent/routes.yaml: cannot read the file");
}

TEST(LoadRouteSpecYaml, ParsesOneSpec) {
  RouteSpec r;
  std::vector<SpecError> errors;
  ASSERT_TRUE(load_route_spec_yaml("source:\n  subject: a.*\nfilter: 'event.x'\ndestinations:\n"
                                   "  - subject: b\n",
                                   "from-metadata", r, errors));
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(r.name, "from-metadata");
  EXPECT_EQ(r.source.subject.text, "a.*");
  ASSERT_TRUE(r.filter.has_value());
  EXPECT_EQ(r.filter->text, "event.x");
  EXPECT_EQ(r.filter->at.file, "");
  EXPECT_EQ(r.filter->at.line, 3);
  EXPECT_EQ(r.filter->at.column, 10);
}

TEST(LoadRouteSpecYaml, Errors) {
  RouteSpec r;
  std::vector<SpecError> errors;
  EXPECT_FALSE(load_route_spec_yaml("name: x\nsource: {subject: a}\ndestinations: [{subject: b}]\n",
                                    "k", r, errors));
  EXPECT_EQ(Describe(errors),
            (std::vector<std::string>{":1:1 [route 'k'] name: unknown field 'name'"}));
  errors.clear();
  EXPECT_FALSE(load_route_spec_yaml("source: [", "k", r, errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].object, "route 'k'");
  EXPECT_EQ(errors[0].field, "spec");
  EXPECT_EQ(errors[0].message.rfind("invalid YAML: ", 0), 0u) << errors[0].message;
}

TEST(ParseDuration, Valid) {
  int64_t ms = -1;
  EXPECT_TRUE(parse_duration_ms("30s", ms));
  EXPECT_EQ(ms, 30'000);
  EXPECT_TRUE(parse_duration_ms("250ms", ms));
  EXPECT_EQ(ms, 250);
  EXPECT_TRUE(parse_duration_ms("1m30s", ms));
  EXPECT_EQ(ms, 90'000);
  EXPECT_TRUE(parse_duration_ms("1h", ms));
  EXPECT_EQ(ms, 3'600'000);
  EXPECT_TRUE(parse_duration_ms("1.5s", ms));
  EXPECT_EQ(ms, 1'500);
  EXPECT_TRUE(parse_duration_ms("0s", ms));
  EXPECT_EQ(ms, 0);
}

TEST(ParseDuration, Invalid) {
  for (const char* text : {"", "30", "s", "-1s", "soon", "1 s", "1d"}) {
    int64_t ms = 42;
    EXPECT_FALSE(parse_duration_ms(text, ms)) << text;
    EXPECT_EQ(ms, 42) << text;
  }
}

TEST(SpecError, Render) {
  SpecError e{Location{"routes.yaml", 12, 13}, "route 'x'", "filter", "bad", " | a\n | ^"};
  EXPECT_EQ(e.render(), "routes.yaml:12:13: route 'x', filter: bad\n | a\n | ^");
  e.snippet.clear();
  e.field.clear();
  EXPECT_EQ(e.render(), "routes.yaml:12:13: route 'x': bad");
  e.at.line = 0;
  EXPECT_EQ(e.render(), "routes.yaml: route 'x': bad");
  e.at.file.clear();
  e.object.clear();
  EXPECT_EQ(e.render(), "bad");
}

}  // namespace
// Regression: yaml-cpp 0.7's LoadAll never returned on a file holding just ",", allocating
// until memory ran out (found by tests/fuzz/route_fuzz.cc). Documents are now loaded one
// at a time.
TEST(LoadYaml, LoneCommaDoesNotHang) {
  Loaded l = Load(",");
  EXPECT_TRUE(l.ok);
  EXPECT_TRUE(l.errors.empty());
}

// Regression: bytes that are not UTF-8 reached the canonical JSON of the table.
TEST(LoadYaml, RefusesInvalidUtf8) {
  EXPECT_EQ(Errors("routes:\n  - name: caf\xe9\n"),
            (std::vector<std::string>{"routes.yaml:2:1 [] : the file is not valid UTF-8"}));
}

TEST(LoadYaml, LineNumbersCountAcrossDocuments) {
  EXPECT_EQ(Errors("apiVersion: switchboard.dev/v1alpha1\nkind: EventTransform\n"
                   "metadata: {name: t}\nspec: {steps: [{set: {a: '1'}}]}\n---\n"
                   "apiVersion: switchboard.dev/v1alpha1\nkind: EventRoute\nmetadata: {name: r}\n"
                   "spec:\n  source: {subject: a}\n  filtr: x\n  destinations: [{subject: b}]\n"),
            (std::vector<std::string>{
                "routes.yaml:11:3 [route 'r'] filtr: unknown field 'filtr' (did you mean 'filter'?)"}));
}

}  // namespace switchboard::route
