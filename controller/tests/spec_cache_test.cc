// SpecCache: a route, a transform or a table is read again exactly when something it
// depends on changed, and what it returns is what the uncached functions return.
#include <gtest/gtest.h>

#include "controller/spec_cache.h"
#include "controller/tests/objects.h"

namespace switchboard::controller {
namespace {

using testing::route_object;
using testing::router_object;
using testing::simple_spec;
using testing::transform_object;

const char* kUsesNormalize =
    R"({"router":"orders","source":{"subject":"a"},"transform":[{"use":"normalize"}],"destinations":[{"subject":"o"}]})";
const char* kNormalize = R"js({"steps":[{"set":{"region":"event.region.upperAscii()"}}]})js";
const char* kBrokenNormalize = R"({"steps":[{"set":{"region":"event.region.("}}]})";

Json with_uid(Json o, const std::string& uid, int64_t generation = 1) {
  o["metadata"]["uid"] = str(uid);
  o["metadata"]["generation"] = num(generation);
  return o;
}

TEST(SpecCache, ARouteIsCheckedOnceWhileNothingItDependsOnChanges) {
  SpecCache cache;
  Json route = with_uid(route_object("r", simple_spec()), "u1");
  auto transforms = cache.transforms("shop", {});
  auto first = cache.check(route, *transforms);
  auto second = cache.check(route, *transforms);
  EXPECT_TRUE(first->ok);
  EXPECT_EQ(first, second) << "the same check, not a new one";
  EXPECT_EQ(cache.stats().route_checks, 1u);
  EXPECT_EQ(cache.stats().route_hits, 1u);
  // A status write or a label does not change what the route means.
  route["status"] = testing::parse(R"({"observedGeneration":1})");
  route["metadata"]["labels"] = testing::parse(R"({"team":"x"})");
  route["metadata"]["resourceVersion"] = str("77");
  EXPECT_EQ(cache.check(route, *transforms), first);
  EXPECT_EQ(cache.stats().route_checks, 1u);
}

TEST(SpecCache, AGenerationChangeChecksTheRouteAgain) {
  SpecCache cache;
  auto transforms = cache.transforms("shop", {});
  Json route = with_uid(route_object("r", simple_spec()), "u1");
  EXPECT_TRUE(cache.check(route, *transforms)->ok);
  Json edited = with_uid(
      route_object("r", R"({"router":"orders","source":{"subject":"a"},"filter":"1 +","destinations":[{"subject":"o"}]})"),
      "u1", 2);
  auto c = cache.check(edited, *transforms);
  EXPECT_FALSE(c->ok);
  EXPECT_EQ(c->reason, "InvalidFilter");
  EXPECT_EQ(cache.stats().route_checks, 2u);
  EXPECT_EQ(cache.check(edited, *transforms), c);

  // Deleted and created again under the same name and generation: another object.
  Json recreated = with_uid(route_object("r", simple_spec()), "u2", 2);
  EXPECT_TRUE(cache.check(recreated, *transforms)->ok);
  EXPECT_EQ(cache.stats().route_checks, 3u);
  // Even a spec that changed without a generation (as objects built by hand may) counts.
  Json same_generation = with_uid(route_object("r", simple_spec("orders", "other.subject")), "u2", 2);
  EXPECT_EQ(cache.check(same_generation, *transforms)->spec.source.subject.text, "other.subject");
  EXPECT_EQ(cache.stats().route_checks, 4u);
}

TEST(SpecCache, ATransformEditChecksTheRoutesThatUseItAgain) {
  SpecCache cache;
  Json uses = with_uid(route_object("uses", kUsesNormalize), "u-uses");
  Json plain = with_uid(route_object("plain", simple_spec()), "u-plain");
  auto transforms = cache.transforms("shop", {with_uid(transform_object("normalize", kNormalize), "t1")});
  EXPECT_TRUE(cache.check(uses, *transforms)->ok);
  EXPECT_TRUE(cache.check(plain, *transforms)->ok);
  EXPECT_EQ(cache.stats().route_checks, 2u);

  // The transform breaks: the route that uses it is checked again, the other is not.
  transforms = cache.transforms("shop", {with_uid(transform_object("normalize", kBrokenNormalize), "t1", 2)});
  auto c = cache.check(uses, *transforms);
  EXPECT_FALSE(c->ok);
  EXPECT_EQ(c->reason, "InvalidTransform");
  EXPECT_TRUE(cache.check(plain, *transforms)->ok);
  EXPECT_EQ(cache.stats().route_checks, 3u);

  // Fixed again: checked again, valid again.
  transforms = cache.transforms("shop", {with_uid(transform_object("normalize", kNormalize), "t1", 3)});
  EXPECT_TRUE(cache.check(uses, *transforms)->ok);
  EXPECT_EQ(cache.stats().route_checks, 4u);

  // Another transform appears: nothing to do for a route whose transforms all exist.
  transforms = cache.transforms("shop", {with_uid(transform_object("normalize", kNormalize), "t1", 3),
                                         with_uid(transform_object("other", kNormalize), "t2")});
  EXPECT_TRUE(cache.check(uses, *transforms)->ok);
  EXPECT_EQ(cache.stats().route_checks, 4u);

  // The transform is deleted: the route is checked again and says so.
  transforms = cache.transforms("shop", {with_uid(transform_object("other", kNormalize), "t2")});
  c = cache.check(uses, *transforms);
  EXPECT_FALSE(c->ok);
  EXPECT_EQ(c->reason, "UnknownTransform");
  EXPECT_EQ(cache.stats().route_checks, 5u);
}

TEST(SpecCache, AMissingTransformIsCheckedAgainWhenTransformsAppear) {
  SpecCache cache;
  Json uses = with_uid(route_object("uses", kUsesNormalize), "u-uses");
  auto transforms = cache.transforms("shop", {});
  auto c = cache.check(uses, *transforms);
  EXPECT_EQ(c->reason, "UnknownTransform");
  EXPECT_EQ(c->message.find("did you mean"), std::string::npos);

  // A transform with a near name: the "did you mean" changes, so the check runs again.
  transforms = cache.transforms("shop", {with_uid(transform_object("normalise", kNormalize), "t1")});
  c = cache.check(uses, *transforms);
  EXPECT_EQ(c->reason, "UnknownTransform");
  EXPECT_NE(c->message.find("normalise"), std::string::npos) << c->message;
  EXPECT_EQ(cache.stats().route_checks, 2u);

  // The one it names appears: valid.
  transforms = cache.transforms("shop", {with_uid(transform_object("normalise", kNormalize), "t1"),
                                         with_uid(transform_object("normalize", kNormalize), "t2")});
  EXPECT_TRUE(cache.check(uses, *transforms)->ok);
  EXPECT_EQ(cache.stats().route_checks, 3u);
}

TEST(SpecCache, TransformsAreLoadedOnlyWhenTheyChange) {
  SpecCache cache;
  std::vector<Json> objects = {with_uid(transform_object("a", kNormalize), "ta"),
                               with_uid(transform_object("b", kNormalize), "tb")};
  auto first = cache.transforms("shop", objects);
  EXPECT_EQ(cache.stats().transform_loads, 2u);
  EXPECT_EQ(cache.transforms("shop", objects), first) << "nothing changed: the same index";
  EXPECT_EQ(cache.stats().transform_loads, 2u);
  objects[1] = with_uid(transform_object("b", kBrokenNormalize), "tb", 2);
  auto second = cache.transforms("shop", objects);
  EXPECT_EQ(cache.stats().transform_loads, 3u) << "only the edited one";
  EXPECT_TRUE(second->at("a").loaded);
  EXPECT_TRUE(second->at("b").loaded);  // it reads; it does not compile
  objects.pop_back();
  EXPECT_EQ(cache.transforms("shop", objects)->count("b"), 0u) << "a deleted transform leaves the index";
  // Namespaces are apart.
  EXPECT_TRUE(cache.transforms("other", {})->empty());
}

TEST(SpecCache, ADeletedRouteLeavesTheCache) {
  SpecCache cache;
  auto transforms = cache.transforms("shop", {});
  cache.check(with_uid(route_object("r", simple_spec()), "u1"), *transforms);
  cache.check(with_uid(route_object("s", simple_spec()), "u2"), *transforms);
  EXPECT_TRUE(cache.has_route("shop/r"));
  EXPECT_EQ(cache.cached_routes(), 2u);
  cache.forget_route("shop/r");
  EXPECT_FALSE(cache.has_route("shop/r"));
  EXPECT_TRUE(cache.has_route("shop/s"));
  EXPECT_EQ(cache.cached_routes(), 1u);
}

TEST(SpecCache, ATableIsCompiledOnceWhileItsRoutesAreTheSame) {
  SpecCache cache;
  Json router = router_object();
  std::vector<Json> routes = {with_uid(route_object("b", simple_spec("orders", "b.>")), "ub"),
                              with_uid(route_object("a", simple_spec("orders", "a.>")), "ua"),
                              with_uid(route_object("uses", kUsesNormalize), "uu"),
                              with_uid(route_object("elsewhere", simple_spec("billing")), "ue")};
  std::vector<Json> transform_objects = {with_uid(transform_object("normalize", kNormalize), "t1")};
  auto transforms = cache.transforms("shop", transform_objects);
  auto table = cache.table(router, routes, *transforms);
  RouterTable plain = build_table(router, routes, *transforms);
  ASSERT_TRUE(table->error.empty()) << table->error;
  EXPECT_EQ(table->hash, plain.hash);
  EXPECT_EQ(table->canonical, plain.canonical);
  EXPECT_EQ(table->routes, plain.routes);
  EXPECT_EQ(table->route_ids.at("a"), "ua/1");
  EXPECT_EQ(cache.stats().table_compiles, 1u);
  EXPECT_EQ(cache.stats().route_checks, 3u) << "the route of another router is not read";

  // The same routes, in another order, with new statuses: the same table, nothing read.
  std::reverse(routes.begin(), routes.end());
  routes[0]["status"] = testing::parse(R"({"observedGeneration":1})");
  EXPECT_EQ(cache.table(router, routes, *transforms), table);
  EXPECT_EQ(cache.stats().table_compiles, 1u);
  EXPECT_EQ(cache.stats().route_checks, 3u);

  // One route edited: one route read, one table compiled.
  for (auto& r : routes) {
    if (string_at(r, {"metadata", "name"}) == "a") r = with_uid(route_object("a", simple_spec("orders", "a2.>")), "ua", 2);
  }
  auto edited = cache.table(router, routes, *transforms);
  EXPECT_NE(edited->hash, table->hash);
  EXPECT_EQ(edited->hash, build_table(router, routes, *transforms).hash);
  EXPECT_EQ(edited->routes.at("a"), 2);
  EXPECT_EQ(cache.stats().route_checks, 4u);
  EXPECT_EQ(cache.stats().table_compiles, 2u);
  // Of the table, only the edited route was compiled; the others came from the last one.
  ASSERT_TRUE(edited->compiled);
  EXPECT_EQ(edited->compiled->stats().routes_compiled, 1u);
  EXPECT_EQ(edited->compiled->stats().routes_reused, 2u);
  EXPECT_EQ(edited->compiled->stats().transforms_reused, 1u);

  // The transform a route uses changes: that route is read again, the table compiled again.
  transform_objects[0] = with_uid(transform_object("normalize", kBrokenNormalize), "t1", 2);
  transforms = cache.transforms("shop", transform_objects);
  auto broken = cache.table(router, routes, *transforms);
  EXPECT_EQ(broken->left_out, std::vector<std::string>{"uses"});
  EXPECT_EQ(broken->hash, build_table(router, routes, *transforms).hash);
  EXPECT_EQ(cache.stats().route_checks, 5u);
  EXPECT_EQ(cache.stats().table_compiles, 3u);

  // A route that stops being selected leaves the table.
  routes.erase(std::remove_if(routes.begin(), routes.end(),
                              [](const Json& r) { return string_at(r, {"metadata", "name"}) == "b"; }),
               routes.end());
  auto fewer = cache.table(router, routes, *transforms);
  EXPECT_EQ(fewer->routes.count("b"), 0u);
  EXPECT_EQ(cache.stats().table_compiles, 4u);

  cache.forget_router("shop/orders");
  cache.table(router, routes, *transforms);
  EXPECT_EQ(cache.stats().table_compiles, 5u) << "a forgotten router's table is compiled again";
}

}  // namespace
}  // namespace switchboard::controller
