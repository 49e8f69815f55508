// EventRoutes and EventTransforms through the routing core: the same meaning as the same
// text in a routes file, refusal reasons with positions, transform tests, selection, and
// the table a router gets.
#include <gtest/gtest.h>

#include "controller/specs.h"
#include "controller/tests/objects.h"
#include "core/route/spec_yaml.h"

namespace switchboard::controller {
namespace {

using testing::parse;
using testing::route_object;
using testing::router_object;
using testing::simple_spec;
using testing::transform_object;

const char* kNormalize = R"js({"steps":[{"set":{"region":"event.region.upperAscii()"}}],
  "tests":[{"name":"upper-cases the region","input":{"subject":"test","data":{"region":"eu"}},"expect":{"data":{"region":"EU"}}},
           {"name":"needs a region","input":{"subject":"test","data":{}},"expect":{"error":"no such key"}}]})js";

TEST(Specs, AnEventRouteMeansWhatTheSameFileMeans) {
  const std::string file = R"(
routes:
  - name: large-orders
    router: orders
    source:
      subject: orders.*.created
      jetstream: {stream: ORDERS, ackWait: 30s, maxDeliver: 5, backoff: [1s, 10s]}
    filter: 'event.amount >= 100.0 && headers["x-tenant"] == "acme"'
    transform:
      - set: {region: 'event.region.upperAscii()', total: 'event.amount * 1.2'}
      - remove: [pad, internal]
      - rename: {type: kind}
      - use: normalize
    destinations:
      - subject: 'orders.{{ event.region }}.large'
        headers: {x-routed-by: '"switchboard"'}
    deadLetter: {subject: dlq.orders}
transforms:
  - name: normalize
    steps:
      - set: {region: 'event.region.upperAscii()'}
)";
  route::RouteSet from_file;
  std::vector<route::SpecError> errors;
  ASSERT_TRUE(route::load_yaml(file, "routes.yaml", from_file, errors));

  // The same route as the API server returns it: JSON, keys sorted, defaults filled in.
  Json route = route_object("large-orders", R"js({
    "deadLetter":{"subject":"dlq.orders"},
    "destinations":[{"headers":{"x-routed-by":"\"switchboard\""},"jetstream":false,"subject":"orders.{{ event.region }}.large"}],
    "filter":"event.amount >= 100.0 && headers[\"x-tenant\"] == \"acme\"",
    "maxPayloadBytes":1048576,
    "router":"orders",
    "source":{"jetstream":{"ackWait":"30s","backoff":["1s","10s"],"batch":64,"maxAckPending":1024,"maxDeliver":5,"stream":"ORDERS"},
              "subject":"orders.*.created"},
    "transform":[{"set":{"region":"event.region.upperAscii()","total":"event.amount * 1.2"}},{"remove":["pad","internal"]},
                 {"rename":{"type":"kind"}},{"use":"normalize"}]})js");
  TransformIndex transforms = load_transforms({transform_object("normalize", kNormalize)});
  RouteCheck check = check_route(route, transforms);
  ASSERT_TRUE(check.ok) << check.message;
  route::RouteSet from_object;
  from_object.routes.push_back(check.spec);
  from_object.transforms.push_back(transforms.at("normalize").spec);
  EXPECT_EQ(route::canonical_json(from_object), route::canonical_json(from_file));
  EXPECT_EQ(check.uses, std::vector<std::string>{"normalize"});
}

TEST(Specs, ObjectDocumentIsReadableYaml) {
  Json route = route_object("r", R"({"source":{"subject":"a.b"},"filter":"subject == 'a.b'",
                                     "destinations":[{"subject":"out"}]})");
  EXPECT_EQ(object_document(route, "EventRoute"),
            "apiVersion: switchboard.dev/v1alpha1\n"
            "kind: EventRoute\n"
            "metadata:\n"
            "  name: r\n"
            "spec:\n"
            "  destinations:\n"
            "    - subject: out\n"
            "  filter: \"subject == 'a.b'\"\n"
            "  source:\n"
            "    subject: a.b\n");
}

