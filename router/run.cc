#include "router/run.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <thread>

#include "core/route/spec_yaml.h"
#include "router/file_source.h"
#include "router/http_server.h"
#include "router/log.h"
#include "router/metrics.h"
#include "router/router.h"

namespace switchboard::router {

const char* const kRunUsage = R"(usage: switchboard-router run --routes FILE [options]

  --routes FILE              route table file, reloaded when it changes   SWITCHBOARD_ROUTES
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
bool credential(const std::string& flag_file, const char* env_name, std::string& out, std::string& error) {
  std::string file = flag_file.empty() ? env((std::string(env_name) + "_FILE").c_str()) : flag_file;
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
  if (o.routes_path.empty()) {
    error = "--routes FILE is required (or SWITCHBOARD_ROUTES)";
    return false;
  }
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
  if (!credential(flags["--nats-user-file"], "SWITCHBOARD_NATS_USER", o.nats.user, error) ||
      !credential(flags["--nats-password-file"], "SWITCHBOARD_NATS_PASSWORD", o.nats.password, error) ||
      !credential(flags["--nats-token-file"], "SWITCHBOARD_NATS_TOKEN", o.nats.token, error)) {
    return false;
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

  FileSource source(
      o.routes_path, o.reload_poll_ms,
      [&](std::shared_ptr<const route::RouteTable> table) {
        std::string apply_error;
        router.apply(std::move(table), apply_error);
      },
      [&](uint64_t generation, const std::string& reason) { router.reject(generation, reason); });

  HttpServerOptions ho;
  ho.address = o.metrics_address;
  ho.port = o.metrics_port;
  HttpServer http(ho, [&] { return metrics.serialize(); },
                  [&](std::string& why) { return router.ready(why); });
  try {
    http.Start();
  } catch (const std::exception& e) {
    log.error("cannot serve metrics", {{"address", o.metrics_address}, {"port", o.metrics_port}, {"error", e.what()}});
    return 1;
  }
  source.start();
  router.start();
  log.info("router started", {{"router", o.name}, {"namespace", o.ns}, {"pod", o.pod},
                              {"routes", o.routes_path}, {"metrics_port", o.metrics_port}});

  std::atomic<bool> stopping{false};
  std::thread stats([&] {
    while (!stopping.load()) {
      NatsClient::Counts c = nats.counts();
      metrics.set_nats_connected(nats.connected());
      metrics.observe_nats_stats(NatsStats{c.in_bytes, c.out_bytes, c.reconnects});
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
