// The reconcilers against a fake API server and a fake NATS: what they write, that they
// write nothing when nothing changed, that an invalid route is not retried, that drift is
// repaired, and how heartbeats become statuses. Time is a variable the test moves.
#include <gtest/gtest.h>

#include <sstream>

#include "controller/conditions.h"
#include "controller/names.h"
#include "controller/reconciler.h"
#include "controller/tests/fake_client.h"
#include "controller/tests/objects.h"
#include "core/route/spec_yaml.h"
#include "core/route/table.h"
#include "router/log.h"

namespace switchboard::controller {
namespace {

namespace res = kube::resources;
using namespace std::chrono_literals;
using testing::ClientStore;
using testing::FakeClient;
using testing::FakeNats;
using testing::parse;
using testing::route_object;
using testing::router_object;
using testing::simple_spec;
using testing::transform_object;

class ReconcilerTest : public ::testing::Test {
 protected:
  // With owned_stores, the reconciler sees the owned objects as an informer would (the
  // controller's setting); without, it has no cache of them and applies them every time.
  explicit ReconcilerTest(bool owned_stores = false)
      : rec_(client_, routers_, routes_, transforms_, nats_, fleet_, enqueue(), log_, options(owned_stores)) {}

  Reconciler::Enqueue enqueue() {
    return [this](Kind k, const std::string& key) { queued_.emplace_back(k, key); };
  }
  ReconcilerOptions options(bool owned_stores) {
    ReconcilerOptions o;
    if (owned_stores) {
      for (const auto& s : owned_) o.owned[s->kind] = s->store.get();
    }
    o.render.default_image = "ghcr.io/switchboard-dev/switchboard:test";
    o.wall_clock = [this] { return wall_; };
    o.steady_clock = [this] { return now_; };
    return o;
  }
  static router::LoggerOptions quiet(std::ostream& sink) {
    router::LoggerOptions o;
    o.sink = &sink;
    return o;
  }

  bool queued(Kind k, const std::string& key) const {
    return std::find(queued_.begin(), queued_.end(), std::make_pair(k, key)) != queued_.end();
  }
  Json get(const kube::Resource& r, const std::string& name, const std::string& ns = "shop") {
    auto o = client_.object(r, ns, name);
    EXPECT_TRUE(o) << r.plural << " " << ns << "/" << name;
    return o ? *o : Json::null();
  }
  std::string ready_reason(const kube::Resource& r, const std::string& name) {
    Json o = get(r, name);
    const Json* c = find_condition(o.at("status").at("conditions"), "Ready");
    return c == nullptr ? "" : string_at(*c, {"status"}) + "/" + string_at(*c, {"reason"});
  }
  // A heartbeat as router/router.cc sends it.
  void heartbeat(const std::string& pod, uint64_t generation, const std::string& hash,
                 const std::string& state = "applied", const std::string& error = "") {
    std::string payload = R"({"pod":")" + pod + R"(","router":"orders","namespace":"shop","generation":)" +
                          std::to_string(generation) + R"(,"hash":")" + hash + R"(","state":")" + state + "\"" +
                          (error.empty() ? "" : R"(,"error":")" + error + "\"") +
                          R"(,"uptimeSeconds":1,"counters":{},"time":"2026-01-01T00:00:00.000Z"})";
    heartbeats_to_->heartbeat("shop/orders", payload);
  }
  uint64_t table_generation() { return static_cast<uint64_t>(int_at(get(res::kEventRouters, "orders"), {"status", "tableGeneration"})); }
  std::string table_hash() { return string_at(get(res::kEventRouters, "orders"), {"status", "tableHash"}); }

  void expect_success(const Outcome& o) { EXPECT_EQ(o.result, ReconcileResult::Success) << o.error; }
  // A router reconcile, and once more after the wait for heartbeats when it asks for one
  // (the first time the controller listens to a router).
  Outcome reconcile_router(const std::string& key) { return reconcile_router(rec_, key); }
  Outcome reconcile_router(Reconciler& rec, const std::string& key) {
    Outcome o = rec.reconcile(Kind::Router, key);
    if (o.result != ReconcileResult::Requeue) return o;
    now_ += o.after;
    return rec.reconcile(Kind::Router, key);
  }

  FakeClient client_;
  struct Owned {
    std::string kind;
    std::unique_ptr<ClientStore> store;
  };
  std::vector<std::unique_ptr<Owned>> owned_ = [this] {
    std::vector<std::unique_ptr<Owned>> out;
    for (const kube::Resource* r : {&res::kConfigMaps, &res::kDeployments, &res::kServiceAccounts, &res::kRoles,
                                    &res::kRoleBindings, &res::kServices, &res::kPodDisruptionBudgets}) {
      out.push_back(std::make_unique<Owned>(Owned{r->kind, std::make_unique<ClientStore>(client_, *r)}));
    }
    return out;
  }();
  ClientStore routers_{client_, res::kEventRouters};
  ClientStore routes_{client_, res::kEventRoutes};
  ClientStore transforms_{client_, res::kEventTransforms};
  FakeNats nats_;
  FleetTracker fleet_{30s};
  std::ostringstream logs_;
  router::Logger log_{quiet(logs_)};
  std::vector<std::pair<Kind, std::string>> queued_;
  std::chrono::system_clock::time_point wall_{std::chrono::seconds(1798761600)};
  std::chrono::steady_clock::time_point now_{};
  Reconciler rec_;
  Reconciler* heartbeats_to_ = &rec_;  // which reconciler heartbeat() feeds
};

