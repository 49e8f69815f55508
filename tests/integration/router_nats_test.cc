// The data plane against a real nats-server on loopback: events in, routes, events out,
// dead letters, reloads and heartbeats.
#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <mutex>
#include <optional>
#include <thread>

#include "core/json/document.h"
#include "core/route/spec_yaml.h"
#include "router/nats_client.h"
#include "router/router.h"
#include "tests/support/files.h"
#include "tests/support/inbox.h"
#include "tests/support/process.h"
#include "tests/support/silent_server.h"

namespace switchboard::router {
namespace {

using testing::Inbox;

using namespace std::chrono_literals;


class CountingEvents : public RouterEvents {
 public:
  void received(const std::string& route) override {
    ++received_;
    std::lock_guard lock(by_route_mu_);
    ++received_by_route_[route];
  }
  std::map<std::string, int> received_by_route() {
    std::lock_guard lock(by_route_mu_);
    return received_by_route_;
  }
  void published(const std::string&, size_t) override { ++published_; }
  void filtered(const std::string&) override { ++filtered_; }
  void failed(const std::string&, route::FailureReason r, const std::string&, const std::string&) override {
    ++failed_;
    last_reason_ = r;
  }
  void dead_lettered(const std::string&) override { ++dead_lettered_; }
  void processed(const std::string&, double) override {}
  void table_applied(uint64_t, const std::string&) override { ++applied_; }
  void table_rejected(const std::string&) override { ++rejected_; }
  std::atomic<int> received_{0}, published_{0}, filtered_{0}, failed_{0}, dead_lettered_{0}, applied_{0},
      rejected_{0};
  std::atomic<route::FailureReason> last_reason_{route::FailureReason::Filter};

 private:
  std::mutex by_route_mu_;
  std::map<std::string, int> received_by_route_;
};

std::shared_ptr<const route::RouteTable> compile(const std::string& yaml, uint64_t generation) {
  route::RouteSet set;
  std::vector<route::SpecError> errors;
  EXPECT_TRUE(route::load_yaml(yaml, "test.yaml", set, errors)) << (errors.empty() ? "" : errors[0].render());
  auto r = route::RouteTable::compile(std::move(set), generation);
  auto* t = std::get_if<std::shared_ptr<const route::RouteTable>>(&r);
  EXPECT_NE(t, nullptr);
  return t ? *t : nullptr;
}

const char* kRoutes = R"(
routes:
  - name: large
    source: {subject: orders.*}
    filter: 'event.amount >= 100.0'
    transform:
      - set: {tier: '"large"'}
    destinations:
      - subject: 'out.{{ event.region }}'
        headers: {x-route: '"large"'}
    deadLetter: {subject: dlq.orders}
)";

bool eventually_at_least(const std::atomic<int>& counter, int n) {
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (counter < n) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class RouterNatsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok()) << "nats-server did not start";
    NatsConfig cfg;
    cfg.urls = {server_.url()};
    cfg.name = "router-under-test";
    std::string error;
    ASSERT_TRUE(router_nc_.connect(cfg, error)) << error;
    cfg.name = "test-client";
    ASSERT_TRUE(client_.connect(cfg, error)) << error;
    RouterConfig rc;
    rc.name = "orders";
    rc.ns = "shop";
    rc.pod = "orders-0";
    rc.heartbeat_ms = 200;
    rc.grace_ms = 2000;
    router_ = std::make_unique<Router>(rc, router_nc_, events_);
  }
  void TearDown() override {
    if (router_) router_->stop();
  }
  void publish(const std::string& subject, const std::string& data, const NatsHeaders& h = {}) {
    std::string error;
    ASSERT_TRUE(client_.publish(subject, h, data, error)) << error;
    client_.flush(1000);
  }

  testing::NatsServer server_;
  NatsClient router_nc_, client_;
  CountingEvents events_;
  std::unique_ptr<Router> router_;
};

