// Statuses from facts: conditions and their transition times, heartbeats and stale pods,
// "applied x/y", rejections, and transform test results.
#include <gtest/gtest.h>

#include "controller/conditions.h"
#include "controller/fleet.h"
#include "controller/status.h"
#include "controller/tests/objects.h"

namespace switchboard::controller {
namespace {

using Clock = FleetTracker::Clock;
using namespace std::chrono_literals;

Heartbeat hb(const std::string& pod, const std::string& hash, const std::string& state = "applied",
             const std::string& error = "") {
  Heartbeat h;
  h.pod = pod;
  h.router = "orders";
  h.ns = "shop";
  h.generation = hash == "sha256:new" ? 2 : 1;
  h.hash = hash;
  h.state = state;
  h.error = error;
  return h;
}

const Json* condition(const Json& status, const std::string& type) {
  return find_condition(*find(status, {"conditions"}), type);
}

TEST(Conditions, TransitionTimeMovesOnlyWithTheStatus) {
  Json c = set_condition(Json::null(), {"Ready", "False", "Applying", "1/2", 3}, "2026-01-01T00:00:00Z");
  c = set_condition(c, {"Degraded", "False", "AsExpected", "", 3}, "2026-01-01T00:00:00Z");
  // Same status, another reason and message: the time stays.
  c = set_condition(c, {"Ready", "False", "Rejected", "pod a refused", 4}, "2026-01-01T00:05:00Z");
  const Json* ready = find_condition(c, "Ready");
  EXPECT_EQ(string_at(*ready, {"lastTransitionTime"}), "2026-01-01T00:00:00Z");
  EXPECT_EQ(string_at(*ready, {"reason"}), "Rejected");
  EXPECT_EQ(int_at(*ready, {"observedGeneration"}), 4);
  // Another status: the time moves.
  c = set_condition(c, {"Ready", "True", "Applied", "", 4}, "2026-01-01T00:09:00Z");
  EXPECT_EQ(string_at(*find_condition(c, "Ready"), {"lastTransitionTime"}), "2026-01-01T00:09:00Z");
  ASSERT_EQ(c.size(), 2u);  // other types kept, in place
  EXPECT_EQ(string_at(c.at(1), {"type"}), "Degraded");
  EXPECT_EQ(rfc3339(std::chrono::system_clock::time_point(std::chrono::seconds(1798761600))), "2027-01-01T00:00:00Z");
}

TEST(Fleet, ParsesTheRoutersHeartbeat) {
  // As router/router.cc heartbeat_json writes it.
  const std::string payload =
      R"({"pod":"orders-0","router":"orders","namespace":"shop","generation":2,"hash":"sha256:517a","state":"rejected",)"
      R"("error":"generation 3: bad","uptimeSeconds":42,"counters":{"received":13,"published":6,"filtered":3,"failed":2,"deadLettered":2},)"
      R"("time":"2026-11-26T07:33:26.028Z"})";
  Heartbeat h;
  std::string error;
  ASSERT_TRUE(parse_heartbeat(payload, h, error)) << error;
  EXPECT_EQ(h.pod, "orders-0");
  EXPECT_EQ(h.router, "orders");
  EXPECT_EQ(h.ns, "shop");
  EXPECT_EQ(h.generation, 2u);
  EXPECT_EQ(h.hash, "sha256:517a");
  EXPECT_EQ(h.state, "rejected");
  EXPECT_EQ(h.error, "generation 3: bad");
  EXPECT_EQ(h.source_error, "");
  ASSERT_TRUE(parse_heartbeat(R"({"pod":"orders-1","state":"applied","sourceError":"cannot watch shop/orders-routes: 403"})",
                              h, error))
      << error;
  EXPECT_EQ(h.source_error, "cannot watch shop/orders-routes: 403");
  EXPECT_FALSE(parse_heartbeat("not json", h, error));
  EXPECT_FALSE(parse_heartbeat(R"({"router":"orders"})", h, error));
}

TEST(Fleet, PodsGoStaleThenAgeOut) {
  FleetTracker fleet(30s);
  const Clock::time_point t0{};
  EXPECT_TRUE(fleet.observe("shop/orders", hb("a", "sha256:old"), t0));
  EXPECT_TRUE(fleet.observe("shop/orders", hb("b", "sha256:old"), t0));
  // The same news again is no news.
  EXPECT_FALSE(fleet.observe("shop/orders", hb("a", "sha256:old"), t0 + 5s));
  // Another table is.
  EXPECT_TRUE(fleet.observe("shop/orders", hb("a", "sha256:new"), t0 + 10s));
  EXPECT_TRUE(fleet.expire(t0 + 20s).empty());

  // b said nothing since t0: stale at 30 s.
  auto changed = fleet.expire(t0 + 31s);
  EXPECT_EQ(changed, std::vector<std::string>{"shop/orders"});
  EXPECT_TRUE(fleet.expire(t0 + 32s).empty()) << "reported once";
  auto pods = fleet.pods("shop/orders", t0 + 32s);
  ASSERT_EQ(pods.size(), 2u);
  EXPECT_FALSE(pods[0].stale);
  EXPECT_TRUE(pods[1].stale);
  EXPECT_EQ(pods[1].state, "unknown");
  // A stale pod that speaks again is news.
  EXPECT_TRUE(fleet.observe("shop/orders", hb("b", "sha256:new"), t0 + 33s));
  // a is silent from 10 s: stale at 40 s, gone at 70 s.
  fleet.expire(t0 + 41s);
  EXPECT_EQ(fleet.expire(t0 + 71s), std::vector<std::string>{"shop/orders"});
  pods = fleet.pods("shop/orders", t0 + 71s);
  ASSERT_EQ(pods.size(), 1u);
  EXPECT_EQ(pods[0].name, "b");
}

TEST(Fleet, AppliedCountsPodsOnTheCurrentTable) {
  std::vector<PodView> pods = {
      {"a", 2, "sha256:new", "applied", "", false},
      {"b", 1, "sha256:old", "applied", "", false},
      {"c", 1, "sha256:old", "rejected", "generation 2: bad", false},
      {"d", 2, "sha256:new", "stopped", "", false},
      {"e", 1, "sha256:old", "unknown", "", true},
  };
  FleetSummary s = summarize(pods, "sha256:new");
  EXPECT_EQ(s.live, 3);  // stopped and stale pods do not count
  EXPECT_EQ(s.current, 1);
  EXPECT_EQ(s.applied, 2);
  EXPECT_EQ(s.rejected, 1);
  EXPECT_EQ(s.stale, 1);
  ASSERT_EQ(s.rejected_by.size(), 1u);
  EXPECT_EQ(s.rejected_by[0].first, "c");
  EXPECT_EQ(applied_of(s, 2).text(), "1/3");
  // Pods asked for but not heard from yet count as not running it.
  EXPECT_EQ(applied_of(summarize({pods[0]}, "sha256:new"), 3).text(), "1/3");
  EXPECT_EQ(applied_of(summarize({}, "sha256:new"), 0).text(), "0/0");
}

RouterStatusInput router_input(std::vector<PodView> pods) {
  RouterStatusInput in;
  in.generation = 3;
  in.desired = 2;
  in.replicas = 2;
  in.ready_replicas = 2;
  in.selector = "app.kubernetes.io/name=switchboard-router,app.kubernetes.io/instance=orders";
  in.table_generation = 2;
  in.table_hash = "sha256:new";
  in.pods = std::move(pods);
  return in;
}

TEST(RouterStatus, ReadyWhenEveryPodRunsTheTable) {
  Json s = router_status(Json::null(), router_input({{"a", 2, "sha256:new", "applied", "", false},
                                                     {"b", 2, "sha256:new", "applied", "", false}}),
                         "2026-01-01T00:00:00Z");
  EXPECT_EQ(string_at(s, {"applied"}), "2/2");
  EXPECT_EQ(int_at(s, {"tableGeneration"}), 2);
  EXPECT_EQ(string_at(s, {"tableHash"}), "sha256:new");
  EXPECT_EQ(int_at(s, {"observedGeneration"}), 3);
  EXPECT_EQ(int_at(s, {"replicas"}), 2);
  EXPECT_EQ(string_at(s, {"selector"}), "app.kubernetes.io/name=switchboard-router,app.kubernetes.io/instance=orders");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"status"}), "True");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"reason"}), "Applied");
  EXPECT_EQ(string_at(*condition(s, "Progressing"), {"status"}), "False");
  EXPECT_EQ(string_at(*condition(s, "Degraded"), {"status"}), "False");
  ASSERT_EQ(s.at("pods").size(), 2u);
  EXPECT_EQ(string_at(s.at("pods").at(0), {"name"}), "a");
  EXPECT_EQ(int_at(s.at("pods").at(0), {"generation"}), 2);
  EXPECT_EQ(string_at(s.at("pods").at(0), {"state"}), "applied");
  // Computed again from its own output, the status is the same: nothing to write.
  EXPECT_TRUE(json_equal(router_status(s, router_input({{"a", 2, "sha256:new", "applied", "", false},
                                                        {"b", 2, "sha256:new", "applied", "", false}}),
                                       "2026-01-01T00:10:00Z"),
                         s));
}

