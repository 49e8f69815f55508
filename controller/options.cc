#include "controller/options.h"

#include <unistd.h>

#include <cstdlib>
#include <map>

#include "core/route/spec_yaml.h"
#include "router/log.h"

#ifndef SWITCHBOARD_VERSION
#define SWITCHBOARD_VERSION "dev"
#endif

namespace switchboard::controller {

const char* const kControllerUsage = R"(usage: switchboard-controller [options]

Reconciles EventRouters, EventRoutes and EventTransforms (switchboard.dev/v1alpha1).

  --kubeconfig PATH                  kubeconfig; default $KUBECONFIG, in cluster, ~/.kube/config   KUBECONFIG
  --context NAME                     kubeconfig context (default: its current-context)  SWITCHBOARD_CONTEXT
  --namespace NS                     watch one namespace (default: all)                SWITCHBOARD_NAMESPACE
  --metrics-addr HOST:PORT           /metrics /healthz /readyz (0.0.0.0:8080)          SWITCHBOARD_METRICS_ADDR
  --leader-elect=true|false          hold a Lease to reconcile (true)                  SWITCHBOARD_LEADER_ELECT
  --leader-election-namespace NS     the Lease's namespace (the pod's, else default)   SWITCHBOARD_LEADER_ELECTION_NAMESPACE
  --leader-election-id NAME          the Lease's name (switchboard-controller)         SWITCHBOARD_LEADER_ELECTION_ID
  --lease-duration DURATION          how long a Lease holds (15s)                      SWITCHBOARD_LEASE_DURATION
  --renew-deadline DURATION          the leader steps down unless renewed within (10s) SWITCHBOARD_RENEW_DEADLINE
  --retry-period DURATION            between attempts to acquire or renew (2s)         SWITCHBOARD_RETRY_PERIOD
  --router-image IMAGE               router image when spec.image is empty             SWITCHBOARD_ROUTER_IMAGE
                                     (ghcr.io/switchboard-dev/switchboard:<version>)
  --resync DURATION                  reconcile everything again this often (5m)        SWITCHBOARD_RESYNC
  --pod-name NAME                    this replica's identity (default: host name)      POD_NAME
  --status-stale-after DURATION      a router pod silent this long is stale (30s)      SWITCHBOARD_STATUS_STALE_AFTER
  --applying-grace DURATION          a route's new generation is shown as Applying    SWITCHBOARD_APPLYING_GRACE
                                     only when its pods take longer (2s; 0: at once)
  --min-table-interval DURATION      least time between two new tables of a router    SWITCHBOARD_MIN_TABLE_INTERVAL
                                     while changes keep coming (500ms; 0: none)
  --log-level LEVEL                  debug, info, warn, error (info)                   SWITCHBOARD_LOG_LEVEL
  --help                             this text
)";

const char* controller_version() { return SWITCHBOARD_VERSION; }

namespace {

struct Flag {
  const char* env;
  bool boolean = false;
};

bool duration(const std::string& flag, const std::string& text, int64_t& ms, std::string& error,
              bool zero_allowed = false) {
  if (text.empty()) return true;
  int64_t v = 0;
  if (!route::parse_duration_ms(text, v) || v < 0 || (v == 0 && !zero_allowed)) {
    error = flag + ": expected a duration such as 15s or 500ms" + (zero_allowed ? " (or 0)" : "") + ", got '" +
            text + "'";
    return false;
  }
  ms = v;
  return true;
}

}  // namespace

