// Bad events against the real `switchboard-router run` process and a real nats-server:
// payloads that are not JSON, 10 MiB large, nested 1,000 levels deep or invalid UTF-8,
// events with too many or too large headers, and events that push a route over its limits
// (rendered subject and header size, step budget, regex size). Each one is counted by
// reason on the router's /metrics, dead-lettered where its route has a dead letter and
// counted only where it has none; the process never crashes (it exits 0 on SIGTERM at the
// end, and a sanitized build reports nothing), and the good events sent between the bad
// ones all arrive. Everything listens on 127.0.0.1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/json/document.h"
#include "router/nats_client.h"
#include "tests/support/files.h"
#include "tests/support/inbox.h"
#include "tests/support/process.h"

namespace switchboard::router {
namespace {

using testing::read_file;
using testing::eventually;

using testing::Inbox;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr size_t kMiB = 1 << 20;

// GET http://127.0.0.1:port/path with a plain socket, as a Prometheus scrape or a kubelet
// probe sees it; returns the status (0 when nothing answered) and the body. The server
// closes the connection after one answer.
std::pair<int, std::string> http_get(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return {0, ""};
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string raw;
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t body = raw.find("\r\n\r\n");
  if (raw.compare(0, 9, "HTTP/1.1 ") != 0 || body == std::string::npos) return {0, ""};
  return {std::atoi(raw.c_str() + 9), raw.substr(body + 4)};
}

// The value of one series (`name{label="v",...}` exactly as the page writes it), or none.
std::optional<double> metric(const std::string& page, const std::string& series) {
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 && line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

std::string failed(const std::string& route, const std::string& reason) {
  return "switchboard_router_events_failed_total{reason=\"" + reason + "\",route=\"" + route + "\"}";
}
std::string counter(const std::string& name, const std::string& route) {
  return "switchboard_router_events_" + name + "_total{route=\"" + route + "\"}";
}

// A string member of a JSON object, or "" when absent or not a string.
std::string member(const std::string& json_text, const std::string& key) {
  json::Document d;
  if (!d.parse(json_text)) return "";
  const uint32_t at = d.find_member(0, key);
  return at != 0 && d.node(at).type == json::Type::String ? std::string(d.string_value(at)) : "";
}

std::string header(const NatsHeaders& headers, const std::string& name) {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

std::string good(int id) { return R"({"id":)" + std::to_string(id) + R"(,"amount":5})"; }

class RouterAbuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok()) << "nats-server did not start; its log:\n" << read_file(server_.log_path());
    char tmpl[] = "/tmp/switchboard-abuse-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    log_ = dir_ + "/router.log";
    metrics_port_ = testing::free_port();
    NatsConfig cfg;
    cfg.urls = {server_.url()};
    cfg.name = "router-abuse-test";
    std::string error;
    ASSERT_TRUE(client_.connect(cfg, error)) << error;
  }
  void TearDown() override {
    const int status = router_.stop(20000);
    if (HasFailure()) std::cerr << "--- router log ---\n" << read_file(log_) << "--- end ---\n";
    EXPECT_EQ(status, 0) << "the router did not exit cleanly";
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Starts the router on `routes` and waits until it is ready and subscribed: its first
  // heartbeat is published after its subscriptions, on the same connection.
  void start(const std::string& routes) {
    std::ofstream(dir_ + "/routes.yaml") << routes;
    Inbox beats(client_, "switchboard.status.shop.abuse");
    router_ = testing::Process({std::string(SWITCHBOARD_BIN_DIR) + "/switchboard-router", "run", "--routes",
                                dir_ + "/routes.yaml", "--nats", server_.url(), "--name", "abuse", "--namespace",
                                "shop", "--pod", "abuse-0", "--metrics-addr",
                                "127.0.0.1:" + std::to_string(metrics_port_), "--heartbeat", "200ms", "--grace", "5s"},
                               {}, log_);
    ASSERT_TRUE(eventually([&] { return !router_.running() || http_get(metrics_port_, "/readyz").first == 200; }));
    ASSERT_TRUE(router_.running()) << read_file(log_);
    Inbox::Received beat;
    ASSERT_TRUE(beats.next(beat, 30s));
  }

  void send(const std::string& subject, const std::string& data, const NatsHeaders& headers = {}) {
    std::string error;
    ASSERT_TRUE(client_.publish(subject, headers, data, error)) << error;
    ASSERT_TRUE(client_.flush(30000));
  }

  std::string metrics() { return http_get(metrics_port_, "/metrics").second; }
  double value(const std::string& series) { return metric(metrics(), series).value_or(0); }

  // Waits for the next message and checks that it carries the good event `id`.
  void expect_good(Inbox& inbox, int id) {
    Inbox::Received r;
    ASSERT_TRUE(inbox.next(r, 60s)) << "good event " << id << " did not arrive";
    EXPECT_EQ(r.data, good(id));
  }

  // Waits for the next dead letter and checks its reason and that its error says `why`.
  void expect_dead_letter(Inbox& dlq, const std::string& reason, const std::string& why) {
    Inbox::Received r;
    ASSERT_TRUE(dlq.next(r, 60s)) << "no dead letter for " << reason << " (" << why << ")";
    EXPECT_EQ(member(r.data, "reason"), reason) << r.data.substr(0, 300);
    EXPECT_NE(member(r.data, "error").find(why), std::string::npos) << r.data.substr(0, 300);
    EXPECT_EQ(header(r.headers, "switchboard-reason"), reason);
  }

  // Past the NATS default of 1 MiB, so that a 10 MiB event reaches the router at all.
  testing::NatsServer server_{testing::NatsServer::Config{"max_payload: 16777216"}};
  NatsClient client_;
  std::string dir_, log_;
  int metrics_port_ = 0;
  testing::Process router_;
};

// `orders` reads the payload and has a dead letter; `audit` looks only at the subject, so a
// payload that is not JSON passes through it, and it has no dead letter.
const char* kBadInputRoutes = R"(routes:
  - name: orders
    source: {subject: abuse.orders}
    filter: 'event.amount >= 1'
    destinations: [{subject: out.orders}]
    deadLetter: {subject: dlq.orders}
  - name: audit
    source: {subject: abuse.orders}
    filter: 'subject == "abuse.orders"'
    destinations: [{subject: out.audit}]
)";

TEST_F(RouterAbuseTest, BadEventsAreCountedDeadLetteredAndDoNotStopGoodOnes) {
  ASSERT_NO_FATAL_FAILURE(start(kBadInputRoutes));
  Inbox out(client_, "out.orders");
  Inbox audit(client_, "out.audit");
  Inbox dlq(client_, "dlq.orders");

  const std::string not_json = "this is { not JSON";
  const std::string ten_mib = R"({"id":"big","amount":5,"pad":")" + std::string(10 * kMiB, 'x') + "\"}";
  const std::string deep = std::string(1000, '[') + "1" + std::string(1000, ']');
  const std::string bad_utf8 = std::string(R"({"id":"u","amount":5,"name":"caf)") + "\xc3\x28\xff\"}";
  NatsHeaders many;
  for (int i = 0; i < 1000; ++i) many.emplace_back("X-Many-" + std::to_string(i), "v" + std::to_string(i));
  const NatsHeaders large = {{"X-Large", std::string(100 * 1024, 'h')}};

