// The real `switchboard-router run` binary as a child process, the way a cluster runs it:
// configured by flags or environment, probed over HTTP, reloaded by rewriting its routes
// file, signalled, and cut off from NATS. Everything listens on 127.0.0.1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "core/json/document.h"
#include "router/nats_client.h"
#include "router/run.h"
#include "tests/support/files.h"
#include "tests/support/http_probe.h"
#include "tests/support/inbox.h"
#include "tests/support/process.h"
#include "tests/support/silent_server.h"
#include "tests/support/streams.h"

namespace switchboard::router {
namespace {

using testing::read_file;
using testing::write_atomically;
using testing::eventually;

using testing::Inbox;

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string router_binary() { return std::string(SWITCHBOARD_BIN_DIR) + "/switchboard-router"; }

using testing::http_get;
using testing::HttpReply;
using testing::metric;


struct Heartbeat {
  std::string pod, router, ns, state, error;
  double generation = -1;
};

Heartbeat parse_heartbeat(const std::string& text) {
  Heartbeat h;
  json::Document d;
  if (!d.parse(text)) return h;
  h.pod = d.string_value(d.find_member(0, "pod"));
  h.router = d.string_value(d.find_member(0, "router"));
  h.ns = d.string_value(d.find_member(0, "namespace"));
  h.state = d.string_value(d.find_member(0, "state"));
  h.error = d.string_value(d.find_member(0, "error"));
  if (uint32_t g = d.find_member(0, "generation")) h.generation = d.number_value(g);
  return h;
}

// Reads heartbeats until one matches; heartbeats come every 200ms in these tests.
bool wait_heartbeat(Inbox& beats, const std::function<bool(const Heartbeat&)>& match, Heartbeat* out = nullptr,
                    std::chrono::milliseconds timeout = 15s) {
  auto deadline = Clock::now() + timeout;
  Inbox::Received r;
  while (Clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (!beats.next(r, std::max(left, 1ms))) return false;
    Heartbeat h = parse_heartbeat(r.data);
    if (match(h)) {
      if (out) *out = h;
      return true;
    }
  }
  return false;
}

// v1 routes large orders to out.v1.<region>; v2 lowers the threshold and moves the output
// to out.v2.<region>, so which table handled an event shows in its subject.
const char* kRoutesV1 = R"(routes:
  - name: large
    source: {subject: orders.*}
    filter: 'event.amount >= 100.0'
    destinations:
      - subject: 'out.v1.{{ event.region }}'
)";
const char* kRoutesV2 = R"(routes:
  - name: large
    source: {subject: orders.*}
    filter: 'event.amount >= 1.0'
    destinations:
      - subject: 'out.v2.{{ event.region }}'
)";
const char* kRoutesInvalid = R"(routes:
  - name: large
    source: {subject: orders.*}
    filter: 'evnt.amount >= 1.0'
    destinations:
      - subject: 'out.v3.{{ event.region }}'
)";

class RouterProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok()) << "nats-server did not start";
    char tmpl[] = "/tmp/switchboard-router-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    routes_ = dir_ + "/routes.yaml";
    log_ = dir_ + "/router.log";
    write_atomically(routes_, kRoutesV1);
    metrics_port_ = testing::free_port();
    NatsConfig cfg;
    cfg.urls = {server_.url()};
    cfg.name = "router-process-test";
    cfg.reconnect_wait_ms = 50;
    cfg.reconnect_jitter_ms = 50;
    std::string error;
    ASSERT_TRUE(client_.connect(cfg, error)) << error;
  }
  void TearDown() override {
    router_.stop();
    if (HasFailure()) std::cerr << "--- router log ---\n" << read_file(log_) << "--- end ---\n";
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::vector<std::string> flags(const std::string& reload = "100ms", const std::string& grace = "5s") const {
    return {router_binary(), "run", "--routes", routes_, "--nats", server_.url(), "--name", "orders",
            "--namespace", "shop", "--pod", "orders-0", "--metrics-addr",
            "127.0.0.1:" + std::to_string(metrics_port_), "--heartbeat", "200ms", "--reload-interval", reload,
            "--grace", grace};
  }
  void start(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
    router_ = testing::Process(argv, env, log_);
  }
  HttpReply get(const std::string& path) const { return http_get(metrics_port_, path); }
  std::optional<double> metric_now(const std::string& series) const {
    HttpReply r = get("/metrics");
    return r.status == 200 ? metric(r.body, series) : std::nullopt;
  }
  bool wait_ready() {
    return eventually([&] { return !router_.running() || get("/readyz").status == 200; }) && router_.running();
  }
  void publish(const std::string& subject, const std::string& data) {
    std::string error;
    ASSERT_TRUE(client_.publish(subject, {}, data, error)) << error;
    ASSERT_TRUE(client_.flush(5000));
  }
  // Sends SIGTERM and returns the exit status and how long the exit took.
  std::pair<int, std::chrono::milliseconds> terminate(std::chrono::milliseconds timeout = 30s) {
    auto t0 = Clock::now();
    router_.signal(SIGTERM);
    int status = router_.wait(static_cast<int>(timeout.count()));
    return {status, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0)};
  }

  testing::NatsServer server_;
  NatsClient client_;
  std::string dir_, routes_, log_;
  int metrics_port_ = 0;
  testing::Process router_;
};

