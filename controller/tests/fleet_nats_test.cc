// The controller's NATS side against a real nats-server on loopback: a real router's
// heartbeats arrive and parse, connections are shared and closed, credentials are used,
// and a durable JetStream consumer is deleted (and deleting it again is fine).
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <sstream>
#include <thread>

#include "controller/fleet.h"
#include "controller/fleet_nats.h"
#include "core/route/spec_yaml.h"
#include "router/log.h"
#include "router/nats_client.h"
#include "router/router.h"
#include "tests/support/process.h"

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

TEST_F(FleetNatsTest, DeletesADurableConsumer) {
  testing::NatsServer server(true);
  ASSERT_TRUE(server.ok());
  router::NatsClient nc;
  router::NatsConfig config;
  config.urls = {server.url()};
  std::string error;
  ASSERT_TRUE(nc.connect(config, error)) << error;
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  sc.Name = "ORDERS";
  const char* subjects[] = {"orders.>"};
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  jsErrCode code = static_cast<jsErrCode>(0);
  jsStreamInfo* si = nullptr;
  ASSERT_EQ(js_AddStream(&si, nc.jetstream(), &sc, nullptr, &code), NATS_OK) << code;
  jsStreamInfo_Destroy(si);
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
  ci = nullptr;
  EXPECT_NE(js_GetConsumerInfo(&ci, nc.jetstream(), "ORDERS", "large", nullptr, &code), NATS_OK) << "deleted";
  if (ci != nullptr) jsConsumerInfo_Destroy(ci);
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

}  // namespace
}  // namespace switchboard::controller