TEST_F(ReconcilerTest, RouterGetsItsOwnedObjectsTableAndHeartbeatSubscription) {
  client_.put(res::kEventRouters, router_object());
  client_.put(res::kEventRoutes, route_object("large-orders", simple_spec()));
  expect_success(reconcile_router("shop/orders"));

  for (const auto& [r, name] :
       std::vector<std::pair<kube::Resource, std::string>>{{res::kDeployments, "orders"},
                                                           {res::kServiceAccounts, "orders-router"},
                                                           {res::kRoles, "orders-router"},
                                                           {res::kRoleBindings, "orders-router"},
                                                           {res::kServices, "orders-metrics"},
                                                           {res::kPodDisruptionBudgets, "orders"},
                                                           {res::kConfigMaps, "orders-routes"}}) {
    Json o = get(r, name);
    EXPECT_EQ(string_at(o.at("metadata").at("ownerReferences").at(0), {"uid"}), "uid-orders") << name;
  }
  EXPECT_TRUE(client_.objects(res::kServiceMonitors).empty()) << "no ServiceMonitor CRD, no ServiceMonitor";

  Json cm = get(res::kConfigMaps, "orders-routes");
  EXPECT_EQ(string_at(cm, {"metadata", "annotations", "switchboard.dev/generation"}), "1");
  const std::string hash = string_at(cm, {"metadata", "annotations", "switchboard.dev/hash"});
  // routes.json is what load_yaml reads back to a table with the annotated hash.
  route::RouteSet set;
  std::vector<route::SpecError> errors;
  ASSERT_TRUE(route::load_yaml(string_at(cm, {"data", "routes.json"}), "routes.json", set, errors));
  ASSERT_EQ(set.routes.size(), 1u);
  EXPECT_EQ(set.routes[0].name, "large-orders");
  auto table = route::RouteTable::compile(set, 1);
  ASSERT_TRUE(std::holds_alternative<std::shared_ptr<const route::RouteTable>>(table));
  EXPECT_EQ(std::get<std::shared_ptr<const route::RouteTable>>(table)->hash(), hash);

  EXPECT_EQ(table_generation(), 1u);
  EXPECT_EQ(table_hash(), hash);
  Json status = get(res::kEventRouters, "orders").at("status");
  EXPECT_EQ(string_at(status, {"applied"}), "0/2");
  EXPECT_EQ(string_at(status, {"selector"}), selector_text("orders"));
  EXPECT_EQ(ready_reason(res::kEventRouters, "orders"), "False/Applying");

  ASSERT_EQ(nats_.watches.count("shop/orders"), 1u);
  EXPECT_EQ(nats_.watches["shop/orders"].first, "switchboard.status.shop.orders");
  EXPECT_EQ(nats_.watches["shop/orders"].second.urls,
            (std::vector<std::string>{"nats://nats-1:4222", "nats://nats-2:4222"}));
  EXPECT_TRUE(queued(Kind::Route, "shop/large-orders")) << "the route's status depends on the new table";
}

TEST_F(ReconcilerTest, GenerationMovesOnlyWhenTheHashDoes) {
  client_.put(res::kEventRouters, router_object());
  client_.put(res::kEventRoutes, route_object("a", simple_spec()));
  expect_success(reconcile_router("shop/orders"));
  EXPECT_EQ(table_generation(), 1u);
  const std::string first = table_hash();

  // Nothing changed: nothing is written.
  const int64_t before = client_.changes();
  expect_success(reconcile_router("shop/orders"));
  EXPECT_EQ(client_.changes(), before);
  EXPECT_EQ(table_generation(), 1u);

  // A label that selects nothing: the same table.
  client_.put(res::kEventRoutes, route_object("a", simple_spec(), R"({"x":"y"})"));
  expect_success(reconcile_router("shop/orders"));
  EXPECT_EQ(table_generation(), 1u);

  // Another filter: another table.
  client_.put(res::kEventRoutes, route_object("a", simple_spec("orders", "other.subject")));
  expect_success(reconcile_router("shop/orders"));
  EXPECT_EQ(table_generation(), 2u);
  EXPECT_NE(table_hash(), first);
  EXPECT_EQ(string_at(get(res::kConfigMaps, "orders-routes"), {"metadata", "annotations", "switchboard.dev/generation"}), "2");

  // Back to the first spec: a new generation, not the old one.
  client_.put(res::kEventRoutes, route_object("a", simple_spec()));
  expect_success(reconcile_router("shop/orders"));
  EXPECT_EQ(table_generation(), 3u);
  EXPECT_EQ(table_hash(), first);
}

TEST_F(ReconcilerTest, DriftIsRepaired) {
  client_.put(res::kEventRouters, router_object());
  expect_success(reconcile_router("shop/orders"));
  // Someone edits the Deployment and deletes the Role.
  Json d = get(res::kDeployments, "orders");
  d["spec"]["replicas"] = num(7);
  d["spec"]["template"]["spec"]["containers"][0]["image"] = str("evil:latest");
  client_.put(res::kDeployments, d);
  client_.delete_object(res::kRoles, "shop", "orders-router");

  queued_.clear();
  rec_.owned_changed("Deployment", "shop/orders");
  rec_.owned_changed("Role", "shop/orders-router");
  rec_.owned_changed("ConfigMap", "shop/orders-routes-3");
  rec_.owned_changed("ConfigMap", "shop/unrelated");
  EXPECT_EQ(queued_, (std::vector<std::pair<Kind, std::string>>{
                         {Kind::Router, "shop/orders"}, {Kind::Router, "shop/orders"}, {Kind::Router, "shop/orders"}}));

  expect_success(reconcile_router("shop/orders"));
  d = get(res::kDeployments, "orders");
  EXPECT_EQ(int_at(d, {"spec", "replicas"}), 2);
  EXPECT_EQ(string_at(d.at("spec").at("template").at("spec").at("containers").at(0), {"image"}),
            "ghcr.io/switchboard-dev/switchboard:test");
  get(res::kRoles, "orders-router");
}

TEST_F(ReconcilerTest, AnInvalidRouteIsRefusedOnceAndNotRetried) {
  client_.put(res::kEventRouters, router_object());
  client_.put(res::kEventRoutes, route_object("good", simple_spec()));
  client_.put(res::kEventRoutes,
              route_object("bad", R"({"router":"orders","source":{"subject":"a"},"filter":"event.amount >=","destinations":[{"subject":"o"}]})"));
  expect_success(reconcile_router("shop/orders"));
  Outcome o = rec_.reconcile_route("shop/bad");
  EXPECT_EQ(o.result, ReconcileResult::Success) << "an invalid spec is final: no error, no requeue";
  EXPECT_EQ(ready_reason(res::kEventRoutes, "bad"), "False/InvalidFilter");
  Json bad = get(res::kEventRoutes, "bad");
  const Json* ready = find_condition(bad.at("status").at("conditions"), "Ready");
  EXPECT_EQ(string_at(*ready, {"message"}).rfind("eventroute/bad:8:", 0), 0u) << string_at(*ready, {"message"});
  EXPECT_EQ(int_at(bad, {"status", "observedGeneration"}), 1);

  // The other route is not held back, and the router says what it left out.
  route::RouteSet set;
  std::vector<route::SpecError> errors;
  ASSERT_TRUE(route::load_yaml(string_at(get(res::kConfigMaps, "orders-routes"), {"data", "routes.json"}), "x", set, errors));
  ASSERT_EQ(set.routes.size(), 1u);
  EXPECT_EQ(set.routes[0].name, "good");
  Json router = get(res::kEventRouters, "orders");
  EXPECT_NE(string_at(*find_condition(router.at("status").at("conditions"), "Ready"), {"message"}).find("bad"),
            std::string::npos);

  // Reconciled again (a resync, the echo of its own status write): nothing is written.
  client_.clear_calls();
  o = rec_.reconcile_route("shop/bad");
  EXPECT_EQ(o.result, ReconcileResult::Success);
  EXPECT_TRUE(client_.writes().empty());

  // Fixing the spec (a new metadata.generation) makes it valid.
  client_.put(res::kEventRoutes, route_object("bad", simple_spec()));
  expect_success(rec_.reconcile_route("shop/bad"));
  EXPECT_EQ(ready_reason(res::kEventRoutes, "bad"), "False/Applying");
  EXPECT_EQ(int_at(get(res::kEventRoutes, "bad"), {"status", "observedGeneration"}), 2);
}