TEST_F(RouterProcessTest, ConfiguredByEnvironmentOnly) {
  Inbox beats(client_, "switchboard.status.shop.orders");
  Inbox out(client_, "out.>");
  // No flags at all: a Deployment that sets only env.
  start({router_binary(), "run"},
        {"SWITCHBOARD_ROUTES=" + routes_, "SWITCHBOARD_NATS_URL=" + server_.url(), "SWITCHBOARD_ROUTER=orders",
         "SWITCHBOARD_NAMESPACE=shop", "POD_NAME=orders-7",
         "SWITCHBOARD_METRICS_ADDR=127.0.0.1:" + std::to_string(metrics_port_), "SWITCHBOARD_HEARTBEAT=200ms",
         "SWITCHBOARD_RELOAD_INTERVAL=100ms", "SWITCHBOARD_GRACE=3s", "SWITCHBOARD_LOG_LEVEL=debug"});
  ASSERT_TRUE(wait_ready()) << "router not ready; /readyz says: " << get("/readyz").body;

  HttpReply ready = get("/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, "ready");
  EXPECT_EQ(get("/healthz").status, 200);
  HttpReply page = get("/metrics");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("\nswitchboard_router_route_table_generation 1\n"), std::string::npos) << page.body;
  EXPECT_EQ(metric(page.body, "switchboard_router_reloads_total{result=\"applied\"}"), 1.0);
  // Connection gauges come from a once-a-second poll, which may not have run yet.
  EXPECT_TRUE(eventually([&] { return metric_now("switchboard_router_nats_connected") == 1.0; }));
  EXPECT_EQ(get("/nope").status, 404);

  // The heartbeat is published after the subscriptions on the same connection, so once it
  // arrives the router's subscriptions are in place.
  Heartbeat h;
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.state == "applied"; }, &h));
  EXPECT_EQ(h.pod, "orders-7");
  EXPECT_EQ(h.router, "orders");
  EXPECT_EQ(h.ns, "shop");
  EXPECT_EQ(h.generation, 1.0);

  publish("orders.new", R"({"amount":250,"region":"eu"})");
  publish("orders.new", R"({"amount":5,"region":"small"})");
  publish("orders.new", R"({"amount":300,"region":"us"})");
  Inbox::Received r;
  ASSERT_TRUE(out.next(r));
  EXPECT_EQ(r.subject, "out.v1.eu");
  EXPECT_EQ(r.data, R"({"amount":250,"region":"eu"})");
  ASSERT_TRUE(out.next(r));
  EXPECT_EQ(r.subject, "out.v1.us");
  EXPECT_TRUE(eventually([&] {
    return metric_now("switchboard_router_events_received_total{route=\"large\"}") == 3.0 &&
           metric_now("switchboard_router_events_filtered_total{route=\"large\"}") == 1.0;
  })) << get("/metrics").body;
  EXPECT_EQ(terminate().first, 0);
}

