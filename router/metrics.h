// The router's Prometheus metrics. Labels are bounded on purpose: a route name (from the
// route table, so the operator controls how many there are) and a failure reason (a fixed
// enum). Subjects never become labels: they come from publishers and are unbounded.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/route/processor.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace switchboard::router {

// Every FailureReason, so that a route's failed{reason} series all exist from the start:
// a series that appears only on the first failure breaks rate() and alerting on absence.
inline constexpr std::array<route::FailureReason, 6> kAllFailureReasons = {
    route::FailureReason::NotJson,   route::FailureReason::TooLarge,
    route::FailureReason::Filter,    route::FailureReason::Transform,
    route::FailureReason::Destination, route::FailureReason::Encode,
};

// Handles for one route, resolved once so the hot path only touches atomics (counters) and
// the histogram's own lock; no map lookup, no label hashing.
struct RouteMetrics {
  prometheus::Counter* received = nullptr;
  prometheus::Counter* published = nullptr;
  prometheus::Counter* filtered = nullptr;
  prometheus::Counter* dead_lettered = nullptr;
  std::array<prometheus::Counter*, kAllFailureReasons.size()> failed{};  // by FailureReason
  prometheus::Histogram* processing_seconds = nullptr;

  prometheus::Counter& failed_for(route::FailureReason r) const;
};

// Cumulative connection statistics as the NATS client reports them (natsStatistics).
struct NatsStats {
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t reconnects = 0;
  uint64_t dropped = 0;  // NatsClient::dropped(): over a subscription's pending limit
};

class RouterMetrics {
 public:
  RouterMetrics();
  ~RouterMetrics();
  RouterMetrics(const RouterMetrics&) = delete;
  RouterMetrics& operator=(const RouterMetrics&) = delete;

  // The handles for a route, created on first use. The reference stays valid for the life
  // of this object, so callers resolve it when a route table is installed and keep it.
  RouteMetrics& route(const std::string& name);

  // A new route table is live: sets the generation gauge and moves route_table_info to
  // `hash`, dropping the previous hash's series so only one is ever exported.
  void set_route_table(uint64_t generation, const std::string& hash);
  void reload_applied();
  void reload_rejected();

  void set_nats_connected(bool connected);
  // Feeds the byte and reconnect counters from cumulative client statistics. Only the
  // growth since the previous call is added; a value that went down means the client (and
  // its statistics) was recreated, so the new value is counted as growth from zero.
  void observe_nats_stats(const NatsStats& stats);

  // Polled from the JetStream consumer info, not per event, so a map lookup is fine here.
  void set_jetstream_ack_pending(const std::string& route, double pending);

  // The registry, for code that wants to add its own collectables.
  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

  // The Prometheus text exposition format (version 0.0.4) of everything registered.
  std::string serialize() const;

 private:
  RouteMetrics& route_locked(const std::string& name);

  std::shared_ptr<prometheus::Registry> registry_;

  prometheus::Family<prometheus::Counter>* received_;
  prometheus::Family<prometheus::Counter>* published_;
  prometheus::Family<prometheus::Counter>* filtered_;
  prometheus::Family<prometheus::Counter>* failed_;
  prometheus::Family<prometheus::Counter>* dead_lettered_;
  prometheus::Family<prometheus::Histogram>* processing_;
  prometheus::Family<prometheus::Gauge>* table_info_;
  prometheus::Family<prometheus::Gauge>* ack_pending_;

  prometheus::Gauge* table_generation_;
  prometheus::Counter* reloads_applied_;
  prometheus::Counter* reloads_rejected_;
  prometheus::Gauge* nats_connected_;
  prometheus::Counter* nats_reconnects_;
  prometheus::Counter* nats_dropped_;
  prometheus::Counter* nats_bytes_in_;
  prometheus::Counter* nats_bytes_out_;

  const uint64_t serial_;  // tells instances apart in route()'s per-thread cache
  std::mutex mu_;  // guards everything below
  // std::map nodes never move and are never erased, which is what keeps route()'s
  // references (and the per-thread cache of them) valid.
  std::map<std::string, RouteMetrics, std::less<>> routes_;
  std::map<std::string, prometheus::Gauge*, std::less<>> ack_pending_by_route_;
  prometheus::Gauge* table_info_current_ = nullptr;
  NatsStats last_nats_;
};

// Upper bounds of processing_seconds: 5µs to 1s in a 1-2.5-5 progression, which keeps
// the relative error per bucket similar from a trivial route to a slow transform.
const std::vector<double>& processing_seconds_buckets();

}  // namespace switchboard::router
