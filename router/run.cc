#include "router/run.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <thread>

#include "core/route/spec_yaml.h"
#include "router/configmap_source.h"
#include "router/file_source.h"
#include "router/http_server.h"
#include "router/log.h"
#include "router/metrics.h"
#include "router/router.h"

namespace switchboard::router {

const char* const kRunUsage = R"(usage: switchboard-router run (--routes FILE | --configmap NAMESPACE/NAME) [options]

  --routes FILE              route table file, reloaded when it changes   SWITCHBOARD_ROUTES
  --configmap NS/NAME        route table ConfigMap, watched (in cluster)  SWITCHBOARD_CONFIGMAP
  --kubeconfig FILE          for --configmap outside a cluster            SWITCHBOARD_KUBECONFIG
  --nats URL[,URL...]        NATS servers (default nats://127.0.0.1:4222) SWITCHBOARD_NATS_URL
  --name NAME                router fleet name, default queue group       SWITCHBOARD_ROUTER
  --namespace NS             namespace for the heartbeat subject          SWITCHBOARD_NAMESPACE
  --pod NAME                 this pod (default: host name)                POD_NAME
  --metrics-addr HOST:PORT   /metrics, /healthz, /readyz (0.0.0.0:9090)   SWITCHBOARD_METRICS_ADDR
  --heartbeat DURATION       heartbeat interval (5s)                      SWITCHBOARD_HEARTBEAT
  --grace DURATION           SIGTERM drain time (20s)                     SWITCHBOARD_GRACE
  --reload-interval DURATION how often the routes file is checked (1s)   SWITCHBOARD_RELOAD_INTERVAL
  --log-level LEVEL          debug, info, warn, error (info)              SWITCHBOARD_LOG_LEVEL
  --nats-user-file FILE      user name                                    SWITCHBOARD_NATS_USER(_FILE)
  --nats-password-file FILE  password                                     SWITCHBOARD_NATS_PASSWORD(_FILE)
  --nats-token-file FILE     token                                        SWITCHBOARD_NATS_TOKEN(_FILE)
  --nats-nkey-seed-file FILE NKey seed (its public key in FILE.pub)       SWITCHBOARD_NATS_NKEY_SEED_FILE
  --nats-creds-file FILE     JWT credentials file                         SWITCHBOARD_NATS_CREDS_FILE
  --nats-tls-ca FILE         CA that signs the server certificate         SWITCHBOARD_NATS_TLS_CA
  --nats-tls-cert FILE       client certificate                           SWITCHBOARD_NATS_TLS_CERT
  --nats-tls-key FILE        client key                                   SWITCHBOARD_NATS_TLS_KEY
  --nats-unhealthy-after DUR /healthz fails once NATS refused us (2m)    SWITCHBOARD_NATS_UNHEALTHY_AFTER
  --jetstream-max-inflight N JetStream publishes awaiting an ack (256)    SWITCHBOARD_JETSTREAM_MAX_INFLIGHT
  --nats-flush-on-idle BOOL  write at once when no event waits (true)     SWITCHBOARD_NATS_FLUSH_ON_IDLE
  --nats-ping-interval DUR   PING the server this often; 3 unanswered     SWITCHBOARD_NATS_PING_INTERVAL
                             intervals mean a lost connection (10s)

With --configmap the router reads the ConfigMap through the Kubernetes API: with
--kubeconfig if given, else in cluster from the service account (SWITCHBOARD_SA_DIR
overrides its folder, /var/run/secrets/kubernetes.io/serviceaccount).
)";

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

// A credential given directly in the environment, or as a file named by a flag or by
// NAME_FILE in the environment (the usual shape of a mounted Secret).
// `path` receives the file, so that a rebuilt connection can read it again.
bool credential(const std::string& flag_file, const char* env_name, std::string& out, std::string& error,
                std::string* path = nullptr) {
  std::string file = flag_file.empty() ? env((std::string(env_name) + "_FILE").c_str()) : flag_file;
  if (path != nullptr) *path = file;
  if (!file.empty()) return read_secret_file(file, out, error);
  out = env(env_name);
  return true;
}

bool duration(const std::string& flag, const std::string& text, int64_t& ms, std::string& error) {
  if (text.empty()) return true;
  if (!route::parse_duration_ms(text, ms)) {
    error = flag + ": expected a duration such as 5s or 250ms, got '" + text + "'";
    return false;
  }
  return true;
}

class MetricsEvents : public RouterEvents {
 public:
  MetricsEvents(RouterMetrics& metrics, Logger& log) : metrics_(metrics), log_(log) {}
  void received(const std::string& route) override { metrics_.route(route).received->Increment(); }
  void published(const std::string& route, size_t) override { metrics_.route(route).published->Increment(); }
  void filtered(const std::string& route) override { metrics_.route(route).filtered->Increment(); }
  void failed(const std::string& route, route::FailureReason reason, const std::string& step,
              const std::string& error) override {
    metrics_.route(route).failed_for(reason).Increment();
    log_.log_limited(route + "/" + std::string(route::reason_label(reason)), LogLevel::Warn, "event failed",
                     {{"route", route}, {"reason", route::reason_label(reason)}, {"step", step}, {"error", error}});
  }
  void dead_lettered(const std::string& route) override { metrics_.route(route).dead_lettered->Increment(); }
  void processed(const std::string& route, double seconds) override {
    metrics_.route(route).processing_seconds->Observe(seconds);
  }
  void routes_installing(const route::RouteTable& table) override {
    for (const auto& r : table.routes()) metrics_.route(r.spec.name);
  }
  void table_applied(uint64_t generation, const std::string& hash) override {
    metrics_.set_route_table(generation, hash);
    metrics_.reload_applied();
    log_.info("route table applied", {{"generation", generation}, {"hash", hash}});
  }
  void warning(const std::string& route, const std::string& message) override {
    log_.log_limited(route + "/warning", LogLevel::Warn, message, {{"route", route}});
  }
  void ack_pending(const std::string& route, int64_t pending) override {
    metrics_.set_jetstream_ack_pending(route, static_cast<double>(pending));
  }
  void table_rejected(const std::string& error) override {
    metrics_.reload_rejected();
    log_.error("route table refused; the running table stays", {{"error", error}});
  }