// A route's series exist, at zero, as soon as its table runs: rate() and the alerts then see
// the route's very first event, and a dashboard lists routes that have had no traffic yet.
TEST_F(RouterProcessTest, EveryRouteHasItsSeriesBeforeItsFirstEvent) {
  start(flags());
  ASSERT_TRUE(wait_ready());
  HttpReply page = get("/metrics");
  for (const char* name : {"received", "published", "filtered", "dead_lettered"}) {
    EXPECT_EQ(metric(page.body, std::string("switchboard_router_events_") + name + "_total{route=\"large\"}"), 0.0)
        << name << "\n" << page.body;
  }
  EXPECT_EQ(metric(page.body, "switchboard_router_events_failed_total{reason=\"filter\",route=\"large\"}"), 0.0)
      << page.body;
  EXPECT_EQ(metric(page.body, "switchboard_router_processing_seconds_count{route=\"large\"}"), 0.0) << page.body;
  EXPECT_EQ(terminate().first, 0);
}

TEST_F(RouterProcessTest, HotReloadAppliesNewTablesAndRefusesBadOnes) {
  Inbox beats(client_, "switchboard.status.shop.orders");
  Inbox out(client_, "out.>");
  start(flags());
  ASSERT_TRUE(wait_ready());
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.generation == 1 && b.state == "applied"; }));

  write_atomically(routes_, kRoutesV2);
  Heartbeat h;
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.generation == 2; }, &h));
  EXPECT_EQ(h.state, "applied");
  EXPECT_TRUE(eventually([&] { return metric_now("switchboard_router_route_table_generation") == 2.0; }));
  publish("orders.new", R"({"amount":5,"region":"eu"})");  // below v1's threshold
  Inbox::Received r;
  ASSERT_TRUE(out.next(r));
  EXPECT_EQ(r.subject, "out.v2.eu");

  write_atomically(routes_, kRoutesInvalid);
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.state == "rejected"; }, &h));
  EXPECT_EQ(h.generation, 2.0);  // what still runs
  EXPECT_NE(h.error.find("generation 3"), std::string::npos) << h.error;
  EXPECT_NE(h.error.find("undeclared reference to 'evnt'"), std::string::npos) << h.error;
  HttpReply page = get("/metrics");
  EXPECT_EQ(metric(page.body, "switchboard_router_reloads_total{result=\"rejected\"}"), 1.0) << page.body;
  EXPECT_EQ(metric(page.body, "switchboard_router_reloads_total{result=\"applied\"}"), 2.0);
  EXPECT_EQ(metric(page.body, "switchboard_router_route_table_generation"), 2.0);
  EXPECT_EQ(get("/readyz").status, 200);  // a refused reload does not take the pod out

  publish("orders.new", R"({"amount":7,"region":"still"})");
  ASSERT_TRUE(out.next(r));
  EXPECT_EQ(r.subject, "out.v2.still");
  EXPECT_EQ(terminate().first, 0);
  EXPECT_NE(read_file(log_).find("route table refused"), std::string::npos);
}

TEST_F(RouterProcessTest, SighupReloadsAtOnce) {
  Inbox beats(client_, "switchboard.status.shop.orders");
  Inbox out(client_, "out.>");
  // An hour between polls: only SIGHUP can make this reload within the test.
  start(flags("1h"));
  ASSERT_TRUE(wait_ready());  // SIGHUP before the router blocks it would kill the process
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.generation == 1; }));
  write_atomically(routes_, kRoutesV2);
  router_.signal(SIGHUP);
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.generation == 2; }, nullptr, 5s));
  EXPECT_TRUE(eventually([&] { return metric_now("switchboard_router_route_table_generation") == 2.0; }, 5s));
  publish("orders.new", R"({"amount":5,"region":"eu"})");
  Inbox::Received r;
  ASSERT_TRUE(out.next(r));
  EXPECT_EQ(r.subject, "out.v2.eu");
  // A SIGHUP with nothing changed is not a new generation: the next change is 3.
  router_.signal(SIGHUP);
  router_.signal(SIGHUP);
  write_atomically(routes_, kRoutesV1);
  router_.signal(SIGHUP);
  Heartbeat h;
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.generation > 2; }, &h, 5s));
  EXPECT_EQ(h.generation, 3.0);
  EXPECT_EQ(h.state, "applied");
  EXPECT_EQ(terminate().first, 0);
}

