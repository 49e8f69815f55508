// JetStream sources against a real nats-server with JetStream on loopback: durable pull
// consumers, destination publishes sent without waiting within a bounded window,
// acknowledgement only after every publish is confirmed, message ids for deduplication,
// retries with backoff and dead letters after maxDeliver, and consumers that bind again
// when the connection is rebuilt.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/json/document.h"
#include "core/route/spec_yaml.h"
#include "router/nats_client.h"
#include "router/router.h"
#include "tests/support/files.h"
#include "tests/support/inbox.h"
#include "tests/support/process.h"
#include "tests/support/streams.h"

namespace switchboard::router {
namespace {

using testing::eventually;

using testing::Inbox;

using namespace std::chrono_literals;

class CountingEvents : public RouterEvents {
 public:
  void received(const std::string&) override { ++received_; }
  void published(const std::string&, size_t) override { ++published_; }
  void filtered(const std::string&) override {}
  void failed(const std::string&, route::FailureReason, const std::string&, const std::string&) override {
    ++failed_;
  }
  void dead_lettered(const std::string&) override { ++dead_lettered_; }
  void processed(const std::string&, double) override {}
  void table_applied(uint64_t, const std::string&) override {}
  void table_rejected(const std::string&) override {}
  void ack_pending(const std::string& route, int64_t pending) override {
    std::lock_guard lock(mu);
    ack_pending_by_route[route] = pending;
  }
  std::atomic<int> received_{0}, published_{0}, failed_{0}, dead_lettered_{0};
  std::mutex mu;
  std::map<std::string, int64_t> ack_pending_by_route;
};

std::string header(const NatsHeaders& h, const std::string& key) {
  for (const auto& [k, v] : h) {
    if (k == key) return v;
  }
  return "";
}

void add_stream(NatsClient& nc, const char* name, const char* subject, int64_t max_msgs = -1) {
  ASSERT_EQ(testing::add_stream(nc.jetstream(), name, subject, max_msgs), "");
}

uint64_t stream_messages(NatsClient& nc, const char* stream) { return testing::stream_messages(nc.jetstream(), stream); }

struct ConsumerState {
  int64_t ack_pending = -1;
  uint64_t pending = 0, ack_floor = 0;
};

ConsumerState consumer_state(NatsClient& nc, const char* stream, const char* durable) {
  ConsumerState st;
  jsConsumerInfo* ci = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  if (js_GetConsumerInfo(&ci, nc.jetstream(), stream, durable, nullptr, &code) != NATS_OK) return st;
  st.ack_pending = ci->NumAckPending;
  st.pending = ci->NumPending;
  st.ack_floor = ci->AckFloor.Stream;
  jsConsumerInfo_Destroy(ci);
  return st;
}

std::shared_ptr<const route::RouteTable> compile(const std::string& yaml, uint64_t generation) {
  route::RouteSet set;
  std::vector<route::SpecError> errors;
  EXPECT_TRUE(route::load_yaml(yaml, "js.yaml", set, errors)) << (errors.empty() ? "" : errors[0].render());
  auto compiled = route::RouteTable::compile(std::move(set), generation);
  auto* t = std::get_if<std::shared_ptr<const route::RouteTable>>(&compiled);
  EXPECT_NE(t, nullptr);
  return t ? *t : nullptr;
}

class RouterJetStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.ok());
    std::string error;
    ASSERT_TRUE(router_nc_.connect(config(), error)) << error;
    ASSERT_TRUE(client_.connect(config(), error)) << error;
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
  NatsConfig config() const {
    NatsConfig cfg;
    cfg.urls = {server_.url()};
    return cfg;
  }
  void apply(const std::string& yaml, Router* router = nullptr) {
    std::string error;
    auto table = compile(yaml, ++generation_);
    ASSERT_NE(table, nullptr);
    ASSERT_TRUE((router ? router : router_.get())->apply(table, error)) << error;
  }
  void publish(const std::string& subject, const std::string& data) {
    std::string error;
    ASSERT_TRUE(client_.js_publish(subject, {}, data, "", 5000, error)) << error;
  }