  send("abuse.orders", good(0));
  send("abuse.orders", not_json);
  send("abuse.orders", good(1));
  send("abuse.orders", ten_mib);
  send("abuse.orders", good(2));
  send("abuse.orders", deep);
  send("abuse.orders", good(3));
  send("abuse.orders", bad_utf8);
  send("abuse.orders", good(4));
  send("abuse.orders", good(5), many);
  send("abuse.orders", good(6));
  send("abuse.orders", good(7), large);
  send("abuse.orders", good(8));

  // Every good event arrives, in order, on both routes.
  for (int id : {0, 1, 2, 3, 4, 6, 8}) ASSERT_NO_FATAL_FAILURE(expect_good(out, id));
  // `audit` never reads the payload: what is not JSON passes through it unchanged.
  Inbox::Received r;
  for (const std::string& want : {good(0), not_json, good(1), good(2), deep, good(3), bad_utf8, good(4), good(6),
                                  good(8)}) {
    ASSERT_TRUE(audit.next(r, 60s));
    EXPECT_EQ(r.data, want);
  }

  // Each bad event is dead-lettered by `orders` with its reason, the payload kept whole.
  ASSERT_NO_FATAL_FAILURE(expect_dead_letter(dlq, "not_json", "payload is not JSON"));
  Inbox::Received big;
  ASSERT_TRUE(dlq.next(big, 60s));
  EXPECT_EQ(member(big.data, "reason"), "too_large");
  EXPECT_EQ(member(big.data, "error"),
            "payload of " + std::to_string(ten_mib.size()) + " bytes exceeds maxPayloadBytes 1048576");
  EXPECT_GT(big.data.size(), 10 * kMiB);
  ASSERT_NO_FATAL_FAILURE(expect_dead_letter(dlq, "not_json", "nesting deeper than 128 levels"));
  ASSERT_NO_FATAL_FAILURE(expect_dead_letter(dlq, "not_json", "invalid UTF-8"));
  ASSERT_NO_FATAL_FAILURE(expect_dead_letter(dlq, "too_large", "1000 headers"));
  ASSERT_NO_FATAL_FAILURE(expect_dead_letter(dlq, "too_large", "1 headers of 102407 bytes"));

  // Counted by reason on /metrics: 13 events on each route.
  ASSERT_TRUE(eventually([&] {
    const std::string page = metrics();
    return metric(page, counter("received", "orders")) == 13.0 && metric(page, counter("received", "audit")) == 13.0 &&
           metric(page, counter("dead_lettered", "orders")) == 6.0;
  })) << metrics();
  const std::string page = metrics();
  EXPECT_EQ(metric(page, counter("published", "orders")), 7.0) << page;
  EXPECT_EQ(metric(page, failed("orders", "not_json")), 3.0) << page;
  EXPECT_EQ(metric(page, failed("orders", "too_large")), 3.0) << page;
  EXPECT_EQ(metric(page, counter("published", "audit")), 10.0) << page;
  EXPECT_EQ(metric(page, failed("audit", "too_large")), 3.0) << page;
  EXPECT_EQ(metric(page, failed("audit", "not_json")).value_or(0), 0.0) << page;
  // No dead letter on `audit`: counted, not published anywhere.
  EXPECT_EQ(metric(page, counter("dead_lettered", "audit")).value_or(0), 0.0) << page;