TEST_F(RouterProcessTest, SigtermExitsCleanlyWithALastHeartbeat) {
  Inbox beats(client_, "switchboard.status.shop.orders");
  start(flags("100ms", "2s"));
  ASSERT_TRUE(wait_ready());
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.state == "applied"; }));
  auto [status, took] = terminate();
  EXPECT_EQ(status, 0);
  EXPECT_LT(took, 2s) << "the exit took longer than --grace";
  Heartbeat h;
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.state == "stopped"; }, &h, 5s));
  EXPECT_EQ(h.generation, 1.0);
  EXPECT_NE(read_file(log_).find("\"msg\":\"stopped\""), std::string::npos);
}

TEST_F(RouterProcessTest, SigtermWithNatsGoneStillExitsWithinGrace) {
  start(flags("100ms", "2s"));
  ASSERT_TRUE(wait_ready());
  server_.stop();
  EXPECT_TRUE(eventually([&] { return get("/readyz").status == 503; }));
  EXPECT_EQ(get("/readyz").body, "not connected to NATS");
  auto [status, took] = terminate();
  EXPECT_EQ(status, 0);
  // With nothing to confirm, the drain waits out its share of --grace: the exit comes
  // late, but within it.
  EXPECT_LT(took, 2s) << "the exit took longer than --grace";
}

TEST_F(RouterProcessTest, ReconnectsWhenNatsComesBack) {
  Inbox beats(client_, "switchboard.status.shop.orders");
  Inbox out(client_, "out.>");
  start(flags());
  ASSERT_TRUE(wait_ready());
  server_.stop();
  ASSERT_TRUE(eventually([&] { return get("/readyz").status == 503; }));
  EXPECT_TRUE(eventually([&] { return metric_now("switchboard_router_nats_connected") == 0.0; }));
  beats.clear();
  server_.restart();  // same port, nothing remembered
  ASSERT_TRUE(server_.ok());
  ASSERT_TRUE(eventually([&] { return get("/readyz").status == 200; })) << get("/readyz").body;
  EXPECT_EQ(get("/readyz").body, "ready");
  EXPECT_TRUE(eventually([&] {
    auto n = metric_now("switchboard_router_nats_reconnects_total");
    return n && *n >= 1.0;
  })) << get("/metrics").body;
  EXPECT_TRUE(eventually([&] { return metric_now("switchboard_router_nats_connected") == 1.0; }));
  // A heartbeat that reaches this client was sent after the router resubscribed, and
  // after this client resubscribed too.
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.state == "applied"; }));
  publish("orders.new", R"({"amount":500,"region":"back"})");
  Inbox::Received r;
  ASSERT_TRUE(out.next(r));
  EXPECT_EQ(r.subject, "out.v1.back");
  EXPECT_EQ(terminate().first, 0);
}

// A server that takes the connection and never answers it leaves cnats 3.4.1 hung for good
// while it reconnects (NatsClient::stuck_for): the router's liveness fails with the
// reason, so that a restart ends it, and comes back once the connection is let go.
TEST_F(RouterProcessTest, AHungNatsClientFailsLiveness) {
  start(flags());
  ASSERT_TRUE(wait_ready());
  EXPECT_EQ(get("/healthz").status, 200);
  server_.stop();
  auto silent = std::make_unique<testing::SilentNatsServer>(server_.port());
  ASSERT_TRUE(silent->ok());
  // Four connect timeouts of 2 s, at least 10 s, then the probe fails.
  ASSERT_TRUE(eventually([&] { return get("/healthz").status == 503; }, 40s)) << get("/healthz").body;
  EXPECT_NE(get("/healthz").body.find("the NATS client has not answered for"), std::string::npos)
      << get("/healthz").body;
  EXPECT_NE(read_file(log_).find("the NATS client has not answered for"), std::string::npos);
  silent.reset();
  server_.restart();
  ASSERT_TRUE(server_.ok());
  EXPECT_TRUE(eventually([&] { return get("/healthz").status == 200; }, 30s)) << get("/healthz").body;
  EXPECT_TRUE(eventually([&] { return get("/readyz").status == 200; }, 30s)) << get("/readyz").body;
  EXPECT_EQ(terminate().first, 0);
}

