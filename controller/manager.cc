#include "controller/manager.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "controller/fleet.h"
#include "controller/fleet_nats.h"
#include "controller/metrics.h"
#include "controller/names.h"
#include "controller/reconciler.h"
#include "kube/client.h"
#include "kube/config.h"
#include "kube/informer.h"
#include "kube/leader.h"
#include "kube/workqueue.h"
#include "router/http_server.h"
#include "router/log.h"

namespace switchboard::controller {

namespace {

namespace res = kube::resources;

class InformerStore : public Store {
 public:
  explicit InformerStore(const kube::Informer& informer) : informer_(informer) {}
  std::optional<Json> get(const std::string& key) const override { return informer_.get(key); }
  std::vector<Json> list() const override { return informer_.list(); }

 private:
  const kube::Informer& informer_;
};

std::string pod_namespace() {
  if (const char* ns = std::getenv("POD_NAMESPACE"); ns != nullptr && *ns != '\0') return ns;
  std::ifstream in("/var/run/secrets/kubernetes.io/serviceaccount/namespace");
  std::string ns;
  if (in && std::getline(in, ns) && !ns.empty()) return ns;
  return "default";
}

// Two replicas started with the same pod name (or on the same host) must not both think
// they hold the Lease.
std::string unique_identity(const std::string& pod) {
  std::random_device rd;
  static const char* kHex = "0123456789abcdef";
  std::string suffix;
  for (int i = 0; i < 8; ++i) suffix += kHex[rd() % 16];
  return pod + "_" + suffix;
}

// Workers per kind. A key is never handed to two workers at once; EventRoute reconciles
// mostly wait for the API (a status write), so a few of them overlap.
int workers_for(Kind kind) { return kind == Kind::Route ? 4 : 1; }

struct KindQueue {
  Kind kind;
  kube::WorkQueue queue;
  std::vector<std::thread> workers;
};

}  // namespace

int run_controller(const ControllerOptions& o) {
  // Signals are taken by the main thread alone, with sigwait; every thread started from
  // here inherits the mask. SIGUSR1 is how a lost Lease reaches the main thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  router::LoggerOptions lo;
  lo.level = *router::parse_log_level(o.log_level);
  router::Logger log(lo);

  std::unique_ptr<kube::Client> client;
  try {
    kube::Config config = kube::load_config(o.kubeconfig, o.context);
    client = kube::make_client(config);
    log.info("kubernetes API", {{"server", config.server}});
  } catch (const std::exception& e) {
    log.error("cannot start: no usable Kubernetes configuration", {{"error", e.what()}});
    return 1;
  }

  ControllerMetrics metrics;
  FleetTracker fleet(std::chrono::milliseconds(o.status_stale_after_ms));
  // Set before anything can call back into it, cleared before the callers stop.
  std::atomic<Reconciler*> reconciler{nullptr};
  NatsFleet nats(
      "switchboard-controller/" + o.pod_name,
      [&reconciler](const std::string& router_key, std::string_view payload) {
        if (Reconciler* r = reconciler.load()) r->heartbeat(router_key, payload);
      },
      log);

  std::vector<std::unique_ptr<KindQueue>> queues;
  for (Kind k : {Kind::Router, Kind::Route, Kind::Transform}) {
    queues.push_back(std::unique_ptr<KindQueue>(new KindQueue{k, kube::WorkQueue(), {}}));
  }
  auto queue_of = [&](Kind k) -> kube::WorkQueue& { return queues[static_cast<size_t>(k)]->queue; };

  // Informers: the three kinds, and the owned kinds (by label) for drift repair.
  kube::ListOptions all;
  kube::ListOptions managed;
  managed.label_selector = std::string(kManagedSelector);
  auto on = [&reconciler](auto fn) {
    return [&reconciler, fn](const std::string& key) {
      if (Reconciler* r = reconciler.load()) fn(*r, key);
    };
  };
  kube::Informer routers_informer(*client, res::kEventRouters, o.watch_namespace, all,
                                  on([](Reconciler& r, const std::string& k) { r.router_changed(k); }));
  kube::Informer routes_informer(*client, res::kEventRoutes, o.watch_namespace, all,
                                 on([](Reconciler& r, const std::string& k) { r.route_changed(k); }));
  kube::Informer transforms_informer(*client, res::kEventTransforms, o.watch_namespace, all,
                                     on([](Reconciler& r, const std::string& k) { r.transform_changed(k); }));
  std::vector<std::unique_ptr<kube::Informer>> owned;
  std::vector<std::unique_ptr<InformerStore>> owned_stores;
  std::map<std::string, const Store*> owned_by_kind;
  for (const kube::Resource* r : {&res::kConfigMaps, &res::kDeployments, &res::kServiceAccounts, &res::kRoles,
                                  &res::kRoleBindings, &res::kServices, &res::kPodDisruptionBudgets}) {
    std::string kind = r->kind;
    owned.push_back(std::make_unique<kube::Informer>(
        *client, *r, o.watch_namespace, managed,
        on([kind](Reconciler& rec, const std::string& k) { rec.owned_changed(kind, k); })));
    owned_stores.push_back(std::make_unique<InformerStore>(*owned.back()));
    owned_by_kind[kind] = owned_stores.back().get();
  }
  InformerStore routers(routers_informer), routes(routes_informer), transforms(transforms_informer);

  ReconcilerOptions ro;
  ro.render.default_image = o.router_image;
  ro.metrics = &metrics;
  ro.max_warmup = std::chrono::milliseconds(o.status_stale_after_ms);
  ro.applying_grace = std::chrono::milliseconds(o.applying_grace_ms);
  ro.min_table_interval = std::chrono::milliseconds(o.min_table_interval_ms);
  ro.owned = owned_by_kind;
  Reconciler rec(*client, routers, routes, transforms, nats, fleet,
                 [&](Kind k, const std::string& key) { queue_of(k).add(key); }, log, ro);
  reconciler = &rec;

  auto synced = [&] {
    bool all_synced = routers_informer.synced() && routes_informer.synced() && transforms_informer.synced();
    for (const auto& i : owned) all_synced = all_synced && i->synced();
    return all_synced;
  };
  router::HttpServerOptions ho;
  ho.address = o.metrics_address;
  ho.port = o.metrics_port;
  router::HttpServer http(ho, [&] { return metrics.serialize(); },
                          [&](std::string& why) {
                            if (synced()) return true;
                            why = "caches not synced yet";
                            return false;
                          },
                          // Liveness: a NATS connection cnats hangs on holds every
                          // reconcile that touches it; only a restart frees them.
                          [&](std::string& why) {
                            why = nats.stuck();
                            if (why.empty()) return true;
                            log.log_limited("nats/stuck", router::LogLevel::Error, why, {});
                            return false;
                          });
  try {
    http.Start();
  } catch (const std::exception& e) {
    log.error("cannot serve metrics", {{"address", o.metrics_address}, {"port", o.metrics_port}, {"error", e.what()}});
    return 1;
  }

  routers_informer.start();
  routes_informer.start();
  transforms_informer.start();
  for (auto& i : owned) i->start();

  auto enqueue_everything = [&] {
    for (const auto& r : routers.list()) queue_of(Kind::Router).add(kube::key_of(r));
    for (const auto& r : routes.list()) queue_of(Kind::Route).add(kube::key_of(r));
    for (const auto& t : transforms.list()) queue_of(Kind::Transform).add(kube::key_of(t));
  };

  // Workers run only while this replica leads.
  std::unique_ptr<kube::LeaderElector> elector;
  std::mutex workers_mu;
  bool workers_started = false;
  std::atomic<bool> stopping{false};
  // Each informer and the list that began after this replica began to lead.
  std::vector<std::pair<kube::Informer*, uint64_t>> lists_at_start;
  auto listed_since_start = [&] {
    for (const auto& [informer, target] : lists_at_start) {
      if (informer->lists() < target) return false;
    }
    return true;
  };
  auto start_workers = [&] {
    std::lock_guard lock(workers_mu);
    if (workers_started || stopping) return;
    workers_started = true;
    metrics.set_leader(true);
    log.info("leading: reconciling", {{"identity", o.pod_name}});
    // A new leader acts only on caches listed after it took the Lease. A standby's caches
    // are as new as its last working watch, which may be from before an outage of the API
    // server (its watches back off up to 30 s); a route table written from them would take
    // back the edits made since (the control-plane chaos scenario caught one doing so).
    std::vector<kube::Informer*> informers = {&routers_informer, &routes_informer, &transforms_informer};
    for (auto& i : owned) informers.push_back(i.get());
    for (kube::Informer* i : informers) lists_at_start.emplace_back(i, i->request_relist());
    for (auto& q : queues) {
      KindQueue* kq = q.get();
      for (int w = 0; w < workers_for(kq->kind); ++w) {
        kq->workers.emplace_back([&, kq] {
          const std::string_view kind = kind_name(kq->kind);
          // A reconcile on a cache still filling would see some routes and not others, and
          // write a route table without the rest: nothing runs before every cache is full,
          // and listed again since this replica began to lead.
          while (!stopping && !(synced() && listed_since_start())) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
          while (auto key = kq->queue.get()) {
            // No write on a lease that may have passed to another replica (this one was
            // frozen past its renew deadline): the key waits; the elector steps down.
            if (elector && !elector->holds_lease()) {
              kq->queue.done(*key);
              kq->queue.add_after(*key, std::chrono::seconds(1));
              std::this_thread::sleep_for(std::chrono::milliseconds(100));
              continue;
            }
            metrics.queue_latency(kind, kq->queue.last_wait().count());
            const auto started = std::chrono::steady_clock::now();
            Outcome out = rec.reconcile(kq->kind, *key);
            metrics.reconciled(kind, out.result,
                               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
            switch (out.result) {
              case ReconcileResult::Success:
                kq->queue.forget(*key);
                break;
              case ReconcileResult::Requeue:
                kq->queue.forget(*key);
                kq->queue.add_after(*key, out.after);
                break;
              case ReconcileResult::Error:
                log.log_limited(std::string(kind) + "/" + *key, router::LogLevel::Warn, "reconcile failed; retrying",
                                {{"kind", kind}, {"key", *key}, {"error", out.error},
                                 {"failures", kq->queue.failures(*key) + 1}});
                kq->queue.add_rate_limited(*key);
                break;
            }
            kq->queue.done(*key);
            metrics.queue_depth(kind, static_cast<double>(kq->queue.depth()));
          }
        });
      }
    }
    enqueue_everything();
  };

  if (o.leader_elect) {
    kube::LeaderElectionConfig lc;
    lc.ns = o.leader_election_namespace.empty() ? pod_namespace() : o.leader_election_namespace;
    lc.name = o.leader_election_id;
    lc.identity = unique_identity(o.pod_name);
    lc.lease_duration = std::chrono::milliseconds(o.lease_duration_ms);
    lc.renew_deadline = std::chrono::milliseconds(o.renew_deadline_ms);
    lc.retry_period = std::chrono::milliseconds(o.retry_period_ms);
    log.info("waiting for the leader lease", {{"lease", lc.ns + "/" + lc.name}, {"identity", lc.identity}});
    elector = std::make_unique<kube::LeaderElector>(*client, lc, start_workers, [&] {
      metrics.set_leader(false);
      // Workers cannot be stopped half way through a term and started again cleanly;
      // like controller-runtime, a replica that loses the Lease exits and is restarted.
      if (!stopping) ::kill(::getpid(), SIGUSR1);
    });
    elector->start();
  } else {
    start_workers();
  }

  // Ticker: silent pods age out, queue depths are exported, everything is resynced.
  std::mutex tick_mu;
  std::condition_variable tick_cv;
  std::thread ticker([&] {
    auto next_resync = std::chrono::steady_clock::now() + std::chrono::milliseconds(o.resync_ms);
    std::unique_lock lock(tick_mu);
    while (!tick_cv.wait_for(lock, std::chrono::seconds(1), [&] { return stopping.load(); })) {
      rec.expire_pods();
      for (auto& q : queues) metrics.queue_depth(kind_name(q->kind), static_cast<double>(q->queue.depth()));
      if (std::chrono::steady_clock::now() >= next_resync) {
        next_resync += std::chrono::milliseconds(o.resync_ms);
        enqueue_everything();
      }
    }
  });

  log.info("controller started", {{"version", controller_version()},
                                  {"namespace", o.watch_namespace.empty() ? "(all)" : o.watch_namespace},
                                  {"metrics_port", o.metrics_port},
                                  {"router_image", o.router_image}});
  int sig = 0;
  sigwait(&signals, &sig);
  const int exit_code = sig == SIGUSR1 ? 1 : 0;
  if (sig == SIGUSR1) {
    log.error("lost the leader lease; exiting");
  } else {
    log.info("stopping", {{"signal", sig}});
  }

  // Reverse order: workers finish the key in hand, the Lease goes, then everything else.
  {
    std::lock_guard lock(workers_mu);
    stopping = true;
  }
  for (auto& q : queues) q->queue.shut_down();
  for (auto& q : queues) {
    for (auto& w : q->workers) {
      if (w.joinable()) w.join();
    }
  }
  if (elector) elector->stop();
  metrics.set_leader(false);
  tick_cv.notify_all();
  ticker.join();
  reconciler = nullptr;
  for (auto& i : owned) i->stop();
  transforms_informer.stop();
  routes_informer.stop();
  routers_informer.stop();
  http.Stop();
  log.info("stopped", {{"exit_code", exit_code}});
  return exit_code;
}

}  // namespace switchboard::controller