TEST_F(ReconcilerTest, ARouteShowsApplyingOnlyWhenItsPodsTakeLongerThanTheGrace) {
  ReconcilerOptions o = options(false);
  o.applying_grace = 2s;
  Reconciler rec(client_, routers_, routes_, transforms_, nats_, fleet_, enqueue(), log_, o);
  heartbeats_to_ = &rec;
  auto reconcile_router = [&] { expect_success(this->reconcile_router(rec, "shop/orders")); };
  auto route_writes = [&] {
    int n = 0;
    for (const auto& c : client_.calls()) n += c.verb == "replace_status" && c.resource == "eventroutes";
    return n;
  };
  client_.put(res::kEventRouters, router_object());
  client_.put(res::kEventRoutes, route_object("large-orders", simple_spec()));
  reconcile_router();

  // A new route on its way to the pods: no status yet, and another look when the grace ends.
  client_.clear_calls();
  Outcome r = rec.reconcile_route("shop/large-orders");
  EXPECT_EQ(r.result, ReconcileResult::Requeue);
  EXPECT_EQ(r.after, 2000ms);
  EXPECT_EQ(route_writes(), 0);
  EXPECT_EQ(find(get(res::kEventRoutes, "large-orders"), {"status", "conditions"}), nullptr);

  // Its pods run it within the grace: straight to Ready, in one status write.
  now_ += 500ms;
  r = rec.reconcile_route("shop/large-orders");
  EXPECT_EQ(r.result, ReconcileResult::Requeue);
  EXPECT_EQ(r.after, 1500ms) << "the grace counts from the first look";
  heartbeat("orders-a", 1, table_hash());
  heartbeat("orders-b", 1, table_hash());
  reconcile_router();
  expect_success(rec.reconcile_route("shop/large-orders"));
  EXPECT_EQ(ready_reason(res::kEventRoutes, "large-orders"), "True/Applied");
  EXPECT_EQ(route_writes(), 1);

  // An edit whose pods are slower: the status keeps generation 1's Ready (observedGeneration
  // says so) until the grace has passed, then says Applying.
  client_.put(res::kEventRoutes, route_object("large-orders", simple_spec("orders", "orders.*.paid")));
  reconcile_router();
  r = rec.reconcile_route("shop/large-orders");
  EXPECT_EQ(r.result, ReconcileResult::Requeue);
  EXPECT_EQ(int_at(get(res::kEventRoutes, "large-orders"), {"status", "observedGeneration"}), 1);
  now_ += r.after;
  expect_success(rec.reconcile_route("shop/large-orders"));
  EXPECT_EQ(ready_reason(res::kEventRoutes, "large-orders"), "False/Applying");
  EXPECT_EQ(int_at(get(res::kEventRoutes, "large-orders"), {"status", "observedGeneration"}), 2);

  // What is final is written at once: an invalid spec.
  client_.put(res::kEventRoutes, route_object("large-orders", R"({"router":"orders","source":{"subject":"a"},"filter":"event.amount >=","destinations":[{"subject":"o"}]})"));
  expect_success(rec.reconcile_route("shop/large-orders"));
  EXPECT_EQ(ready_reason(res::kEventRoutes, "large-orders"), "False/InvalidFilter");
  heartbeats_to_ = &rec_;
}

TEST_F(ReconcilerTest, NewTablesOfARouterAreSpacedWhileChangesKeepComing) {
  ReconcilerOptions o = options(false);
  o.min_table_interval = 500ms;
  Reconciler rec(client_, routers_, routes_, transforms_, nats_, fleet_, enqueue(), log_, o);
  auto configmap_hash = [&] {
    return string_at(get(res::kConfigMaps, "orders-routes"), {"metadata", "annotations", "switchboard.dev/hash"});
  };
  client_.put(res::kEventRouters, router_object());
  client_.put(res::kEventRoutes, route_object("a", simple_spec("orders", "a.>")));
  expect_success(reconcile_router(rec, "shop/orders"));  // and the warm-up: a quiet spell
  const std::string first = configmap_hash();
  ASSERT_FALSE(first.empty());

  // After a quiet spell, a change is written at once.
  client_.put(res::kEventRoutes, route_object("b", simple_spec("orders", "b.>")));
  expect_success(rec.reconcile(Kind::Router, "shop/orders"));
  const std::string second = configmap_hash();
  EXPECT_NE(second, first);
  // The next one, 100 ms later, waits for the rest of the interval; what comes meanwhile
  // goes into the same table.
  now_ += 100ms;
  client_.put(res::kEventRoutes, route_object("c", simple_spec("orders", "c.>")));
  Outcome r = rec.reconcile(Kind::Router, "shop/orders");
  EXPECT_EQ(r.result, ReconcileResult::Requeue);
  EXPECT_EQ(r.after, 400ms);
  EXPECT_EQ(configmap_hash(), second);
  // Reconciles while it waits (every route change enqueues the router) compile nothing.
  const uint64_t compiles = rec.spec_cache().stats().table_compiles;
  client_.put(res::kEventRoutes, route_object("d", simple_spec("orders", "d.>")));
  now_ += 150ms;
  r = rec.reconcile(Kind::Router, "shop/orders");
  EXPECT_EQ(r.result, ReconcileResult::Requeue);
  EXPECT_EQ(r.after, 250ms);
  EXPECT_EQ(rec.spec_cache().stats().table_compiles, compiles);
  now_ += r.after;
  expect_success(rec.reconcile(Kind::Router, "shop/orders"));
  EXPECT_NE(configmap_hash(), second);
  std::optional<Reconciler::TableInfo> info = rec.table_info("shop/orders");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->routes.size(), 4u) << "c and d in one table";
  // Reconciles that change no table are never held back.
  now_ += 10ms;
  expect_success(rec.reconcile(Kind::Router, "shop/orders"));
}

