// The controller's NATS side against a real nats-server on loopback: a real router's
// heartbeats arrive and parse, connections are shared and closed, credentials are used,
// and a durable JetStream consumer is deleted (and deleting it again is fine).
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <thread>

#include "controller/fleet.h"
#include "controller/fleet_nats.h"
#include "core/route/spec_yaml.h"
#include "router/log.h"
#include "router/nats_client.h"
#include "router/router.h"
#include "tests/support/files.h"
#include "tests/support/nats_credentials.h"
#include "tests/support/process.h"
#include "tests/support/silent_server.h"
#include "tests/support/streams.h"
#include "tests/support/test_certificates.h"

namespace switchboard::controller {
namespace {

using namespace std::chrono_literals;

class Received {
 public:
  void add(const std::string& router, std::string_view payload) {
    std::lock_guard lock(mu_);
    items_.emplace_back(router, std::string(payload));
    cv_.notify_all();
  }
  // The next payload for `router`; false when none comes within `timeout`.
  bool next(const std::string& router, std::string& payload, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      for (auto it = items_.begin(); it != items_.end(); ++it) {
        if (it->first == router) {
          payload = it->second;
          items_.erase(it);
          return true;
        }
      }
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) return false;
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, std::string>> items_;
};

class NoEvents : public router::RouterEvents {
 public:
  void received(const std::string&) override {}
  void published(const std::string&, size_t) override {}
  void filtered(const std::string&) override {}
  void failed(const std::string&, route::FailureReason, const std::string&, const std::string&) override {}
  void dead_lettered(const std::string&) override {}
  void processed(const std::string&, double) override {}
  void table_applied(uint64_t, const std::string&) override {}
  void table_rejected(const std::string&) override {}
};

router::LoggerOptions quiet(std::ostream& sink) {
  router::LoggerOptions o;
  o.sink = &sink;
  return o;
}

class FleetNatsTest : public ::testing::Test {
 protected:
  std::ostringstream logs_;
  router::Logger log_{quiet(logs_)};
  Received received_;
  NatsFleet fleet_{"switchboard-controller/test",
                   [this](const std::string& router, std::string_view payload) { received_.add(router, payload); }, log_};
};

TEST_F(FleetNatsTest, ARoutersHeartbeatsArriveAndParse) {
  testing::NatsServer server;
  ASSERT_TRUE(server.ok());
  NatsSettings settings;
  settings.urls = {server.url()};
  ASSERT_EQ(fleet_.watch("shop/orders", "switchboard.status.shop.orders", settings), "");
  EXPECT_TRUE(fleet_.watching("shop/orders"));

  router::NatsClient nc;
  router::NatsConfig config;
  config.urls = {server.url()};
  std::string error;
  ASSERT_TRUE(nc.connect(config, error)) << error;
  NoEvents events;
  router::RouterConfig rc;
  rc.name = "orders";
  rc.ns = "shop";
  rc.pod = "orders-0";
  rc.heartbeat_ms = 60000;  // only the heartbeats the test causes
  rc.grace_ms = 2000;
  router::Router router(rc, nc, events);
  route::RouteSet set;
  std::vector<route::SpecError> errors;
  ASSERT_TRUE(route::load_yaml("routes: [{name: a, source: {subject: in}, destinations: [{subject: out}]}]", "t", set,
                               errors));
  auto table = std::get<std::shared_ptr<const route::RouteTable>>(route::RouteTable::compile(set, 4));
  ASSERT_TRUE(router.apply(table, error)) << error;
  router.start();  // sends a heartbeat at once

  std::string payload;
  Heartbeat hb;
  // The first heartbeat may predate the apply (state pending); wait for the one after it.
  do {
    ASSERT_TRUE(received_.next("shop/orders", payload)) << "no heartbeat arrived";
    ASSERT_TRUE(parse_heartbeat(payload, hb, error)) << error << ": " << payload;
  } while (hb.state != "applied");
  EXPECT_EQ(hb.pod, "orders-0");
  EXPECT_EQ(hb.router, "orders");
  EXPECT_EQ(hb.ns, "shop");
  EXPECT_EQ(hb.generation, 4u);
  EXPECT_EQ(hb.hash, table->hash());

  router.reject(5, "cannot bind");
  do {
    ASSERT_TRUE(received_.next("shop/orders", payload));
    ASSERT_TRUE(parse_heartbeat(payload, hb, error)) << error;
  } while (hb.state != "rejected");
  EXPECT_EQ(hb.generation, 4u) << "a rejecting pod still runs the previous table";
  EXPECT_EQ(hb.error, "generation 5: cannot bind");
  router.stop();
}

TEST_F(FleetNatsTest, OneConnectionPerConfigurationWithItsCredentials) {
  testing::NatsServer server(testing::NatsServer::Config{"authorization { token: \"s3cr3t\" }\n"});
  ASSERT_TRUE(server.ok());
  NatsSettings good;
  good.urls = {server.url()};
  good.token = "s3cr3t";
  ASSERT_EQ(fleet_.watch("shop/orders", "switchboard.status.shop.orders", good), "");
  ASSERT_EQ(fleet_.watch("shop/billing", "switchboard.status.shop.billing", good), "");
  EXPECT_EQ(fleet_.connections(), 1u) << "the same configuration shares a connection";

  NatsSettings bad = good;
  bad.token = "wrong";
  std::string error = fleet_.watch("shop/other", "switchboard.status.shop.other", bad);
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(error.find("wrong"), std::string::npos) << "credentials are never in messages: " << error;
  EXPECT_FALSE(fleet_.watching("shop/other"));
  EXPECT_EQ(fleet_.connections(), 1u);

  // Heartbeats reach the router they belong to.
  router::NatsClient nc;
  router::NatsConfig config;
  config.urls = {server.url()};
  config.token = "s3cr3t";
  ASSERT_TRUE(nc.connect(config, error)) << error;
  ASSERT_TRUE(nc.publish("switchboard.status.shop.billing", {}, R"({"pod":"b-0","state":"applied"})", error));
  nc.flush(2000);
  std::string payload;
  ASSERT_TRUE(received_.next("shop/billing", payload));
  EXPECT_EQ(payload, R"({"pod":"b-0","state":"applied"})");

  fleet_.forget("shop/orders");
  EXPECT_EQ(fleet_.connections(), 1u);
  fleet_.forget("shop/billing");
  EXPECT_EQ(fleet_.connections(), 0u) << "a connection no router uses is closed";
}

// Credentials as an EventRouter's Secrets give them (contents, not files): a server that
// demands TLS with a client certificate and an NKey. The controller writes them to a
// private folder under $TMPDIR for cnats, and removes it when the connection closes.
TEST_F(FleetNatsTest, TlsClientCertificateAndNKeyFromSecrets) {
  testing::TestCertificates certs;
  ASSERT_EQ(certs.error(), "");
  testing::NKey user = testing::make_nkey(testing::NKeyType::User);
  ASSERT_FALSE(user.seed.empty()) << "OpenSSL could not make an Ed25519 key";
  testing::NatsServer server(testing::NatsServer::Config{
      certs.nats_tls_block(true) + "authorization { users = [ { nkey: \"" + user.public_key + "\" } ] }\n"});
  ASSERT_TRUE(server.ok()) << testing::read_file(server.log_path());

  char tmpl[] = "/tmp/switchboard-fleet-tmp-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string tmpdir = tmpl;
  const char* old_tmpdir = std::getenv("TMPDIR");
  const std::string saved = old_tmpdir != nullptr ? old_tmpdir : "";
  ::setenv("TMPDIR", tmpdir.c_str(), 1);
  auto folders = [&] {
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(tmpdir)) ++n;
    return n;
  };

