// What the control-plane benchmark watches while it works, each with the time it saw it:
//
//  - HeartbeatLog: the routers' heartbeats on switchboard.status.<ns>.<router> (a router
//    sends one the moment it applies a table), so "every router runs table X" is a time.
//  - RouteReadiness: the EventRoutes, through an informer; which are Ready for their
//    current generation, and when the last of them became so.
//  - ControllerScraper: the controller's /metrics every few tens of milliseconds (work
//    queue depth, reconciles by kind and result, reconcile and queue-wait histograms).
//  - process_stats: peak and current resident memory and CPU time of a process.
//  - api_request_counts: kube-apiserver's apiserver_request_total, by verb and resource.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kube/client.h"
#include "kube/informer.h"
#include "router/nats_client.h"

namespace switchboard::bench {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point from, Clock::time_point to);

// ---------------------------------------------------------------------------------------

class HeartbeatLog {
 public:
  struct Beat {
    Clock::time_point at;
    std::string pod, state, hash;
    double generation = -1;
  };
  using Want = std::function<bool(const Beat&)>;

  HeartbeatLog(router::NatsClient& nats, const std::string& subject);
  ~HeartbeatLog();
  HeartbeatLog(const HeartbeatLog&) = delete;
  HeartbeatLog& operator=(const HeartbeatLog&) = delete;

  // The time by which every pod in `pods` had sent, at or after `since`, a heartbeat that
  // `want` accepts (the latest of each pod's first such heartbeat); nullopt at `deadline`.
  std::optional<Clock::time_point> wait_all(const std::set<std::string>& pods, Clock::time_point since,
                                            const Want& want, Clock::time_point deadline);
  // Each pod's latest heartbeat.
  std::map<std::string, Beat> latest() const;

 private:
  router::NatsClient& nats_;
  uint64_t sub_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Beat> beats_;
};

// ---------------------------------------------------------------------------------------

// The route table ConfigMap (<router>-routes) as the controller writes it: each version's
// switchboard.dev/hash annotation and when the watch delivered it. Splits "edit to every
// pod" into the controller's part and the routers' part.
class TableConfigMapLog {
 public:
  TableConfigMapLog(kube::Client& client, const std::string& ns, const std::string& name);
  ~TableConfigMapLog();
  TableConfigMapLog(const TableConfigMapLog&) = delete;
  TableConfigMapLog& operator=(const TableConfigMapLog&) = delete;

  // The first time at or after `since` that the ConfigMap carried a hash `want` accepts.
  std::optional<Clock::time_point> wait(Clock::time_point since, const std::function<bool(const std::string&)>& want,
                                        Clock::time_point deadline);
  std::string current_hash() const;

 private:
  std::unique_ptr<kube::Informer> informer_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<Clock::time_point, std::string>> versions_;
};

// ---------------------------------------------------------------------------------------

class RouteReadiness {
 public:
  // Every EventRoute of `ns`; `expected` is how many make "all".
  RouteReadiness(kube::Client& client, const std::string& ns, size_t expected);
  ~RouteReadiness();
  RouteReadiness(const RouteReadiness&) = delete;
  RouteReadiness& operator=(const RouteReadiness&) = delete;

  bool wait_synced(std::chrono::milliseconds timeout);
  // A route counts as Ready only once its metadata.generation is at least this (set before
  // the change that produces it, so that a stale Ready is not counted).
  void require_generation(const std::string& name, int64_t generation);

  // The first time, at or after `since`, at which every expected route was Ready at once;
  // and the latest such time (after the last flip back to not ready, if any).
  struct AllReady {
    Clock::time_point first, last;
  };
  std::optional<AllReady> wait_all(Clock::time_point since, Clock::time_point deadline);
  bool all_ready() const;
  size_t ready_count() const;
  // When `name` last became Ready at or after `since` (at a generation ≥ the required one).
  std::optional<Clock::time_point> wait_route(const std::string& name, Clock::time_point since,
                                              Clock::time_point deadline);
  // How many times a route went from Ready to not Ready (a status flip seen by the watch).
  uint64_t flips() const { return flips_.load(); }

 private:
  // `watched`: a change the watch delivered (not a new required generation).
  void changed(const std::string& key, bool watched = true);

  std::string ns_;
  size_t expected_;
  std::unique_ptr<kube::Informer> informer_;
  std::mutex changed_mu_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, int64_t> required_;   // name -> generation
  std::map<std::string, bool> ready_;          // name -> Ready for its current generation
  std::map<std::string, Clock::time_point> ready_since_;
  size_t ready_count_ = 0;
  std::vector<Clock::time_point> all_ready_at_;  // each time the count reached `expected`
  std::atomic<uint64_t> flips_{0};
};

// ---------------------------------------------------------------------------------------

// One series of a Prometheus text page: name, labels, value.
struct Series {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};
std::vector<Series> parse_prometheus(const std::string& page);

class ControllerScraper {
 public:
  struct Sample {
    Clock::time_point at;
    bool ok = false;
    std::map<std::string, double> depth;                        // kind -> keys ready now
    std::map<std::pair<std::string, std::string>, double> reconciles;  // (kind, result) -> total
    std::map<std::string, double> duration_sum, duration_count;        // kind -> histogram
    std::map<std::string, double> wait_sum, wait_count;                // kind -> histogram
    double total_reconciles() const;
    double total_depth() const;
  };

  ControllerScraper(int port, std::chrono::milliseconds interval);
  ~ControllerScraper();
  ControllerScraper(const ControllerScraper&) = delete;
  ControllerScraper& operator=(const ControllerScraper&) = delete;

  Sample scrape_now() const;
  Sample last() const;
  // Samples taken in [from, to].
  std::vector<Sample> between(Clock::time_point from, Clock::time_point to) const;
  // The time of the first sample showing the current reconcile total: when reconciling
  // last moved.
  Clock::time_point last_activity() const;

 private:
  void run();

  int port_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::vector<Sample> samples_;
  Clock::time_point last_activity_;
  double last_total_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------

struct ProcessStats {
  bool ok = false;
  int64_t vm_hwm_kib = 0;  // peak resident set
  int64_t vm_rss_kib = 0;
  double cpu_seconds = 0;  // user + system
};
ProcessStats process_stats(pid_t pid);

// kube-apiserver's apiserver_request_total summed by "VERB resource[/subresource]", read
// with `kubectl get --raw /metrics`. Empty when that fails.
std::map<std::string, double> api_request_counts(const std::string& kubectl, const std::string& kubeconfig);

}  // namespace switchboard::bench
