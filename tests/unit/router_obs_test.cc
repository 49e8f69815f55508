// Router observability: metrics exposition, the operational HTTP server, JSON logs.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <cctype>
#include <chrono>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include "router/http_server.h"
#include "router/log.h"
#include "router/metrics.h"

namespace switchboard::router {
namespace {

using route::FailureReason;

// ---------------------------------------------------------------------------------------
// Metrics

bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

#define EXPECT_LINE(text, line) EXPECT_TRUE(has_line(text, line)) << "missing: " << (line) << "\n" << (text)
#define EXPECT_NO_LINE_WITH(text, part) EXPECT_EQ((text).find(part), std::string::npos) << (text)

TEST(RouterMetrics, RouteCountersCarryTheRouteLabel) {
  RouterMetrics m;
  RouteMetrics& r = m.route("orders");
  r.received->Increment(3);
  r.published->Increment(2);
  r.filtered->Increment();
  r.dead_lettered->Increment();
  const std::string text = m.serialize();
  EXPECT_LINE(text, "# TYPE switchboard_router_events_received_total counter");
  EXPECT_LINE(text, "switchboard_router_events_received_total{route=\"orders\"} 3");
  EXPECT_LINE(text, "switchboard_router_events_published_total{route=\"orders\"} 2");
  EXPECT_LINE(text, "switchboard_router_events_filtered_total{route=\"orders\"} 1");
  EXPECT_LINE(text, "switchboard_router_events_dead_lettered_total{route=\"orders\"} 1");
}

TEST(RouterMetrics, EveryFailureReasonExistsFromTheStart) {
  RouterMetrics m;
  RouteMetrics& r = m.route("orders");
  r.failed_for(FailureReason::Filter).Increment();
  r.failed_for(FailureReason::NotJson).Increment(2);
  const std::string text = m.serialize();
  EXPECT_LINE(text, "switchboard_router_events_failed_total{reason=\"filter\",route=\"orders\"} 1");
  EXPECT_LINE(text, "switchboard_router_events_failed_total{reason=\"not_json\",route=\"orders\"} 2");
  for (const char* idle : {"too_large", "transform", "destination", "encode"}) {
    EXPECT_LINE(text, std::string("switchboard_router_events_failed_total{reason=\"") + idle +
                          "\",route=\"orders\"} 0");
  }
}

TEST(RouterMetrics, RouteHandlesAreCachedPerName) {
  RouterMetrics m;
  RouteMetrics& a = m.route("a");
  RouteMetrics& b = m.route("b");
  for (int i = 0; i < 50; ++i) m.route("filler-" + std::to_string(i));  // grow the map
  EXPECT_EQ(&a, &m.route("a"));
  EXPECT_EQ(a.received, m.route("a").received);
  EXPECT_NE(a.received, b.received);
  a.received->Increment();
  const std::string text = m.serialize();
  EXPECT_LINE(text, "switchboard_router_events_received_total{route=\"a\"} 1");
  EXPECT_LINE(text, "switchboard_router_events_received_total{route=\"b\"} 0");
}

// route() answers repeated names from a per-thread cache: a new instance in the same
// place (in a std::optional here) must never be handed the old one's counters.
TEST(RouterMetrics, TheRouteCacheNeverCrossesInstances) {
  std::optional<RouterMetrics> m;
  m.emplace();
  m->route("orders").received->Increment(7);
  const void* first_address = &*m;
  m.reset();
  m.emplace();
  ASSERT_EQ(first_address, &*m);  // the case the cache must get right
  m->route("orders").received->Increment();
  EXPECT_LINE(m->serialize(), "switchboard_router_events_received_total{route=\"orders\"} 1");
  // More names than the cache holds, asked in turns, each answered with its own counters.
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 9; ++i) m->route("r" + std::to_string(i)).received->Increment(i);
  }
  const std::string text = m->serialize();
  for (int i = 0; i < 9; ++i) {
    EXPECT_LINE(text, "switchboard_router_events_received_total{route=\"r" + std::to_string(i) + "\"} " +
                          std::to_string(3 * i));
  }
}