  NatsSettings settings;
  settings.urls = {server.url()};
  settings.tls_ca = testing::read_file(certs.path("ca.pem"));
  settings.tls_cert = testing::read_file(certs.path("client.pem"));
  settings.tls_key = testing::read_file(certs.path("client.key"));
  settings.nkey_seed = user.seed + "\n";
  settings.nkey_public = user.public_key + "\n";
  EXPECT_EQ(fleet_.watch("shop/orders", "switchboard.status.shop.orders", settings), "");
  EXPECT_TRUE(fleet_.watching("shop/orders"));
  EXPECT_EQ(folders(), 1u) << "one private folder holds the connection's credentials";

  // A heartbeat from a router with the same credentials arrives.
  router::NatsClient nc;
  router::NatsConfig config;
  config.urls = {server.url()};
  config.tls_ca_file = certs.path("ca.pem");
  config.tls_cert_file = certs.path("client.pem");
  config.tls_key_file = certs.path("client.key");
  testing::write_file(certs.path("user.nk"), user.seed + "\n");
  testing::write_file(certs.path("user.nk.pub"), user.public_key + "\n");
  config.nkey_seed_file = certs.path("user.nk");
  std::string error;
  ASSERT_TRUE(nc.connect(config, error)) << error;
  ASSERT_TRUE(nc.publish("switchboard.status.shop.orders", {}, R"({"pod":"o-0","state":"applied"})", error));
  nc.flush(2000);
  std::string payload;
  ASSERT_TRUE(received_.next("shop/orders", payload));
  EXPECT_EQ(payload, R"({"pod":"o-0","state":"applied"})");