TEST_F(ReconcilerTest, HeartbeatsMakeRoutesReady) {
  client_.put(res::kEventRouters, router_object());
  client_.put(res::kEventRoutes, route_object("large-orders", simple_spec()));
  expect_success(reconcile_router("shop/orders"));
  expect_success(rec_.reconcile_route("shop/large-orders"));
  EXPECT_EQ(string_at(get(res::kEventRoutes, "large-orders"), {"status", "applied"}), "0/2");
  EXPECT_EQ(ready_reason(res::kEventRoutes, "large-orders"), "False/Applying");
  const std::string hash = table_hash();

  queued_.clear();
  heartbeat("orders-a", 1, hash);
  heartbeat("orders-b", 0, "", "pending");
  EXPECT_TRUE(queued(Kind::Router, "shop/orders"));
  queued_.clear();
  heartbeat("orders-a", 1, hash);
  EXPECT_TRUE(queued_.empty()) << "the same heartbeat again changes nothing";

  expect_success(reconcile_router("shop/orders"));
  EXPECT_TRUE(queued(Kind::Route, "shop/large-orders"));
  expect_success(rec_.reconcile_route("shop/large-orders"));
  EXPECT_EQ(string_at(get(res::kEventRoutes, "large-orders"), {"status", "applied"}), "1/2");

  heartbeat("orders-b", 1, hash);
  expect_success(reconcile_router("shop/orders"));
  expect_success(rec_.reconcile_route("shop/large-orders"));
  EXPECT_EQ(string_at(get(res::kEventRoutes, "large-orders"), {"status", "applied"}), "2/2");
  EXPECT_EQ(ready_reason(res::kEventRoutes, "large-orders"), "True/Applied");
  EXPECT_EQ(ready_reason(res::kEventRouters, "orders"), "True/Applied");
  EXPECT_EQ(string_at(get(res::kEventRouters, "orders"), {"status", "applied"}), "2/2");

  // A new spec: not Ready until the pods run the table that holds it.
  client_.put(res::kEventRoutes, route_object("large-orders", simple_spec("orders", "orders.*.paid")));
  expect_success(rec_.reconcile_route("shop/large-orders"));
  EXPECT_EQ(ready_reason(res::kEventRoutes, "large-orders"), "False/Applying");
  expect_success(reconcile_router("shop/orders"));
  const std::string next = table_hash();
  heartbeat("orders-a", 2, next);
  heartbeat("orders-b", 1, hash, "rejected", "generation 2: cannot bind");
  expect_success(reconcile_router("shop/orders"));
  expect_success(rec_.reconcile_route("shop/large-orders"));
  Json route = get(res::kEventRoutes, "large-orders");
  EXPECT_EQ(ready_reason(res::kEventRoutes, "large-orders"), "False/Rejected");
  EXPECT_EQ(string_at(route, {"status", "applied"}), "1/2");
  ASSERT_EQ(route.at("status").at("rejectedBy").size(), 1u);
  EXPECT_EQ(string_at(route.at("status").at("rejectedBy").at(0), {"pod"}), "orders-b");
  EXPECT_EQ(string_at(route.at("status").at("rejectedBy").at(0), {"error"}), "generation 2: cannot bind");
  EXPECT_EQ(ready_reason(res::kEventRouters, "orders"), "False/Rejected");

  // orders-b goes silent: stale, then forgotten; the fleet is one pod short.
  heartbeat("orders-a", 2, next);
  now_ += 31s;
  queued_.clear();
  heartbeat("orders-a", 2, next);
  rec_.expire_pods();
  EXPECT_TRUE(queued(Kind::Router, "shop/orders"));
  expect_success(reconcile_router("shop/orders"));
  Json router = get(res::kEventRouters, "orders");
  EXPECT_EQ(string_at(router, {"status", "applied"}), "1/2");
  EXPECT_EQ(string_at(router.at("status").at("pods").at(1), {"state"}), "unknown");
  expect_success(rec_.reconcile_route("shop/large-orders"));
  EXPECT_EQ(ready_reason(res::kEventRoutes, "large-orders"), "False/Applying");
  EXPECT_EQ(get(res::kEventRoutes, "large-orders").at("status").at("rejectedBy").size(), 0u);
}

TEST_F(ReconcilerTest, NoStatusBeforeThePodsHadTheirTurnToSpeak) {
  // As after a controller restart: the fleet runs, the controller has not heard it yet.
  client_.put(res::kEventRouters, router_object());
  client_.put(res::kEventRoutes, route_object("r", simple_spec()));
  Outcome o = rec_.reconcile(Kind::Router, "shop/orders");
  EXPECT_EQ(o.result, ReconcileResult::Requeue);
  EXPECT_EQ(o.after, 10s) << "two heartbeat intervals of 5 s";
  EXPECT_EQ(find(get(res::kEventRouters, "orders"), {"status"}), nullptr) << "no status from an empty fleet";
  const std::string hash =
      string_at(get(res::kConfigMaps, "orders-routes"), {"metadata", "annotations", "switchboard.dev/hash"});
  EXPECT_FALSE(hash.empty()) << "the table is written at once";
  EXPECT_EQ(rec_.reconcile_route("shop/r").result, ReconcileResult::Requeue);
  EXPECT_EQ(find(get(res::kEventRoutes, "r"), {"status"}), nullptr);

  heartbeat("orders-a", 1, hash);
  heartbeat("orders-b", 1, hash);
  now_ += 10s;
  expect_success(rec_.reconcile(Kind::Router, "shop/orders"));
  expect_success(rec_.reconcile_route("shop/r"));
  // The first status written is the true one.
  EXPECT_EQ(ready_reason(res::kEventRouters, "orders"), "True/Applied");
  EXPECT_EQ(ready_reason(res::kEventRoutes, "r"), "True/Applied");
  EXPECT_EQ(string_at(get(res::kEventRoutes, "r"), {"status", "applied"}), "2/2");
}