TEST(RouterMetrics, ProcessingHistogramBuckets) {
  const auto& buckets = processing_seconds_buckets();
  ASSERT_FALSE(buckets.empty());
  EXPECT_DOUBLE_EQ(buckets.front(), 0.000005);
  EXPECT_DOUBLE_EQ(buckets.back(), 1.0);
  for (size_t i = 1; i < buckets.size(); ++i) {
    EXPECT_GT(buckets[i], buckets[i - 1]);
    EXPECT_LE(buckets[i] / buckets[i - 1], 2.5 + 1e-9);  // no gap wider than the 1-2.5-5 step
  }

  RouterMetrics m;
  RouteMetrics& r = m.route("orders");
  r.processing_seconds->Observe(0.00003);  // between 2.5e-05 and 5e-05
  r.processing_seconds->Observe(0.002);
  r.processing_seconds->Observe(3.0);  // over the top bucket
  const std::string text = m.serialize();
  const std::string b = "switchboard_router_processing_seconds_bucket{route=\"orders\",le=";
  EXPECT_LINE(text, "# TYPE switchboard_router_processing_seconds histogram");
  EXPECT_LINE(text, b + "\"5e-06\"} 0");
  EXPECT_LINE(text, b + "\"2.5e-05\"} 0");
  EXPECT_LINE(text, b + "\"5e-05\"} 1");
  EXPECT_LINE(text, b + "\"0.001\"} 1");
  EXPECT_LINE(text, b + "\"0.0025\"} 2");
  EXPECT_LINE(text, b + "\"1\"} 2");
  EXPECT_LINE(text, b + "\"+Inf\"} 3");
  EXPECT_LINE(text, "switchboard_router_processing_seconds_count{route=\"orders\"} 3");
  size_t bucket_lines = 0;
  for (size_t at = text.find(b); at != std::string::npos; at = text.find(b, at + 1)) ++bucket_lines;
  EXPECT_EQ(bucket_lines, buckets.size() + 1);  // + the +Inf bucket
}

TEST(RouterMetrics, RouteTableInfoKeepsOnlyTheCurrentHash) {
  RouterMetrics m;
  m.set_route_table(1, "aaaa");
  std::string text = m.serialize();
  EXPECT_LINE(text, "switchboard_router_route_table_info{hash=\"aaaa\"} 1");
  EXPECT_LINE(text, "switchboard_router_route_table_generation 1");

  m.set_route_table(2, "bbbb");
  text = m.serialize();
  EXPECT_LINE(text, "switchboard_router_route_table_info{hash=\"bbbb\"} 1");
  EXPECT_NO_LINE_WITH(text, "hash=\"aaaa\"");
  EXPECT_LINE(text, "switchboard_router_route_table_generation 2");

  m.set_route_table(3, "bbbb");  // the same table again
  text = m.serialize();
  EXPECT_LINE(text, "switchboard_router_route_table_info{hash=\"bbbb\"} 1");
  EXPECT_LINE(text, "switchboard_router_route_table_generation 3");

  m.set_route_table(4, "aaaa");  // back to an earlier one
  text = m.serialize();
  EXPECT_LINE(text, "switchboard_router_route_table_info{hash=\"aaaa\"} 1");
  EXPECT_NO_LINE_WITH(text, "hash=\"bbbb\"");
}

TEST(RouterMetrics, ReloadsAndNatsState) {
  RouterMetrics m;
  std::string text = m.serialize();
  // Both results exist before the first reload, so a rate() over them works from the start.
  EXPECT_LINE(text, "switchboard_router_reloads_total{result=\"applied\"} 0");
  EXPECT_LINE(text, "switchboard_router_reloads_total{result=\"rejected\"} 0");
  EXPECT_LINE(text, "switchboard_router_nats_connected 0");

  m.reload_applied();
  m.reload_applied();
  m.reload_rejected();
  m.set_nats_connected(true);
  text = m.serialize();
  EXPECT_LINE(text, "switchboard_router_reloads_total{result=\"applied\"} 2");
  EXPECT_LINE(text, "switchboard_router_reloads_total{result=\"rejected\"} 1");
  EXPECT_LINE(text, "switchboard_router_nats_connected 1");
  m.set_nats_connected(false);
  EXPECT_LINE(m.serialize(), "switchboard_router_nats_connected 0");
}

TEST(RouterMetrics, NatsStatsAreFedAsGrowth) {
  RouterMetrics m;
  m.observe_nats_stats({.bytes_in = 100, .bytes_out = 40, .reconnects = 0, .dropped = 0});
  m.observe_nats_stats({.bytes_in = 250, .bytes_out = 40, .reconnects = 2, .dropped = 7});
  std::string text = m.serialize();
  EXPECT_LINE(text, "switchboard_router_nats_bytes_in_total 250");
  EXPECT_LINE(text, "switchboard_router_nats_bytes_out_total 40");
  EXPECT_LINE(text, "switchboard_router_nats_reconnects_total 2");
  EXPECT_LINE(text, "switchboard_router_nats_dropped_total 7");

  // A new client starts its statistics from zero: the counters must not go down.
  m.observe_nats_stats({.bytes_in = 10, .bytes_out = 5, .reconnects = 0, .dropped = 1});
  text = m.serialize();
  EXPECT_LINE(text, "switchboard_router_nats_bytes_in_total 260");
  EXPECT_LINE(text, "switchboard_router_nats_bytes_out_total 45");
  EXPECT_LINE(text, "switchboard_router_nats_reconnects_total 2");
  EXPECT_LINE(text, "switchboard_router_nats_dropped_total 8");
}