  // Without the client certificate, or with a CA that did not sign the server's, the
  // watch fails with a reason that holds no secret, and leaves no folder behind.
  for (int variant = 0; variant < 2; ++variant) {
    NatsSettings wrong = settings;
    if (variant == 0) {
      wrong.tls_cert.clear();
      wrong.tls_key.clear();
    } else {
      wrong.tls_ca = testing::read_file(certs.path("other-ca.pem"));
    }
    std::string why = fleet_.watch("shop/other", "switchboard.status.shop.other", wrong);
    if (why.empty()) {
      // Without a client certificate the server hangs up after the handshake without a
      // reason, which the client retries like any dropped connection: the watch stands,
      // and connection_problem() says why nothing comes.
      EXPECT_EQ(variant, 0) << "a CA that did not sign the server's certificate is refused at once";
      EXPECT_TRUE(fleet_.watching("shop/other"));
      ASSERT_TRUE(testing::eventually([&] { return !fleet_.connection_problem("shop/other").empty(); }, 5s));
      why = fleet_.connection_problem("shop/other");
      EXPECT_NE(why.find(server.url()), std::string::npos) << why;
      EXPECT_EQ(fleet_.connection_problem("shop/orders"), "") << "the good connection is up";
      fleet_.forget("shop/other");
    }
    EXPECT_FALSE(why.empty()) << "variant " << variant;
    EXPECT_EQ(why.find(user.seed), std::string::npos) << why;
    EXPECT_EQ(why.find("PRIVATE KEY"), std::string::npos) << why;
    EXPECT_FALSE(fleet_.watching("shop/other"));
  }
  EXPECT_EQ(fleet_.connections(), 1u);