 private:
  RouterMetrics& metrics_;
  Logger& log_;
};

}  // namespace

bool parse_run_options(const std::vector<std::string>& args, RunOptions& o, std::string& error) {
  std::map<std::string, std::string> flags = {
      {"--routes", env("SWITCHBOARD_ROUTES")},
      {"--configmap", env("SWITCHBOARD_CONFIGMAP")},
      {"--kubeconfig", env("SWITCHBOARD_KUBECONFIG")},
      {"--nats", env("SWITCHBOARD_NATS_URL")},
      {"--name", env("SWITCHBOARD_ROUTER")},
      {"--namespace", env("SWITCHBOARD_NAMESPACE")},
      {"--pod", env("POD_NAME")},
      {"--metrics-addr", env("SWITCHBOARD_METRICS_ADDR")},
      {"--heartbeat", env("SWITCHBOARD_HEARTBEAT")},
      {"--grace", env("SWITCHBOARD_GRACE")},
      {"--reload-interval", env("SWITCHBOARD_RELOAD_INTERVAL")},
      {"--log-level", env("SWITCHBOARD_LOG_LEVEL")},
      {"--nats-user-file", ""},
      {"--nats-password-file", ""},
      {"--nats-token-file", ""},
      {"--nats-nkey-seed-file", env("SWITCHBOARD_NATS_NKEY_SEED_FILE")},
      {"--nats-creds-file", env("SWITCHBOARD_NATS_CREDS_FILE")},
      {"--nats-tls-ca", env("SWITCHBOARD_NATS_TLS_CA")},
      {"--nats-tls-cert", env("SWITCHBOARD_NATS_TLS_CERT")},
      {"--nats-tls-key", env("SWITCHBOARD_NATS_TLS_KEY")},
      {"--nats-unhealthy-after", env("SWITCHBOARD_NATS_UNHEALTHY_AFTER")},
      {"--jetstream-max-inflight", env("SWITCHBOARD_JETSTREAM_MAX_INFLIGHT")},
      {"--nats-flush-on-idle", env("SWITCHBOARD_NATS_FLUSH_ON_IDLE")},
      {"--nats-ping-interval", env("SWITCHBOARD_NATS_PING_INTERVAL")},
  };
  for (size_t i = 0; i < args.size(); ++i) {
    auto it = flags.find(args[i]);
    if (it == flags.end()) {
      error = "unknown option '" + args[i] + "'";
      return false;
    }
    if (i + 1 >= args.size()) {
      error = args[i] + " needs a value";
      return false;
    }
    it->second = args[++i];
  }
  o.routes_path = flags["--routes"];
  const std::string& configmap = flags["--configmap"];
  if (o.routes_path.empty() && configmap.empty()) {
    error = "--routes FILE is required (or SWITCHBOARD_ROUTES), unless --configmap NAMESPACE/NAME is given";
    return false;
  }
  if (!o.routes_path.empty() && !configmap.empty()) {
    error = "give one of --routes and --configmap, not both";
    return false;
  }
  if (!configmap.empty() && !parse_configmap_ref(configmap, o.configmap_ns, o.configmap_name, error)) return false;
  o.kubeconfig = flags["--kubeconfig"];
  if (!flags["--nats"].empty()) o.nats.urls = split(flags["--nats"], ',');
  if (!flags["--name"].empty()) o.name = flags["--name"];
  if (!flags["--namespace"].empty()) o.ns = flags["--namespace"];
  o.pod = flags["--pod"];
  if (o.pod.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    o.pod = host;
  }
  o.nats.name = "switchboard-router/" + o.ns + "/" + o.name + "/" + o.pod;
  if (!flags["--metrics-addr"].empty()) {
    const std::string& a = flags["--metrics-addr"];
    size_t colon = a.rfind(':');
    int port = colon == std::string::npos ? -1 : std::atoi(a.c_str() + colon + 1);
    if (port <= 0 || port > 65535) {
      error = "--metrics-addr: expected HOST:PORT, got '" + a + "'";
      return false;
    }
    o.metrics_address = a.substr(0, colon);
    o.metrics_port = static_cast<uint16_t>(port);
  }
  if (!duration("--heartbeat", flags["--heartbeat"], o.heartbeat_ms, error) ||
      !duration("--grace", flags["--grace"], o.grace_ms, error) ||
      !duration("--reload-interval", flags["--reload-interval"], o.reload_poll_ms, error)) {
    return false;
  }
  if (!flags["--log-level"].empty()) {
    if (!parse_log_level(flags["--log-level"])) {
      error = "--log-level: expected debug, info, warn or error";
      return false;
    }
    o.log_level = flags["--log-level"];
  }
  if (!credential(flags["--nats-user-file"], "SWITCHBOARD_NATS_USER", o.nats.user, error, &o.nats.user_file) ||
      !credential(flags["--nats-password-file"], "SWITCHBOARD_NATS_PASSWORD", o.nats.password, error,
                  &o.nats.password_file) ||
      !credential(flags["--nats-token-file"], "SWITCHBOARD_NATS_TOKEN", o.nats.token, error, &o.nats.token_file)) {
    return false;
  }
  if (!duration("--nats-unhealthy-after", flags["--nats-unhealthy-after"], o.nats_unhealthy_after_ms, error) ||
      !duration("--nats-ping-interval", flags["--nats-ping-interval"], o.nats.ping_interval_ms, error)) {
    return false;
  }
  if (o.nats.ping_interval_ms < 100) {
    error = "--nats-ping-interval: at least 100ms";
    return false;
  }
  if (const std::string& n = flags["--jetstream-max-inflight"]; !n.empty()) {
    char* end = nullptr;
    long long v = std::strtoll(n.c_str(), &end, 10);
    if (end == n.c_str() || *end != '\0' || v < 1 || v > 1'000'000) {
      error = "--jetstream-max-inflight: expected a number from 1 to 1000000, got '" + n + "'";
      return false;
    }
    o.nats.js_max_inflight = v;
  }
  if (const std::string& b = flags["--nats-flush-on-idle"]; !b.empty()) {
    if (b != "true" && b != "false") {
      error = "--nats-flush-on-idle: expected true or false, got '" + b + "'";
      return false;
    }
    o.nats.flush_on_idle = b == "true";
  }
  o.nats.nkey_seed_file = flags["--nats-nkey-seed-file"];
  o.nats.creds_file = flags["--nats-creds-file"];
  o.nats.tls_ca_file = flags["--nats-tls-ca"];
  o.nats.tls_cert_file = flags["--nats-tls-cert"];
  o.nats.tls_key_file = flags["--nats-tls-key"];
  return true;
}