// The router names its threads (what top -H, perf and /proc show); cnats' reader and
// flusher keep the process's name.
TEST_F(RouterProcessTest, ItsThreadsAreNamed) {
  start(flags());
  ASSERT_TRUE(wait_ready());
  Inbox out(client_, "out.>");
  publish("orders.new", R"({"amount":500,"region":"eu"})");
  Inbox::Received r;
  ASSERT_TRUE(out.next(r)) << "the event did not come out";
  std::multiset<std::string> names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(router_.pid()) + "/task")) {
    std::string name = read_file(task.path().string() + "/comm");
    while (!name.empty() && name.back() == '\n') name.pop_back();
    names.insert(name);
  }
  std::string all;
  for (const auto& n : names) all += n + " ";
  EXPECT_GE(names.count("sb-deliver"), 1u) << "a delivery thread per subscription, among: " << all;
  for (const char* expected : {"sb-nats-flush", "sb-nats-probe", "sb-nats-superv", "sb-heartbeat"}) {
    EXPECT_EQ(names.count(expected), 1u) << expected << " among: " << all;
  }
  EXPECT_EQ(terminate().first, 0);
}

// A router that starts before NATS is reachable serves its probes (not ready), stays
// stoppable, and routes once NATS is up.
TEST_F(RouterProcessTest, StartsBeforeNatsIsReachable) {
  server_.stop();
  start(flags());
  ASSERT_TRUE(eventually([&] { return !router_.running() || get("/readyz").status == 503; }));
  ASSERT_TRUE(router_.running());
  EXPECT_EQ(get("/readyz").body, "not connected to NATS");
  EXPECT_EQ(get("/healthz").status, 200);
  server_.restart();
  ASSERT_TRUE(server_.ok());
  ASSERT_TRUE(eventually([&] { return client_.connected(); }));
  Inbox beats(client_, "switchboard.status.shop.orders");
  Inbox out(client_, "out.>");
  ASSERT_TRUE(wait_ready()) << get("/readyz").body;
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.state == "applied"; }));
  publish("orders.new", R"({"amount":500,"region":"late"})");
  Inbox::Received r;
  ASSERT_TRUE(out.next(r));
  EXPECT_EQ(r.subject, "out.v1.late");
  EXPECT_EQ(terminate().first, 0);
}

TEST_F(RouterProcessTest, StopsOnSigtermWhileNatsIsUnreachable) {
  server_.stop();
  start(flags("100ms", "2s"));
  ASSERT_TRUE(eventually([&] { return !router_.running() || get("/readyz").status == 503; }));
  auto [status, took] = terminate();
  EXPECT_EQ(status, 0);
  EXPECT_LT(took, 2s) << "the exit took longer than --grace";
}

TEST_F(RouterProcessTest, MetricsPortInUseExitsWithOne) {
  // Hold the port the router is told to use.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(metrics_port_));
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  start(flags());
  int status = router_.wait(30000);
  std::string log = read_file(log_);
  EXPECT_EQ(status, 1);
  EXPECT_NE(log.find("\"msg\":\"cannot serve metrics\""), std::string::npos) << log;
  EXPECT_NE(log.find("127.0.0.1:" + std::to_string(metrics_port_)), std::string::npos) << log;

  // The same with NATS down too: a router that never started has nothing to drain, so a
  // long --grace must not hold the exit.
  server_.stop();
  std::vector<std::string> argv = flags("100ms", "30s");
  auto t0 = Clock::now();
  start(argv);
  status = router_.wait(40000);
  auto took = Clock::now() - t0;
  ::close(fd);
  EXPECT_EQ(status, 1);
  EXPECT_LT(took, 5s);
}