  fleet_.forget("shop/orders");
  EXPECT_EQ(fleet_.connections(), 0u);
  EXPECT_EQ(folders(), 0u) << "the credentials are removed with the connection";
  if (saved.empty()) {
    ::unsetenv("TMPDIR");
  } else {
    ::setenv("TMPDIR", saved.c_str(), 1);
  }
  std::error_code ec;
  std::filesystem::remove_all(tmpdir, ec);
}

TEST_F(FleetNatsTest, DeletesADurableConsumer) {
  testing::NatsServer server(true);
  ASSERT_TRUE(server.ok());
  router::NatsClient nc;
  router::NatsConfig config;
  config.urls = {server.url()};
  std::string error;
  ASSERT_TRUE(nc.connect(config, error)) << error;
  ASSERT_EQ(testing::add_stream(nc.jetstream(), "ORDERS", "orders.>"), "");
  jsErrCode code = static_cast<jsErrCode>(0);
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = "large";
  cc.AckPolicy = js_AckExplicit;
  jsConsumerInfo* ci = nullptr;
  ASSERT_EQ(js_AddConsumer(&ci, nc.jetstream(), "ORDERS", &cc, nullptr, &code), NATS_OK) << code;
  jsConsumerInfo_Destroy(ci);

  NatsSettings settings;
  settings.urls = {server.url()};
  EXPECT_NE(fleet_.delete_consumer("shop/orders", "ORDERS", "large"), "") << "no connection for this router yet";
  ASSERT_EQ(fleet_.watch("shop/orders", "switchboard.status.shop.orders", settings), "");
  EXPECT_EQ(fleet_.delete_consumer("shop/orders", "ORDERS", "large"), "");
  EXPECT_FALSE(testing::consumer_exists(nc.jetstream(), "ORDERS", "large")) << "deleted";
  EXPECT_EQ(fleet_.delete_consumer("shop/orders", "ORDERS", "large"), "") << "already gone counts as deleted";
  EXPECT_EQ(fleet_.delete_consumer("shop/orders", "NOSTREAM", "large"), "") << "no stream, no consumer";

  server.stop();
  std::string unreachable;
  for (int i = 0; i < 100 && unreachable.empty(); ++i) {
    unreachable = fleet_.delete_consumer("shop/orders", "ORDERS", "other");
    if (unreachable.empty()) std::this_thread::sleep_for(50ms);  // until the client sees the server gone
  }
  EXPECT_NE(unreachable, "");
}

// cnats 3.4.1, reconnecting to a server that takes the TCP connection and never answers
// the CONNECT, loops for good holding its connection lock: every reconcile that touches
// the connection would wait with it. stuck() (the controller's liveness) says so, without
// waiting itself, and clears once the server lets the connection go.
TEST_F(FleetNatsTest, AConnectionCnatsHangsOnFailsLivenessWithoutWaitingForIt) {
  testing::NatsServer server;
  ASSERT_TRUE(server.ok());
  NatsFleet fleet("switchboard-controller/test", [](const std::string&, std::string_view) {}, log_, 2000);
  NatsSettings settings;
  settings.urls = {server.url()};
  ASSERT_EQ(fleet.watch("shop/orders", "switchboard.status.shop.orders", settings), "");
  EXPECT_EQ(fleet.stuck(), "");
  // The real server goes; on its port, one that says INFO and then nothing.
  server.stop();
  auto silent = std::make_unique<testing::SilentNatsServer>(server.port());
  ASSERT_TRUE(silent->ok());
  std::string why;
  const bool noticed = testing::eventually(
      [&] {
        const auto start = std::chrono::steady_clock::now();
        why = fleet.stuck();
        EXPECT_LT(std::chrono::steady_clock::now() - start, 1s) << "stuck() waited for the connection";
        return !why.empty();
      },
      30s);
  silent.reset();  // closes the connection: cnats sees the end and goes on
  ASSERT_TRUE(noticed) << "a connection that has not answered for 30 s was not reported";
  EXPECT_NE(why.find("has not answered for"), std::string::npos) << why;
  EXPECT_NE(why.find(server.url()), std::string::npos) << why;
  EXPECT_TRUE(testing::eventually([&] { return fleet.stuck().empty(); }, 10s))
      << "still reported after the server closed the connection: " << fleet.stuck();
}

// The same server met by the first connection: watch() does not return (it holds the
// lock every reconcile of a router takes), and stuck() says so while it waits.
TEST_F(FleetNatsTest, AFirstConnectionThatDoesNotReturnFailsLiveness) {
  const int port = testing::free_port();
  auto silent = std::make_unique<testing::SilentNatsServer>(port);
  ASSERT_TRUE(silent->ok());
  const std::string url = "nats://127.0.0.1:" + std::to_string(port);
  NatsFleet fleet("switchboard-controller/test", [](const std::string&, std::string_view) {}, log_, 2000);
  NatsSettings settings;
  settings.urls = {url};
  std::atomic<bool> returned{false};
  std::thread watcher([&] {
    (void)fleet.watch("shop/orders", "switchboard.status.shop.orders", settings);
    returned = true;
  });
  std::string why;
  const bool noticed = testing::eventually(
      [&] {
        why = fleet.stuck();
        return !why.empty() || returned.load();
      },
      30s);
  silent.reset();  // lets the connection go: watch() returns
  watcher.join();
  ASSERT_TRUE(noticed);
  ASSERT_FALSE(why.empty()) << "watch() returned against a server that never answers, and was never reported";
  EXPECT_NE(why.find("connecting to NATS at " + url + " has not returned for"), std::string::npos) << why;
  EXPECT_TRUE(testing::eventually([&] { return fleet.stuck().empty(); }, 10s)) << fleet.stuck();
}

}  // namespace
}  // namespace switchboard::controller