  // A replica of its own (connection, router named `name`) whose route `name` reads
  // orders.* through the durable `name` in batches of `batch`, ack wait 60 s, and publishes
  // each event to held.<n> on JetStream (a HeldStream answers, or not). Null on failure.
  struct HeldReplica {
    NatsClient nc;
    CountingEvents events;
    std::unique_ptr<Router> router;
  };
  std::unique_ptr<HeldReplica> held_replica(const std::string& name, int batch) {
    auto r = std::make_unique<HeldReplica>();
    std::string error;
    if (!r->nc.connect(config(), error)) {
      ADD_FAILURE() << error;
      return nullptr;
    }
    RouterConfig rc;
    rc.name = name;
    rc.grace_ms = 15000;
    r->router = std::make_unique<Router>(rc, r->nc, r->events);
    apply("routes:\n  - name: " + name + "\n    source:\n      subject: orders.*\n      jetstream: {stream: ORDERS, durable: " +
              name + ", batch: " + std::to_string(batch) +
              ", ackWait: 60s}\n    destinations:\n      - subject: 'held.{{ event.n }}'\n        jetstream: true\n",
          r->router.get());
    return r;
  }

  testing::NatsServer server_{true};
  NatsClient router_nc_, client_;
  CountingEvents events_;
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
  ASSERT_TRUE(eventually([&] {
    ConsumerState st = consumer_state(client_, "ORDERS", "js-orders");
    return st.ack_pending == 0 && st.pending == 0;
  }));
  // The consumer reports its acks pending (the metric switchboard_router_jetstream_ack_pending)
  // every few seconds: it comes down to 0 once everything is acknowledged.
  EXPECT_TRUE(eventually([&] {
    std::lock_guard lock(events_.mu);
    auto it = events_.ack_pending_by_route.find("js-orders");
    return it != events_.ack_pending_by_route.end() && it->second == 0;
  }));
  EXPECT_EQ(out.size(), 0u);

  // A second publish of an output with the same message id is dropped by the stream.
  std::string error;
  ASSERT_TRUE(client_.js_publish("out.1", {}, "{\"n\":1}", "ORDERS:1:0", 5000, error)) << error;
  EXPECT_EQ(stream_messages(client_, "OUT"), 2u);
}

