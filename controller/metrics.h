// The controller's Prometheus metrics. The names and labels are a contract with the
// Grafana dashboard (dashboards/) and docs/controller.md:
//   switchboard_controller_reconcile_total{kind,result}          result: success|error|requeue
//   switchboard_controller_reconcile_duration_seconds{kind}      histogram
//   switchboard_controller_workqueue_depth{kind}
//   switchboard_controller_workqueue_latency_seconds{kind}       histogram
//   switchboard_controller_leader                                0 or 1
//   switchboard_controller_routers_pods{namespace,router,state}  state: applied|rejected|stale
// kind is EventRouter, EventRoute or EventTransform.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace switchboard::controller {

enum class ReconcileResult { Success, Error, Requeue };

class ControllerMetrics {
 public:
  ControllerMetrics();
  ~ControllerMetrics();
  ControllerMetrics(const ControllerMetrics&) = delete;
  ControllerMetrics& operator=(const ControllerMetrics&) = delete;

  void reconciled(std::string_view kind, ReconcileResult result, double seconds);
  void queue_depth(std::string_view kind, double depth);
  void queue_latency(std::string_view kind, double seconds);
  void set_leader(bool leader);
  void set_router_pods(const std::string& ns, const std::string& router, int applied, int rejected, int stale);
  void remove_router(const std::string& ns, const std::string& router);

  std::string serialize() const;
  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

 private:
  struct KindMetrics;
  KindMetrics& kind(std::string_view kind);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* reconcile_total_;
  prometheus::Family<prometheus::Histogram>* reconcile_duration_;
  prometheus::Family<prometheus::Gauge>* depth_;
  prometheus::Family<prometheus::Histogram>* latency_;
  prometheus::Family<prometheus::Gauge>* pods_;
  prometheus::Gauge* leader_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<KindMetrics>, std::less<>> kinds_;
  std::map<std::pair<std::string, std::string>, std::tuple<prometheus::Gauge*, prometheus::Gauge*, prometheus::Gauge*>>
      routers_;
};

}  // namespace switchboard::controller