TEST_F(RouterNatsTest, RoutesFiltersTransformsAndDeadLetters) {
  Inbox out(client_, "out.>");
  Inbox dlq(client_, "dlq.orders");
  client_.flush(1000);
  std::string error;
  ASSERT_TRUE(router_->apply(compile(kRoutes, 1), error)) << error;
  router_->start();
  router_nc_.flush(1000);

  publish("orders.new", R"({"id":12345678901234567890,"amount":250.50,"region":"eu"})", {{"x-in", "1"}});
  Inbox::Received r;
  ASSERT_TRUE(out.next(r));
  EXPECT_EQ(r.subject, "out.eu");
  EXPECT_EQ(r.data, R"({"id":12345678901234567890,"amount":250.50,"region":"eu","tier":"large"})");
  std::sort(r.headers.begin(), r.headers.end());  // NATS does not keep header order
  EXPECT_EQ(r.headers, (NatsHeaders{{"x-in", "1"}, {"x-route", "large"}}));

  publish("orders.new", R"({"amount":5,"region":"eu"})");   // filtered
  publish("orders.new", "not json at all");                  // dead letter
  ASSERT_TRUE(dlq.next(r));
  json::Document d;
  ASSERT_TRUE(d.parse(r.data)) << r.data;
  EXPECT_EQ(d.string_value(d.find_member(0, "route")), "large");
  EXPECT_EQ(d.string_value(d.find_member(0, "reason")), "not_json");
  EXPECT_EQ(d.string_value(d.find_member(0, "raw")), "not json at all");
  EXPECT_EQ(d.string_value(d.find_member(0, "subject")), "orders.new");

  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(out.size(), 0u);  // the filtered event produced nothing
  EXPECT_EQ(events_.received_, 3);
  EXPECT_EQ(events_.published_, 1);
  EXPECT_EQ(events_.filtered_, 1);
  EXPECT_EQ(events_.failed_, 1);
  EXPECT_EQ(events_.dead_lettered_, 1);
  EXPECT_EQ(events_.last_reason_.load(), route::FailureReason::NotJson);
}

TEST_F(RouterNatsTest, ReloadSwapsTablesAndRefusalKeepsTheOldOne) {
  Inbox out(client_, "out.>");
  Inbox beats(client_, "switchboard.status.shop.orders");
  client_.flush(1000);
  std::string error;
  ASSERT_TRUE(router_->apply(compile(kRoutes, 1), error)) << error;
  router_->start();
  router_nc_.flush(1000);

  // A new table that lowers the threshold, with a different source subject.
  std::string v2 = kRoutes;
  v2.replace(v2.find("orders.*"), 8, "sales.*");
  v2.replace(v2.find(">= 100.0"), 8, ">= 1.0");
  ASSERT_TRUE(router_->apply(compile(v2, 2), error)) << error;
  router_nc_.flush(1000);
  publish("orders.new", R"({"amount":500,"region":"old"})");  // old source: no longer routed
  publish("sales.new", R"({"amount":5,"region":"new"})");
  Inbox::Received r;
  ASSERT_TRUE(out.next(r));
  EXPECT_EQ(r.subject, "out.new");
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(out.size(), 0u);

  router_->reject(3, "filter: undeclared reference to 'evnt'");
  TableStatus st = router_->status();
  EXPECT_EQ(st.generation, 2u);
  EXPECT_EQ(st.state, "rejected");
  publish("sales.new", R"({"amount":5,"region":"still"})");
  ASSERT_TRUE(out.next(r));
  EXPECT_EQ(r.subject, "out.still");

  // Heartbeats name the pod, the generation running and the refusal.
  bool saw_rejected = false;
  for (int i = 0; i < 20 && !saw_rejected; ++i) {
    ASSERT_TRUE(beats.next(r));
    json::Document d;
    ASSERT_TRUE(d.parse(r.data));
    EXPECT_EQ(d.string_value(d.find_member(0, "pod")), "orders-0");
    if (d.string_value(d.find_member(0, "state")) == "rejected") {
      saw_rejected = true;
      EXPECT_EQ(d.number_value(d.find_member(0, "generation")), 2.0);
      EXPECT_NE(d.string_value(d.find_member(0, "error")).find("evnt"), std::string_view::npos);
    }
  }
  EXPECT_TRUE(saw_rejected);
}

