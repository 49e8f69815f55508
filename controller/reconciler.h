// The three reconcilers. Each takes a key ("namespace/name"), reads what is there now
// (from the informer caches, through Store) and converges: the same call serves a create,
// an update, a resync and a drift repair. They touch the API only through kube::Client and
// NATS only through FleetNats, so a test drives them with a fake of each.
//
// What triggers what (a change of status alone, mostly the echo of the controller's own
// writes, triggers no other kind and no reconcile of a router or transform):
//   EventRoute changed      → that route, and the routers of its namespace (selection)
//   EventTransform changed  → that transform, the routes that use it, the routers of its namespace
//   EventRouter changed     → that router
//   an owned object changed → its router (drift repair)
//   a heartbeat changed what a fleet runs, or a pod went silent → its router
//   a router's fleet changed (replicas, live pods, rejections) → the routes in its old and
//                           new table, and those naming it
//   a router's table or a pod's table changed → only the routes whose generation in the
//                           table, or count of pods running a table that holds it, moved
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/fleet.h"
#include "controller/fleet_nats.h"
#include "controller/json_util.h"
#include "controller/metrics.h"
#include "controller/render.h"
#include "controller/spec_cache.h"
#include "controller/status.h"
#include "kube/client.h"

namespace switchboard::router {
class Logger;
}

namespace switchboard::controller {

// The objects of one kind as last seen: an informer's cache in the controller, the fake
// client itself in tests.
class Store {
 public:
  virtual ~Store() = default;
  virtual std::optional<Json> get(const std::string& key) const = 0;
  virtual std::vector<Json> list() const = 0;
  std::vector<Json> list_in(const std::string& ns) const;
};

enum class Kind { Router, Route, Transform };
std::string_view kind_name(Kind kind);  // EventRouter, EventRoute, EventTransform

struct Outcome {
  ReconcileResult result = ReconcileResult::Success;
  std::chrono::milliseconds after{0};  // Requeue: when
  std::string error;                   // Error: what failed (logged; retried with backoff)

  static Outcome success() { return {}; }
  static Outcome requeue(std::chrono::milliseconds after) { return {ReconcileResult::Requeue, after, ""}; }
  static Outcome failed(std::string error) { return {ReconcileResult::Error, {}, std::move(error)}; }
};

struct ReconcilerOptions {
  RenderOptions render;
  // How long the answer to "is the ServiceMonitor CRD installed?" is trusted.
  std::chrono::seconds crd_check_interval{60};
  ControllerMetrics* metrics = nullptr;  // routers_pods; optional
  // After it starts listening to a router, the controller writes no status for it (or its
  // routes) for two heartbeat intervals, at most this long: until every pod had its turn
  // to speak, an empty fleet would only mean "not heard yet", and a status written from it
  // would flap (Ready, then not, then Ready again) on every controller restart.
  std::chrono::milliseconds max_warmup{30000};
  // A route's new generation (or a new route) on its way to the pods is shown as Applying
  // only once this has passed: most reach every pod sooner, and go from the status of the
  // generation before (observedGeneration says which) straight to Ready, with one status
  // write instead of two or three. Zero writes Applying at once.
  std::chrono::milliseconds applying_grace{0};
  // A router's next table is written at least this long after its last one: while route
  // changes keep coming (1,000 routes created at once), the table grows in a few large
  // steps instead of one write of it, and one reload in every pod, per reconcile. The
  // first new table after a quieter spell is written at once. Zero: every time.
  std::chrono::milliseconds min_table_interval{0};
  std::function<std::chrono::system_clock::time_point()> wall_clock = [] { return std::chrono::system_clock::now(); };
  std::function<std::chrono::steady_clock::time_point()> steady_clock = [] { return std::chrono::steady_clock::now(); };
  // The informer caches of the owned kinds, by kind ("Deployment"). With one, an owned
  // object is applied only when what the controller wants of it changed since its last
  // apply, or the cache shows another version than that apply left (edited, deleted, or
  // not seen yet); its own echo enqueues nothing. Without one (tests), every reconcile
  // applies it.
  std::map<std::string, const Store*> owned;
};

class Reconciler {
 public:
  using Enqueue = std::function<void(Kind kind, const std::string& key)>;

  Reconciler(kube::Client& client, const Store& routers, const Store& routes, const Store& transforms, FleetNats& nats,
             FleetTracker& fleet, Enqueue enqueue, router::Logger& log, ReconcilerOptions options);

  // Never throws: an exception from the API becomes an Error outcome.
  Outcome reconcile(Kind kind, const std::string& key);
  Outcome reconcile_router(const std::string& key);
  Outcome reconcile_route(const std::string& key);
  Outcome reconcile_transform(const std::string& key);

