#include "controller/reconciler.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "controller/conditions.h"
#include "controller/names.h"
#include "controller/specs.h"
#include "controller/status.h"
#include "core/route/spec_yaml.h"
#include "router/log.h"

namespace switchboard::controller {

namespace res = kube::resources;

// Route tables remembered per router beside the current one and those pods run.
constexpr size_t kKnownTables = 16;

namespace {

bool deleting(const Json& o) { return find(o, {"metadata", "deletionTimestamp"}) != nullptr; }

std::string name_of(const Json& o) { return string_at(o, {"metadata", "name"}); }
std::string ns_of(const Json& o) { return string_at(o, {"metadata", "namespace"}); }

Json status_of(const Json& o) {
  const Json* s = find(o, {"status"});
  return s == nullptr ? Json::null() : *s;
}

std::vector<std::string> finalizers_of(const Json& o) {
  std::vector<std::string> out;
  if (const Json* f = find(o, {"metadata", "finalizers"}); f != nullptr && f->is_array()) {
    for (const auto& v : f->as_array()) {
      if (v.is_string()) out.push_back(v.as_string());
    }
  }
  return out;
}

bool has_finalizer(const Json& o) {
  auto f = finalizers_of(o);
  return std::find(f.begin(), f.end(), std::string(kJetStreamFinalizer)) != f.end();
}

// How many live pods run a table that holds this generation (identity `id`) of the route.
int pods_running(const Reconciler::TableInfo& info, const std::vector<PodView>& pods, const std::string& route,
                 const std::string& id) {
  int n = 0;
  for (const auto& p : pods) {
    if (p.stale || p.state != "applied" || p.hash.empty()) continue;
    const std::map<std::string, std::string>* held = nullptr;
    if (auto t = info.known.find(p.hash); t != info.known.end()) {
      held = t->second.second.get();
    } else if (p.hash == info.hash) {
      held = &info.route_ids;  // the current table (written before this process started)
    }
    if (held == nullptr) continue;
    auto r = held->find(route);
    if (r != held->end() && r->second == id) ++n;
  }
  return n;
}

}  // namespace

std::vector<Json> Store::list_in(const std::string& ns) const {
  std::vector<Json> out;
  for (auto& o : list()) {
    if (ns_of(o) == ns) out.push_back(std::move(o));
  }
  return out;
}

std::string_view kind_name(Kind kind) {
  switch (kind) {
    case Kind::Router:
      return "EventRouter";
    case Kind::Route:
      return "EventRoute";
    case Kind::Transform:
      return "EventTransform";
  }
  return "";
}

Reconciler::Reconciler(kube::Client& client, const Store& routers, const Store& routes, const Store& transforms,
                       FleetNats& nats, FleetTracker& fleet, Enqueue enqueue, router::Logger& log,
                       ReconcilerOptions options)
    : client_(client),
      routers_(routers),
      routes_(routes),
      transforms_(transforms),
      nats_(nats),
      fleet_(fleet),
      enqueue_(std::move(enqueue)),
      log_(log),
      options_(std::move(options)) {}

Outcome Reconciler::reconcile(Kind kind, const std::string& key) {
  try {
    switch (kind) {
      case Kind::Router:
        return reconcile_router(key);
      case Kind::Route:
        return reconcile_route(key);
      case Kind::Transform:
        return reconcile_transform(key);
    }
  } catch (const kube::ApiError& e) {
    return Outcome::failed("API: " + std::to_string(e.status()) + " " + e.reason() + ": " + e.message());
  } catch (const std::exception& e) {
    return Outcome::failed(e.what());
  }
  return Outcome::success();
}

std::optional<Reconciler::TableInfo> Reconciler::table_info(const std::string& router_key) const {
  std::lock_guard lock(mu_);
  auto it = tables_.find(router_key);
  if (it == tables_.end()) return std::nullopt;
  return it->second;
}

void Reconciler::write_status(const kube::Resource& resource, const Json& stored,
                              const std::function<Json(const Json& old_status)>& compute) {
  // Nothing to write when the cached object already shows it (the common case: a resync,
  // or the echo of this controller's own write).
  Json next = compute(status_of(stored));
  if (json_equal(next, status_of(stored))) return;
  // The cached object carries its resourceVersion: a PUT of it is refused with a conflict
  // when the object changed since, and only then is it read again.
  Json object = stored;
  object["status"] = std::move(next);
  try {
    client_.replace_status(resource, object);
    return;
  } catch (const kube::ApiError& e) {
    if (e.not_found()) return;
    if (!e.conflict()) throw;
  }
  kube::update_status_with_retry(client_, resource, ns_of(stored), name_of(stored), [&](Json& fresh) {
    Json old = status_of(fresh);
    Json computed = compute(old);
    if (json_equal(computed, old)) return false;
    fresh["status"] = computed;
    return true;
  });
}

std::optional<Json> Reconciler::owned_as_applied(const std::string& router_key, const std::string& kind,
                                                 const std::string& ns, const std::string& name) const {
  auto store = options_.owned.find(kind);
  if (store == options_.owned.end() || store->second == nullptr) return std::nullopt;
  std::string rv;
  {
    std::lock_guard lock(mu_);
    auto o = owned_.find(router_key);
    if (o == owned_.end()) return std::nullopt;
    auto a = o->second.applied.find(kind + "/" + name);
    if (a == o->second.applied.end()) return std::nullopt;
    rv = a->second.resource_version;
  }
  std::optional<Json> copy = store->second->get(make_key(ns, name));
  if (!copy || rv.empty() || string_at(*copy, {"metadata", "resourceVersion"}) != rv) return std::nullopt;
  return copy;
}

Json Reconciler::apply_owned(const std::string& router_key, const kube::Resource& r, const Json& desired) {
  const bool cached = options_.owned.count(r.kind) > 0 && options_.owned.at(r.kind) != nullptr;
  const std::string name = name_of(desired);
  const std::string id = r.kind + "/" + name;
  std::string text;
  if (cached) {
    text = to_text(desired);
    bool same = false;
    {
      std::lock_guard lock(mu_);
      auto o = owned_.find(router_key);
      if (o != owned_.end()) {
        auto a = o->second.applied.find(id);
        same = a != o->second.applied.end() && a->second.desired == text;
      }
    }
    if (same) {
      if (auto copy = owned_as_applied(router_key, r.kind, ns_of(desired), name)) {
        return *copy;
      }
    }
  }
  Json stored;
  try {
    stored = client_.apply(r, desired);
  } catch (...) {
    std::lock_guard lock(mu_);
    if (auto o = owned_.find(router_key); o != owned_.end()) o->second.applied.erase(id);
    throw;
  }
  if (cached) {
    std::lock_guard lock(mu_);
    owned_[router_key].applied[id] = AppliedObject{std::move(text), string_at(stored, {"metadata", "resourceVersion"})};
  }
  return stored;
}

// ---------------------------------------------------------------------------------------
// EventRouter

bool Reconciler::service_monitors_installed() {
  auto now = options_.steady_clock();
  {
    std::lock_guard lock(mu_);
    if (service_monitors_ && now - service_monitors_checked_ < options_.crd_check_interval) return *service_monitors_;
  }
  bool installed = false;
  try {
    client_.get(res::kCustomResourceDefinitions, "", "servicemonitors.monitoring.coreos.com");
    installed = true;
  } catch (const kube::ApiError& e) {
    // Not found, or not allowed to look: either way, no ServiceMonitor. Not allowed is a
    // broken installation rather than a choice, so it is said (once per check interval).
    if (e.transient()) throw;
    if (e.status() == 403) {
      log_.warn("cannot tell whether ServiceMonitors exist, so none are written: the controller may not get "
                "customresourcedefinitions/servicemonitors.monitoring.coreos.com",
                {{"error", e.what()}});
    }
  }
  std::lock_guard lock(mu_);
  service_monitors_ = installed;
  service_monitors_checked_ = now;
  return installed;
}

std::chrono::milliseconds Reconciler::warmup_left(const std::string& router_key, const Json& router) {
  using std::chrono::milliseconds;
  std::lock_guard lock(mu_);
  auto it = listening_since_.find(router_key);
  if (it == listening_since_.end()) return milliseconds(0);
  int64_t heartbeat_ms = 5000;
  route::parse_duration_ms(router_spec(router).heartbeat, heartbeat_ms);
  const milliseconds warmup = std::min(milliseconds(2 * heartbeat_ms), options_.max_warmup);
  const auto elapsed = std::chrono::duration_cast<milliseconds>(options_.steady_clock() - it->second);
  if (elapsed >= warmup) {
    listening_since_.erase(it);
    return milliseconds(0);
  }
  return std::max(milliseconds(1), warmup - elapsed);
}

void Reconciler::enqueue_routes_of(const std::string& ns, const std::string& router,
                                   const std::vector<std::string>& names) {
  std::set<std::string> keys;
  for (const auto& n : names) keys.insert(make_key(ns, n));
  for (const auto& r : routes_.list_in(ns)) {
    if (string_at(r, {"spec", "router"}) == router) keys.insert(make_key(ns, name_of(r)));
  }
  for (const auto& k : keys) enqueue_(Kind::Route, k);
}

Outcome Reconciler::reconcile_router(const std::string& key) {
  auto [ns, name] = split_key(key);
  std::optional<Json> found = routers_.get(key);
  if (!found || deleting(*found)) {
    // The owned objects go with it (owner references); what is left is in memory.
    nats_.forget(key);
    fleet_.forget(key);
    {
      std::lock_guard lock(mu_);
      listening_since_.erase(key);
    }
    if (options_.metrics != nullptr) options_.metrics->remove_router(ns, name);
    specs_.forget_router(key);
    std::vector<std::string> members;
    {
      std::lock_guard lock(mu_);
      owned_.erase(key);
      if (auto it = tables_.find(key); it != tables_.end()) {
        for (const auto& [route, gen] : it->second.routes) members.push_back(route);
        tables_.erase(it);
      }
    }
    enqueue_routes_of(ns, name, members);
    return Outcome::success();
  }
  const Json& router = *found;
  const RouterSpec spec = router_spec(router);
  std::string degraded_reason, degraded_message;

  if (options_.min_table_interval.count() > 0) {
    // A new table already waits: what came since goes into it, compiled once when it is due.
    const auto now = options_.steady_clock();
    std::lock_guard lock(mu_);
    if (auto it = tables_.find(key); it != tables_.end() && now < it->second.held_until) {
      return Outcome::requeue(
          std::max(std::chrono::milliseconds(1),
                   std::chrono::ceil<std::chrono::milliseconds>(it->second.held_until - now)));
    }
  }
  // The route table.
  std::shared_ptr<const TransformIndex> transforms = specs_.transforms(ns, transforms_.list_in(ns));
  std::shared_ptr<const RouterTable> table_ptr = specs_.table(router, routes_.list_in(ns), *transforms);
  const RouterTable& table = *table_ptr;
  if (table.error.empty() && options_.min_table_interval.count() > 0) {
    // Too soon after the last new table: this one waits (the queue folds every change
    // that comes meanwhile into the same wait).
    const auto now = options_.steady_clock();
    std::lock_guard lock(mu_);
    auto it = tables_.find(key);
    if (it != tables_.end() && !it->second.hash.empty() && it->second.hash != table.hash) {
      const auto since = std::chrono::duration_cast<std::chrono::milliseconds>(now - it->second.hash_since);
      if (since < options_.min_table_interval) {
        it->second.held_until = it->second.hash_since + options_.min_table_interval;
        return Outcome::requeue(options_.min_table_interval - since);
      }
    }
  }
  uint64_t generation = static_cast<uint64_t>(int_at(router, {"status", "tableGeneration"}));
  std::string hash = string_at(router, {"status", "tableHash"});
  Json deployment = Json::null();
  try {
    if (!table.error.empty()) {
      // Every route compiled alone; together they do not. The running table stays.
      degraded_reason = reasons::kTableInvalid;
      degraded_message = "the routes do not compile together:\n" + table.error;
    } else {
      uint64_t cm_generation = 0;
      std::string cm_hash;
      // The cache's copy when it is what this controller wrote last; else the API's.
      std::optional<Json> cm = owned_as_applied(key, "ConfigMap", ns, routes_configmap_name(name));
      if (!cm) {
        try {
          cm = client_.get(res::kConfigMaps, ns, routes_configmap_name(name));
        } catch (const kube::ApiError& e) {
          if (!e.not_found()) throw;
        }
      }
      if (cm) {
        cm_hash = string_at(*cm, {"metadata", "annotations", std::string(kAnnotationHash)});
        cm_generation = std::strtoull(
            string_at(*cm, {"metadata", "annotations", std::string(kAnnotationGeneration)}, "0").c_str(), nullptr, 10);
      }
      generation = next_table_generation(generation, hash, cm_generation, cm_hash, table.hash);
      hash = table.hash;
    }
    if (table.error.empty()) {
      // Known before any pod can load it, so that a heartbeat naming it is understood.
      std::lock_guard lock(mu_);
      TableInfo& info = tables_[key];
      auto& k = info.known[table.hash];
      if (!k.second || *k.second != table.route_ids) {
        k = {++info.written, std::make_shared<const std::map<std::string, std::string>>(table.route_ids)};
      }
    }
    std::vector<Json> configmaps;
    if (table.error.empty()) configmaps = render_table_configmaps(router, generation, hash, table.canonical);
    const std::vector<std::string> cm_names = configmap_names(configmaps);

    apply_owned(key, res::kServiceAccounts, render_service_account(router));
    // The Role names every ConfigMap of the table before the router is told of a new part
    // (and stays as it is while there is no new table: it names the parts in use).
    if (!configmaps.empty()) apply_owned(key, res::kRoles, render_role(router, cm_names));
    apply_owned(key, res::kRoleBindings, render_role_binding(router));
    for (const auto& cm : configmaps) apply_owned(key, res::kConfigMaps, cm);  // parts, then the index
    if (!configmaps.empty()) {
      bool clean = false;
      {
        std::lock_guard lock(mu_);
        OwnedState& o = owned_[key];
        // Writing the ConfigMaps the last look found alone leaves nothing beside them; a
        // ConfigMap of the router's made since then has reset parts_clean (owned_changed).
        clean = o.parts_clean && o.table_configmaps == cm_names && options_.owned.count("ConfigMap") > 0;
        o.table_configmaps = cm_names;
      }
      if (!clean) {
        kube::ListOptions lo;
        lo.label_selector = std::string(kLabelRouter) + "=" + name;
        for (const auto& cm : client_.list(res::kConfigMaps, ns, lo).items) {
          const std::string n = name_of(cm);
          if (n != routes_configmap_name(name) && router_of_owned("ConfigMap", n) == name &&
              std::find(cm_names.begin(), cm_names.end(), n) == cm_names.end()) {
            client_.remove(res::kConfigMaps, ns, n);  // a part the index no longer names
          }
        }
        std::lock_guard lock(mu_);
        OwnedState& o = owned_[key];
        o.parts_clean = o.table_configmaps == cm_names;
      }
    }
    apply_owned(key, res::kServices, render_metrics_service(router));
    apply_owned(key, res::kPodDisruptionBudgets, render_pdb(router));
    deployment = apply_owned(key, res::kDeployments, render_deployment(router, options_.render));
    // Not watched (its CRD may be absent): applied every time, so the resync repairs it.
    if (service_monitors_installed()) client_.apply(res::kServiceMonitors, render_service_monitor(router));
  } catch (const kube::ApiError& e) {
    if (e.transient()) throw;
    degraded_reason = reasons::kApplyFailed;
    degraded_message = std::to_string(e.status()) + " " + e.reason() + ": " + e.message();
  }

  // Heartbeats.
  if (degraded_reason.empty()) {
    NatsSettings settings;
    if (!nats_settings(client_, router, settings, degraded_reason, degraded_message)) {
      // degraded_* set
    } else {
      const bool listening = nats_.watching(key);
      if (std::string error = nats_.watch(key, heartbeat_subject(ns, name), settings); !error.empty()) {
        degraded_reason = reasons::kNatsUnavailable;
        degraded_message = error;
      } else if (!listening) {
        std::lock_guard lock(mu_);
        listening_since_[key] = options_.steady_clock();
      }
    }
  }

  // What routes' statuses depend on: the table, and how far the fleet is with it. A route
  // is enqueued only when what its status shows may have changed: all of them when what
  // they all show does (replicas, live pods, rejections, whether there is a table), else
  // those whose generation in the table, or count of pods running a table that holds it,
  // moved.
  auto now = options_.steady_clock();
  std::vector<PodView> pods = fleet_.pods(key, now);
  FleetSummary summary = summarize(pods, hash);
  std::set<std::string> to_enqueue;
  bool all_routes = false;
  {
    std::lock_guard lock(mu_);
    TableInfo& info = tables_[key];
    for (const auto& [route, gen] : info.routes) to_enqueue.insert(route);
    if (table.error.empty() && !hash.empty()) {
      if (info.hash != hash) info.hash_since = now;
      info.generation = generation;
      info.hash = hash;
      info.routes = table.routes;
      info.route_ids = table.route_ids;
    } else if (info.signature.empty()) {
      // No table of ours runs yet that holds any route: its routes wait, and say so.
      info.generation = generation;
      info.hash = hash;
    }
    // Keep the last tables written, and those pods run.
    while (info.known.size() > kKnownTables) {
      auto oldest = info.known.end();
      for (auto it = info.known.begin(); it != info.known.end(); ++it) {
        const bool run = it->first == info.hash ||
                         std::any_of(pods.begin(), pods.end(), [&](const PodView& p) { return p.hash == it->first; });
        if (!run && (oldest == info.known.end() || it->second.first < oldest->second.first)) oldest = it;
      }
      if (oldest == info.known.end()) break;
      info.known.erase(oldest);
    }
    std::string signature = std::string(info.hash.empty() ? "no table" : "table") + "|" +
                            std::to_string(spec.replicas) + "|" + std::to_string(summary.live);
    for (const auto& [pod, error] : summary.rejected_by) signature += "|" + pod + ":" + error;
    std::map<std::string, std::string> views;
    std::map<std::string, int> running;
    for (const auto& [route, id] : info.route_ids) {
      const int n = pods_running(info, pods, route, id);
      running[route] = n;
      views[route] = id + ":" + std::to_string(n);
    }
    info.route_running = std::move(running);
    if (signature != info.signature) {
      all_routes = true;
    } else {
      to_enqueue.clear();
      for (const auto& [route, view] : views) {
        auto old = info.route_views.find(route);
        if (old == info.route_views.end() || old->second != view) to_enqueue.insert(route);
      }
      for (const auto& [route, view] : info.route_views) {
        if (views.count(route) == 0) to_enqueue.insert(route);
      }
    }
    if (all_routes) {
      for (const auto& [route, id] : info.route_ids) to_enqueue.insert(route);
    }
    info.signature = std::move(signature);
    info.route_views = std::move(views);
  }
  if (all_routes) {
    enqueue_routes_of(ns, name, std::vector<std::string>(to_enqueue.begin(), to_enqueue.end()));
  } else {
    for (const auto& route : to_enqueue) enqueue_(Kind::Route, make_key(ns, route));
  }
  if (auto left = warmup_left(key, router); left.count() > 0 && degraded_reason.empty()) {
    return Outcome::requeue(left);
  }
  // Past the warm-up, a connection that is still not up is why no heartbeat comes.
  if (degraded_reason.empty()) {
    if (std::string problem = nats_.connection_problem(key); !problem.empty()) {
      degraded_reason = reasons::kNatsUnavailable;
      degraded_message = std::move(problem);
    }
  }
  if (options_.metrics != nullptr) {
    options_.metrics->set_router_pods(ns, name, summary.applied, summary.rejected, summary.stale);
  }

  RouterStatusInput in;
  in.generation = int_at(router, {"metadata", "generation"});
  in.desired = spec.replicas;
  in.replicas = int_at(deployment, {"status", "replicas"});
  in.ready_replicas = int_at(deployment, {"status", "readyReplicas"});
  in.selector = selector_text(name);
  in.table_generation = hash.empty() ? 0 : generation;
  in.table_hash = hash;
  in.pods = pods;
  in.left_out = table.left_out;
  in.degraded_reason = degraded_reason;
  in.degraded_message = degraded_message;
  const std::string stamp = rfc3339(options_.wall_clock());
  write_status(res::kEventRouters, router, [&](const Json& old) { return router_status(old, in, stamp); });

  // A table that does not compile stays so until a route or transform changes, and
  // those enqueue the router; the rest may pass on their own (a Secret created later, a
  // NATS server that comes back), so they are retried with backoff.
  if (!degraded_reason.empty() && degraded_reason != reasons::kTableInvalid) {
    return Outcome::failed(degraded_reason + ": " + degraded_message);
  }
  return Outcome::success();
}

// ---------------------------------------------------------------------------------------
// EventRoute

std::vector<Json> Reconciler::runners_of(const Json& route) const {
  std::vector<Json> out;
  const std::string named = string_at(route, {"spec", "router"});
  if (!named.empty()) {
    auto r = routers_.get(make_key(ns_of(route), named));
    if (r && !deleting(*r)) out.push_back(*r);
    return out;
  }
  for (auto& r : routers_.list_in(ns_of(route))) {
    if (!deleting(r) && router_selects(r, route)) out.push_back(std::move(r));
  }
  return out;
}

void Reconciler::set_route_finalizer(const Json& route, bool present) {
  std::vector<std::string> f = finalizers_of(route);
  auto it = std::find(f.begin(), f.end(), std::string(kJetStreamFinalizer));
  if ((it != f.end()) == present) return;
  if (present) {
    f.push_back(std::string(kJetStreamFinalizer));
  } else {
    f.erase(it);
  }
  // The resourceVersion makes the list replacement safe: a concurrent change of the
  // finalizers fails with a conflict and the reconcile runs again.
  Json patch = obj({{"metadata", obj({{"finalizers", string_array(f)},
                                      {"resourceVersion", str(string_at(route, {"metadata", "resourceVersion"}))}})}});
  client_.merge_patch(res::kEventRoutes, ns_of(route), name_of(route), patch);
}

Outcome Reconciler::reconcile_route(const std::string& key) {
  std::optional<Json> found = routes_.get(key);
  if (!found) {
    std::lock_guard lock(mu_);
    applying_since_.erase(key);
    return Outcome::success();
  }
  const Json& route = *found;
  const std::string ns = ns_of(route);
  const std::string name = name_of(route);
  std::vector<Json> runners = runners_of(route);
  if (deleting(route)) return finalize_route(route, runners);

  const bool jetstream = find(route, {"spec", "source", "jetstream"}) != nullptr;
  set_route_finalizer(route, jetstream);

  std::shared_ptr<const RouteCheck> check_ptr = specs_.check(route, *specs_.transforms(ns, transforms_.list_in(ns)));
  const RouteCheck& check = *check_ptr;
  RouteStatusInput in;
  in.generation = int_at(route, {"metadata", "generation"});
  in.valid = check.ok;
  in.invalid_reason = check.reason;
  in.invalid_message = check.message;
  const std::string named = string_at(route, {"spec", "router"});
  if (!named.empty()) {
    in.no_router_reason = reasons::kUnknownRouter;
    in.no_router_message = "there is no EventRouter '" + named + "' in namespace " + ns;
  } else {
    in.no_router_reason = reasons::kNoRouter;
    in.no_router_message = "the route names no router (spec.router) and no EventRouter in namespace " + ns +
                           " selects its labels (spec.routeSelector)";
  }
  const auto now = options_.steady_clock();
  const std::string identity = route_identity(route);
  for (const auto& r : check.ok ? runners : std::vector<Json>{}) {
    const std::string rkey = make_key(ns, name_of(r));
    // Not a word about a valid route before its router's table and pods are known: its
    // router enqueues it once they are.
    {
      std::lock_guard lock(mu_);
      // (An entry without a signature is a table being written for the first time.)
      auto it = tables_.find(rkey);
      if (it == tables_.end() || it->second.signature.empty()) return Outcome::success();
    }
    if (auto left = warmup_left(rkey, r); left.count() > 0) return Outcome::requeue(left);
    RouteFleet f;
    f.router = name_of(r);
    f.desired = router_spec(r).replicas;
    std::vector<PodView> pods = fleet_.pods(rkey, now);
    int running = 0;
    std::string hash;
    {
      std::lock_guard lock(mu_);
      if (auto it = tables_.find(rkey); it != tables_.end()) {
        auto member = it->second.routes.find(name);
        f.in_table = member != it->second.routes.end() && member->second == in.generation;
        f.table_generation = it->second.generation;
        hash = it->second.hash;
        auto id = it->second.route_ids.find(name);
        auto n = it->second.route_running.find(name);
        if (id != it->second.route_ids.end() && id->second == identity && n != it->second.route_running.end()) {
          running = n->second;
        }
      }
    }
    f.summary = summarize(pods, hash);
    // A pod runs this generation of the route when its table holds it, be that table the
    // newest or one before it that held the route as it is: as the router last counted.
    if (f.in_table) f.summary.current = running;
    in.fleets.push_back(std::move(f));
  }
  const std::string stamp = rfc3339(options_.wall_clock());
  if (auto wait = applying_grace_left(key, route, in, now); wait.count() > 0) return Outcome::requeue(wait);
  write_status(res::kEventRoutes, route, [&](const Json& old) { return route_status(old, in, stamp); });
  // An invalid spec is final until the spec, a transform or a router changes: each of
  // those enqueues the route again, so there is nothing to retry here.
  return Outcome::success();
}

std::chrono::milliseconds Reconciler::applying_grace_left(const std::string& key, const Json& route,
                                                         const RouteStatusInput& in,
                                                         std::chrono::steady_clock::time_point now) {
  using std::chrono::milliseconds;
  std::lock_guard lock(mu_);
  auto done = [&] {
    applying_since_.erase(key);
    return milliseconds(0);
  };
  if (options_.applying_grace.count() == 0 || int_at(route, {"status", "observedGeneration"}) == in.generation) {
    return done();  // no grace, or this generation is shown already
  }
  const Json next = route_status(status_of(route), in, "");
  const Json* conditions = find(next, {"conditions"});
  const Json* ready = conditions != nullptr ? find_condition(*conditions, "Ready") : nullptr;
  if (ready == nullptr || string_at(*ready, {"reason"}) != reasons::kApplying) return done();
  auto [it, fresh] = applying_since_.try_emplace(key, in.generation, now);
  if (!fresh && it->second.first != in.generation) it->second = {in.generation, now};
  const auto elapsed = std::chrono::duration_cast<milliseconds>(now - it->second.second);
  if (elapsed >= options_.applying_grace) return milliseconds(0);
  return std::max(milliseconds(1), options_.applying_grace - elapsed);
}

Outcome Reconciler::finalize_route(const Json& route, const std::vector<Json>& runners) {
  if (!has_finalizer(route)) return Outcome::success();
  const std::string ns = ns_of(route);
  const std::string name = name_of(route);
  const Json* js = find(route, {"spec", "source", "jetstream"});
  if (js == nullptr) {
    set_route_finalizer(route, false);
    return Outcome::success();
  }
  const std::string stream = string_at(*js, {"stream"});
  const std::string durable = string_at(*js, {"durable"}, name);
  std::string waiting, failure;
  const auto now = options_.steady_clock();
  for (const auto& r : runners) {
    const std::string rkey = make_key(ns, name_of(r));
    // A pod that still runs the route would create the consumer again: wait until every
    // pod runs a table without it.
    std::optional<TableInfo> info = table_info(rkey);
    if (!info || info->signature.empty() || info->routes.count(name) > 0 || warmup_left(rkey, r).count() > 0) {
      waiting = "waiting for router " + name_of(r) + " to write a route table without it";
      continue;
    }
    FleetSummary s = summarize(fleet_.pods(rkey, now), info->hash);
    if (s.current < s.live) {
      waiting = "waiting for " + std::to_string(s.live - s.current) + " pod(s) of router " + name_of(r) +
                " to stop running it";
      continue;
    }
    if (!nats_.watching(rkey)) {
      NatsSettings settings;
      std::string reason, message;
      if (!nats_settings(client_, r, settings, reason, message)) {
        failure = message;
        continue;
      }
      if (std::string e = nats_.watch(rkey, heartbeat_subject(ns, name_of(r)), settings); !e.empty()) {
        failure = e;
        continue;
      }
    }
    if (std::string e = nats_.delete_consumer(rkey, stream, durable); !e.empty()) failure = e;
  }
  if (!waiting.empty() || !failure.empty()) {
    RouteStatusInput in;
    in.generation = int_at(route, {"metadata", "generation"});
    in.valid = true;
    in.deleting_message = !failure.empty()
                              ? "cannot delete JetStream consumer '" + durable + "' of stream '" + stream + "': " +
                                    failure + "; retrying"
                              : "deleting JetStream consumer '" + durable + "' of stream '" + stream + "': " + waiting;
    const std::string stamp = rfc3339(options_.wall_clock());
    write_status(res::kEventRoutes, route, [&](const Json& old) { return route_status(old, in, stamp); });
    if (!failure.empty()) return Outcome::failed(in.deleting_message);
    return Outcome::requeue(std::chrono::seconds(2));
  }
  if (runners.empty()) {
    log_.warn("no router runs the route: its JetStream consumer is left as it is",
              {{"route", make_key(ns, name)}, {"stream", stream}, {"durable", durable}});
  } else {
    log_.info("deleted JetStream consumer", {{"route", make_key(ns, name)}, {"stream", stream}, {"durable", durable}});
  }
  set_route_finalizer(route, false);
  return Outcome::success();
}

// ---------------------------------------------------------------------------------------
// EventTransform

Outcome Reconciler::reconcile_transform(const std::string& key) {
  std::optional<Json> found = transforms_.get(key);
  if (!found) return Outcome::success();
  TransformCheck check = check_transform(*found);
  const int64_t generation = int_at(*found, {"metadata", "generation"});
  const std::string stamp = rfc3339(options_.wall_clock());
  write_status(res::kEventTransforms, *found,
               [&](const Json& old) { return transform_status(old, generation, check, stamp); });
  return Outcome::success();
}

// ---------------------------------------------------------------------------------------
// Triggers

bool Reconciler::spec_changed(Kind kind, const Store& store, const std::string& key) {
  std::string now;
  if (std::optional<Json> o = store.get(key)) {
    now = std::to_string(int_at(*o, {"metadata", "generation"})) + "|" + string_at(*o, {"metadata", "uid"}) + "|" +
          (deleting(*o) ? "deleting" : "") + "|";
    if (const Json* labels = find(*o, {"metadata", "labels"})) now += labels->serialize();
    if (const Json* finalizers = find(*o, {"metadata", "finalizers"})) now += "|" + finalizers->serialize();
  }
  const std::string id = std::string(kind_name(kind)) + "/" + key;
  std::lock_guard lock(mu_);
  auto it = seen_.find(id);
  if (now.empty()) {
    if (it != seen_.end()) seen_.erase(it);
    return true;
  }
  if (it != seen_.end() && it->second == now) return false;
  seen_[id] = now;
  return true;
}

void Reconciler::route_changed(const std::string& key) {
  // The route itself is cheap to look at again: its status may lag its router's news.
  enqueue_(Kind::Route, key);
  if (!spec_changed(Kind::Route, routes_, key)) return;
  if (!routes_.get(key)) specs_.forget_route(key);  // deleted: its check goes too
  for (const auto& r : routers_.list_in(split_key(key).first)) enqueue_(Kind::Router, make_key(ns_of(r), name_of(r)));
}

void Reconciler::transform_changed(const std::string& key) {
  auto [ns, name] = split_key(key);
  if (!spec_changed(Kind::Transform, transforms_, key)) return;
  enqueue_(Kind::Transform, key);
  for (const auto& r : routes_.list_in(ns)) {
    const Json* steps = find(r, {"spec", "transform"});
    if (steps == nullptr || !steps->is_array()) continue;
    for (const auto& s : steps->as_array()) {
      if (string_at(s, {"use"}) == name) {
        enqueue_(Kind::Route, make_key(ns, name_of(r)));
        break;
      }
    }
  }
  for (const auto& r : routers_.list_in(ns)) enqueue_(Kind::Router, make_key(ns, name_of(r)));
}

void Reconciler::router_changed(const std::string& key) {
  if (spec_changed(Kind::Router, routers_, key)) enqueue_(Kind::Router, key);
}

void Reconciler::owned_changed(std::string_view kind, const std::string& key) {
  auto [ns, name] = split_key(key);
  auto router = router_of_owned(kind, name);
  if (!router) return;
  const std::string router_key = make_key(ns, *router);
  // The echo of the controller's own apply: the cache shows what the apply left.
  if (owned_as_applied(router_key, std::string(kind), ns, name)) return;
  if (kind == "ConfigMap") {
    std::lock_guard lock(mu_);
    if (auto o = owned_.find(router_key); o != owned_.end()) o->second.parts_clean = false;
  }
  enqueue_(Kind::Router, router_key);
}

void Reconciler::heartbeat(const std::string& router_key, std::string_view payload) {
  Heartbeat hb;
  std::string error;
  if (!parse_heartbeat(payload, hb, error)) {
    log_.log_limited("heartbeat/" + router_key, router::LogLevel::Warn, "ignoring a heartbeat",
                     {{"router", router_key}, {"error", error}});
    return;
  }
  if (fleet_.observe(router_key, hb, options_.steady_clock())) enqueue_(Kind::Router, router_key);
}

void Reconciler::expire_pods() {
  for (const auto& key : fleet_.expire(options_.steady_clock())) enqueue_(Kind::Router, key);
}

}  // namespace switchboard::controller