// Command-line errors: exit 2 and say what is wrong on stderr, before touching the network.
class RouterCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/switchboard-cli-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  static std::string quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
  }
  // Runs the router with stdout and stderr kept apart, with the `unset` variables removed
  // from its environment and `set` ("K=V") added; returns the exit status.
  int run(const std::vector<std::string>& args, const std::vector<std::string>& unset = {},
          const std::vector<std::string>& set = {}) {
    std::string cmd = "exec env";
    for (const auto& u : unset) cmd += " -u " + u;
    for (const auto& kv : set) cmd += " " + quote(kv);
    cmd += " " + quote(router_binary());
    for (const auto& a : args) cmd += " " + quote(a);
    cmd += " >" + quote(dir_ + "/stdout") + " 2>" + quote(dir_ + "/stderr");
    testing::Process p({"/bin/sh", "-c", cmd});
    int status = p.wait(30000);
    out_ = read_file(dir_ + "/stdout");
    err_ = read_file(dir_ + "/stderr");
    return status;
  }
  std::string dir_, out_, err_;
};

TEST_F(RouterCliTest, UnknownOptionExitsWithTwoAndUsage) {
  EXPECT_EQ(run({"run", "--routes", "r.yaml", "--frobnicate", "1"}), 2);
  EXPECT_NE(err_.find("unknown option '--frobnicate'"), std::string::npos) << err_;
  EXPECT_NE(err_.find("usage: switchboard-router run"), std::string::npos) << err_;
  EXPECT_EQ(out_, "");
}

TEST_F(RouterCliTest, MissingRoutesExitsWithTwo) {
  EXPECT_EQ(run({"run", "--nats", "nats://127.0.0.1:1"}, {"SWITCHBOARD_ROUTES"}), 2);
  EXPECT_NE(err_.find("--routes FILE is required"), std::string::npos) << err_;
}

TEST_F(RouterCliTest, UnreadablePasswordFileExitsWithTwoAndNamesIt) {
  std::string missing = dir_ + "/no-such-secret/password";
  EXPECT_EQ(run({"run", "--routes", "r.yaml", "--nats-password-file", missing}), 2);
  EXPECT_NE(err_.find(missing), std::string::npos) << err_;
  // From the environment too, the way a mounted Secret is usually named.
  EXPECT_EQ(run({"run", "--routes", "r.yaml"}, {}, {"SWITCHBOARD_NATS_PASSWORD_FILE=" + missing}), 2);
  EXPECT_NE(err_.find(missing), std::string::npos) << err_;
}

TEST_F(RouterCliTest, BadValuesExitWithTwo) {
  EXPECT_EQ(run({"run", "--routes", "r.yaml", "--grace", "soon"}), 2);
  EXPECT_NE(err_.find("--grace"), std::string::npos) << err_;
  EXPECT_EQ(run({"run", "--routes", "r.yaml", "--metrics-addr", "nowhere"}), 2);
  EXPECT_NE(err_.find("--metrics-addr"), std::string::npos) << err_;
  EXPECT_EQ(run({"run", "--routes", "r.yaml", "--log-level", "loud"}), 2);
  EXPECT_EQ(run({"run", "--routes"}), 2);
  EXPECT_NE(err_.find("--routes needs a value"), std::string::npos) << err_;
}