  // Informer and NATS callbacks: they only enqueue.
  void route_changed(const std::string& key);
  void transform_changed(const std::string& key);
  void router_changed(const std::string& key);
  void owned_changed(std::string_view kind, const std::string& key);
  void heartbeat(const std::string& router_key, std::string_view payload);
  void expire_pods();  // call about once a second

  // What the controller last wrote for a router (tests, and the route reconciler).
  struct TableInfo {
    uint64_t generation = 0;
    std::string hash;
    std::map<std::string, int64_t> routes;  // route name → metadata.generation
    std::map<std::string, std::string> route_ids;  // route name → route_identity() in the table
    std::string signature;                  // what every route's status depends on
    // What each route's status depends on beside the signature: its generation in the
    // table, and how many pods run a table holding it (route_running, counted by the
    // router's reconcile; a route's reconcile reads it from here, so that what a route
    // shows is always what its router last counted, and the router requeues it when that
    // changes).
    std::map<std::string, std::string> route_views;
    std::map<std::string, int> route_running;
    // The last tables written by this controller (and any a pod still runs): hash → the
    // order written, route_ids. A pod runs a route when its table holds the route's
    // generation, whether or not that table is the newest.
    std::map<std::string, std::pair<uint64_t, std::shared_ptr<const std::map<std::string, std::string>>>> known;
    uint64_t written = 0;
    std::chrono::steady_clock::time_point hash_since{};  // when `hash` became the table
    // While a new table waits for --min-table-interval: until when. Reconciles before
    // then requeue without compiling (a burst of route changes enqueues the router once
    // per change).
    std::chrono::steady_clock::time_point held_until{};
  };
  std::optional<TableInfo> table_info(const std::string& router_key) const;
  const SpecCache& spec_cache() const { return specs_; }

 private:
  Outcome finalize_route(const Json& route, const std::vector<Json>& runners);
  void set_route_finalizer(const Json& route, bool present);
  std::vector<Json> runners_of(const Json& route) const;
  bool service_monitors_installed();
  // How long the router's status must still wait for heartbeats (zero: not at all).
  std::chrono::milliseconds warmup_left(const std::string& router_key, const Json& router);
  // How long a route that is only Applying waits before its status says so
  // (ReconcilerOptions::applying_grace); zero: write the status now.
  std::chrono::milliseconds applying_grace_left(const std::string& key, const Json& route, const RouteStatusInput& in,
                                                std::chrono::steady_clock::time_point now);
  void write_status(const kube::Resource& resource, const Json& stored,
                    const std::function<Json(const Json& old_status)>& compute);
  // Server-side apply of an owned object of router `router_key`, unless ReconcilerOptions::owned
  // shows it as the last apply left it and the desired object is the same; returns the object
  // as stored.
  Json apply_owned(const std::string& router_key, const kube::Resource& r, const Json& desired);
  // The cache's copy of an owned object when it is the version this controller's last apply
  // left, else nothing.
  std::optional<Json> owned_as_applied(const std::string& router_key, const std::string& kind,
                                       const std::string& ns, const std::string& name) const;
  void enqueue_routes_of(const std::string& ns, const std::string& router, const std::vector<std::string>& names);
  // Whether what others depend on (generation, labels, deletion, finalizers) changed since
  // the last call for this object: a status write (the controller's own, most often)
  // changes nothing that routers or routes depend on.
  bool spec_changed(Kind kind, const Store& store, const std::string& key);

  kube::Client& client_;
  const Store& routers_;
  const Store& routes_;
  const Store& transforms_;
  FleetNats& nats_;
  FleetTracker& fleet_;
  Enqueue enqueue_;
  router::Logger& log_;
  ReconcilerOptions options_;

  SpecCache specs_;
  mutable std::mutex mu_;
  std::map<std::string, TableInfo> tables_;
  struct AppliedObject {
    std::string desired;           // the object applied, as text
    std::string resource_version;  // of the object the apply returned
  };
  struct OwnedState {
    std::map<std::string, AppliedObject> applied;  // "Kind/name" → last apply
    std::vector<std::string> table_configmaps;     // of the current table
    bool parts_clean = false;  // no part ConfigMap beside table_configmaps since the last look
  };
  std::map<std::string, OwnedState> owned_;  // router key →
  std::map<std::string, std::chrono::steady_clock::time_point> listening_since_;
  // Routes whose generation (first) is applying and not shown yet: since when (second).
  std::map<std::string, std::pair<int64_t, std::chrono::steady_clock::time_point>> applying_since_;
  std::map<std::string, std::string> seen_;  // kind/key → what spec_changed compares
  std::optional<bool> service_monitors_;
  std::chrono::steady_clock::time_point service_monitors_checked_{};
};

}  // namespace switchboard::controller