TEST(RouterMetrics, JetStreamAckPending) {
  RouterMetrics m;
  m.set_jetstream_ack_pending("orders", 7);
  m.set_jetstream_ack_pending("orders", 3);
  m.set_jetstream_ack_pending("audit", 0);
  const std::string text = m.serialize();
  EXPECT_LINE(text, "switchboard_router_jetstream_ack_pending{route=\"orders\"} 3");
  EXPECT_LINE(text, "switchboard_router_jetstream_ack_pending{route=\"audit\"} 0");
}

TEST(RouterMetrics, ConcurrentIncrementsAreNotLost) {
  RouterMetrics m;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m] {
      for (int i = 0; i < 10000; ++i) m.route("orders").received->Increment();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LINE(m.serialize(), "switchboard_router_events_received_total{route=\"orders\"} 40000");
}

// ---------------------------------------------------------------------------------------
// HTTP server

// A socket that closes itself.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(Fd&& other) noexcept : fd(std::exchange(other.fd, -1)) {}
  Fd& operator=(Fd&&) = delete;
};

sockaddr_in loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// cpprestsdk cannot listen on port 0, so ask the kernel for a free port and release it.
// Another process may take it before the server binds; callers retry.
uint16_t free_port() {
  Fd s(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in addr = loopback(0);
  if (::bind(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 0;
  socklen_t len = sizeof addr;
  if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  return ntohs(addr.sin_port);
}

Fd connect_to(uint16_t port, bool small_buffer = false) {
  Fd s(::socket(AF_INET, SOCK_STREAM, 0));
  if (small_buffer) {
    // Set before connect so the window is small from the start: the server's write then
    // cannot complete into kernel buffers and has to fail when the client goes away.
    int size = 4096;
    ::setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  timeval tv{};
  tv.tv_sec = 5;  // a hung server fails the test instead of hanging it
  ::setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr = loopback(port);
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(s.fd);
    s.fd = -1;
  }
  return s;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

struct Reply {
  bool connected = false;
  bool eof = false;  // the server closed the connection (rather than the read timing out)
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
};

std::string header_value(const Reply& r, const std::string& name) {
  std::istringstream in(r.head);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (key != name) continue;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    return value;
  }
  return {};
}

// Sends raw bytes and reads until the server closes or `wait_ms` pass. No HTTP client
// library, so malformed requests reach the server exactly as written.
Reply http_exchange(uint16_t port, std::string_view request, int wait_ms = 5000) {
  Reply r;
  Fd s = connect_to(port);
  if (s.fd < 0) return r;
  timeval tv{};
  tv.tv_sec = wait_ms / 1000;
  tv.tv_usec = (wait_ms % 1000) * 1000;
  ::setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  r.connected = true;
  send_all(s.fd, request);  // the server may close early on abuse; read what it said
  std::string raw;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
    if (n == 0) r.eof = true;
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  const auto end = raw.find("\r\n\r\n");
  r.head = raw.substr(0, end);
  if (end != std::string::npos) r.body = raw.substr(end + 4);
  if (raw.rfind("HTTP/1.1 ", 0) == 0 && raw.size() >= 12) r.status = std::stoi(raw.substr(9, 3));
  return r;
}

Reply get(uint16_t port, const std::string& path, const std::string& method = "GET") {
  return http_exchange(port, method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                            "Connection: close\r\n\r\n");
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto metrics = [this] {
      if (metrics_throw_) throw std::runtime_error("secret detail");
      std::lock_guard lock(mu_);
      return metrics_body_;
    };
    auto ready = [this](std::string& reason) {
      std::lock_guard lock(mu_);
      reason = not_ready_reason_;
      return not_ready_reason_.empty();
    };
    for (int attempt = 0; attempt < 20 && !server_; ++attempt) {
      const uint16_t port = free_port();
      if (port == 0) continue;
      auto server = std::make_unique<HttpServer>(HttpServerOptions{"127.0.0.1", port}, metrics, ready);
      try {
        server->Start();
      } catch (const std::runtime_error&) {
        continue;  // someone took the port in between
      }
      port_ = port;
      server_ = std::move(server);
    }
    ASSERT_TRUE(server_) << "no free port to listen on";
  }

  void TearDown() override {
    if (server_) {
      server_->Stop();
      EXPECT_FALSE(server_->running());
    }
  }

  void set_metrics(std::string body) {
    std::lock_guard lock(mu_);
    metrics_body_ = std::move(body);
  }
  void set_not_ready(std::string reason) {
    std::lock_guard lock(mu_);
    not_ready_reason_ = std::move(reason);
  }

  void expect_still_serving() {
    const Reply r = get(port_, "/healthz");
    EXPECT_EQ(r.status, 200) << r.head;
    EXPECT_EQ(r.body, "ok");
  }

  std::mutex mu_;
  std::string metrics_body_ = "# TYPE x counter\nx 1\n";
  std::string not_ready_reason_;
  std::atomic<bool> metrics_throw_{false};
  uint16_t port_ = 0;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, Metrics) {
  RouterMetrics m;
  m.route("orders").received->Increment(5);
  set_metrics(m.serialize());
  const Reply r = get(port_, "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(header_value(r, "content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.body, m.serialize());
  EXPECT_TRUE(has_line(r.body, "switchboard_router_events_received_total{route=\"orders\"} 5"));
}

TEST_F(HttpServerTest, MetricsIgnoresTheQueryString) {
  EXPECT_EQ(get(port_, "/metrics?name=x").status, 200);
}

TEST_F(HttpServerTest, Healthz) {
  const Reply r = get(port_, "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok");
  EXPECT_EQ(header_value(r, "content-length"), "2");
}

TEST_F(HttpServerTest, ReadyzFollowsTheCheck) {
  Reply r = get(port_, "/readyz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ready");

  set_not_ready("nats: not connected");
  r = get(port_, "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "nats: not connected");
  // Liveness does not follow readiness: a router waiting for NATS must not be restarted.
  expect_still_serving();

  set_not_ready("");
  EXPECT_EQ(get(port_, "/readyz").status, 200);
}

TEST_F(HttpServerTest, UnknownPathIs404WithoutEcho) {
  const Reply r = get(port_, "/%3Cscript%3Ealert(1)%3C/script%3E");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "not found");
  EXPECT_EQ(get(port_, "/").status, 404);
  EXPECT_EQ(get(port_, "/metrics/").status, 404);
  EXPECT_EQ(get(port_, "/METRICS").status, 404);
}

TEST_F(HttpServerTest, OtherMethodsAre405) {
  for (const char* method : {"POST", "PUT", "DELETE", "HEAD", "OPTIONS", "TRACE", "PATCH"}) {
    const Reply r = get(port_, "/metrics", method);
    EXPECT_EQ(r.status, 405) << method;
    EXPECT_EQ(header_value(r, "allow"), "GET") << method;
  }
  EXPECT_EQ(get(port_, "/healthz", "POST").status, 405);
}

TEST_F(HttpServerTest, FailingCallbackIs500WithoutDetail) {
  metrics_throw_ = true;
  const Reply r = get(port_, "/metrics");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body.find("secret"), std::string::npos);
  metrics_throw_ = false;
  expect_still_serving();
}

TEST_F(HttpServerTest, RequestWithBodyClosesTheConnection) {
  // No "Connection: close" from the client: the server closes because a body came along.
  const Reply r = http_exchange(port_, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(header_value(r, "connection"), "close");
  EXPECT_TRUE(r.eof);
  expect_still_serving();
}

TEST_F(HttpServerTest, HugeHeaderDoesNotCrashIt) {
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " +
                              std::string(100 * 1024, 'a') + "\r\nConnection: close\r\n\r\n";
  const Reply r = http_exchange(port_, request);
  EXPECT_TRUE(r.connected);
  expect_still_serving();
}

// What a head over the 16 KiB limit gets: 431, then the connection closes. The request
// stops one byte past the limit, so the server has read all of it when it answers and its
// close is a clean one (unread bytes would turn it into a reset that may overtake the 431).
TEST_F(HttpServerTest, AHeadOverTheLimitGets431) {
  std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ";
  request += std::string(16 * 1024 + 1 - request.size(), 'a');
  const Reply r = http_exchange(port_, request);
  EXPECT_EQ(r.status, 431) << r.head;
  EXPECT_TRUE(r.eof);
  EXPECT_EQ(r.body, "request head too large");
  expect_still_serving();
}

// A slow body: the server reads no body, so it answers as soon as the head is whole
// instead of waiting for a body that trickles (here: one that never comes), and closes
// the connection rather than read what would follow.
TEST_F(HttpServerTest, ASlowBodyIsNotWaitedFor) {
  Fd s = connect_to(port_);
  ASSERT_GE(s.fd, 0);
  timeval tv{3, 0};
  ::setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ASSERT_TRUE(send_all(s.fd, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"));
  std::string raw;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(s.fd, buf, sizeof buf, 0)) > 0) raw.append(buf, static_cast<size_t>(n));
  // Closed by the server (0), not the 3 s receive timeout (-1, EAGAIN).
  EXPECT_EQ(n, 0) << "errno " << errno;
  EXPECT_EQ(raw.rfind("HTTP/1.1 200 ", 0), 0u) << raw;
  EXPECT_NE(raw.find("Connection: close"), std::string::npos) << raw;
  expect_still_serving();
}

TEST_F(HttpServerTest, ManyHeadersDoNotCrashIt) {
  std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 5000; ++i) request += "X-H" + std::to_string(i) + ": v\r\n";
  request += "Connection: close\r\n\r\n";
  http_exchange(port_, request);
  expect_still_serving();
}

TEST_F(HttpServerTest, GarbageDoesNotCrashIt) {
  const std::vector<std::string> garbage = {
      std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 tls hello\r\n\r\n", 26),
      "GARBAGE\r\n\r\n",
      "GET\r\n\r\n",
      "\r\n\r\n",
      "GET / HTTP/1.1\r\nno colon here\r\n\r\n",
      "GET http://[::1 HTTP/1.1\r\n\r\n",
      "GET /a%zz HTTP/1.1\r\n\r\n",
      "G\xff\xfeT /healthz HTTP/1.1\r\n\r\n",
      "GET /healthz HTTP/9.9\r\n\r\n",
      std::string("GET /\0healthz HTTP/1.1\r\n\r\n", 26),
      "GET /healthz HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
  };
  for (const std::string& g : garbage) {
    // Most of these leave the connection open (keep-alive, or a body still expected), so
    // the read gives up early; what matters is that the server is still there.
    const Reply r = http_exchange(port_, g, 300);
    if (r.status != 0) {
      EXPECT_GE(r.status, 200) << g;
    }
    expect_still_serving();
  }
}

TEST_F(HttpServerTest, OversizedOrBadBodiesDoNotCrashIt) {
  // A body that never ends: the server answers without reading it, and others still get served.
  http_exchange(port_, "POST /metrics HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n" +
                           std::string(1 << 20, 'b'), 300);
  expect_still_serving();
  for (const char* chunk : {"-3", "-100", "ffffffffffff", "7fffffff", "zz", "0"}) {
    http_exchange(port_, std::string("POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") +
                             chunk + "\r\nabc\r\n0\r\n\r\n", 300);
    expect_still_serving();
  }
}

// cpprestsdk 2.10.18's listener terminated the process on these (std::bad_alloc escaping its
// I/O thread), which is why the server is our own: it never reads a body.
TEST_F(HttpServerTest, NegativeChunkSizeDoesNotCrashIt) {
  for (const char* chunk : {"-1", "-2"}) {
    http_exchange(port_, std::string("GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") +
                             chunk + "\r\nabc\r\n0\r\n\r\n", 300);
    expect_still_serving();
  }
}

TEST_F(HttpServerTest, ClientLeavingBeforeTheReplyDoesNotCrashIt) {
  // Big enough that writing it outlasts the client: the reply then fails inside cpprestsdk.
  set_metrics(std::string(8 << 20, 'x'));
  for (int i = 0; i < 5; ++i) {
    Fd s = connect_to(port_, /*small_buffer=*/true);
    ASSERT_GE(s.fd, 0);
    send_all(s.fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    char buf[16];
    ::recv(s.fd, buf, sizeof buf, 0);
    linger hard{1, 0};  // close with a reset
    ::setsockopt(s.fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the writes fail
  set_metrics("x 1\n");
  expect_still_serving();
}

// 40 clients that connect and say nothing: the limit is 32 connections, and a new one
// takes the place of the longest-idle, so the kubelet's probe is still answered at once.
TEST_F(HttpServerTest, IdleConnectionsCannotLockOutTheProbes) {
  std::vector<Fd> idle;
  for (int i = 0; i < 40; ++i) {
    idle.push_back(connect_to(port_));
    ASSERT_GE(idle.back().fd, 0);
  }
  // Give the acceptor time to take them all, so that the probe comes after them.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const Reply r = get(port_, "/healthz");
  EXPECT_EQ(r.status, 200) << r.head;
  // The oldest idle clients were let go: the server closed them.
  char c;
  EXPECT_EQ(::recv(idle.front().fd, &c, 1, 0), 0);
  expect_still_serving();
}

// A head that trickles in, a header a second, is cut off once 5 s have passed since it
// began, with 408: per-read timeouts alone would let it hold the connection for ever.
TEST_F(HttpServerTest, TricklingHeadIsCutOffAfterFiveSeconds) {
  Fd s = connect_to(port_);
  ASSERT_GE(s.fd, 0);
  ASSERT_TRUE(send_all(s.fd, "GET /healthz HTTP/1.1\r\n"));
  const auto start = std::chrono::steady_clock::now();
  std::string raw;
  bool closed = false;
  for (int i = 0; i < 15 && !closed; ++i) {
    // A send that fails: the server closed the connection (and reset it, as it had unread
    // bytes of ours).
    if (!send_all(s.fd, "X-Slow-" + std::to_string(i) + ": 1\r\n")) {
      closed = true;
      break;
    }
    pollfd p{s.fd, POLLIN, 0};
    if (::poll(&p, 1, 1000) > 0) {
      char buf[512];
      ssize_t n;
      while ((n = ::recv(s.fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) raw.append(buf, static_cast<size_t>(n));
      closed = n == 0 || (n < 0 && errno == ECONNRESET);
    }
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(closed) << "the server still held the connection after 15 headers";
  // Its 408 comes first, unless the reset overtook it.
  if (!raw.empty()) {
    EXPECT_EQ(raw.rfind("HTTP/1.1 408 ", 0), 0u) << raw;
  }
  // Cut at the limit, not after the trickle ended (15 s): bounds, not a speed goal.
  EXPECT_LT(took, std::chrono::seconds(12));
  expect_still_serving();
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequests) {
  // One request at a time, as Prometheus and the kubelet do.
  Fd s = connect_to(port_);
  ASSERT_GE(s.fd, 0);
  char buf[4096];
  ASSERT_TRUE(send_all(s.fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string first;
  while (first.find("\r\n\r\nok") == std::string::npos) {
    const ssize_t n = ::recv(s.fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 0) << first;
    first.append(buf, static_cast<size_t>(n));
  }
  ASSERT_TRUE(send_all(s.fd, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::string second;
  for (ssize_t n; (n = ::recv(s.fd, buf, sizeof buf, 0)) > 0;) second.append(buf, static_cast<size_t>(n));
  EXPECT_NE(second.find("\r\n\r\nready"), std::string::npos) << second;
}

TEST_F(HttpServerTest, StopClosesThePortAndStartReopensIt) {
  server_->Stop();
  EXPECT_FALSE(server_->running());
  EXPECT_FALSE(get(port_, "/healthz").connected);
  server_->Stop();  // again: nothing to do

  server_->Start();
  EXPECT_TRUE(server_->running());
  expect_still_serving();
}

TEST_F(HttpServerTest, SecondServerOnTheSamePortThrowsAndLeavesTheFirstAlone) {
  HttpServer second(HttpServerOptions{"127.0.0.1", port_}, [] { return std::string(); },
                    [](std::string&) { return true; });
  EXPECT_THROW(second.Start(), std::runtime_error);
  EXPECT_FALSE(second.running());
  expect_still_serving();
}

TEST(HttpServer, PortHeldByAnotherSocketThrows) {
  Fd holder(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in addr = loopback(0);
  ASSERT_EQ(::bind(holder.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(holder.fd, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(holder.fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const uint16_t port = ntohs(addr.sin_port);

  HttpServer server(HttpServerOptions{"127.0.0.1", port}, [] { return std::string(); },
                    [](std::string&) { return true; });
  try {
    server.Start();
    ADD_FAILURE() << "started on a port another socket listens on";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(server.running());
}

TEST(HttpServer, DefaultsToAllInterfacesOn9090) {
  const HttpServerOptions options;
  EXPECT_EQ(options.address, "0.0.0.0");
  EXPECT_EQ(options.port, 9090);
}

// ---------------------------------------------------------------------------------------
// Logger

// 2024-05-01T12:34:56.789Z
std::chrono::system_clock::time_point fixed_time() {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(1714566896789));
}

struct FakeSteadyClock {
  std::chrono::steady_clock::time_point now{};
  void advance(std::chrono::milliseconds d) { now += d; }
};

LoggerOptions test_options(std::ostream& out, FakeSteadyClock* clock = nullptr) {
  LoggerOptions o;
  o.sink = &out;
  o.level = LogLevel::Debug;
  o.wall_clock = fixed_time;
  if (clock != nullptr) o.steady_clock = [clock] { return clock->now; };
  return o;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(Logger, LineFormat) {
  std::ostringstream out;
  Logger log(test_options(out));
  log.warn("event failed", {{"route", "orders"}, {"reason", "filter"}, {"attempt", 3},
                            {"negative", -7}, {"big", uint64_t{18446744073709551615u}},
                            {"jetstream", true}});
  EXPECT_EQ(out.str(),
            "{\"ts\":\"2024-05-01T12:34:56.789Z\",\"level\":\"warn\",\"msg\":\"event failed\","
            "\"route\":\"orders\",\"reason\":\"filter\",\"attempt\":3,\"negative\":-7,"
            "\"big\":18446744073709551615,\"jetstream\":true}\n");
}

TEST(Logger, FloatingPointFields) {
  std::ostringstream out;
  Logger log(test_options(out));
  log.info("m", {{"seconds", 0.25}, {"ratio", 1e-7}, {"whole", 3.0},
                 {"nan", std::numeric_limits<double>::quiet_NaN()},
                 {"inf", -std::numeric_limits<double>::infinity()}});
  EXPECT_EQ(out.str(),
            "{\"ts\":\"2024-05-01T12:34:56.789Z\",\"level\":\"info\",\"msg\":\"m\","
            "\"seconds\":0.25,\"ratio\":1e-07,\"whole\":3,\"nan\":\"NaN\",\"inf\":\"-Infinity\"}\n");
}

TEST(Logger, EscapesKeysAndValues) {
  std::ostringstream out;
  Logger log(test_options(out));
  const std::string error = "bad \"x\"\n\tat \\ end\x01";
  log.error("quote \" here", {{"error", error}, {"we\"ird", "v"}});
  EXPECT_EQ(out.str(),
            "{\"ts\":\"2024-05-01T12:34:56.789Z\",\"level\":\"error\",\"msg\":\"quote \\\" here\","
            "\"error\":\"bad \\\"x\\\"\\n\\tat \\\\ end\\u0001\",\"we\\\"ird\":\"v\"}\n");
}

TEST(Logger, InvalidUtf8BecomesReplacementCharacters) {
  std::ostringstream out;
  Logger log(test_options(out));
  log.info("m", {{"error", "caf\xc3\xa9 \xff\xfe ok \xe2\x82"}});
  EXPECT_NE(out.str().find("\"error\":\"caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd ok "
                           "\xef\xbf\xbd\xef\xbf\xbd\"}"),
            std::string::npos)
      << out.str();
}

TEST(Logger, LevelFiltering) {
  std::ostringstream out;
  LoggerOptions o = test_options(out);
  o.level = LogLevel::Warn;
  Logger log(o);
  log.debug("d");
  log.info("i");
  log.warn("w");
  log.error("e");
  auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("\"level\":\"warn\""), std::string::npos);
  EXPECT_NE(lines[1].find("\"level\":\"error\""), std::string::npos);

  log.set_level(LogLevel::Debug);
  EXPECT_TRUE(log.enabled(LogLevel::Debug));
  log.debug("d");
  EXPECT_EQ(lines_of(out.str()).size(), 3u);
}

TEST(Logger, ParseLevel) {
  EXPECT_EQ(parse_log_level("debug"), LogLevel::Debug);
  EXPECT_EQ(parse_log_level("INFO"), LogLevel::Info);
  EXPECT_EQ(parse_log_level("warn"), LogLevel::Warn);
  EXPECT_EQ(parse_log_level("Warning"), LogLevel::Warn);
  EXPECT_EQ(parse_log_level("error"), LogLevel::Error);
  EXPECT_EQ(parse_log_level(""), std::nullopt);
  EXPECT_EQ(parse_log_level("trace"), std::nullopt);
  EXPECT_EQ(parse_log_level("info "), std::nullopt);
  for (LogLevel l : {LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error}) {
    EXPECT_EQ(parse_log_level(level_name(l)), l);
  }
}

TEST(Logger, Rfc3339Milliseconds) {
  using std::chrono::milliseconds;
  using tp = std::chrono::system_clock::time_point;
  EXPECT_EQ(format_rfc3339_ms(tp(milliseconds(0))), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339_ms(tp(milliseconds(1714566896789))), "2024-05-01T12:34:56.789Z");
  EXPECT_EQ(format_rfc3339_ms(tp(milliseconds(-1))), "1969-12-31T23:59:59.999Z");
  // Sub-millisecond parts are cut, not rounded up into the next second.
  EXPECT_EQ(format_rfc3339_ms(tp(std::chrono::microseconds(1999999))), "1970-01-01T00:00:01.999Z");
}

TEST(Logger, RateLimiterPerKey) {
  std::ostringstream out;
  FakeSteadyClock clock;
  LoggerOptions o = test_options(out, &clock);
  o.per_key_per_second = 2;
  Logger log(o);

  uint64_t suppressed = 99;
  EXPECT_TRUE(log.allow("orders/filter", &suppressed));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_TRUE(log.allow("orders/filter"));
  EXPECT_FALSE(log.allow("orders/filter"));
  EXPECT_FALSE(log.allow("orders/filter"));
  EXPECT_FALSE(log.allow("orders/filter"));
  EXPECT_TRUE(log.allow("audit/filter")) << "keys are limited separately";

  clock.advance(std::chrono::milliseconds(999));
  EXPECT_FALSE(log.allow("orders/filter"));  // still the same window

  clock.advance(std::chrono::milliseconds(1));
  EXPECT_TRUE(log.allow("orders/filter", &suppressed));
  EXPECT_EQ(suppressed, 4u);
  EXPECT_TRUE(log.allow("orders/filter", &suppressed));
  EXPECT_EQ(suppressed, 0u) << "the count restarts once reported";
}

TEST(Logger, LimitedLinesReportWhatWasSuppressed) {
  std::ostringstream out;
  FakeSteadyClock clock;
  LoggerOptions o = test_options(out, &clock);
  o.per_key_per_second = 1;
  Logger log(o);
  for (int i = 0; i < 10; ++i) {
    log.log_limited("orders/not_json", LogLevel::Warn, "event failed", {{"route", "orders"}});
  }
  clock.advance(std::chrono::seconds(1));
  log.log_limited("orders/not_json", LogLevel::Warn, "event failed", {{"route", "orders"}});

  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 2u) << out.str();
  EXPECT_EQ(lines[0].find("suppressed"), std::string::npos);
  EXPECT_EQ(lines[1],
            "{\"ts\":\"2024-05-01T12:34:56.789Z\",\"level\":\"warn\",\"msg\":\"event failed\","
            "\"route\":\"orders\",\"suppressed\":9}");
}

TEST(Logger, DisabledLevelDoesNotUseTheAllowance) {
  std::ostringstream out;
  FakeSteadyClock clock;
  LoggerOptions o = test_options(out, &clock);
  o.level = LogLevel::Info;
  o.per_key_per_second = 1;
  Logger log(o);
  for (int i = 0; i < 5; ++i) log.log_limited("k", LogLevel::Debug, "noise");
  log.log_limited("k", LogLevel::Warn, "real");
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("\"msg\":\"real\""), std::string::npos);
  EXPECT_EQ(lines[0].find("suppressed"), std::string::npos);
}

TEST(Logger, RateLimiterKeysAreBounded) {
  std::ostringstream out;
  FakeSteadyClock clock;
  LoggerOptions o = test_options(out, &clock);
  o.per_key_per_second = 1;
  o.max_keys = 3;
  Logger log(o);
  EXPECT_TRUE(log.allow("a"));
  EXPECT_TRUE(log.allow("b"));
  EXPECT_TRUE(log.allow("c"));
  // Full: new keys share one window, so a flood of distinct keys stays limited.
  EXPECT_TRUE(log.allow("d"));
  EXPECT_FALSE(log.allow("e"));
  EXPECT_FALSE(log.allow("f"));
  EXPECT_FALSE(log.allow("a")) << "tracked keys keep their own window";

  // After a window, idle keys are forgotten and new keys get their own again.
  clock.advance(std::chrono::seconds(1));
  EXPECT_TRUE(log.allow("g"));
  EXPECT_TRUE(log.allow("h"));
  EXPECT_FALSE(log.allow("h"));
}

TEST(Logger, ZeroRateMeansNoLimit) {
  std::ostringstream out;
  LoggerOptions o = test_options(out);
  o.per_key_per_second = 0;
  Logger log(o);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(log.allow("k"));
}

TEST(Logger, ConcurrentLinesDoNotInterleave) {
  std::ostringstream out;
  Logger log(test_options(out));
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&log, t] {
      for (int i = 0; i < 200; ++i) {
        log.info("message with some length to it", {{"thread", t}, {"i", i}});
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 1600u);
  for (const auto& line : lines) {
    ASSERT_EQ(line.rfind("{\"ts\":", 0), 0u) << line;
    ASSERT_EQ(line.back(), '}') << line;
    ASSERT_EQ(std::count(line.begin(), line.end(), '{'), 1) << line;
  }
}

}  // namespace
}  // namespace switchboard::router