// `run --help` is the reference an operator reads: every flag the parser takes must be in
// it, with the environment variable it falls back to, and nothing it lists may be refused.
TEST_F(RouterCliTest, HelpListsEveryFlagTheParserAccepts) {
  std::set<std::string> listed;
  std::istringstream usage(kRunUsage);
  std::string line;
  std::regex row(R"(^  (--[a-z-]+) .*\s([A-Z_()]+)\s*$)");
  while (std::getline(usage, line)) {
    std::smatch m;
    if (!std::regex_match(line, m, row)) continue;
    listed.insert(m[1]);
    EXPECT_TRUE(m[2].str().rfind("SWITCHBOARD_", 0) == 0 || m[2] == "POD_NAME")
        << "no environment variable for " << m[1] << ": " << line;
  }
  ASSERT_GE(listed.size(), 10u) << kRunUsage;

  // Whatever the help lists, the parser takes (a refused flag says "unknown option").
  for (const auto& flag : listed) {
    RunOptions o;
    std::string error;
    std::string value = flag == "--metrics-addr" ? "127.0.0.1:9" : flag == "--log-level" ? "info"
                        : flag == "--heartbeat" || flag == "--grace" || flag == "--reload-interval" ? "1s"
                        : flag.find("-file") != std::string::npos ? SWITCHBOARD_SOURCE_DIR "/router/run.h"
                                                                   : "x";
    parse_run_options({"--routes", "r.yaml", flag, value}, o, error);
    EXPECT_EQ(error.find("unknown option"), std::string::npos) << flag << ": " << error;
  }

  // Whatever the parser takes, the help lists. The parser's flags are the keys of the
  // table in parse_run_options; read them from the source, since they are not exported.
  std::string source = read_file(SWITCHBOARD_SOURCE_DIR "/router/run.cc");
  size_t begin = source.find("bool parse_run_options(");
  ASSERT_NE(begin, std::string::npos);
  size_t end = source.find("for (size_t i = 0;", begin);
  ASSERT_NE(end, std::string::npos);
  std::string table = source.substr(begin, end - begin);
  std::regex key(R"re(\{"(--[a-z-]+)",)re");
  size_t accepted = 0;
  for (auto it = std::sregex_iterator(table.begin(), table.end(), key); it != std::sregex_iterator(); ++it) {
    ++accepted;
    EXPECT_TRUE(listed.count((*it)[1])) << (*it)[1] << " is accepted but not in `run --help`";
  }
  EXPECT_EQ(accepted, listed.size());

  // The binary prints exactly this text.
  EXPECT_EQ(run({"run", "--help"}), 0);
  EXPECT_EQ(out_, kRunUsage);
}


// The real binary on a JetStream route under 100,000 events: kill -9 while it is in the
// middle of them, start it again, then restart nats-server (on its file store) while it
// runs. Every event reaches the destination stream exactly once: a redelivered event's
// publish carries the same Nats-Msg-Id and the stream drops the copy.
class RouterJetStreamProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok()) << "nats-server did not start";
    char tmpl[] = "/tmp/switchboard-router-js-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    write_atomically(dir_ + "/routes.yaml", R"(routes:
  - name: copy
    source:
      subject: in.*
      jetstream: {stream: IN, durable: copy, batch: 256, ackWait: 5s, maxDeliver: 100}
    destinations:
      - subject: 'out.{{ event.k }}'
        jetstream: true
)");
    NatsConfig cfg;
    cfg.urls = {server_.url()};
    cfg.reconnect_wait_ms = 50;
    cfg.reconnect_jitter_ms = 50;
    cfg.js_max_inflight = 1024;
    std::string error;
    ASSERT_TRUE(client_.connect(cfg, error)) << error;
    add_stream("IN", "in.>");
    add_stream("OUT", "out.>");
  }
  void TearDown() override {
    router_.stop();
    if (HasFailure()) std::cerr << "--- router log (tail) ---\n" << tail(read_file(log_)) << "--- end ---\n";
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  static std::string tail(const std::string& text) {
    return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
  }
  void add_stream(const char* name, const char* subject) {
    ASSERT_EQ(testing::add_stream(client_.jetstream(), name, subject), "");
  }
  uint64_t messages(const char* stream) { return testing::stream_messages(client_.jetstream(), stream); }
  void start_router(int n) {
    log_ = dir_ + "/router-" + std::to_string(n) + ".log";
    metrics_port_ = testing::free_port();
    router_ = testing::Process({router_binary(), "run", "--routes", dir_ + "/routes.yaml", "--nats", server_.url(),
                                "--name", "copy", "--pod", "copy-0", "--metrics-addr",
                                "127.0.0.1:" + std::to_string(metrics_port_), "--grace", "5s",
                                "--log-level", "warn"},
                               {}, log_);
  }
  bool progressed_to(uint64_t n, std::chrono::seconds timeout = 60s) {
    auto deadline = Clock::now() + timeout;
    while (messages("OUT") < n) {
      if (Clock::now() >= deadline || !router_.running()) return false;
      std::this_thread::sleep_for(20ms);
    }
    return true;
  }

  testing::NatsServer server_{true};
  NatsClient client_;
  std::string dir_, log_;
  int metrics_port_ = 0;
  testing::Process router_;
};