int run_router(const RunOptions& o) {
  // Signals are taken by this thread alone, with sigwait, so that no other thread is
  // interrupted and shutdown runs in ordinary code.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  LoggerOptions lo;
  lo.level = *parse_log_level(o.log_level);
  Logger log(lo);
  RouterMetrics metrics;
  MetricsEvents events(metrics, log);

  NatsClient nats;
  // A connection NATS closed for good, and its rebuilds, in the log and in a counter.
  auto& rebuilds = prometheus::BuildCounter()
                       .Name("switchboard_router_nats_rebuilds_total")
                       .Help("New NATS connections made after the server closed one for good, by result.")
                       .Register(*metrics.registry());
  prometheus::Counter& rebuilds_ok = rebuilds.Add({{"result", "ok"}});
  prometheus::Counter& rebuilds_failed = rebuilds.Add({{"result", "failed"}});
  nats.set_state_log([&](NatsClient::State state, const std::string& reason) {
    switch (state) {
      case NatsClient::State::Disconnected:
        log.log_limited("nats/disconnected", LogLevel::Warn, "NATS connection lost; reconnecting",
                        {{"error", reason}});
        break;
      case NatsClient::State::Reconnected:
        log.info("NATS connection back", {{"server", reason}});
        break;
      case NatsClient::State::Closed:
        log.error("NATS closed the connection; making a new one with credentials read again",
                  {{"error", reason}});
        break;
      case NatsClient::State::Rebuilt:
        rebuilds_ok.Increment();
        log.info("NATS connection made again", {});
        break;
      case NatsClient::State::SlowConsumer:
        log.log_limited("nats/slow-consumer", LogLevel::Warn,
                        "events arrive faster than the routes take them; NATS drops what is over the "
                        "subscription's pending limit (switchboard_router_nats_dropped_total)",
                        {{"subject", reason}});
        break;
      case NatsClient::State::AsyncError:
        log.log_limited("nats/async-error", LogLevel::Warn, "NATS reported an error", {{"error", reason}});
        break;
      case NatsClient::State::RebuildFailed:
        rebuilds_failed.Increment();
        log.log_limited("nats/rebuild", LogLevel::Warn, "NATS connection still refused; trying again",
                        {{"error", reason}});
        break;
    }
  });
  std::string error;
  if (!nats.connect(o.nats, error)) {
    log.error("cannot start", {{"error", error}});
    return 1;
  }
  RouterConfig rc;
  rc.name = o.name;
  rc.ns = o.ns;
  rc.pod = o.pod;
  rc.heartbeat_ms = o.heartbeat_ms;
  rc.grace_ms = o.grace_ms;
  Router router(rc, nats, events);

  // One reload path for every source: compiled tables are applied, refusals recorded.
  TableSource::Apply apply = [&](std::shared_ptr<const route::RouteTable> table) {
    std::string apply_error;
    router.apply(std::move(table), apply_error);
  };
  TableSource::Reject reject = [&](uint64_t generation, const std::string& reason) {
    router.reject(generation, reason);
  };
  std::unique_ptr<TableSource> source_holder;
  if (!o.configmap_name.empty()) {
    ConfigMapSourceOptions co;
    co.ns = o.configmap_ns;
    co.name = o.configmap_name;
    co.kubeconfig = o.kubeconfig;
    co.sa_dir = env("SWITCHBOARD_SA_DIR");  // tests run pods as processes, their SA folder elsewhere
    source_holder = ConfigMapSource::create(
        co, apply, reject, [&](const std::string& problem) { router.set_source_error(problem); }, log, error);
    if (!source_holder) {
      log.error("cannot start", {{"error", error}});
      return 1;
    }
  } else {
    source_holder = std::make_unique<FileSource>(o.routes_path, o.reload_poll_ms, apply, reject);
  }
  TableSource& source = *source_holder;

  HttpServerOptions ho;
  ho.address = o.metrics_address;
  ho.port = o.metrics_port;
  HttpServer http(ho, [&] { return metrics.serialize(); },
                  [&](std::string& why) { return router.ready(why); },
                  // Liveness: a connection closed for good that no new one replaced
                  // (credentials that stay refused) is what a restart may cure, say with
                  // credentials from the environment; an outage is not.
                  [&](std::string& why) {
                    if (o.nats_unhealthy_after_ms > 0) {
                      if (auto stuck = nats.stuck_for(); stuck.count() > 0) {
                        why = "the NATS client has not answered for " + std::to_string(stuck.count() / 1000) +
                              "s (stuck while connecting to a server that does not answer)";
                        log.log_limited("nats/stuck", LogLevel::Error, why, {});
                        return false;
                      }
                    }
                    auto closed = nats.closed_for();
                    if (o.nats_unhealthy_after_ms <= 0 || closed.count() < o.nats_unhealthy_after_ms) return true;
                    why = "NATS connection closed for " + std::to_string(closed.count() / 1000) +
                          "s: " + nats.closed_reason();
                    return false;
                  });
  try {
    http.Start();
  } catch (const std::exception& e) {
    log.error("cannot serve metrics", {{"address", o.metrics_address}, {"port", o.metrics_port}, {"error", e.what()}});
    return 1;
  }
  source.start();
  router.start();
  log.info("router started", {{"router", o.name}, {"namespace", o.ns}, {"pod", o.pod},
                              {"routes", source.describe()}, {"metrics_port", o.metrics_port}});

  // The JetStream publish window, sampled with the connection statistics.
  auto gauge = [&](const char* name, const char* help) -> prometheus::Gauge& {
    return prometheus::BuildGauge().Name(name).Help(help).Register(*metrics.registry()).Add({});
  };
  prometheus::Gauge& js_inflight = gauge("switchboard_router_jetstream_publish_inflight",
                                         "JetStream publishes sent and not yet confirmed.");
  prometheus::Gauge& js_inflight_max = gauge("switchboard_router_jetstream_publish_inflight_max",
                                             "The most JetStream publishes ever unconfirmed at once.");
  prometheus::Gauge& js_inflight_limit = gauge("switchboard_router_jetstream_publish_inflight_limit",
                                               "--jetstream-max-inflight: the bound on unconfirmed publishes.");
  std::atomic<bool> stopping{false};
  std::thread stats([&] {
    while (!stopping.load()) {
      NatsClient::Counts c = nats.counts();
      metrics.set_nats_connected(nats.connected());
      metrics.observe_nats_stats(NatsStats{c.in_bytes, c.out_bytes, c.reconnects, nats.dropped()});
      NatsClient::JsPublishStats js = nats.js_publish_stats();
      js_inflight.Set(static_cast<double>(js.inflight));
      js_inflight_max.Set(static_cast<double>(js.max_inflight));
      js_inflight_limit.Set(static_cast<double>(js.limit));
      for (int i = 0; i < 10 && !stopping.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });

  int sig = 0;
  while (true) {
    sigwait(&signals, &sig);
    if (sig == SIGHUP) {
      source.poll();
      continue;
    }
    break;
  }
  log.info("stopping: draining subscriptions", {{"signal", sig}, {"grace_ms", o.grace_ms}});
  source.stop();
  router.stop();
  stopping = true;
  stats.join();
  http.Stop();
  log.info("stopped", {{"received", router.totals().received.load()},
                       {"published", router.totals().published.load()}});
  return 0;
}

}  // namespace switchboard::router