TEST_F(ReconcilerTest, UnknownRouterUntilItExists) {
  client_.put(res::kEventRoutes, route_object("r", simple_spec("orders")));
  expect_success(rec_.reconcile_route("shop/r"));
  EXPECT_EQ(ready_reason(res::kEventRoutes, "r"), "False/UnknownRouter");
  client_.put(res::kEventRoutes, route_object("s", simple_spec("")));
  expect_success(rec_.reconcile_route("shop/s"));
  EXPECT_EQ(ready_reason(res::kEventRoutes, "s"), "False/NoRouter");

  client_.put(res::kEventRouters, router_object());
  queued_.clear();
  rec_.router_changed("shop/orders");
  EXPECT_TRUE(queued(Kind::Router, "shop/orders"));
  expect_success(reconcile_router("shop/orders"));
  EXPECT_TRUE(queued(Kind::Route, "shop/r")) << "a route that names the router hears of it";
  expect_success(rec_.reconcile_route("shop/r"));
  EXPECT_EQ(ready_reason(res::kEventRoutes, "r"), "False/Applying");

  // The router goes: its routes hear of it, and its heartbeats are no longer followed.
  client_.delete_object(res::kEventRouters, "shop", "orders");
  queued_.clear();
  expect_success(reconcile_router("shop/orders"));
  EXPECT_TRUE(queued(Kind::Route, "shop/r"));
  EXPECT_EQ(nats_.watches.count("shop/orders"), 0u);
  expect_success(rec_.reconcile_route("shop/r"));
  EXPECT_EQ(ready_reason(res::kEventRoutes, "r"), "False/UnknownRouter");
}

TEST_F(ReconcilerTest, ChangesReachWhatDependsOnThem) {
  client_.put(res::kEventRouters, router_object());
  client_.put(res::kEventRouters, router_object("billing"));
  client_.put(res::kEventRouters, router_object("elsewhere", "other"));
  client_.put(res::kEventRoutes,
              route_object("uses", R"({"router":"orders","source":{"subject":"a"},"transform":[{"use":"normalize"}],"destinations":[{"subject":"o"}]})"));
  client_.put(res::kEventRoutes, route_object("plain", simple_spec()));
  rec_.transform_changed("shop/normalize");
  EXPECT_TRUE(queued(Kind::Transform, "shop/normalize"));
  EXPECT_TRUE(queued(Kind::Route, "shop/uses"));
  EXPECT_FALSE(queued(Kind::Route, "shop/plain"));
  EXPECT_TRUE(queued(Kind::Router, "shop/orders"));
  EXPECT_TRUE(queued(Kind::Router, "shop/billing"));
  EXPECT_FALSE(queued(Kind::Router, "other/elsewhere"));
  queued_.clear();
  rec_.route_changed("shop/plain");
  EXPECT_TRUE(queued(Kind::Route, "shop/plain"));
  EXPECT_TRUE(queued(Kind::Router, "shop/orders"));
  EXPECT_TRUE(queued(Kind::Router, "shop/billing")) << "a label change can move a route to another router";

  // A status write (the echo of the controller's own) reaches nothing else.
  expect_success(rec_.reconcile_route("shop/plain"));
  queued_.clear();
  rec_.route_changed("shop/plain");
  EXPECT_EQ(queued_, (std::vector<std::pair<Kind, std::string>>{{Kind::Route, "shop/plain"}}));
  client_.put(res::kEventRoutes, route_object("plain", simple_spec(), R"({"team":"x"})"));
  queued_.clear();
  rec_.route_changed("shop/plain");
  EXPECT_TRUE(queued(Kind::Router, "shop/billing")) << "labels matter";
  queued_.clear();
  reconcile_router("shop/orders");
  rec_.router_changed("shop/orders");
  rec_.router_changed("shop/orders");
  EXPECT_EQ(std::count(queued_.begin(), queued_.end(), std::make_pair(Kind::Router, std::string("shop/orders"))), 1);
  client_.delete_object(res::kEventRoutes, "shop", "plain");
  queued_.clear();
  rec_.route_changed("shop/plain");
  EXPECT_TRUE(queued(Kind::Router, "shop/orders")) << "a deleted route leaves the table";
}

TEST_F(ReconcilerTest, TransformTestsAreReported) {
  client_.put(res::kEventTransforms, transform_object("normalize", R"js({"steps":[{"set":{"region":"event.region.upperAscii()"}}],
    "tests":[{"name":"upper","input":{"subject":"test","data":{"region":"eu"}},"expect":{"data":{"region":"EU"}}},
             {"name":"wrong","input":{"subject":"test","data":{"region":"eu"}},"expect":{"data":{"region":"eu"}}}]})js"));
  expect_success(rec_.reconcile_transform("shop/normalize"));
  Json t = get(res::kEventTransforms, "normalize");
  EXPECT_EQ(string_at(t, {"status", "testsPassed"}), "1/2");
  EXPECT_EQ(ready_reason(res::kEventTransforms, "normalize"), "False/TestsFailed");
  EXPECT_NE(string_at(t.at("status").at("tests").at(1), {"difference"}).find("region"), std::string::npos);
  client_.clear_calls();
  expect_success(rec_.reconcile_transform("shop/normalize"));
  EXPECT_TRUE(client_.writes().empty());
}

TEST_F(ReconcilerTest, ALargeTableIsSplitAndOldPartsGo) {
  client_.put(res::kEventRouters, router_object());
  std::string padding(10000, 'p');  // expressions are at most 16 KiB
  for (int i = 0; i < 250; ++i) {
    Json r = route_object("r" + std::to_string(i), simple_spec());
    r["spec"]["filter"] = str("event.note != \"" + padding + "\"");
    client_.put(res::kEventRoutes, r);
  }
  expect_success(reconcile_router("shop/orders"));
  Json main = get(res::kConfigMaps, "orders-routes");
  ASSERT_NE(find(main, {"data", "index.json"}), nullptr) << to_text(get(res::kEventRouters, "orders").at("status"));
  Json index = Json::parse(string_at(main, {"data", "index.json"}));
  ASSERT_EQ(index.at("parts").size(), 3u);
  std::map<std::string, Json> parts;
  for (const char* n : {"orders-routes-1", "orders-routes-2", "orders-routes-3"}) parts[n] = get(res::kConfigMaps, n);
  std::string error;
  auto text = assemble_table(main, parts, error);
  ASSERT_TRUE(text) << error;
  EXPECT_EQ(route::sha256_hex(*text), table_hash().substr(7));
  Json role = get(res::kRoles, "orders-router");
  std::vector<std::string> names;
  for (const auto& v : role.at("rules").at(0).at("resourceNames").as_array()) names.push_back(v.as_string());
  EXPECT_EQ(names, (std::vector<std::string>{"orders-routes-1", "orders-routes-2", "orders-routes-3", "orders-routes"}));
  // Parts are written before the index that names them.
  std::vector<std::string> cm_writes;
  for (const auto& c : client_.calls()) {
    if (c.verb == "apply" && c.resource == "configmaps") cm_writes.push_back(c.key);
  }
  cm_writes.resize(std::min<size_t>(cm_writes.size(), 4));  // the first reconcile's
  EXPECT_EQ(cm_writes, (std::vector<std::string>{"shop/orders-routes-1", "shop/orders-routes-2", "shop/orders-routes-3",
                                                 "shop/orders-routes"}));

  // Smaller again: one ConfigMap, and the parts are deleted.
  for (int i = 1; i < 250; ++i) client_.delete_object(res::kEventRoutes, "shop", "r" + std::to_string(i));
  expect_success(reconcile_router("shop/orders"));
  main = get(res::kConfigMaps, "orders-routes");
  EXPECT_NE(find(main, {"data", "routes.json"}), nullptr);
  EXPECT_FALSE(client_.object(res::kConfigMaps, "shop", "orders-routes-1"));
  EXPECT_FALSE(client_.object(res::kConfigMaps, "shop", "orders-routes-3"));
}

