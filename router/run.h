// `switchboard-router run`: wires the NATS client, the router, the table source, metrics,
// health endpoints and logs together, in that order, and stops them in reverse order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "router/nats_client.h"

namespace switchboard::router {

struct RunOptions {
  // Exactly one source of route tables: a file, or a ConfigMap watched through the API.
  std::string routes_path;
  std::string configmap_ns, configmap_name;
  std::string kubeconfig;  // --configmap outside a cluster
  NatsConfig nats;
  std::string name = "switchboard";
  std::string ns = "default";
  std::string pod;
  std::string metrics_address = "0.0.0.0";
  uint16_t metrics_port = 9090;
  int64_t heartbeat_ms = 5000;
  int64_t grace_ms = 20000;
  int64_t reload_poll_ms = 1000;
  std::string log_level = "info";
  // /healthz fails once the NATS connection has been closed (credentials refused) this
  // long without a new one; 0: never.
  int64_t nats_unhealthy_after_ms = 120000;
};

// Reads flags, with environment variables as defaults (each flag names its variable in
// the usage text). Credentials are read from files, or from the environment.
// Returns false with a message on a bad flag or an unreadable file.
bool parse_run_options(const std::vector<std::string>& args, RunOptions& opts, std::string& error);

// Runs until SIGTERM or SIGINT, then drains within the grace period. Returns the exit code.
int run_router(const RunOptions& opts);

extern const char* const kRunUsage;

}  // namespace switchboard::router