// The durable consumer follows the route: made with its settings when it does not exist,
// brought in line when an edit changes them (ackWait, maxDeliver, maxAckPending), and the
// route goes on delivering through it.
TEST_F(RouterJetStreamTest, AnEditedRouteUpdatesItsDurableConsumer) {
  Inbox out(client_, "out.>");
  client_.flush(1000);
  auto route = [](const std::string& settings) {
    return "routes:\n  - name: js-edit\n    source:\n      subject: orders.*\n      jetstream: {stream: ORDERS, "
           "durable: js-edit, " + settings + "}\n    destinations:\n      - subject: 'out.{{ event.n }}'\n";
  };
  struct Settings {
    int64_t ack_wait_ns = 0;
    int64_t max_deliver = 0, max_ack_pending = 0;
    bool operator==(const Settings&) const = default;
  };
  auto settings = [&]() {
    Settings st;
    jsConsumerInfo* ci = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    if (js_GetConsumerInfo(&ci, client_.jetstream(), "ORDERS", "js-edit", nullptr, &code) != NATS_OK) return st;
    st = {ci->Config->AckWait, ci->Config->MaxDeliver, ci->Config->MaxAckPending};
    jsConsumerInfo_Destroy(ci);
    return st;
  };
  apply(route("ackWait: 30s, maxDeliver: 3, maxAckPending: 100"));
  ASSERT_TRUE(eventually([&] { return settings() == Settings{30'000'000'000, 3, 100}; }))
      << settings().ack_wait_ns << " " << settings().max_deliver << " " << settings().max_ack_pending;
  publish("orders.new", R"({"n":1})");
  Inbox::Received item;
  ASSERT_TRUE(out.next(item));
  EXPECT_EQ(item.subject, "out.1");

  apply(route("ackWait: 45s, maxDeliver: 7, maxAckPending: 50"));
  EXPECT_TRUE(eventually([&] { return settings() == Settings{45'000'000'000, 7, 50}; }))
      << settings().ack_wait_ns << " " << settings().max_deliver << " " << settings().max_ack_pending;
  publish("orders.new", R"({"n":2})");
  ASSERT_TRUE(out.next(item));
  EXPECT_EQ(item.subject, "out.2");
}

// Every event of a JetStream-to-JetStream route lands exactly once in each destination
// stream, also when its first attempt failed half-way: the second destination's stream
// does not exist at first, so each event is NAKed after its first destination stored it,
// and delivered again once the stream is there. The repeated publish carries the same
// Nats-Msg-Id and the stream drops it.
TEST_F(RouterJetStreamTest, ManyEventsArriveExactlyOnceAcrossRedeliveries) {
  constexpr int kEvents = 500;
  Inbox dlq(client_, "dlq.js");
  apply(R"(
routes:
  - name: fanout
    source:
      subject: orders.*
      jetstream: {stream: ORDERS, durable: fanout, maxDeliver: 30, backoff: [500ms], batch: 100, maxAckPending: 1000}
    destinations:
      - subject: 'out.{{ event.n }}'
        jetstream: true
      - subject: 'late.{{ event.n }}'
        jetstream: true
    deadLetter: {subject: dlq.js}
)");
  for (int n = 1; n <= kEvents; ++n) publish("orders.new", "{\"n\":" + std::to_string(n) + "}");
  // Every first attempt fails on late.*, where no stream listens yet.
  ASSERT_TRUE(eventually([&] { return events_.failed_ >= kEvents; })) << events_.failed_;
  EXPECT_EQ(events_.dead_lettered_, 0);
  add_stream(client_, "LATE", "late.>");
  ASSERT_TRUE(eventually([&] {
    ConsumerState st = consumer_state(client_, "ORDERS", "fanout");
    return stream_messages(client_, "LATE") == kEvents && st.ack_pending == 0 && st.pending == 0;
  }, 120s)) << "LATE holds " << stream_messages(client_, "LATE");
  EXPECT_EQ(stream_messages(client_, "OUT"), static_cast<uint64_t>(kEvents));
  EXPECT_EQ(stream_messages(client_, "LATE"), static_cast<uint64_t>(kEvents));

  // Each event once, under the id made from its source sequence and destination index.
  std::set<std::string> seen;
  for (uint64_t seq = 1; seq <= kEvents; ++seq) {
    natsMsg* m = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    ASSERT_EQ(js_GetMsg(&m, client_.jetstream(), "OUT", seq, nullptr, &code), NATS_OK) << seq;
    NatsHeaders headers;
    NatsMessage view = view_of(m, headers);
    json::Document d;
    ASSERT_TRUE(d.parse(view.data));
    const std::string n = std::to_string(static_cast<int>(d.number_value(d.find_member(0, "n"))));
    EXPECT_EQ(view.subject, "out." + n);
    // Published in order: source sequence n is event n.
    EXPECT_EQ(header(headers, "Nats-Msg-Id"), "ORDERS:" + n + ":0");
    EXPECT_TRUE(seen.insert(n).second) << "event " << n << " stored twice";
    natsMsg_Destroy(m);
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kEvents));
  // The stream saw every first-destination publish again and dropped it.
  NatsClient::JsPublishStats st = router_nc_.js_publish_stats();
  EXPECT_GE(st.duplicates, static_cast<uint64_t>(kEvents));
  EXPECT_EQ(st.inflight, 0);
  EXPECT_LE(st.max_inflight, st.limit);
  EXPECT_EQ(events_.published_, kEvents);
  EXPECT_EQ(dlq.size(), 0u);
}

// A stand-in for a stream: answers JetStream publishes on a subject only when the test says
// so, which makes "not yet confirmed" last as long as the test needs.
class HeldStream {
 public:
  HeldStream(NatsClient& nc, const std::string& subject) : nc_(nc) {
    std::string error;
    id_ = nc.subscribe(subject, "", [this](const NatsMessage& m) {
      const char* reply = natsMsg_GetReply(m.msg);
      std::lock_guard lock(mu_);
      held_.push_back({reply == nullptr ? "" : reply, header(*m.headers, "Nats-Msg-Id")});
      max_held_ = std::max(max_held_, held_.size());
      cv_.notify_all();
    }, error);
    EXPECT_NE(id_, 0u) << error;
    nc.flush(2000);
  }
  ~HeldStream() { nc_.unsubscribe(id_); }
  // Waits until exactly `n` publishes are held; false if more arrive or the time runs out.
  bool wait_held(size_t n, std::chrono::milliseconds timeout = 30s) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return held_.size() >= n; });
    return held_.size() == n;
  }
  // Confirms the oldest held publish; returns its Nats-Msg-Id.
  std::string confirm_one() {
    Held h;
    {
      std::lock_guard lock(mu_);
      if (held_.empty()) return "";
      h = held_.front();
      held_.pop_front();
    }
    std::string error;
    EXPECT_TRUE(nc_.publish(h.reply, {}, R"({"stream":"HELD","seq":)" + std::to_string(++seq_) + "}", error))
        << error;
    nc_.flush(2000);
    return h.msg_id;
  }
  size_t max_held() {
    std::lock_guard lock(mu_);
    return max_held_;
  }

 private:
  struct Held {
    std::string reply, msg_id;
  };
  NatsClient& nc_;
  uint64_t id_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Held> held_;
  size_t max_held_ = 0;
  uint64_t seq_ = 0;
};

// With --jetstream-max-inflight 4, a batch of 20 events puts exactly 4 publishes on the
// wire; each confirmation lets one more go. No event of the batch is acknowledged before
// all of its publishes are confirmed.
TEST_F(RouterJetStreamTest, AcksOnlyConfirmedEventsAndHonoursTheInFlightBound) {
  constexpr int kEvents = 20;
  constexpr int kBound = 4;
  NatsConfig cfg = config();
  cfg.js_max_inflight = kBound;
  NatsClient nc;
  std::string error;
  ASSERT_TRUE(nc.connect(cfg, error)) << error;
  CountingEvents events;
  RouterConfig rc;
  rc.name = "held";
  rc.grace_ms = 2000;
  Router router(rc, nc, events);
  HeldStream held(client_, "held.>");
  for (int n = 1; n <= kEvents; ++n) publish("orders.new", "{\"n\":" + std::to_string(n) + "}");
  apply(R"(
routes:
  - name: held
    source:
      subject: orders.*
      jetstream: {stream: ORDERS, durable: held, batch: 64, ackWait: 60s}
    destinations:
      - subject: 'held.{{ event.n }}'
        jetstream: true
)", &router);

  std::set<std::string> ids;
  for (int confirmed = 0; confirmed < kEvents; ++confirmed) {
    // The window is full again (or holds what is left).
    size_t expect = static_cast<size_t>(std::min(kBound, kEvents - confirmed));
    ASSERT_TRUE(held.wait_held(expect)) << "after " << confirmed << " confirmations";
    // Nothing is acknowledged before its publish was confirmed. (How the 20 events are cut
    // into batches depends on how fast they arrive; an event is acknowledged once every
    // event of its batch is confirmed, never before its own.)
    ConsumerState st = consumer_state(client_, "ORDERS", "held");
    EXPECT_LE(st.ack_floor, static_cast<uint64_t>(confirmed)) << "acknowledged before its publish was confirmed";
    EXPECT_EQ(st.ack_pending + static_cast<int64_t>(st.ack_floor), kEvents);
    ids.insert(held.confirm_one());
  }
  EXPECT_EQ(held.max_held(), static_cast<size_t>(kBound));
  EXPECT_EQ(ids.size(), static_cast<size_t>(kEvents));
  EXPECT_TRUE(ids.count("ORDERS:1:0") && ids.count("ORDERS:20:0"));
  ASSERT_TRUE(eventually([&] { return consumer_state(client_, "ORDERS", "held").ack_pending == 0; }));
  EXPECT_EQ(consumer_state(client_, "ORDERS", "held").ack_floor, static_cast<uint64_t>(kEvents));
  NatsClient::JsPublishStats st = nc.js_publish_stats();
  EXPECT_EQ(st.max_inflight, kBound);
  EXPECT_EQ(st.limit, kBound);
  EXPECT_EQ(st.confirmed, static_cast<uint64_t>(kEvents));
  EXPECT_EQ(events.published_, kEvents);
  router.stop();
}

// SIGTERM (Router::stop) while a batch's publishes are held back: the router finishes that
// batch before it exits. Events whose publish is confirmed meanwhile are acknowledged;
// those whose publish gets no answer are NAKed, not left to the ack wait (60 s here): a
// replica that starts next delivers them at once.
TEST_F(RouterJetStreamTest, StoppingFinishesTheBatchInHand) {
  constexpr int kEvents = 6;
  HeldStream held(client_, "held.>");
  for (int n = 1; n <= kEvents; ++n) publish("orders.new", "{\"n\":" + std::to_string(n) + "}");
  auto first = held_replica("held", 64);
  ASSERT_TRUE(first);
  ASSERT_TRUE(held.wait_held(kEvents));
  std::thread stopper([&] { first->router->stop(); });
  // Half are confirmed while the router is stopping; the others never are.
  std::set<std::string> confirmed;
  for (int i = 0; i < kEvents / 2; ++i) confirmed.insert(held.confirm_one());
  stopper.join();
  // (A NAKed event still counts as ack pending at the server until it is delivered again.)
  ConsumerState st = consumer_state(client_, "ORDERS", "held");
  EXPECT_EQ(st.ack_floor, static_cast<uint64_t>(kEvents / 2));
  EXPECT_TRUE(confirmed.count("ORDERS:1:0") && confirmed.count("ORDERS:3:0"));
  first.reset();

  // The next replica gets the NAKed half at once, not after the 60 s ack wait.
  HeldStream again(client_, "held.>");
  auto next = held_replica("held", 64);
  ASSERT_TRUE(next);
  ASSERT_TRUE(again.wait_held(kEvents / 2, 20s));
  std::set<std::string> redelivered;
  for (int i = 0; i < kEvents / 2; ++i) redelivered.insert(again.confirm_one());
  EXPECT_EQ(redelivered, (std::set<std::string>{"ORDERS:4:0", "ORDERS:5:0", "ORDERS:6:0"}));
  ASSERT_TRUE(eventually([&] { return consumer_state(client_, "ORDERS", "held").ack_floor == kEvents; }));
  next->router->stop();
}

// After a full batch the consumer asks for the next one before it runs the first, so that
// the server sends it meanwhile. A router that stops then holds events it will not handle:
// it NAKs them, and the next replica gets them at once rather than after the ack wait.
TEST_F(RouterJetStreamTest, EventsFetchedAheadAreReleasedWhenStopping) {
  constexpr int kBatch = 4;
  constexpr int kEvents = 12;
  HeldStream held(client_, "held.>");
  for (int n = 1; n <= kEvents; ++n) publish("orders.new", "{\"n\":" + std::to_string(n) + "}");
  auto first = held_replica("ahead", kBatch);
  ASSERT_TRUE(first);
  ASSERT_TRUE(held.wait_held(kBatch));
  // The first batch waits for its confirmations; the second has been delivered meanwhile.
  ASSERT_TRUE(eventually([&] { return consumer_state(client_, "ORDERS", "ahead").ack_pending == 2 * kBatch; }))
      << "the next batch was not asked for ahead";
  std::thread stopper([&] { first->router->stop(); });
  std::set<std::string> confirmed;
  for (int i = 0; i < kBatch; ++i) confirmed.insert(held.confirm_one());
  stopper.join();
  EXPECT_EQ(consumer_state(client_, "ORDERS", "ahead").ack_floor, static_cast<uint64_t>(kBatch));
  EXPECT_EQ(confirmed, (std::set<std::string>{"ORDERS:1:0", "ORDERS:2:0", "ORDERS:3:0", "ORDERS:4:0"}));
  first.reset();

  HeldStream again(client_, "held.>");
  auto next = held_replica("ahead", kBatch);
  ASSERT_TRUE(next);
  std::set<std::string> rest;
  for (int round = 0; round < (kEvents - kBatch) / kBatch; ++round) {
    ASSERT_TRUE(again.wait_held(kBatch, 20s)) << "batch " << round << " of the rest did not come within 20 s "
                                              << "(the ack wait is 60 s)";
    for (int i = 0; i < kBatch; ++i) rest.insert(again.confirm_one());
  }
  std::set<std::string> expected;
  for (int n = kBatch + 1; n <= kEvents; ++n) expected.insert("ORDERS:" + std::to_string(n) + ":0");
  EXPECT_EQ(rest, expected);
  ASSERT_TRUE(eventually([&] { return consumer_state(client_, "ORDERS", "ahead").ack_floor == kEvents; }));
  next->router->stop();
}

// A core NATS source with a JetStream destination: publishes go out without waiting for
// one another (the in-flight bound holds them) and every event lands in the stream once;
// one that no stream takes is refused (no responders) and dead-lettered, reason
// destination, with a copy of the event, once that answer comes.
TEST_F(RouterJetStreamTest, CoreSourceToJetStreamDestination) {
  constexpr int kEvents = 2000;
  Inbox dlq(client_, "dlq.core");
  client_.flush(1000);
  apply(R"(
routes:
  - name: core-to-js
    source: {subject: 'core.*'}
    destinations:
      - subject: '{{ event.to }}.{{ event.kind }}'
        jetstream: true
    deadLetter: {subject: dlq.core}
)");
  std::string error;
  for (int n = 0; n < kEvents; ++n) {
    ASSERT_TRUE(client_.publish("core.new", {}, R"({"to":"out","kind":"ok","n":)" + std::to_string(n) + "}", error))
        << error;
  }
  ASSERT_TRUE(client_.publish("core.new", {}, R"({"to":"nowhere","kind":"x"})", error)) << error;
  client_.flush(2000);
  ASSERT_TRUE(eventually([&] { return stream_messages(client_, "OUT") >= kEvents; }))
      << stream_messages(client_, "OUT");
  ASSERT_TRUE(eventually([&] { return events_.published_ == kEvents; })) << events_.published_;
  EXPECT_GT(router_nc_.js_publish_stats().max_inflight, 1) << "publishes waited for one another";
  Inbox::Received r;
  ASSERT_TRUE(dlq.next(r, 15s));
  EXPECT_EQ(header(r.headers, "switchboard-reason"), "destination");
  EXPECT_NE(r.data.find(R"("route":"core-to-js")"), std::string::npos) << r.data;
  EXPECT_NE(r.data.find(R"("to":"nowhere")"), std::string::npos) << "the original event, copied: " << r.data;
  EXPECT_EQ(events_.failed_, 1);
  EXPECT_EQ(stream_messages(client_, "OUT"), static_cast<uint64_t>(kEvents));
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
  // Dead-lettered once, then acknowledged.
  ASSERT_TRUE(eventually([&] { return consumer_state(client_, "ORDERS", "doomed").ack_pending == 0; }));
  EXPECT_EQ(dlq.size(), 0u);
  EXPECT_EQ(events_.dead_lettered_, 1);
  EXPECT_EQ(events_.failed_, 3);
}

// A stream that exists and refuses the message (it is full and discards new ones): the
// refusal is retried with the route's backoff and dead-lettered after maxDeliver, with the
// stream's reason.
TEST_F(RouterJetStreamTest, APublishTheStreamRefusesIsRetriedThenDeadLettered) {
  add_stream(client_, "FULL", "full.>", 1);
  Inbox dlq(client_, "dlq.js");
  apply(R"(
routes:
  - name: full
    source:
      subject: orders.*
      jetstream: {stream: ORDERS, durable: full, maxDeliver: 3, backoff: [50ms, 100ms]}
    destinations:
      - subject: 'full.{{ event.n }}'
        jetstream: true
    deadLetter: {subject: dlq.js}
)");
  publish("orders.new", R"({"n":1})");
  publish("orders.new", R"({"n":2})");
  Inbox::Received item;
  ASSERT_TRUE(dlq.next(item, 30000ms));
  json::Document d;
  ASSERT_TRUE(d.parse(item.data)) << item.data;
  EXPECT_EQ(d.string_value(d.find_member(0, "reason")), "destination");
  EXPECT_EQ(d.string_value(d.find_member(0, "step")), "destinations[0]");
  EXPECT_EQ(d.number_value(d.find_member(0, "attempts")), 3.0);
  EXPECT_EQ(d.raw(d.find_member(0, "data")), R"({"n":2})");
  EXPECT_NE(d.string_value(d.find_member(0, "error")).find("maximum messages"), std::string_view::npos)
      << item.data;
  ASSERT_TRUE(eventually([&] { return consumer_state(client_, "ORDERS", "full").ack_pending == 0; }));
  EXPECT_EQ(stream_messages(client_, "FULL"), 1u);
  EXPECT_EQ(events_.published_, 1);
  EXPECT_EQ(dlq.size(), 0u);
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

// The router's connection is closed for good by the server (its password was rotated) and
// rebuilt with the password file read again: the JetStream consumer binds again on the
// new connection and events flow as before.
TEST(RouterJetStreamRebuild, ConsumerBindsAgainOnARebuiltConnection) {
  char tmpl[] = "/tmp/switchboard-js-rebuild-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto server_config = [&](const std::string& router_password) {
    return testing::NatsServer::Config{"jetstream { store_dir: \"" + dir + "/js\" }\n"
                                       "authorization { users = [\n"
                                       "  { user: router, password: \"" + router_password + "\" }\n"
                                       "  { user: tester, password: \"tester-pw\" }\n] }\n"};
  };
  {
    auto started = testing::start_nats_server(server_config("first-pw"));
    ASSERT_NE(started, nullptr) << "nats-server did not start";
    testing::NatsServer& server = *started;
    std::ofstream(dir + "/password") << "first-pw\n";
    NatsConfig cfg;
    cfg.urls = {server.url()};
    cfg.reconnect_wait_ms = 50;
    cfg.reconnect_jitter_ms = 50;
    cfg.rebuild_wait_ms = 100;
    cfg.rebuild_max_wait_ms = 500;
    NatsConfig router_cfg = cfg;
    router_cfg.user = "router";
    router_cfg.password = "first-pw";
    router_cfg.password_file = dir + "/password";
    NatsConfig tester_cfg = cfg;
    tester_cfg.user = "tester";
    tester_cfg.password = "tester-pw";
    NatsClient router_nc, client;
    std::string error;
    ASSERT_TRUE(router_nc.connect(router_cfg, error)) << error;
    ASSERT_TRUE(client.connect(tester_cfg, error)) << error;
    add_stream(client, "ORDERS", "orders.>");
    add_stream(client, "OUT", "out.>");
    CountingEvents events;
    RouterConfig rc;
    rc.name = "rebuild";
    rc.grace_ms = 2000;
    Router router(rc, router_nc, events);
    std::string routes = R"(
routes:
  - name: copy
    source:
      subject: orders.*
      jetstream: {stream: ORDERS, durable: copy, backoff: [100ms]}
    destinations:
      - subject: 'out.{{ event.n }}'
        jetstream: true
)";
    ASSERT_TRUE(router.apply(compile(routes, 1), error)) << error;
    ASSERT_TRUE(client.js_publish("orders.new", {}, R"({"n":1})", "", 5000, error)) << error;
    ASSERT_TRUE(eventually([&] { return stream_messages(client, "OUT") == 1; }));
    const uint64_t generation = router_nc.generation();

    // Rotated on the server: the router's connection is refused twice and closed for good.
    ASSERT_TRUE(server.reload(server_config("second-pw"))) << "the server did not reload";
    ASSERT_TRUE(eventually([&] { return router_nc.closed_for().count() > 0; }));
    EXPECT_FALSE(router_nc.connected());
    EXPECT_NE(router_nc.closed_reason().find("Authorization Violation"), std::string::npos)
        << router_nc.closed_reason();
    ASSERT_TRUE(client.js_publish("orders.new", {}, R"({"n":2})", "", 5000, error)) << error;
    // Then in the mounted Secret: the next rebuild reads it.
    {
      std::ofstream(dir + "/password.tmp") << "second-pw\n";
      std::filesystem::rename(dir + "/password.tmp", dir + "/password");
    }
    ASSERT_TRUE(eventually([&] { return router_nc.connected(); })) << router_nc.closed_reason();
    EXPECT_GT(router_nc.generation(), generation);
    EXPECT_EQ(router_nc.closed_for().count(), 0);
    ASSERT_TRUE(eventually([&] { return stream_messages(client, "OUT") == 2; }))
        << "the consumer did not bind again on the new connection";
    ASSERT_TRUE(eventually([&] { return consumer_state(client, "ORDERS", "copy").ack_pending == 0; }));
    router.stop();
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace switchboard::router
