// switchboard-controller's command line. Every flag also comes from the environment
// (SWITCHBOARD_<FLAG> in upper snake case; KUBECONFIG and POD_NAME as Kubernetes spells
// them); a flag given on the command line wins.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace switchboard::controller {

extern const char* const kControllerUsage;

struct ControllerOptions {
  std::string kubeconfig;
  std::string context;
  std::string watch_namespace;  // empty: every namespace
  std::string metrics_address = "0.0.0.0";
  uint16_t metrics_port = 8080;
  bool leader_elect = true;
  std::string leader_election_namespace;  // empty: the pod's namespace, else "default"
  std::string leader_election_id = "switchboard-controller";
  int64_t lease_duration_ms = 15000;
  int64_t renew_deadline_ms = 10000;
  int64_t retry_period_ms = 2000;
  std::string router_image;  // default: ghcr.io/switchboard-dev/switchboard:<version>
  int64_t resync_ms = 5 * 60 * 1000;
  std::string pod_name;  // default: the host name
  int64_t status_stale_after_ms = 30000;
  int64_t applying_grace_ms = 2000;
  int64_t min_table_interval_ms = 500;
  std::string log_level = "info";
  bool help = false;
};

// The controller's version, which also tags the default router image.
const char* controller_version();

// `env` reads an environment variable ("" when unset). False with `error` on a bad flag.
bool parse_controller_options(const std::vector<std::string>& args,
                              const std::function<std::string(const char*)>& env, ControllerOptions& out,
                              std::string& error);

}  // namespace switchboard::controller