  // The process lives and still serves.
  EXPECT_TRUE(router_.running());
  EXPECT_EQ(http_get(metrics_port_, "/healthz").first, 200);
  EXPECT_EQ(http_get(metrics_port_, "/readyz").first, 200);
  send("abuse.orders", good(9));
  ASSERT_NO_FATAL_FAILURE(expect_good(out, 9));
}

// What routes may make the router do, per docs/routes.md "Limits": a subject or header
// rendered from event data, an expression over its step budget, a computed regular
// expression over its size. The event fails on that route; the router, its connection to
// NATS and the next events are unharmed.
const char* kLimitRoutes = R"(routes:
  - name: render
    source: {subject: abuse.render}
    destinations:
      - subject: 'out.render.{{ event.region }}'
        headers: {x-note: 'event.note'}
    deadLetter: {subject: dlq.render}
  - name: costly
    source: {subject: abuse.costly}
    filter: >-
      !event.deep || [0,1,2,3,4,5,6,7,8,9].all(a, [0,1,2,3,4,5,6,7,8,9].all(b,
      [0,1,2,3,4,5,6,7,8,9].all(c, [0,1,2,3,4,5,6,7,8,9].all(d,
      [0,1,2,3,4,5,6,7,8,9].all(e, event.deep)))))
    destinations: [{subject: out.costly}]
    deadLetter: {subject: dlq.costly}
  - name: regex
    source: {subject: abuse.regex}
    filter: 'event.s.matches(event.p)'
    destinations: [{subject: out.regex}]
)";

TEST_F(RouterAbuseTest, EventsOverRouteLimitsFailOnTheirRouteOnly) {
  ASSERT_NO_FATAL_FAILURE(start(kLimitRoutes));
  Inbox out(client_, "out.>");
  Inbox dlq(client_, "dlq.>");

  // A subject of 2 KiB would be a protocol line NATS refuses, closing the connection.
  send("abuse.render", R"({"region":")" + std::string(2048, 'r') + R"(","note":"n"})");
  send("abuse.render", R"({"region":"eu","note":")" + std::string(5000, 'n') + "\"}");
  send("abuse.render", R"({"region":"eu","note":"fine"})");
  Inbox::Received r;
  ASSERT_TRUE(out.next(r, 60s));
  EXPECT_EQ(r.subject, "out.render.eu");
  EXPECT_EQ(header(r.headers, "x-note"), "fine");
  ASSERT_NO_FATAL_FAILURE(expect_dead_letter(dlq, "destination", "subject longer than 1024 bytes"));
  ASSERT_NO_FATAL_FAILURE(expect_dead_letter(dlq, "destination", "header value of 5000 bytes exceeds"));

  send("abuse.costly", R"({"deep":true})");
  send("abuse.costly", R"({"deep":false})");
  ASSERT_TRUE(out.next(r, 60s));
  EXPECT_EQ(r.subject, "out.costly");
  ASSERT_NO_FATAL_FAILURE(expect_dead_letter(dlq, "filter", "exceeded its budget of 100000 steps"));

  // 2,104 RE2 instructions, over the 2,000 a pattern may have; `regex` has no dead letter.
  send("abuse.regex", R"({"s":"aaa","p":"a{1000}a{1000}a{100}"})");
  send("abuse.regex", R"({"s":"aaa","p":"a+"})");
  ASSERT_TRUE(out.next(r, 60s));
  EXPECT_EQ(r.subject, "out.regex");

  ASSERT_TRUE(eventually([&] {
    const std::string page = metrics();
    return metric(page, failed("render", "destination")) == 2.0 && metric(page, failed("costly", "filter")) == 1.0 &&
           metric(page, failed("regex", "filter")) == 1.0;
  })) << metrics();
  const std::string page = metrics();
  EXPECT_EQ(metric(page, counter("published", "render")), 1.0) << page;
  EXPECT_EQ(metric(page, counter("dead_lettered", "render")), 2.0) << page;
  EXPECT_EQ(metric(page, counter("published", "costly")), 1.0) << page;
  EXPECT_EQ(metric(page, counter("dead_lettered", "costly")), 1.0) << page;
  EXPECT_EQ(metric(page, counter("published", "regex")), 1.0) << page;
  EXPECT_EQ(metric(page, counter("dead_lettered", "regex")).value_or(0), 0.0) << page;
  // Still connected: nothing the routes rendered made NATS close the connection.
  EXPECT_EQ(metric(page, "switchboard_router_nats_reconnects_total").value_or(0), 0.0) << page;
  EXPECT_TRUE(router_.running());
  EXPECT_EQ(http_get(metrics_port_, "/readyz").first, 200);
}

}  // namespace
}  // namespace switchboard::router