// A pod that cannot read its table's ConfigMap says so in its heartbeat; the EventRouter's
// status shows it beside the pod, which keeps its table and still counts as applied.
TEST(RouterStatus, ShowsAPodsSourceError) {
  PodView troubled{"b", 2, "sha256:new", "applied", "", false, "cannot watch shop/orders-routes: Forbidden"};
  Json s = router_status(Json::null(),
                         router_input({{"a", 2, "sha256:new", "applied", "", false}, troubled}),
                         "2026-01-01T00:00:00Z");
  EXPECT_EQ(string_at(s, {"applied"}), "2/2");
  ASSERT_EQ(s.at("pods").size(), 2u);
  EXPECT_EQ(find(s.at("pods").at(0), {"sourceError"}), nullptr);
  EXPECT_EQ(string_at(s.at("pods").at(1), {"sourceError"}), "cannot watch shop/orders-routes: Forbidden");
}

TEST(RouterStatus, ApplyingRejectedStaleAndDegraded) {
  Json s = router_status(Json::null(), router_input({{"a", 2, "sha256:new", "applied", "", false},
                                                     {"b", 1, "sha256:old", "applied", "", false}}),
                         "t0");
  EXPECT_EQ(string_at(s, {"applied"}), "1/2");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"reason"}), "Applying");
  EXPECT_EQ(string_at(*condition(s, "Progressing"), {"status"}), "True");

  s = router_status(Json::null(), router_input({{"a", 2, "sha256:new", "applied", "", false},
                                                {"b", 1, "sha256:old", "unknown", "", true}}),
                    "t0");
  EXPECT_EQ(string_at(s, {"applied"}), "1/2") << "a stale pod is not running anything we know of";
  EXPECT_EQ(string_at(s.at("pods").at(1), {"state"}), "unknown");

  s = router_status(Json::null(), router_input({{"a", 2, "sha256:new", "applied", "", false},
                                                {"b", 1, "sha256:old", "rejected", "generation 2: no", false}}),
                    "t0");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"reason"}), "Rejected");
  EXPECT_NE(string_at(*condition(s, "Ready"), {"message"}).find("pod b: generation 2: no"), std::string::npos);
  EXPECT_EQ(string_at(*condition(s, "Degraded"), {"status"}), "True");
  EXPECT_EQ(string_at(s.at("pods").at(1), {"error"}), "generation 2: no");

  RouterStatusInput in = router_input({});
  in.degraded_reason = "SecretNotFound";
  in.degraded_message = "Secret shop/nats does not exist";
  s = router_status(Json::null(), in, "t0");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"reason"}), "SecretNotFound");
  EXPECT_EQ(string_at(*condition(s, "Degraded"), {"reason"}), "SecretNotFound");
  EXPECT_EQ(string_at(*condition(s, "Progressing"), {"reason"}), "Stalled");
  EXPECT_EQ(string_at(s, {"applied"}), "0/2");

  in = router_input({});
  in.desired = 0;
  s = router_status(Json::null(), in, "t0");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"status"}), "True") << "zero replicas asked, zero running";
}

