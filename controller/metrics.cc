#include "controller/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace switchboard::controller {

struct ControllerMetrics::KindMetrics {
  prometheus::Counter* success;
  prometheus::Counter* error;
  prometheus::Counter* requeue;
  prometheus::Histogram* duration;
  prometheus::Gauge* depth;
  prometheus::Histogram* latency;
};

namespace {

const prometheus::Histogram::BucketBoundaries& duration_buckets() {
  static const prometheus::Histogram::BucketBoundaries b = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                            0.25,  0.5,    1,     2.5,  5,     10,   30};
  return b;
}

const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries b = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1,
                                                            5,     10,    30,   60,   300, 1000};
  return b;
}

}  // namespace

ControllerMetrics::ControllerMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& reg = *registry_;
  reconcile_total_ = &prometheus::BuildCounter()
                          .Name("switchboard_controller_reconcile_total")
                          .Help("Reconciles by kind and result (success, error, requeue).")
                          .Register(reg);
  reconcile_duration_ = &prometheus::BuildHistogram()
                             .Name("switchboard_controller_reconcile_duration_seconds")
                             .Help("Time one reconcile took, by kind.")
                             .Register(reg);
  depth_ = &prometheus::BuildGauge()
                .Name("switchboard_controller_workqueue_depth")
                .Help("Keys waiting in the work queue of a kind.")
                .Register(reg);
  latency_ = &prometheus::BuildHistogram()
                  .Name("switchboard_controller_workqueue_latency_seconds")
                  .Help("Time a key waited in the work queue before a worker took it.")
                  .Register(reg);
  pods_ = &prometheus::BuildGauge()
               .Name("switchboard_controller_routers_pods")
               .Help("Router pods by what their last heartbeat said: applied, rejected, or stale (silent).")
               .Register(reg);
  leader_ = &prometheus::BuildGauge()
                 .Name("switchboard_controller_leader")
                 .Help("1 while this replica holds the leader lease and reconciles.")
                 .Register(reg)
                 .Add({});
  // Every series exists from the start: a series that appears only on its first event
  // breaks rate() and alerts on absence.
  for (const char* k : {"EventRouter", "EventRoute", "EventTransform"}) kind(k);
}

ControllerMetrics::~ControllerMetrics() = default;

ControllerMetrics::KindMetrics& ControllerMetrics::kind(std::string_view name) {
  std::lock_guard lock(mu_);
  auto it = kinds_.find(name);
  if (it != kinds_.end()) return *it->second;
  const std::string k(name);
  auto m = std::make_unique<KindMetrics>(KindMetrics{
      &reconcile_total_->Add({{"kind", k}, {"result", "success"}}),
      &reconcile_total_->Add({{"kind", k}, {"result", "error"}}),
      &reconcile_total_->Add({{"kind", k}, {"result", "requeue"}}),
      &reconcile_duration_->Add({{"kind", k}}, duration_buckets()),
      &depth_->Add({{"kind", k}}),
      &latency_->Add({{"kind", k}}, latency_buckets()),
  });
  return *kinds_.emplace(k, std::move(m)).first->second;
}

void ControllerMetrics::reconciled(std::string_view name, ReconcileResult result, double seconds) {
  KindMetrics& m = kind(name);
  switch (result) {
    case ReconcileResult::Success:
      m.success->Increment();
      break;
    case ReconcileResult::Error:
      m.error->Increment();
      break;
    case ReconcileResult::Requeue:
      m.requeue->Increment();
      break;
  }
  m.duration->Observe(seconds);
}

void ControllerMetrics::queue_depth(std::string_view name, double depth) { kind(name).depth->Set(depth); }

void ControllerMetrics::queue_latency(std::string_view name, double seconds) { kind(name).latency->Observe(seconds); }

void ControllerMetrics::set_leader(bool leader) { leader_->Set(leader ? 1 : 0); }

void ControllerMetrics::set_router_pods(const std::string& ns, const std::string& router, int applied, int rejected,
                                        int stale) {
  std::lock_guard lock(mu_);
  auto it = routers_.find({ns, router});
  if (it == routers_.end()) {
    auto gauge = [&](const char* state) {
      return &pods_->Add({{"namespace", ns}, {"router", router}, {"state", state}});
    };
    it = routers_.emplace(std::make_pair(ns, router),
                          std::make_tuple(gauge("applied"), gauge("rejected"), gauge("stale"))).first;
  }
  std::get<0>(it->second)->Set(applied);
  std::get<1>(it->second)->Set(rejected);
  std::get<2>(it->second)->Set(stale);
}

void ControllerMetrics::remove_router(const std::string& ns, const std::string& router) {
  std::lock_guard lock(mu_);
  auto it = routers_.find({ns, router});
  if (it == routers_.end()) return;
  pods_->Remove(std::get<0>(it->second));
  pods_->Remove(std::get<1>(it->second));
  pods_->Remove(std::get<2>(it->second));
  routers_.erase(it);
}

std::string ControllerMetrics::serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace switchboard::controller