TEST_F(ReconcilerTest, ServiceMonitorOnlyWithItsCrd) {
  client_.put(res::kCustomResourceDefinitions,
              parse(R"({"metadata":{"name":"servicemonitors.monitoring.coreos.com"},"spec":{}})"));
  client_.put(res::kEventRouters, router_object());
  expect_success(reconcile_router("shop/orders"));
  EXPECT_EQ(client_.objects(res::kServiceMonitors).size(), 1u);
}

TEST_F(ReconcilerTest, NatsCredentialsComeFromTheSecret) {
  Json router = router_object();
  router["spec"]["nats"] = parse(R"({"urls":["nats://n:4222"],"auth":{"secretName":"nats-orders","tokenKey":"token"}})");
  client_.put(res::kEventRouters, router);
  Outcome o = reconcile_router("shop/orders");
  EXPECT_EQ(o.result, ReconcileResult::Error) << "retried with backoff: the Secret may come";
  EXPECT_EQ(ready_reason(res::kEventRouters, "orders"), "False/SecretNotFound");
  router = get(res::kEventRouters, "orders");
  EXPECT_EQ(string_at(*find_condition(router.at("status").at("conditions"), "Degraded"), {"status"}), "True");
  get(res::kDeployments, "orders");  // the fleet is still rendered

  client_.put(res::kSecrets, parse(R"({"metadata":{"name":"nats-orders","namespace":"shop"},"data":{"other":"eA=="}})"));
  reconcile_router("shop/orders");
  EXPECT_EQ(ready_reason(res::kEventRouters, "orders"), "False/SecretKeyMissing");

  client_.put(res::kSecrets, parse(R"({"metadata":{"name":"nats-orders","namespace":"shop"},"data":{"token":"czNjcjN0"}})"));
  expect_success(reconcile_router("shop/orders"));
  EXPECT_EQ(nats_.watches["shop/orders"].second.token, "s3cr3t");
  EXPECT_EQ(ready_reason(res::kEventRouters, "orders"), "False/Applying");
  EXPECT_EQ(logs_.str().find("s3cr3t"), std::string::npos) << "credentials are never logged";

  nats_.watch_error = "connect: Authorization Violation";
  nats_.watches.clear();
  o = reconcile_router("shop/orders");
  EXPECT_EQ(o.result, ReconcileResult::Error);
  EXPECT_EQ(ready_reason(res::kEventRouters, "orders"), "False/NatsUnavailable");

  // Watched, but the connection never comes up (a server that hangs up without a word):
  // after the warm-up that is the reason shown, and it clears when the connection does.
  nats_.watch_error.clear();
  nats_.problems["shop/orders"] = "the controller is not connected to NATS at nats://nats:4222";
  o = rec_.reconcile(Kind::Router, "shop/orders");
  EXPECT_EQ(o.result, ReconcileResult::Requeue) << "within the warm-up, heartbeats may still come: " << o.error;
  now_ += o.after;
  o = rec_.reconcile(Kind::Router, "shop/orders");
  EXPECT_EQ(o.result, ReconcileResult::Error);
  EXPECT_EQ(ready_reason(res::kEventRouters, "orders"), "False/NatsUnavailable");
  router = get(res::kEventRouters, "orders");
  EXPECT_EQ(string_at(*find_condition(router.at("status").at("conditions"), "Degraded"), {"message"}),
            "the controller is not connected to NATS at nats://nats:4222");
  nats_.problems.clear();
  expect_success(reconcile_router("shop/orders"));
  EXPECT_NE(ready_reason(res::kEventRouters, "orders"), "False/NatsUnavailable");
}

TEST_F(ReconcilerTest, JetStreamConsumerIsDeletedThroughTheFinalizer) {
  client_.put(res::kEventRouters, router_object());
  const std::string js_spec =
      R"({"router":"orders","source":{"subject":"orders.>","jetstream":{"stream":"ORDERS","durable":"large"}},"destinations":[{"subject":"o"}]})";
  client_.put(res::kEventRoutes, route_object("large-orders", js_spec));
  expect_success(reconcile_router("shop/orders"));
  expect_success(rec_.reconcile_route("shop/large-orders"));
  Json route = get(res::kEventRoutes, "large-orders");
  ASSERT_EQ(route.at("metadata").at("finalizers").size(), 1u);
  EXPECT_EQ(route.at("metadata").at("finalizers").at(0).as_string(), "switchboard.dev/jetstream-consumer");
  const std::string with_route = table_hash();
  heartbeat("orders-a", 1, with_route);

  // Deleted: the route leaves the table first; while a pod still runs it, nothing is deleted.
  client_.delete_object(res::kEventRoutes, "shop", "large-orders");
  Outcome o = rec_.reconcile_route("shop/large-orders");
  EXPECT_EQ(o.result, ReconcileResult::Requeue);
  EXPECT_TRUE(nats_.deleted.empty());
  expect_success(reconcile_router("shop/orders"));
  EXPECT_NE(table_hash(), with_route);
  o = rec_.reconcile_route("shop/large-orders");
  EXPECT_EQ(o.result, ReconcileResult::Requeue);
  EXPECT_EQ(ready_reason(res::kEventRoutes, "large-orders"), "False/DeletingConsumer");

  // NATS refuses: retried with backoff, and the status says why.
  heartbeat("orders-a", 2, table_hash());
  nats_.delete_error = "not connected to NATS (nats://nats-1:4222)";
  o = rec_.reconcile_route("shop/large-orders");
  EXPECT_EQ(o.result, ReconcileResult::Error);
  route = get(res::kEventRoutes, "large-orders");
  const std::string message = string_at(*find_condition(route.at("status").at("conditions"), "Ready"), {"message"});
  EXPECT_NE(message.find("not connected to NATS"), std::string::npos) << message;
  EXPECT_NE(message.find("retrying"), std::string::npos) << message;

  nats_.delete_error.clear();
  expect_success(rec_.reconcile_route("shop/large-orders"));
  EXPECT_EQ(nats_.deleted, std::vector<std::string>{"shop/orders ORDERS/large"});
  EXPECT_FALSE(client_.object(res::kEventRoutes, "shop", "large-orders")) << "the finalizer is gone, and so is the route";
}

TEST_F(ReconcilerTest, FinalizerFollowsTheSpec) {
  client_.put(res::kEventRouters, router_object());
  client_.put(res::kEventRoutes,
              route_object("r", R"({"router":"orders","source":{"subject":"a","jetstream":{"stream":"S"}},"destinations":[{"subject":"o"}]})"));
  expect_success(rec_.reconcile_route("shop/r"));
  EXPECT_EQ(get(res::kEventRoutes, "r").at("metadata").at("finalizers").size(), 1u);
  client_.put(res::kEventRoutes, route_object("r", simple_spec()));
  expect_success(rec_.reconcile_route("shop/r"));
  EXPECT_EQ(get(res::kEventRoutes, "r").at("metadata").at("finalizers").size(), 0u);
  // A core NATS route is deleted at once.
  client_.delete_object(res::kEventRoutes, "shop", "r");
  EXPECT_FALSE(client_.object(res::kEventRoutes, "shop", "r"));
}

TEST_F(ReconcilerTest, ApiErrorsBecomeRetriableOutcomes) {
  client_.put(res::kEventRouters, router_object());
  client_.fail("apply", "deployments", kube::ApiError(503, "ServiceUnavailable", "etcd is away"));
  Outcome o = reconcile_router("shop/orders");
  EXPECT_EQ(o.result, ReconcileResult::Error);
  EXPECT_NE(o.error.find("etcd is away"), std::string::npos);
  client_.heal();
  client_.fail("apply", "deployments", kube::ApiError(422, "Invalid", "spec.replicas: bad"));
  o = reconcile_router("shop/orders");
  EXPECT_EQ(o.result, ReconcileResult::Error);
  EXPECT_EQ(ready_reason(res::kEventRouters, "orders"), "False/ApplyFailed");
  client_.heal();
  expect_success(reconcile_router("shop/orders"));
}

// The controller's setting: owned objects seen through a cache, so that an unchanged one
// is not applied again.
class CachedReconcilerTest : public ReconcilerTest {
 protected:
  CachedReconcilerTest() : ReconcilerTest(true) {}
  std::vector<std::string> applies() const {
    std::vector<std::string> out;
    for (const auto& c : client_.calls()) {
      if (c.verb == "apply") out.push_back(c.resource + " " + c.key);
    }
    return out;
  }
  int count(const std::string& verb, const std::string& resource) const {
    int n = 0;
    for (const auto& c : client_.calls()) n += c.verb == verb && c.resource == resource;
    return n;
  }
};

TEST_F(CachedReconcilerTest, UnchangedOwnedObjectsAreNotAppliedAgain) {
  client_.put(res::kEventRouters, router_object());
  client_.put(res::kEventRoutes, route_object("r", simple_spec()));
  expect_success(reconcile_router("shop/orders"));
  client_.clear_calls();
  expect_success(reconcile_router("shop/orders"));
  EXPECT_TRUE(applies().empty()) << applies().size() << " applies, the first " << applies().front();
  EXPECT_EQ(count("get", "configmaps"), 0) << "the table's ConfigMap is read from the cache";
  EXPECT_EQ(count("list", "configmaps"), 0) << "no part to look for";

  // The echo of its own apply enqueues nothing.
  queued_.clear();
  rec_.owned_changed("Deployment", "shop/orders");
  rec_.owned_changed("ConfigMap", "shop/orders-routes");
  EXPECT_TRUE(queued_.empty());

  // A new table: the ConfigMap and nothing else.
  client_.put(res::kEventRoutes, route_object("r", simple_spec("orders", "other.subject")));
  client_.clear_calls();
  expect_success(reconcile_router("shop/orders"));
  EXPECT_EQ(applies(), (std::vector<std::string>{"configmaps shop/orders-routes"}));
  EXPECT_EQ(count("list", "configmaps"), 0) << "the same one ConfigMap as before: no part can be left over";
  EXPECT_EQ(table_generation(), 2u);
  // A new image: the Deployment and nothing else.
  client_.put(res::kEventRouters, router_object("orders", "shop", R"(,"image":"registry/router:2")"));
  client_.clear_calls();
  expect_success(reconcile_router("shop/orders"));
  EXPECT_EQ(applies(), (std::vector<std::string>{"deployments shop/orders"}));
}

TEST_F(CachedReconcilerTest, DriftIsStillRepaired) {
  client_.put(res::kEventRouters, router_object());
  expect_success(reconcile_router("shop/orders"));
  Json d = get(res::kDeployments, "orders");
  d["spec"]["replicas"] = num(7);
  client_.put(res::kDeployments, d);
  client_.delete_object(res::kRoles, "shop", "orders-router");
  Json cm = get(res::kConfigMaps, "orders-routes");
  cm["data"]["routes.json"] = str("{}");
  client_.put(res::kConfigMaps, cm);
  // A stray part of the table, as a failed cleanup would leave.
  Json stray = cm;
  stray["metadata"]["name"] = str("orders-routes-9");
  stray["metadata"].erase("resourceVersion");
  client_.put(res::kConfigMaps, stray);

  queued_.clear();
  rec_.owned_changed("Deployment", "shop/orders");
  rec_.owned_changed("Role", "shop/orders-router");
  rec_.owned_changed("ConfigMap", "shop/orders-routes");
  rec_.owned_changed("ConfigMap", "shop/orders-routes-9");
  EXPECT_EQ(queued_.size(), 4u) << "edits and deletions of others enqueue the router";
  client_.clear_calls();
  expect_success(reconcile_router("shop/orders"));
  EXPECT_EQ(int_at(get(res::kDeployments, "orders"), {"spec", "replicas"}), 2);
  get(res::kRoles, "orders-router");
  EXPECT_NE(string_at(get(res::kConfigMaps, "orders-routes"), {"data", "routes.json"}), "{}");
  EXPECT_FALSE(client_.object(res::kConfigMaps, "shop", "orders-routes-9"));
  std::vector<std::string> a = applies();
  std::sort(a.begin(), a.end());
  EXPECT_EQ(a, (std::vector<std::string>{"configmaps shop/orders-routes", "deployments shop/orders",
                                         "roles shop/orders-router"}));
}

TEST_F(CachedReconcilerTest, StatusIsWrittenWithoutReadingFirst) {
  client_.put(res::kEventRouters, router_object());
  client_.put(res::kEventRoutes, route_object("r", simple_spec()));
  expect_success(reconcile_router("shop/orders"));
  client_.clear_calls();
  expect_success(rec_.reconcile_route("shop/r"));
  EXPECT_EQ(ready_reason(res::kEventRoutes, "r"), "False/Applying");
  EXPECT_EQ(count("get", "eventroutes"), 0);
  EXPECT_EQ(count("replace_status", "eventroutes"), 1);

  // A stale copy (another writer got there first): the conflict is read and retried.
  Json stale = get(res::kEventRoutes, "r");
  Json other = stale;
  other["status"]["observedGeneration"] = num(0);
  client_.replace_status(res::kEventRoutes, other);
  client_.clear_calls();
  struct Stale : Store {
    Json object;
    std::optional<Json> get(const std::string&) const override { return object; }
    std::vector<Json> list() const override { return {object}; }
  } stale_store;
  stale_store.object = stale;
  stale_store.object["status"] = Json::object();
  Reconciler rec(client_, routers_, stale_store, transforms_, nats_, fleet_, enqueue(), log_, options(true));
  expect_success(rec.reconcile(Kind::Router, "shop/orders"));
  expect_success(rec.reconcile_route("shop/r"));
  EXPECT_EQ(count("get", "eventroutes"), 1);
  EXPECT_EQ(int_at(get(res::kEventRoutes, "r"), {"status", "observedGeneration"}), 1);
}

TEST_F(CachedReconcilerTest, AnEditRequeuesOnlyTheEditedRouteAndTheOthersStayReady) {
  client_.put(res::kEventRouters, router_object());
  for (const char* n : {"a", "b", "c"}) client_.put(res::kEventRoutes, route_object(n, simple_spec("orders", std::string(n) + ".>")));
  expect_success(reconcile_router("shop/orders"));
  const std::string first = table_hash();
  heartbeat("orders-a", 1, first);
  heartbeat("orders-b", 1, first);
  expect_success(reconcile_router("shop/orders"));
  for (const char* n : {"a", "b", "c"}) {
    expect_success(rec_.reconcile_route(std::string("shop/") + n));
    EXPECT_EQ(ready_reason(res::kEventRoutes, n), "True/Applied") << n;
  }

  // b is edited: a new table, and only b waits for it.
  client_.put(res::kEventRoutes, route_object("b", simple_spec("orders", "b2.>")));
  queued_.clear();
  expect_success(reconcile_router("shop/orders"));
  const std::string second = table_hash();
  EXPECT_NE(second, first);
  EXPECT_EQ(queued_, (std::vector<std::pair<Kind, std::string>>{{Kind::Route, "shop/b"}}));
  for (const char* n : {"a", "b", "c"}) expect_success(rec_.reconcile_route(std::string("shop/") + n));
  EXPECT_EQ(ready_reason(res::kEventRoutes, "a"), "True/Applied") << "its pods still run it";
  EXPECT_EQ(string_at(get(res::kEventRoutes, "a"), {"status", "applied"}), "2/2");
  EXPECT_EQ(ready_reason(res::kEventRoutes, "b"), "False/Applying");
  EXPECT_EQ(string_at(get(res::kEventRoutes, "b"), {"status", "applied"}), "0/2");

  // One pod moves: b is requeued, a and c are not (they run on either table).
  heartbeat("orders-a", 2, second);
  queued_.clear();
  expect_success(reconcile_router("shop/orders"));
  EXPECT_EQ(queued_, (std::vector<std::pair<Kind, std::string>>{{Kind::Route, "shop/b"}}));
  expect_success(rec_.reconcile_route("shop/b"));
  EXPECT_EQ(string_at(get(res::kEventRoutes, "b"), {"status", "applied"}), "1/2");
  EXPECT_EQ(ready_reason(res::kEventRouters, "orders"), "False/Applying");
  heartbeat("orders-b", 2, second);
  expect_success(reconcile_router("shop/orders"));
  expect_success(rec_.reconcile_route("shop/b"));
  EXPECT_EQ(ready_reason(res::kEventRoutes, "b"), "True/Applied");
  EXPECT_EQ(ready_reason(res::kEventRouters, "orders"), "True/Applied");

  // A pod leaves: every route's count changes, so every route is requeued.
  heartbeat("orders-b", 2, second, "stopped");
  queued_.clear();
  expect_success(reconcile_router("shop/orders"));
  for (const char* n : {"a", "b", "c"}) EXPECT_TRUE(queued(Kind::Route, std::string("shop/") + n)) << n;
}

TEST_F(CachedReconcilerTest, ADeletedRouteLeavesTheSpecCache) {
  client_.put(res::kEventRouters, router_object());
  client_.put(res::kEventRoutes, route_object("r", simple_spec()));
  client_.put(res::kEventRoutes, route_object("s", simple_spec("orders", "s.>")));
  rec_.route_changed("shop/r");
  rec_.route_changed("shop/s");
  expect_success(reconcile_router("shop/orders"));
  EXPECT_TRUE(rec_.spec_cache().has_route("shop/r"));
  const uint64_t checks = rec_.spec_cache().stats().route_checks;
  expect_success(rec_.reconcile_route("shop/r"));
  expect_success(reconcile_router("shop/orders"));
  EXPECT_EQ(rec_.spec_cache().stats().route_checks, checks) << "read once";
  client_.delete_object(res::kEventRoutes, "shop", "r");
  rec_.route_changed("shop/r");
  EXPECT_FALSE(rec_.spec_cache().has_route("shop/r"));
  EXPECT_TRUE(rec_.spec_cache().has_route("shop/s"));
}

}  // namespace
}  // namespace switchboard::controller