TEST(RouteStatus, FromTheFleetsThatRunIt) {
  RouteStatusInput in;
  in.generation = 5;
  in.valid = true;
  RouteFleet f;
  f.router = "orders";
  f.in_table = true;
  f.desired = 2;
  f.summary = summarize({{"a", 2, "sha256:new", "applied", "", false}, {"b", 2, "sha256:new", "applied", "", false}},
                        "sha256:new");
  in.fleets.push_back(f);
  Json s = route_status(Json::null(), in, "t0");
  EXPECT_EQ(string_at(s, {"applied"}), "2/2");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"status"}), "True");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"reason"}), "Applied");
  EXPECT_EQ(int_at(s, {"observedGeneration"}), 5);
  EXPECT_EQ(s.at("rejectedBy").size(), 0u);

  // The table does not hold this generation yet: nothing counts as applied.
  in.fleets[0].in_table = false;
  s = route_status(s, in, "t1");
  EXPECT_EQ(string_at(s, {"applied"}), "0/2");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"reason"}), "Applying");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"lastTransitionTime"}), "t1");

  in.fleets[0].in_table = true;
  in.fleets[0].summary = summarize({{"a", 2, "sha256:new", "applied", "", false},
                                    {"b", 1, "sha256:old", "rejected", "generation 2: nope", false}},
                                   "sha256:new");
  s = route_status(s, in, "t2");
  EXPECT_EQ(string_at(s, {"applied"}), "1/2");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"reason"}), "Rejected");
  ASSERT_EQ(s.at("rejectedBy").size(), 1u);
  EXPECT_EQ(string_at(s.at("rejectedBy").at(0), {"pod"}), "b");
  EXPECT_EQ(string_at(s.at("rejectedBy").at(0), {"error"}), "generation 2: nope");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"lastTransitionTime"}), "t1") << "still False";

  RouteStatusInput invalid;
  invalid.generation = 6;
  invalid.invalid_reason = "InvalidFilter";
  invalid.invalid_message = "eventroute/r:7:12: route 'r', filter: ...";
  s = route_status(s, invalid, "t3");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"reason"}), "InvalidFilter");
  EXPECT_EQ(find(s, {"applied"}), nullptr);

  RouteStatusInput orphan;
  orphan.valid = true;
  orphan.no_router_reason = "UnknownRouter";
  orphan.no_router_message = "there is no EventRouter 'x'";
  s = route_status(Json::null(), orphan, "t4");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"reason"}), "UnknownRouter");
}

