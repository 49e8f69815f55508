// JetStream sources against a real nats-server with JetStream on loopback: durable pull
// consumers, acknowledgement after publish, message ids for deduplication, retries with
// backoff and dead letters after maxDeliver.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "core/json/document.h"
#include "core/route/spec_yaml.h"
#include "router/nats_client.h"
#include "router/router.h"
#include "tests/support/inbox.h"
#include "tests/support/process.h"

namespace switchboard::router {
namespace {

using testing::Inbox;

using namespace std::chrono_literals;


class NullEvents : public RouterEvents {
 public:
  void received(const std::string&) override {}
  void published(const std::string&, size_t) override {}
  void filtered(const std::string&) override {}
  void failed(const std::string&, route::FailureReason, const std::string&, const std::string&) override {}
  void dead_lettered(const std::string&) override {}
  void processed(const std::string&, double) override {}
  void table_applied(uint64_t, const std::string&) override {}
  void table_rejected(const std::string&) override {}
  void ack_pending(const std::string& route, int64_t pending) override {
    std::lock_guard lock(mu);
    ack_pending_by_route[route] = pending;
  }
  std::mutex mu;
  std::map<std::string, int64_t> ack_pending_by_route;
};

std::string header(const NatsHeaders& h, const std::string& key) {
  for (const auto& [k, v] : h) {
    if (k == key) return v;
  }
  return "";
}

void add_stream(NatsClient& nc, const char* name, const char* subject) {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name;
  const char* subjects[] = {subject};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  jsStreamInfo* si = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  ASSERT_EQ(js_AddStream(&si, nc.jetstream(), &cfg, nullptr, &code), NATS_OK) << code;
  jsStreamInfo_Destroy(si);
}

class RouterJetStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    NatsConfig cfg;
    cfg.urls = {server_.url()};
    std::string error;
    ASSERT_TRUE(router_nc_.connect(cfg, error)) << error;
    ASSERT_TRUE(client_.connect(cfg, error)) << error;
    add_stream(client_, "ORDERS", "orders.>");
    add_stream(client_, "OUT", "out.>");
    RouterConfig rc;
    rc.name = "js";
    rc.grace_ms = 2000;
    router_ = std::make_unique<Router>(rc, router_nc_, events_);
  }
  void TearDown() override {
    if (router_) router_->stop();
  }
  void apply(const std::string& yaml) {
    route::RouteSet set;
    std::vector<route::SpecError> errors;
    ASSERT_TRUE(route::load_yaml(yaml, "js.yaml", set, errors));
    auto compiled = route::RouteTable::compile(std::move(set), ++generation_);
    auto* t = std::get_if<std::shared_ptr<const route::RouteTable>>(&compiled);
    ASSERT_NE(t, nullptr);
    std::string error;
    ASSERT_TRUE(router_->apply(*t, error)) << error;
  }
  void publish(const std::string& subject, const std::string& data) {
    std::string error;
    ASSERT_TRUE(client_.js_publish(subject, {}, data, "", 5000, error)) << error;
  }

  testing::NatsServer server_{true};
  NatsClient router_nc_, client_;
  NullEvents events_;
  std::unique_ptr<Router> router_;
  uint64_t generation_ = 0;
};