TEST_F(RouterNatsTest, ReadyOnlyWithATableAndAConnection) {
  std::string why;
  EXPECT_FALSE(router_->ready(why));
  EXPECT_EQ(why, "no route table applied yet");
  std::string error;
  ASSERT_TRUE(router_->apply(compile(kRoutes, 1), error)) << error;
  EXPECT_TRUE(router_->ready(why)) << why;
  server_.stop();
  for (int i = 0; i < 100 && router_->ready(why); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(router_->ready(why));
  EXPECT_EQ(why, "not connected to NATS");
}

}  // namespace
}  // namespace switchboard::router

namespace switchboard::router {
namespace {

// NATS hands a message to one member per queue group name, across subjects: overlapping
// routes must not share a group, or they would split events between them.
// SIGTERM (Router::stop) in the middle of a steady stream: every core NATS event the
// router had received is routed and flushed before stop returns. Received, published
// and what the subscriber downstream got are the same count.
TEST_F(RouterNatsTest, StopRoutesAndFlushesEveryEventAlreadyReceived) {
  Inbox out(client_, "out.>");
  std::string error;
  ASSERT_TRUE(router_->apply(compile(R"(
routes:
  - name: all
    source: {subject: orders.*}
    destinations:
      - subject: 'out.{{ event.region }}'
)", 1), error)) << error;
  std::atomic<bool> producing{true};
  std::atomic<int> sent{0};
  std::thread producer([&] {
    std::string e;
    while (producing) {
      std::string body = R"({"region":"eu","n":)" + std::to_string(sent.load()) + "}";
      if (client_.publish("orders.new", {}, body, e)) ++sent;
      if (sent % 200 == 0) std::this_thread::sleep_for(1ms);
    }
    client_.flush(2000);
  });
  ASSERT_TRUE(eventually_at_least(events_.received_, 2000));
  router_->stop();  // while events keep coming
  producing = false;
  producer.join();
  const int received = events_.received_;
  EXPECT_GT(received, 0);
  EXPECT_EQ(events_.published_, received) << "received but not routed before the stop returned";
  // The flush in stop() put them on the wire: the subscriber gets every one.
  out.wait_for_size(static_cast<size_t>(received));
  EXPECT_EQ(out.size(), static_cast<size_t>(received));
  EXPECT_EQ(events_.received_, received) << "an event was taken after the stop returned";
}

// Reloads as fast as they can be applied while a steady core NATS stream flows: a source
// in both tables misses no event during a swap, and each event is routed by one table,
// whole (its marker is one table's). The second table also adds and removes a route on
// another subject, so every swap subscribes or drains one.
TEST_F(RouterNatsTest, ReloadStormLosesNoCoreEvent) {
  Inbox out(client_, "out.>");
  auto table = [](const char* marker, bool extra, uint64_t generation) {
    std::string yaml = std::string(R"(
routes:
  - name: steady
    source: {subject: orders.*}
    transform:
      - set: {table: '")") + marker + R"("'}
    destinations:
      - subject: 'out.{{ event.region }}'
)";
    if (extra) yaml += "  - name: extra\n    source: {subject: other.*}\n    destinations:\n      - subject: elsewhere\n";
    return compile(yaml, generation);
  };
  std::string error;
  ASSERT_TRUE(router_->apply(table("a", false, 1), error)) << error;
  constexpr int kEvents = 5000;
  std::atomic<bool> storming{true};
  std::atomic<int> reloads{0};
  std::thread storm([&] {
    uint64_t generation = 1;
    std::string e;
    while (storming) {
      bool b = generation % 2 == 1;
      if (router_->apply(table(b ? "b" : "a", b, ++generation), e)) ++reloads;
    }
  });
  // At least kEvents events, and on until 300 tables were applied meanwhile.
  int sent = 0;
  for (; sent < kEvents || reloads < 300; ++sent) {
    ASSERT_TRUE(client_.publish("orders.new", {}, R"({"region":"eu","n":)" + std::to_string(sent) + "}", error))
        << error;
    if (sent % 100 == 0) {
      std::this_thread::sleep_for(1ms);
      // At most 5,000 events ahead of the router: this test is about reloads, not about
      // overload (a router slowed down by the sanitizers would otherwise fall behind until
      // NATS drops what is over the subscription's pending limit).
      if (sent > 5000) {
        ASSERT_TRUE(out.wait_for_size(static_cast<size_t>(sent - 5000)))
            << "the router stopped routing after " << out.size() << " of " << sent << " events, "
            << router_nc_.dropped() << " dropped by NATS";
      }
    }
    ASSERT_LT(sent, 10'000'000) << "the reloads do not progress";
  }
  client_.flush(2000);
  out.wait_for_size(static_cast<size_t>(sent));
  storming = false;
  storm.join();
  EXPECT_EQ(out.size(), static_cast<size_t>(sent)) << "after " << reloads << " reloads";
  EXPECT_EQ(router_nc_.dropped(), 0u) << "the router fell behind and NATS dropped events";
  std::set<int> seen;
  std::map<std::string, int> by_table;
  testing::Inbox::Received r;
  while (out.next(r, 0ms)) {
    json::Document d;
    ASSERT_TRUE(d.parse(r.data)) << r.data;
    seen.insert(static_cast<int>(d.number_value(d.find_member(0, "n"))));
    ++by_table[std::string(d.string_value(d.find_member(0, "table")))];
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(sent));
  for (int n = 0; n < sent && seen.size() < static_cast<size_t>(sent); ++n) {
    if (seen.count(n) == 0) ADD_FAILURE() << "event " << n << " was not routed";
  }
  EXPECT_EQ(by_table["a"] + by_table["b"], sent);
  EXPECT_GT(by_table["a"], 0);
  EXPECT_GT(by_table["b"], 0);
}

// An event that arrives alone is written out as soon as it is routed (a flush once the
// subscription has nothing waiting), not when cnats' flusher next runs; without the
// option no such flush is made.
TEST_F(RouterNatsTest, ALoneEventIsFlushedAtOnce) {
  Inbox out(client_, "out.>");
  std::string error;
  ASSERT_TRUE(router_->apply(compile(kRoutes, 1), error)) << error;
  const uint64_t before = router_nc_.idle_flushes();
  publish("orders.new", R"({"amount": 150.0, "region": "eu"})");
  testing::Inbox::Received r;
  ASSERT_TRUE(out.next(r));
  // (The flush runs on a thread of its own: under load it can come just after.)
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (router_nc_.idle_flushes() < before + 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_GE(router_nc_.idle_flushes(), before + 1);

  NatsConfig cfg;
  cfg.urls = {server_.url()};
  cfg.flush_on_idle = false;
  NatsClient batched;
  ASSERT_TRUE(batched.connect(cfg, error)) << error;
  RouterConfig rc;
  rc.name = "batched";
  CountingEvents events;
  Router other(rc, batched, events);
  ASSERT_TRUE(other.apply(compile(kRoutes, 1), error)) << error;
  publish("orders.new", R"({"amount": 150.0, "region": "eu"})");
  ASSERT_TRUE(out.next(r));
  ASSERT_TRUE(out.next(r));  // both routers routed it
  EXPECT_EQ(batched.idle_flushes(), 0u);
  other.stop();
}

// Routes on the same subject share one queue group, so one subscription per replica:
// each event goes to one replica of the fleet, once, and every route on that subject runs
// on it there. With two replicas and three such routes, each route routes each event
// exactly once, and both replicas take a share.
TEST_F(RouterNatsTest, RoutesOnOneSubjectShareADeliveryAcrossTheFleet) {
  Inbox out(client_, "out.>");
  const char* routes = R"(
routes:
  - name: one
    source: {subject: orders.*}
    destinations: [{subject: 'out.one'}]
  - name: two
    source: {subject: orders.*}
    filter: 'int(event.n) % 2 == 0'
    destinations: [{subject: 'out.two'}]
  - name: three
    source: {subject: orders.*}
    transform: [{set: {three: 'true'}}]
    destinations: [{subject: 'out.three'}]
)";
  std::string error;
  ASSERT_TRUE(router_->apply(compile(routes, 1), error)) << error;
  NatsConfig cfg;
  cfg.urls = {server_.url()};
  NatsClient second_nc;
  ASSERT_TRUE(second_nc.connect(cfg, error)) << error;
  RouterConfig rc;
  rc.name = "orders";  // the same fleet as router_
  rc.pod = "orders-1";
  CountingEvents second_events;
  Router second(rc, second_nc, second_events);
  ASSERT_TRUE(second.apply(compile(routes, 1), error)) << error;
  constexpr int kEvents = 1000;
  for (int n = 0; n < kEvents; ++n) {
    ASSERT_TRUE(client_.publish("orders.new", {}, R"({"n":)" + std::to_string(n) + "}", error)) << error;
  }
  client_.flush(2000);
  const size_t expected = kEvents + kEvents / 2 + kEvents;
  out.wait_for_size(expected);
  std::this_thread::sleep_for(200ms);  // a duplicate would come now
  std::map<std::string, std::set<std::string>> by_subject;
  size_t total = 0;
  testing::Inbox::Received r;
  while (out.next(r, 0ms)) {
    by_subject[r.subject].insert(r.data.substr(0, r.data.find(',')));
    ++total;
  }
  EXPECT_EQ(total, expected);
  EXPECT_EQ(by_subject["out.one"].size(), static_cast<size_t>(kEvents));
  EXPECT_EQ(by_subject["out.two"].size(), static_cast<size_t>(kEvents / 2));
  EXPECT_EQ(by_subject["out.three"].size(), static_cast<size_t>(kEvents));
  // Each replica received a share, and every event it received ran all three routes
  // there: its three routes saw the same events. (With a subscription per route, a
  // replica would get some of one route's copies and other ones of another's.)
  EXPECT_EQ(events_.received_ + second_events.received_, 3 * kEvents);
  for (CountingEvents* e : {&events_, &second_events}) {
    auto counts = e->received_by_route();
    EXPECT_GT(counts["one"], 0);
    EXPECT_EQ(counts["two"], counts["one"]);
    EXPECT_EQ(counts["three"], counts["one"]);
  }
  second.stop();
}

// A replica that joins the fleet while events flow (a restarted pod, a scale-up) gets a
// share of them from the moment its subscription reaches the server, before the round
// trip that confirms it: those events are routed, not dropped as events of a source its
// table does not have yet. The same for a reload that adds the subject to a running
// replica. Replicas join twenty times both ways during a steady stream, and every event
// comes out exactly once.
TEST_F(RouterNatsTest, AReplicaJoiningWhileEventsFlowLosesNone) {
  Inbox out(client_, "out.>");
  const char* with_orders = R"(
routes:
  - name: steady
    source: {subject: orders.*}
    destinations: [{subject: 'out.orders'}]
  - name: other
    source: {subject: other.*}
    destinations: [{subject: 'elsewhere'}]
)";
  const char* without_orders = R"(
routes:
  - name: other
    source: {subject: other.*}
    destinations: [{subject: 'elsewhere'}]
)";
  std::string error;
  ASSERT_TRUE(router_->apply(compile(with_orders, 1), error)) << error;
  std::atomic<bool> streaming{true};
  std::atomic<int> sent{0};
  std::thread producer([&] {
    NatsConfig cfg;
    cfg.urls = {server_.url()};
    NatsClient nc;
    std::string e;
    if (!nc.connect(cfg, e)) {
      ADD_FAILURE() << e;
      return;
    }
    while (streaming) {
      const int n = sent.load();
      if (!nc.publish("orders.new", {}, R"({"n":)" + std::to_string(n) + "}", e)) {
        ADD_FAILURE() << e;
        break;
      }
      sent = n + 1;
      if (n % 50 == 0) std::this_thread::sleep_for(1ms);
    }
    nc.flush(2000);
  });
  int joined_by_start = 0, joined_by_reload = 0;
  for (int round = 0; round < 40; ++round) {
    NatsConfig cfg;
    cfg.urls = {server_.url()};
    cfg.name = "joining";
    NatsClient nc;
    ASSERT_TRUE(nc.connect(cfg, error)) << error;
    RouterConfig rc;
    rc.name = "orders";  // the same fleet as router_
    rc.pod = "orders-" + std::to_string(round + 1);
    rc.grace_ms = 5000;
    CountingEvents events;
    Router joining(rc, nc, events);
    if (round % 2 == 0) {
      ASSERT_TRUE(joining.apply(compile(with_orders, 1), error)) << error;
      ++joined_by_start;
    } else {
      ASSERT_TRUE(joining.apply(compile(without_orders, 1), error)) << error;
      std::this_thread::sleep_for(5ms);
      ASSERT_TRUE(joining.apply(compile(with_orders, 2), error)) << error;
      ++joined_by_reload;
    }
    std::this_thread::sleep_for(20ms);
    joining.stop();  // drains: what it was given, it routes
  }
  streaming = false;
  producer.join();
  const size_t total = static_cast<size_t>(sent.load());
  out.wait_for_size(total);
  std::this_thread::sleep_for(200ms);  // a duplicate would come now
  std::set<int> seen;
  size_t received = 0;
  testing::Inbox::Received r;
  while (out.next(r, 0ms)) {
    json::Document d;
    ASSERT_TRUE(d.parse(r.data)) << r.data;
    seen.insert(static_cast<int>(d.number_value(d.find_member(0, "n"))));
    ++received;
  }
  EXPECT_EQ(joined_by_start, 20);
  EXPECT_EQ(joined_by_reload, 20);
  EXPECT_GT(total, 2000u);
  EXPECT_EQ(received, total) << "events out, of " << total << " sent";
  EXPECT_EQ(seen.size(), total) << "distinct events out";
  int reported = 0;
  for (int n = 0; n < static_cast<int>(total) && reported < 10; ++n) {
    if (seen.count(n) == 0) {
      ADD_FAILURE() << "event " << n << " was not routed";
      ++reported;
    }
  }
}

TEST_F(RouterNatsTest, OverlappingRoutesEachSeeEveryEvent) {
  Inbox a(client_, "a.out");
  Inbox b(client_, "b.out");
  client_.flush(1000);
  std::string error;
  ASSERT_TRUE(router_->apply(compile(R"(
routes:
  - name: narrow
    source: {subject: orders.*}
    destinations: [{subject: a.out}]
  - name: wide
    source: {subject: orders.>}
    destinations: [{subject: b.out}]
)", 1), error)) << error;
  router_nc_.flush(1000);
  for (int i = 0; i < 10; ++i) publish("orders.x", "{\"n\":" + std::to_string(i) + "}");
  Inbox::Received r;
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(a.next(r)) << i;
    EXPECT_EQ(r.data, "{\"n\":" + std::to_string(i) + "}");
    ASSERT_TRUE(b.next(r)) << i;
  }
}

// cnats 3.4.1 hangs for good, holding its connection lock, when it reconnects to a server
// that takes the TCP connection, sends INFO and never answers the CONNECT. The client
// notices (stuck_for(), which fails the router's liveness), and lets go once the server
// closes the connection.
TEST(NatsClientStuck, AServerThatNeverAnswersTheConnectIsNoticed) {
  testing::NatsServer server;
  ASSERT_TRUE(server.ok());
  NatsConfig cfg;
  cfg.urls = {server.url()};
  cfg.connect_timeout_ms = 500;
  cfg.reconnect_wait_ms = 50;
  cfg.stuck_after_ms = 2000;
  NatsClient nc;
  std::string error;
  ASSERT_TRUE(nc.connect(cfg, error)) << error;
  EXPECT_EQ(nc.stuck_for().count(), 0);
  // The real server goes; on its port, one that says INFO and then nothing.
  server.stop();
  auto silent = std::make_unique<testing::SilentNatsServer>(server.port());
  ASSERT_TRUE(silent->ok());
  const bool noticed = testing::eventually([&] { return nc.stuck_for().count() > 0; }, 30s);
  const auto stuck = nc.stuck_for();
  silent.reset();  // closes the connection: cnats sees the end and goes on
  ASSERT_TRUE(noticed) << "a client that has not answered for 30 s was not reported stuck";
  EXPECT_GE(stuck.count(), 2000);
  EXPECT_TRUE(testing::eventually([&] { return nc.stuck_for().count() == 0; }, 10s))
      << "still stuck after the server closed the connection";
}

// A header with an empty or blank value is left out of what the client publishes: a cnats
// 3.4.1 receiver (the router itself, the controller) would otherwise fold the next header
// into it, or lose every header of the message. The other headers arrive whole.
TEST(NatsClientHeaders, ABlankHeaderValueIsLeftOutSoTheOthersArriveWhole) {
  testing::NatsServer server;
  ASSERT_TRUE(server.ok());
  NatsConfig cfg;
  cfg.urls = {server.url()};
  NatsClient receiver, sender;
  std::string error;
  ASSERT_TRUE(receiver.connect(cfg, error)) << error;
  ASSERT_TRUE(sender.connect(cfg, error)) << error;
  Inbox in(receiver, "h.in");
  ASSERT_TRUE(sender.publish("h.in", {{"A", ""}, {"B", "x"}, {"C", " \t"}, {"D", "y"}}, "{}", error)) << error;
  ASSERT_TRUE(sender.publish("h.in", {{"B", "x"}, {"Last", ""}}, "{}", error)) << error;
  ASSERT_TRUE(sender.flush(2000));
  Inbox::Received r;
  ASSERT_TRUE(in.next(r));
  std::sort(r.headers.begin(), r.headers.end());  // cnats does not keep their order
  EXPECT_EQ(r.headers, (NatsHeaders{{"B", "x"}, {"D", "y"}}));
  ASSERT_TRUE(in.next(r));
  EXPECT_EQ(r.headers, (NatsHeaders{{"B", "x"}}));
}

// What a NatsClient reported through its state log, for tests to wait on.
class StateReports {
 public:
  explicit StateReports(NatsClient& nc) {
    nc.set_state_log([this](NatsClient::State state, const std::string& detail) {
      std::lock_guard lock(mu_);
      seen_.emplace_back(state, detail);
      cv_.notify_all();
    });
  }
  // The detail of the first report of `state`, once one came within `timeout`.
  std::optional<std::string> wait_for(NatsClient::State state, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    std::optional<std::string> found;
    cv_.wait_for(lock, timeout, [&] {
      for (const auto& [s, detail] : seen_) {
        if (s == state) found = detail;
        if (found) return true;
      }
      return false;
    });
    return found;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<NatsClient::State, std::string>> seen_;
};

// Events faster than the handler: the subscription holds its pending limit, cnats drops
// what is over it, and every drop is counted and reported with its subject, so a core
// NATS loss under overload is never silent (the router exports dropped() as
// switchboard_router_nats_dropped_total and logs the report).
TEST(NatsClientSlowConsumer, ASlowConsumerCountsAndReportsWhatNatsDropped) {
  testing::NatsServer server;
  ASSERT_TRUE(server.ok());
  NatsClient nc;
  StateReports reports(nc);
  NatsConfig cfg;
  cfg.urls = {server.url()};
  cfg.pending_limit_msgs = 100;
  std::string error;
  ASSERT_TRUE(nc.connect(cfg, error)) << error;
  std::atomic<int> delivered{0};
  std::atomic<bool> release{false};
  const uint64_t id = nc.subscribe("slow.in", "", [&](const NatsMessage&) {
    while (!release.load()) std::this_thread::sleep_for(1ms);  // a handler far behind
    ++delivered;
  }, error);
  ASSERT_NE(id, 0u) << error;
  nc.flush(2000);
  NatsClient producer;
  NatsConfig pcfg;
  pcfg.urls = {server.url()};
  ASSERT_TRUE(producer.connect(pcfg, error)) << error;
  constexpr int kSent = 1000;
  for (int i = 0; i < kSent; ++i) ASSERT_TRUE(producer.publish("slow.in", {}, "{}", error)) << error;
  ASSERT_TRUE(producer.flush(2000));
  const std::optional<std::string> slow = reports.wait_for(NatsClient::State::SlowConsumer, 10s);
  ASSERT_TRUE(slow.has_value()) << "no slow-consumer report";
  EXPECT_EQ(*slow, "slow.in");
  // The pending limit held: what was over it is dropped, and counted.
  ASSERT_TRUE(testing::eventually([&] { return nc.dropped() >= kSent - 101; }, 10s)) << nc.dropped();
  release = true;
  ASSERT_TRUE(testing::eventually([&] { return delivered + nc.dropped() >= kSent; }, 10s))
      << delivered << " delivered, " << nc.dropped() << " dropped";
  std::this_thread::sleep_for(100ms);  // nothing more comes
  EXPECT_EQ(delivered + nc.dropped(), static_cast<uint64_t>(kSent)) << "each event delivered or counted, once";
  EXPECT_GT(delivered, 0);
  EXPECT_LE(delivered, 101);
  // The count outlives the subscription: a removed one keeps its drops in the total.
  const uint64_t before = nc.dropped();
  nc.unsubscribe(id);
  EXPECT_EQ(nc.dropped(), before);
}

// A server that goes silent (stopped, as a cut that drops packets leaves it: no reset, no
// answer) is noticed by the client's PINGs within a few intervals, reported, and the
// connection comes back when the server does; with cnats' default interval that took two
// minutes.
TEST(NatsClientSilence, ASilentServerIsNoticedByPingsAndTheConnectionComesBack) {
  testing::NatsServer server;
  ASSERT_TRUE(server.ok());
  NatsClient nc;
  StateReports reports(nc);
  NatsConfig cfg;
  cfg.urls = {server.url()};
  cfg.ping_interval_ms = 200;
  cfg.max_pings_out = 2;
  cfg.connect_timeout_ms = 500;
  std::string error;
  ASSERT_TRUE(nc.connect(cfg, error)) << error;
  ASSERT_TRUE(nc.connected());
  auto saw = [&](NatsClient::State want, std::chrono::milliseconds timeout) {
    return reports.wait_for(want, timeout).has_value();
  };
  ASSERT_EQ(::kill(server.pid(), SIGSTOP), 0);
  const auto stopped = std::chrono::steady_clock::now();
  const bool noticed = saw(NatsClient::State::Disconnected, 10s);
  const auto took = std::chrono::steady_clock::now() - stopped;
  ::kill(server.pid(), SIGCONT);
  ASSERT_TRUE(noticed) << "the silent server was not noticed within 10 s";
  EXPECT_LT(took, 5s) << "three 200 ms ping intervals should notice it well within 5 s";
  EXPECT_FALSE(nc.connected());
  ASSERT_TRUE(saw(NatsClient::State::Reconnected, 15s)) << "the connection did not come back";
  EXPECT_TRUE(nc.connected());
  EXPECT_TRUE(nc.flush(2000));
}

}  // namespace
}  // namespace switchboard::router