TEST(TransformStatus, SaysWhichTestsPassed) {
  TransformCheck check;
  check.compiled = true;
  check.results = {{"t", "upper-cases", true, ""}, {"t", "keeps ids", false, "at $.id: expected 1, got 2"}};
  check.passed = 1;
  Json s = transform_status(Json::null(), 2, check, "t0");
  EXPECT_EQ(string_at(s, {"testsPassed"}), "1/2");
  ASSERT_EQ(s.at("tests").size(), 2u);
  EXPECT_TRUE(bool_at(s.at("tests").at(0), {"passed"}));
  EXPECT_EQ(find(s.at("tests").at(0), {"difference"}), nullptr);
  EXPECT_EQ(string_at(s.at("tests").at(1), {"difference"}), "at $.id: expected 1, got 2");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"reason"}), "TestsFailed");
  EXPECT_NE(string_at(*condition(s, "Ready"), {"message"}).find("keeps ids"), std::string::npos);

  check.results[1].passed = true;
  check.passed = 2;
  s = transform_status(s, 3, check, "t1");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"status"}), "True");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"reason"}), "TestsPassed");

  TransformCheck broken;
  broken.message = "eventtransform/t:6:20: transform 't', steps[0].set.x: ...";
  s = transform_status(s, 4, broken, "t2");
  EXPECT_EQ(string_at(*condition(s, "Ready"), {"reason"}), "InvalidTransform");
  EXPECT_EQ(string_at(s, {"testsPassed"}), "0/0");
}

}  // namespace
}  // namespace switchboard::controller