TEST(Specs, StringsSurviveEveryQuotingStyle) {
  // Whatever a string holds, the document reads back as the same string.
  for (std::string s : {"plain", "true", "123", "a: b", "it's", "say \"hi\"", "both ' and \"", "multi\nline",
                        "trailing\n", "two\n\n", " leading space", "tab\there", "ctrl\x01", "back\\slash",
                        "# comment", "- dash", "null", "~", "é ü 😀"}) {
    Json route = route_object("r", R"({"source":{"subject":"a"},"destinations":[{"subject":"out"}]})");
    route["spec"]["filter"] = str(s);
    route::RouteSet set;
    std::vector<route::SpecError> errors;
    ASSERT_TRUE(route::load_yaml(object_document(route, "EventRoute"), "x", set, errors)) << s;
    ASSERT_EQ(set.routes.size(), 1u);
    ASSERT_TRUE(set.routes[0].filter.has_value()) << s;
    EXPECT_EQ(set.routes[0].filter->text, s);
  }
}

TEST(Specs, InvalidFilterPointsIntoTheExpression) {
  const std::string expr = "event.amount >= 100 && nosuchvar";
  Json route = route_object("bad", R"({"source":{"subject":"a"},"destinations":[{"subject":"out"}]})");
  route["spec"]["filter"] = str(expr);
  RouteCheck c = check_route(route, {});
  ASSERT_FALSE(c.ok);
  EXPECT_EQ(c.reason, "InvalidFilter");
  // Line 8 is `  filter: "..."`; the expression starts at column 12.
  const std::string at = "eventroute/bad:8:" + std::to_string(12 + expr.find("nosuchvar")) + ": route 'bad', filter: ";
  EXPECT_EQ(c.message.rfind(at, 0), 0u) << c.message;
  EXPECT_NE(c.message.find("^"), std::string::npos) << c.message;

  // Both kinds of quote: a literal block, and the position is still exact.
  const std::string quoted = "headers[\"x\"] == 'a' && nosuchvar";
  route["spec"]["filter"] = str(quoted);
  c = check_route(route, {});
  ASSERT_FALSE(c.ok);
  const std::string block_at =
      "eventroute/bad:9:" + std::to_string(5 + quoted.find("nosuchvar")) + ": route 'bad', filter: ";
  EXPECT_EQ(c.message.rfind(block_at, 0), 0u) << c.message;

  // A second line of a multi-line filter.
  route["spec"]["filter"] = str("event.amount >= 100 &&\n  nosuchvar");
  c = check_route(route, {});
  ASSERT_FALSE(c.ok);
  EXPECT_EQ(c.message.rfind("eventroute/bad:10:7: route 'bad', filter: ", 0), 0u) << c.message;
}

struct ReasonCase {
  const char* spec;
  const char* reason;
  const char* says;
};

TEST(Specs, EachMistakeHasItsReason) {
  const ReasonCase cases[] = {
      {R"({"source":{"subject":"a"},"transform":[{"set":{"x":"event."}}],"destinations":[{"subject":"out"}]})",
       "InvalidTransform", "transform[0].set.x"},
      {R"({"source":{"subject":"a"},"transform":[{"use":"normalise"}],"destinations":[{"subject":"out"}]})",
       "UnknownTransform", "did you mean 'normalize'"},
      {R"({"source":{"subject":"a"},"destinations":[{"subject":"orders.{{ event. }}"}]})", "InvalidDestination",
       "destinations[0].subject"},
      {R"({"source":{"subject":"a"},"destinations":[{"subject":"out","headers":{"x":"1 +"}}]})",
       "InvalidDestination", "destinations[0].headers.x"},
      {R"({"source":{"subject":"a"},"destinations":[{"subject":"out"}],"deadLetter":{"subject":"dlq.*"}})",
       "InvalidDeadLetter", "deadLetter.subject"},
      {R"({"source":{"subject":"a..b"},"destinations":[{"subject":"out"}]})", "InvalidSource", "source.subject"},
      {R"({"source":{"subject":"a"},"filtr":"true","destinations":[{"subject":"out"}]})", "InvalidSpec",
       "did you mean 'filter'"},
      {R"({"source":{"subject":"a"},"destinations":[]})", "InvalidDestination", "at least one destination"},
  };
  TransformIndex transforms = load_transforms({transform_object("normalize", kNormalize)});
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.spec);
    RouteCheck c = check_route(route_object("r", tc.spec), transforms);
    EXPECT_FALSE(c.ok);
    EXPECT_EQ(c.reason, tc.reason) << c.message;
    EXPECT_NE(c.message.find(tc.says), std::string::npos) << c.message;
    EXPECT_NE(c.message.find("eventroute/r:"), std::string::npos) << c.message;
  }
}