bool parse_controller_options(const std::vector<std::string>& args,
                              const std::function<std::string(const char*)>& env, ControllerOptions& o,
                              std::string& error) {
  const std::map<std::string, Flag> known = {
      {"--kubeconfig", {"KUBECONFIG"}},
      {"--context", {"SWITCHBOARD_CONTEXT"}},
      {"--namespace", {"SWITCHBOARD_NAMESPACE"}},
      {"--metrics-addr", {"SWITCHBOARD_METRICS_ADDR"}},
      {"--leader-elect", {"SWITCHBOARD_LEADER_ELECT", true}},
      {"--leader-election-namespace", {"SWITCHBOARD_LEADER_ELECTION_NAMESPACE"}},
      {"--leader-election-id", {"SWITCHBOARD_LEADER_ELECTION_ID"}},
      {"--lease-duration", {"SWITCHBOARD_LEASE_DURATION"}},
      {"--renew-deadline", {"SWITCHBOARD_RENEW_DEADLINE"}},
      {"--retry-period", {"SWITCHBOARD_RETRY_PERIOD"}},
      {"--router-image", {"SWITCHBOARD_ROUTER_IMAGE"}},
      {"--resync", {"SWITCHBOARD_RESYNC"}},
      {"--pod-name", {"POD_NAME"}},
      {"--status-stale-after", {"SWITCHBOARD_STATUS_STALE_AFTER"}},
      {"--applying-grace", {"SWITCHBOARD_APPLYING_GRACE"}},
      {"--min-table-interval", {"SWITCHBOARD_MIN_TABLE_INTERVAL"}},
      {"--log-level", {"SWITCHBOARD_LOG_LEVEL"}},
  };
  std::map<std::string, std::string> value;
  for (const auto& [flag, f] : known) value[flag] = env(f.env);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "--help" || arg == "-h") {
      o.help = true;
      return true;
    }
    std::string given;
    bool inline_value = false;
    if (size_t eq = arg.find('='); eq != std::string::npos && arg.rfind("--", 0) == 0) {
      given = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      inline_value = true;
    }
    auto it = known.find(arg);
    if (it == known.end()) {
      error = "unknown option '" + args[i] + "' (see --help)";
      return false;
    }
    if (!inline_value) {
      if (it->second.boolean) {
        // A bare boolean flag means true; "true" or "false" may follow it.
        given = "true";
        if (i + 1 < args.size() && (args[i + 1] == "true" || args[i + 1] == "false")) given = args[++i];
      } else if (i + 1 < args.size()) {
        given = args[++i];
      } else {
        error = arg + " needs a value";
        return false;
      }
    }
    value[arg] = given;
  }

  o.kubeconfig = value["--kubeconfig"];
  o.context = value["--context"];
  o.watch_namespace = value["--namespace"];
  if (const std::string& a = value["--metrics-addr"]; !a.empty()) {
    size_t colon = a.rfind(':');
    char* end = nullptr;
    long port = colon == std::string::npos ? -1 : std::strtol(a.c_str() + colon + 1, &end, 10);
    if (colon == std::string::npos || end == nullptr || *end != '\0' || port <= 0 || port > 65535) {
      error = "--metrics-addr: expected HOST:PORT, got '" + a + "'";
      return false;
    }
    o.metrics_address = a.substr(0, colon);
    if (o.metrics_address.size() > 2 && o.metrics_address.front() == '[' && o.metrics_address.back() == ']') {
      o.metrics_address = o.metrics_address.substr(1, o.metrics_address.size() - 2);
    }
    if (o.metrics_address.empty()) o.metrics_address = "0.0.0.0";
    o.metrics_port = static_cast<uint16_t>(port);
  }
  if (const std::string& le = value["--leader-elect"]; !le.empty()) {
    if (le != "true" && le != "false") {
      error = "--leader-elect: expected true or false, got '" + le + "'";
      return false;
    }
    o.leader_elect = le == "true";
  }
  o.leader_election_namespace = value["--leader-election-namespace"];
  if (!value["--leader-election-id"].empty()) o.leader_election_id = value["--leader-election-id"];
  if (!duration("--lease-duration", value["--lease-duration"], o.lease_duration_ms, error) ||
      !duration("--renew-deadline", value["--renew-deadline"], o.renew_deadline_ms, error) ||
      !duration("--retry-period", value["--retry-period"], o.retry_period_ms, error) ||
      !duration("--resync", value["--resync"], o.resync_ms, error) ||
      !duration("--status-stale-after", value["--status-stale-after"], o.status_stale_after_ms, error) ||
      !duration("--applying-grace", value["--applying-grace"], o.applying_grace_ms, error, true) ||
      !duration("--min-table-interval", value["--min-table-interval"], o.min_table_interval_ms, error, true)) {
    return false;
  }
  if (!(o.lease_duration_ms > o.renew_deadline_ms && o.renew_deadline_ms > o.retry_period_ms)) {
    error = "leader election needs --lease-duration > --renew-deadline > --retry-period";
    return false;
  }
  o.router_image = value["--router-image"];
  if (o.router_image.empty()) o.router_image = std::string("ghcr.io/switchboard-dev/switchboard:") + SWITCHBOARD_VERSION;
  o.pod_name = value["--pod-name"];
  if (o.pod_name.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    o.pod_name = host;
  }
  if (!value["--log-level"].empty()) {
    if (!router::parse_log_level(value["--log-level"])) {
      error = "--log-level: expected debug, info, warn or error";
      return false;
    }
    o.log_level = value["--log-level"];
  }
  return true;
}

}  // namespace switchboard::controller
