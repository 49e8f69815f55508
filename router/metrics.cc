#include "router/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <atomic>

namespace switchboard::router {

namespace {

// failed[] is indexed by the enum's value; this keeps that true if the enum is reordered.
constexpr bool reasons_match_indices() {
  for (size_t i = 0; i < kAllFailureReasons.size(); ++i) {
    if (static_cast<size_t>(kAllFailureReasons[i]) != i) return false;
  }
  return true;
}
static_assert(reasons_match_indices(), "kAllFailureReasons must list FailureReason in order");
static_assert(static_cast<size_t>(route::FailureReason::Encode) + 1 == kAllFailureReasons.size(),
              "a FailureReason was added: list it in kAllFailureReasons");

// Growth of a cumulative counter since `last`. A drop means the source restarted from zero.
double growth(uint64_t now, uint64_t last) {
  return static_cast<double>(now >= last ? now - last : now);
}

}  // namespace

const std::vector<double>& processing_seconds_buckets() {
  static const std::vector<double> buckets = {
      0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
      0.005,    0.01,    0.025,    0.05,    0.1,    0.25,    0.5,    1.0,
  };
  return buckets;
}

prometheus::Counter& RouteMetrics::failed_for(route::FailureReason r) const {
  return *failed[static_cast<size_t>(r)];
}

namespace {
std::atomic<uint64_t> next_metrics_serial{1};
}  // namespace

RouterMetrics::RouterMetrics()
    : registry_(std::make_shared<prometheus::Registry>()), serial_(next_metrics_serial.fetch_add(1)) {
  auto& reg = *registry_;
  received_ = &prometheus::BuildCounter()
                   .Name("switchboard_router_events_received_total")
                   .Help("Events a route matched and started processing.")
                   .Register(reg);
  published_ = &prometheus::BuildCounter()
                    .Name("switchboard_router_events_published_total")
                    .Help("Events a route published (one per event, whatever the destination count).")
                    .Register(reg);
  filtered_ = &prometheus::BuildCounter()
                   .Name("switchboard_router_events_filtered_total")
                   .Help("Events a route's filter dropped.")
                   .Register(reg);
  failed_ = &prometheus::BuildCounter()
                 .Name("switchboard_router_events_failed_total")
                 .Help("Events a route could not process, by reason.")
                 .Register(reg);
  dead_lettered_ = &prometheus::BuildCounter()
                        .Name("switchboard_router_events_dead_lettered_total")
                        .Help("Failed events sent to the route's dead-letter subject.")
                        .Register(reg);
  processing_ = &prometheus::BuildHistogram()
                     .Name("switchboard_router_processing_seconds")
                     .Help("Time to run one event through one route.")
                     .Register(reg);
  table_info_ = &prometheus::BuildGauge()
                     .Name("switchboard_router_route_table_info")
                     .Help("Always 1; the hash label identifies the live route table.")
                     .Register(reg);
  ack_pending_ = &prometheus::BuildGauge()
                      .Name("switchboard_router_jetstream_ack_pending")
                      .Help("Messages delivered to the route's JetStream consumer and not yet acked.")
                      .Register(reg);

  table_generation_ = &prometheus::BuildGauge()
                           .Name("switchboard_router_route_table_generation")
                           .Help("Generation of the live route table; grows on every applied reload.")
                           .Register(reg)
                           .Add({});
  auto& reloads = prometheus::BuildCounter()
                      .Name("switchboard_router_reloads_total")
                      .Help("Route table reloads, by result.")
                      .Register(reg);
  reloads_applied_ = &reloads.Add({{"result", "applied"}});
  reloads_rejected_ = &reloads.Add({{"result", "rejected"}});
  nats_connected_ = &prometheus::BuildGauge()
                         .Name("switchboard_router_nats_connected")
                         .Help("1 while the NATS connection is up, else 0.")
                         .Register(reg)
                         .Add({});
  nats_reconnects_ = &prometheus::BuildCounter()
                          .Name("switchboard_router_nats_reconnects_total")
                          .Help("Reconnections of the NATS client.")
                          .Register(reg)
                          .Add({});
  nats_bytes_in_ = &prometheus::BuildCounter()
                        .Name("switchboard_router_nats_bytes_in_total")
                        .Help("Bytes received from NATS.")
                        .Register(reg)
                        .Add({});
  nats_bytes_out_ = &prometheus::BuildCounter()
                         .Name("switchboard_router_nats_bytes_out_total")
                         .Help("Bytes sent to NATS.")
                         .Register(reg)
                         .Add({});
  nats_dropped_ = &prometheus::BuildCounter()
                       .Name("switchboard_router_nats_dropped_total")
                       .Help("Core NATS events dropped before any route saw them: a subscription held more "
                             "than its pending limit (a slow consumer).")
                       .Register(reg)
                       .Add({});
}

RouterMetrics::~RouterMetrics() = default;

RouteMetrics& RouterMetrics::route(const std::string& name) {
  // Every event asks three times for the same route: a few entries per thread answer
  // without the lock and the map. Entries name their instance by serial, not address, so
  // a later RouterMetrics at the same address never sees them.
  struct Cached {
    uint64_t serial = 0;
    std::string name;
    RouteMetrics* metrics = nullptr;
  };
  thread_local std::array<Cached, 4> cache;
  thread_local size_t next_slot = 0;
  for (auto& c : cache) {
    if (c.serial == serial_ && c.name == name) return *c.metrics;
  }
  RouteMetrics& found = route_locked(name);
  Cached& slot = cache[next_slot++ % cache.size()];
  slot.serial = serial_;
  slot.name = name;
  slot.metrics = &found;
  return found;
}

RouteMetrics& RouterMetrics::route_locked(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = routes_.find(name);
  if (it != routes_.end()) return it->second;

  const prometheus::Labels labels = {{"route", name}};
  RouteMetrics m;
  m.received = &received_->Add(labels);
  m.published = &published_->Add(labels);
  m.filtered = &filtered_->Add(labels);
  m.dead_lettered = &dead_lettered_->Add(labels);
  for (size_t i = 0; i < kAllFailureReasons.size(); ++i) {
    m.failed[i] = &failed_->Add(
        {{"route", name}, {"reason", std::string(route::reason_label(kAllFailureReasons[i]))}});
  }
  m.processing_seconds = &processing_->Add(labels, processing_seconds_buckets());
  return routes_.emplace(name, m).first->second;
}

void RouterMetrics::set_route_table(uint64_t generation, const std::string& hash) {
  std::lock_guard lock(mu_);
  table_generation_->Set(static_cast<double>(generation));
  if (table_info_current_ != nullptr) {
    if (table_info_->Has({{"hash", hash}})) return;  // the same table applied again
    table_info_->Remove(table_info_current_);
  }
  table_info_current_ = &table_info_->Add({{"hash", hash}});
  table_info_current_->Set(1);
}

void RouterMetrics::reload_applied() { reloads_applied_->Increment(); }
void RouterMetrics::reload_rejected() { reloads_rejected_->Increment(); }

void RouterMetrics::set_nats_connected(bool connected) { nats_connected_->Set(connected ? 1 : 0); }

void RouterMetrics::observe_nats_stats(const NatsStats& stats) {
  std::lock_guard lock(mu_);
  nats_bytes_in_->Increment(growth(stats.bytes_in, last_nats_.bytes_in));
  nats_bytes_out_->Increment(growth(stats.bytes_out, last_nats_.bytes_out));
  nats_reconnects_->Increment(growth(stats.reconnects, last_nats_.reconnects));
  nats_dropped_->Increment(growth(stats.dropped, last_nats_.dropped));
  last_nats_ = stats;
}

void RouterMetrics::set_jetstream_ack_pending(const std::string& route, double pending) {
  std::lock_guard lock(mu_);
  auto it = ack_pending_by_route_.find(route);
  if (it == ack_pending_by_route_.end()) {
    it = ack_pending_by_route_.emplace(route, &ack_pending_->Add({{"route", route}})).first;
  }
  it->second->Set(pending);
}

std::string RouterMetrics::serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace switchboard::router