TEST(Specs, ARouteUsingABrokenTransformIsRefused) {
  TransformIndex transforms =
      load_transforms({transform_object("normalize", R"({"steps":[{"set":{"region":"event.region.("}}]})"),
                       transform_object("other", R"({"steps":[{"remove":["x"]}]})")});
  RouteCheck c = check_route(
      route_object("r", R"({"source":{"subject":"a"},"transform":[{"use":"normalize"}],"destinations":[{"subject":"o"}]})"),
      transforms);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.reason, "InvalidTransform");
  EXPECT_NE(c.message.find("transform 'normalize'"), std::string::npos) << c.message;
  EXPECT_NE(c.message.find("eventtransform/normalize:"), std::string::npos) << c.message;
  // An unrelated broken transform does not touch a route that does not use it.
  transforms = load_transforms({transform_object("broken", R"({"steps":[{"set":{"a":"("}}]})")});
  EXPECT_TRUE(check_route(route_object("r", simple_spec()), transforms).ok);
  // Nor does it when a misspelt use makes the compiler look at every transform.
  c = check_route(
      route_object("r", R"({"source":{"subject":"a"},"transform":[{"use":"brokn"}],"destinations":[{"subject":"o"}]})"),
      transforms);
  EXPECT_EQ(c.reason, "UnknownTransform") << c.message;
  EXPECT_EQ(c.message.find("transform 'broken',"), std::string::npos) << c.message;
}

TEST(Specs, TransformTestsRunAndFailuresShowTheDifference) {
  TransformCheck ok = check_transform(transform_object("normalize", kNormalize));
  EXPECT_TRUE(ok.compiled) << ok.message;
  ASSERT_EQ(ok.results.size(), 2u);
  EXPECT_EQ(ok.passed, 2);

  TransformCheck failing = check_transform(transform_object("normalize", R"({"steps":[{"set":{"region":"event.region"}}],
    "tests":[{"name":"upper-cases","input":{"data":{"region":"eu"}},"expect":{"data":{"region":"EU"}}},
             {"name":"fails","input":{"data":{}},"expect":{"error":"no such key"}}]})"));
  EXPECT_TRUE(failing.compiled);
  EXPECT_EQ(failing.passed, 1);
  ASSERT_EQ(failing.results.size(), 2u);
  EXPECT_FALSE(failing.results[0].passed);
  EXPECT_EQ(failing.results[0].test, "upper-cases");
  EXPECT_NE(failing.results[0].difference.find("region"), std::string::npos) << failing.results[0].difference;
  EXPECT_NE(failing.results[0].difference.find("\"EU\""), std::string::npos) << failing.results[0].difference;

  TransformCheck broken = check_transform(transform_object("t", R"({"steps":[{"set":{"x":"1 +"}}]})"));
  EXPECT_FALSE(broken.compiled);
  EXPECT_NE(broken.message.find("eventtransform/t:"), std::string::npos) << broken.message;
  EXPECT_NE(broken.message.find("steps[0].set.x"), std::string::npos) << broken.message;

  TransformCheck uses = check_transform(transform_object("t", R"({"steps":[{"use":"other"}]})"));
  EXPECT_FALSE(uses.compiled);
}

TEST(Specs, LabelSelectors) {
  Json labels = parse(R"({"team":"orders","tier":"gold"})");
  EXPECT_TRUE(selector_matches(parse("{}"), labels));
  EXPECT_TRUE(selector_matches(parse(R"({"matchLabels":{"team":"orders"}})"), labels));
  EXPECT_FALSE(selector_matches(parse(R"({"matchLabels":{"team":"billing"}})"), labels));
  EXPECT_TRUE(selector_matches(parse(R"({"matchExpressions":[{"key":"tier","operator":"In","values":["gold","silver"]}]})"), labels));
  EXPECT_FALSE(selector_matches(parse(R"({"matchExpressions":[{"key":"tier","operator":"NotIn","values":["gold"]}]})"), labels));
  EXPECT_TRUE(selector_matches(parse(R"({"matchExpressions":[{"key":"x","operator":"NotIn","values":["gold"]}]})"), labels));
  EXPECT_TRUE(selector_matches(parse(R"({"matchExpressions":[{"key":"team","operator":"Exists"}]})"), labels));
  EXPECT_FALSE(selector_matches(parse(R"({"matchExpressions":[{"key":"team","operator":"DoesNotExist"}]})"), labels));
  EXPECT_FALSE(selector_matches(parse(R"({"matchExpressions":[{"key":"x","operator":"In","values":["a"]}]})"), labels));
}

TEST(Specs, WhichRouterRunsWhichRoute) {
  Json orders = router_object("orders", "shop", R"(,"routeSelector":{"matchLabels":{"team":"orders"}})");
  Json plain = router_object("plain");
  EXPECT_TRUE(router_selects(orders, route_object("a", simple_spec("orders"))));
  EXPECT_FALSE(router_selects(orders, route_object("b", simple_spec("billing"), R"({"team":"orders"})")))
      << "a route that names another router is never selected";
  EXPECT_TRUE(router_selects(orders, route_object("c", simple_spec(""), R"({"team":"orders"})")));
  EXPECT_FALSE(router_selects(orders, route_object("d", simple_spec(""), R"({"team":"billing"})")));
  EXPECT_FALSE(router_selects(plain, route_object("e", simple_spec(""), R"({"team":"orders"})")))
      << "without a routeSelector only routes that name the router";
  EXPECT_FALSE(router_selects(orders, route_object("f", simple_spec("orders"), "{}", "other-namespace")));
}

TEST(Specs, TheTableHoldsTheValidSelectedRoutesAndTheTransformsTheyUse) {
  Json router = router_object("orders", "shop", R"(,"routeSelector":{"matchLabels":{"team":"orders"}})");
  std::vector<Json> routes = {
      route_object("zeta", R"({"router":"orders","source":{"subject":"z"},"transform":[{"use":"normalize"}],"destinations":[{"subject":"o"}]})"),
      route_object("alpha", simple_spec(""), R"({"team":"orders"})"),
      route_object("broken", R"({"router":"orders","source":{"subject":"b"},"filter":"1 +","destinations":[{"subject":"o"}]})"),
      route_object("elsewhere", simple_spec("billing")),
      route_object("going", simple_spec("orders")),
  };
  routes.back()["metadata"]["deletionTimestamp"] = str("2026-01-01T00:00:00Z");
  routes[0]["metadata"]["generation"] = num(4);
  TransformIndex transforms = load_transforms({transform_object("normalize", kNormalize),
                                               transform_object("unused", R"({"steps":[{"remove":["x"]}]})")});
  RouterTable t = build_table(router, routes, transforms);
  ASSERT_TRUE(t.error.empty()) << t.error;
  ASSERT_EQ(t.set.routes.size(), 2u);
  EXPECT_EQ(t.set.routes[0].name, "alpha");  // sorted by name
  EXPECT_EQ(t.set.routes[1].name, "zeta");
  ASSERT_EQ(t.set.transforms.size(), 1u);
  EXPECT_EQ(t.set.transforms[0].name, "normalize");
  EXPECT_EQ(t.left_out, std::vector<std::string>{"broken"});
  EXPECT_EQ(t.routes, (std::map<std::string, int64_t>{{"alpha", 1}, {"zeta", 4}}));
  EXPECT_EQ(t.hash.rfind("sha256:", 0), 0u);

  // routes.json reads back, as a routes file, to the same table.
  route::RouteSet back;
  std::vector<route::SpecError> errors;
  ASSERT_TRUE(route::load_yaml(t.canonical, "routes.json", back, errors));
  auto compiled = route::RouteTable::compile(back, 1);
  ASSERT_TRUE(std::holds_alternative<std::shared_ptr<const route::RouteTable>>(compiled));
  EXPECT_EQ(std::get<std::shared_ptr<const route::RouteTable>>(compiled)->hash(), t.hash);

  // The order objects come in does not matter.
  std::reverse(routes.begin(), routes.end());
  EXPECT_EQ(build_table(router, routes, transforms).hash, t.hash);
}

}  // namespace
}  // namespace switchboard::controller