TEST_F(RouterJetStreamProcessTest, KillNineAndAServerRestartLoseAndDuplicateNothingIn100kEvents) {
  constexpr uint64_t kEvents = 100'000;
  // The source stream first, as fast as its acknowledgements come back.
  std::atomic<uint64_t> confirmed{0}, refused{0};
  std::string error;
  for (uint64_t n = 0; n < kEvents; ++n) {
    std::string body = R"({"k":"k)" + std::to_string(n % 8) + R"(","n":)" + std::to_string(n) + "}";
    ASSERT_TRUE(client_.js_publish_async("in.new", {}, body, "src-" + std::to_string(n), 10000,
                                         [&](bool ok, const std::string&) { ++(ok ? confirmed : refused); }, error))
        << error;
  }
  ASSERT_TRUE(eventually([&] { return confirmed + refused == kEvents; }, 120s));
  ASSERT_EQ(refused, 0u);
  ASSERT_EQ(messages("IN"), kEvents);

  start_router(1);
  ASSERT_TRUE(progressed_to(kEvents / 4)) << messages("OUT");
  router_.signal(SIGKILL);
  EXPECT_EQ(router_.wait(10000), 128 + SIGKILL);

  start_router(2);
  ASSERT_TRUE(progressed_to(kEvents / 2)) << messages("OUT");
  server_.restart();  // SIGTERM, then up again on the same port and file store
  ASSERT_TRUE(server_.ok());

  ASSERT_TRUE(progressed_to(kEvents, 120s)) << messages("OUT") << " of " << kEvents;
  // Nothing more arrives: the copies were dropped, not late.
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(messages("OUT"), kEvents);
  EXPECT_TRUE(router_.running());
}


// Three router processes of one fleet (the same --name): they share each route's queue
// group, so every event is routed by exactly one of them, and each takes a share.
TEST(RouterFleetTest, ThreeReplicasShareAQueueGroupAndRouteEachEventOnce) {
  testing::NatsServer server;
  ASSERT_TRUE(server.ok());
  char tmpl[] = "/tmp/switchboard-router-fleet-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  write_atomically(dir + "/routes.yaml", kRoutesV2);
  NatsConfig cfg;
  cfg.urls = {server.url()};
  NatsClient client;
  std::string error;
  ASSERT_TRUE(client.connect(cfg, error)) << error;
  Inbox out(client, "out.>");
  std::vector<int> ports;
  std::vector<testing::Process> routers;
  for (int i = 0; i < 3; ++i) {
    ports.push_back(testing::free_port());
    routers.emplace_back(std::vector<std::string>{router_binary(), "run", "--routes", dir + "/routes.yaml", "--nats",
                                                  server.url(), "--name", "orders", "--pod",
                                                  "orders-" + std::to_string(i), "--metrics-addr",
                                                  "127.0.0.1:" + std::to_string(ports.back()), "--log-level", "warn"},
                         std::vector<std::string>{}, dir + "/router-" + std::to_string(i) + ".log");
  }
  for (int port : ports) {
    ASSERT_TRUE(eventually([&] { return http_get(port, "/readyz").status == 200; }, 30s)) << port;
  }
  constexpr int kEvents = 3000;
  for (int n = 0; n < kEvents; ++n) {
    ASSERT_TRUE(client.publish("orders.new", {}, R"({"amount":5.0,"region":"eu","n":)" + std::to_string(n) + "}",
                               error))
        << error;
  }
  client.flush(5000);
  ASSERT_TRUE(eventually([&] { return out.size() >= kEvents; }, 30s)) << out.size();
  std::this_thread::sleep_for(300ms);  // a duplicate would come now
  EXPECT_EQ(out.size(), static_cast<size_t>(kEvents));
  std::set<std::string> seen;
  Inbox::Received r;
  while (out.next(r, 0ms)) seen.insert(r.data);
  EXPECT_EQ(seen.size(), static_cast<size_t>(kEvents));
  double total = 0;
  for (int port : ports) {
    auto received = metric(http_get(port, "/metrics").body, "switchboard_router_events_received_total{route=\"large\"}");
    ASSERT_TRUE(received.has_value()) << port;
    EXPECT_GT(*received, 0.0) << "a replica took no share";
    total += *received;
  }
  EXPECT_EQ(total, kEvents);
  for (auto& p : routers) p.stop();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace switchboard::router