TEST_F(RouterJetStreamTest, DeliversWithMessageIdsAndAcks) {
  Inbox out(client_, "out.>");
  client_.flush(1000);
  apply(R"(
routes:
  - name: js-orders
    source:
      subject: orders.*
      jetstream: {stream: ORDERS, durable: js-orders, maxDeliver: 3, backoff: [50ms]}
    filter: 'event.n != 2'
    destinations:
      - subject: 'out.{{ event.n }}'
        jetstream: true
)");
  for (int n = 1; n <= 3; ++n) publish("orders.new", "{\"n\":" + std::to_string(n) + "}");
  Inbox::Received item;
  ASSERT_TRUE(out.next(item));
  EXPECT_EQ(item.subject, "out.1");
  EXPECT_EQ(header(item.headers, "Nats-Msg-Id"), "ORDERS:1:0");
  ASSERT_TRUE(out.next(item));
  EXPECT_EQ(item.subject, "out.3");
  EXPECT_EQ(header(item.headers, "Nats-Msg-Id"), "ORDERS:3:0");

  // Everything was acknowledged, the filtered event too: nothing comes back.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(out.size(), 0u);
  jsConsumerInfo* ci = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  ASSERT_EQ(js_GetConsumerInfo(&ci, client_.jetstream(), "ORDERS", "js-orders", nullptr, &code), NATS_OK);
  EXPECT_EQ(ci->NumAckPending, 0);
  EXPECT_EQ(ci->NumPending, 0u);
  jsConsumerInfo_Destroy(ci);
  // The consumer reports its acks pending (the metric switchboard_router_jetstream_ack_pending)
  // every few seconds: it comes down to 0 once everything is acknowledged.
  int64_t reported = -1;
  for (int i = 0; i < 100 && reported != 0; ++i) {
    {
      std::lock_guard lock(events_.mu);
      auto it = events_.ack_pending_by_route.find("js-orders");
      if (it != events_.ack_pending_by_route.end()) reported = it->second;
    }
    if (reported != 0) std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(reported, 0);

  // A second publish of an output with the same message id is dropped by the stream.
  std::string error;
  ASSERT_TRUE(client_.js_publish("out.1", {}, "{\"n\":1}", "ORDERS:1:0", 5000, error)) << error;
  jsStreamInfo* si = nullptr;
  ASSERT_EQ(js_GetStreamInfo(&si, client_.jetstream(), "OUT", nullptr, &code), NATS_OK);
  EXPECT_EQ(si->State.Msgs, 2u);
  jsStreamInfo_Destroy(si);
}

TEST_F(RouterJetStreamTest, RetriesAPublishThenDeadLettersAfterMaxDeliver) {
  Inbox dlq(client_, "dlq.js");
  client_.flush(1000);
  // No stream listens on nowhere.*: every JetStream publish there fails.
  apply(R"(
routes:
  - name: doomed
    source:
      subject: orders.*
      jetstream: {stream: ORDERS, durable: doomed, maxDeliver: 3, backoff: [50ms], ackWait: 2s}
    destinations:
      - subject: nowhere.x
        jetstream: true
    deadLetter: {subject: dlq.js}
)");
  publish("orders.new", R"({"n":7})");
  Inbox::Received item;
  ASSERT_TRUE(dlq.next(item, 30000ms));
  json::Document d;
  ASSERT_TRUE(d.parse(item.data)) << item.data;
  EXPECT_EQ(d.string_value(d.find_member(0, "route")), "doomed");
  EXPECT_EQ(d.string_value(d.find_member(0, "reason")), "destination");
  EXPECT_EQ(d.number_value(d.find_member(0, "attempts")), 3.0);
  EXPECT_EQ(d.raw(d.find_member(0, "data")), R"({"n":7})");
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(dlq.size(), 0u);  // dead-lettered once, then acknowledged
}

TEST_F(RouterJetStreamTest, ABadEventIsDeadLetteredAtOnce) {
  Inbox dlq(client_, "dlq.js");
  client_.flush(1000);
  apply(R"(
routes:
  - name: strict
    source:
      subject: orders.*
      jetstream: {stream: ORDERS, durable: strict, maxDeliver: 5}
    filter: 'event.n > 0'
    destinations: [{subject: out.ok}]
    deadLetter: {subject: dlq.js}
)");
  publish("orders.new", "not json");
  Inbox::Received item;
  ASSERT_TRUE(dlq.next(item));
  json::Document d;
  ASSERT_TRUE(d.parse(item.data));
  EXPECT_EQ(d.string_value(d.find_member(0, "reason")), "not_json");
  EXPECT_EQ(d.number_value(d.find_member(0, "attempts")), 1.0);
}

}  // namespace
}  // namespace switchboard::router
