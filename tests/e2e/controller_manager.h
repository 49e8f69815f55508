// kube-controller-manager with only the controllers the e2e tests need (the garbage
// collector: deleting an EventRouter must take what it owns with it), against the shared
// control plane, on loopback, stopped by the destructor. The binary comes from
// scripts/test-tools.sh's cache (KUBE_CONTROLLER_MANAGER).
#pragma once

#include <string>

#include "tests/e2e/cluster.h"
#include "tests/support/process.h"

namespace switchboard::e2e {

class ControllerManager {
 public:
  // Starts it and waits until it serves /healthz; throws std::runtime_error with its log
  // when it does not start.
  explicit ControllerManager(const ClusterInfo& cluster);
  ~ControllerManager();
  ControllerManager(const ControllerManager&) = delete;
  ControllerManager& operator=(const ControllerManager&) = delete;

  const std::string& log_path() const { return log_; }
  bool running() { return process_.running(); }

 private:
  std::string dir_, log_;
  testing::Process process_;
};

}  // namespace switchboard::e2e
