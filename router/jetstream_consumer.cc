#include "router/jetstream_consumer.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "router/thread_name.h"

namespace switchboard::router {

namespace {

std::string js_error(natsStatus s, jsErrCode code) {
  std::string out = natsStatus_GetText(s);
  if (code != 0) out += " (JetStream error " + std::to_string(static_cast<int>(code)) + ")";
  const char* last = nats_GetLastError(nullptr);
  if (last != nullptr && *last != '\0') out += ": " + std::string(last);
  return out;
}

// The messages of one fetch, and how many of them the router has not settled yet.
struct Batch {
  struct Entry {
    natsMsg* msg = nullptr;
    NatsHeaders headers;  // what the router's view of the message points into
    uint64_t attempts = 1;
    bool settled = false;
    Disposition disposition = Disposition::Retry;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Entry> entries;
  size_t unsettled = 0;
};

}  // namespace

JetStreamConsumer::JetStreamConsumer(NatsClient& nats, std::string route, std::string subject,
                                     route::JetStreamSpec spec, Handler handler, ErrorLog log,
                                     AckPending ack_pending)
    : nats_(nats),
      route_(std::move(route)),
      subject_(std::move(subject)),
      spec_(std::move(spec)),
      handler_(std::move(handler)),
      log_(std::move(log)),
      ack_pending_(std::move(ack_pending)) {}

void JetStreamConsumer::report_ack_pending() {
  if (!ack_pending_ || inbox_sub_ == nullptr) return;
  jsConsumerInfo* ci = nullptr;
  uint64_t generation = 0;
  natsStatus s = nats_.with_jetstream(
      [&](natsConnection*, jsCtx* js) {
        return js_GetConsumerInfo(&ci, js, spec_.stream.c_str(), spec_.durable.c_str(), nullptr, nullptr);
      },
      generation);
  if (s == NATS_OK && ci != nullptr) ack_pending_(route_, ci->NumAckPending);
  jsConsumerInfo_Destroy(ci);
}

JetStreamConsumer::~JetStreamConsumer() { stop(); }

std::string JetStreamConsumer::fingerprint(const std::string& subject, const route::JetStreamSpec& s) {
  std::string f = subject + "|" + s.stream + "|" + s.durable + "|" + std::to_string(s.ack_wait_ms) + "|" +
                  std::to_string(s.max_deliver) + "|" + std::to_string(s.batch) + "|" +
                  std::to_string(s.max_ack_pending);
  for (int64_t b : s.backoff_ms) f += "|" + std::to_string(b);
  return f;
}

// Finds the durable consumer (making it when it does not exist, bringing its settings in
// line with the route when they differ) and subscribes the inbox its messages come to.
bool JetStreamConsumer::bind() {
  std::string problem;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = nats_.with_jetstream(
      [&](natsConnection* conn, jsCtx* js) {
        jsConsumerConfig want;
        jsConsumerConfig_Init(&want);
        want.Durable = spec_.durable.c_str();
        want.AckPolicy = js_AckExplicit;
        want.AckWait = spec_.ack_wait_ms * 1'000'000;
        want.MaxDeliver = spec_.max_deliver;
        want.MaxAckPending = spec_.max_ack_pending;
        want.FilterSubject = subject_.c_str();
        jsConsumerInfo* ci = nullptr;
        natsStatus st = js_GetConsumerInfo(&ci, js, spec_.stream.c_str(), spec_.durable.c_str(), nullptr, &code);
        if (st == NATS_NOT_FOUND && code == JSConsumerNotFoundErr) {
          code = static_cast<jsErrCode>(0);
          st = js_AddConsumer(&ci, js, spec_.stream.c_str(), &want, nullptr, &code);
        } else if (st == NATS_OK && ci != nullptr && ci->Config != nullptr) {
          const jsConsumerConfig& have = *ci->Config;
          const std::string filter = have.FilterSubject != nullptr ? have.FilterSubject : "";
          if (have.DeliverSubject != nullptr && *have.DeliverSubject != '\0') {
            problem = "it is a push consumer (deliver subject '" + std::string(have.DeliverSubject) +
                      "'); a route needs a pull consumer of its own";
            st = NATS_ERR;
          } else if (filter != subject_) {
            problem = "it filters on '" + filter + "', the route reads '" + subject_ +
                      "'; give the route a durable name of its own";
            st = NATS_ERR;
          } else if (have.AckWait != want.AckWait || have.MaxDeliver != want.MaxDeliver ||
                     have.MaxAckPending != want.MaxAckPending || have.AckPolicy != js_AckExplicit) {
            jsConsumerInfo* updated = nullptr;
            jsErrCode ucode = static_cast<jsErrCode>(0);
            natsStatus us = js_UpdateConsumer(&updated, js, spec_.stream.c_str(), &want, nullptr, &ucode);
            jsConsumerInfo_Destroy(updated);
            if (us != NATS_OK) {
              // Bound anyway: the consumer works, with the settings it has.
              log_(route_, "durable consumer '" + spec_.durable + "' keeps its settings: update refused: " +
                               js_error(us, ucode));
            }
          }
        }
        jsConsumerInfo_Destroy(ci);
        if (st != NATS_OK) return st;
        natsInbox* inbox = nullptr;
        st = natsInbox_Create(&inbox);
        if (st != NATS_OK) return st;
        inbox_ = inbox;
        natsInbox_Destroy(inbox);
        st = natsConnection_SubscribeSync(&inbox_sub_, conn, inbox_.c_str());
        // Only answers to our own requests arrive here: at most what was asked for.
        if (st == NATS_OK) natsSubscription_SetPendingLimits(inbox_sub_, -1, -1);
        return st;
      },
      generation_);
  if (s != NATS_OK) {
    // A closed connection is the client's to report (and to rebuild).
    if (s != NATS_CONNECTION_CLOSED) {
      log_(route_, "cannot bind durable consumer '" + spec_.durable + "' on stream '" + spec_.stream +
                       "': " + (problem.empty() ? js_error(s, code) : problem));
    }
    if (inbox_sub_ != nullptr) natsSubscription_Destroy(inbox_sub_);
    inbox_sub_ = nullptr;
    return false;
  }
  next_subject_ = "$JS.API.CONSUMER.MSG.NEXT." + spec_.stream + "." + spec_.durable;
  open_.reset();
  prefetch_remaining_ = 0;
  return true;
}

void JetStreamConsumer::unbind() {
  if (inbox_sub_ == nullptr) return;
  // Only the inbox goes: the durable consumer stays, with what it has not delivered.
  // Messages that came and were not handled are redelivered after their ack wait.
  // cnats 3.4.1's reader does not hold a subscription while it hands it a message (fixed
  // upstream later), and a pull request may still be answered: take the inbox off the
  // connection, let a PING/PONG show that the reader has passed whatever it had for it,
  // then free it. (On a replaced connection the reader is gone already.)
  natsSubscription_Unsubscribe(inbox_sub_);
  nats_.on_connection(generation_, [](natsConnection* c) {
    return natsConnection_Status(c) == NATS_CONN_STATUS_CONNECTED ? natsConnection_FlushTimeout(c, 1000) : NATS_OK;
  });
  natsSubscription_Destroy(inbox_sub_);
  inbox_sub_ = nullptr;
  open_.reset();
  prefetch_remaining_ = 0;
}

void JetStreamConsumer::start() {
  thread_ = std::thread([this] {
    name_this_thread("sb-js-" + route_);
    loop();
  });
}

void JetStreamConsumer::stop() {
  stopping_ = true;
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  unbind();
}

// NAK delays follow the route's backoff list by attempt; the last entry repeats.
int64_t JetStreamConsumer::backoff_for(uint64_t attempts) const {
  if (spec_.backoff_ms.empty()) return 0;
  size_t idx = std::min<size_t>(static_cast<size_t>(attempts > 0 ? attempts - 1 : 0), spec_.backoff_ms.size() - 1);
  return spec_.backoff_ms[idx];
}

namespace {
// How long a waiting pull request stays open at the server, and how long fetch() waits
// at a time before it lets the loop look at the connection and the stop flag.
constexpr auto kPullExpiry = std::chrono::milliseconds(1000);
constexpr int64_t kWaitSliceMs = 250;
// Answers to a request can still be on the way when it expires.
constexpr auto kExpiryMargin = std::chrono::milliseconds(250);
}  // namespace

void JetStreamConsumer::loop() {
  int64_t retry_ms = 250;
  auto next_report = Clock::now();
  std::vector<natsMsg*> batch;
  while (!stopping_) {
    // A rebuilt connection: the inbox made on the old one receives nothing more.
    if (inbox_sub_ != nullptr && nats_.generation() != generation_) unbind();
    if (inbox_sub_ != nullptr && Clock::now() >= next_report) {
      report_ack_pending();
      next_report = Clock::now() + std::chrono::seconds(2);
    }
    if (inbox_sub_ == nullptr && !bind()) {
      // The stream may not exist yet: try again, backing off to 10 s.
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(retry_ms), [this] { return stopping_.load(); });
      retry_ms = std::min<int64_t>(retry_ms * 2, 10'000);
      continue;
    }
    retry_ms = 250;
    batch.clear();
    bool usable = fetch(batch);
    if (!batch.empty()) run_batch(batch);
    for (natsMsg* m : batch) natsMsg_Destroy(m);
    if (!usable) {
      unbind();
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_.load(); });
    }
  }
  release_unhandled();
}

void JetStreamConsumer::release_unhandled() {
  if (inbox_sub_ == nullptr) return;
  size_t released = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(1);
  while (Clock::now() < deadline) {
    natsMsg* m = nullptr;
    bool ended = false;
    // A request sent ahead is answered at once; wait for the rest of it, not for more.
    if (!next(prefetch_remaining_ > 0 ? 50 : 0, m, ended)) break;
    if (m == nullptr) {
      if (ended || prefetch_remaining_ > 0) continue;
      break;
    }
    settle_on_server(m, "-NAK");
    natsMsg_Destroy(m);
    ++released;
  }
  if (released > 0) nats_.flush(1000);
}

bool JetStreamConsumer::request(int64_t batch, bool no_wait) {
  std::string body = "{\"batch\":" + std::to_string(batch);
  body += no_wait ? ",\"no_wait\":true}"
                  : ",\"expires\":" +
                        std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(kPullExpiry).count()) + "}";
  natsStatus s = nats_.on_connection(generation_, [&](natsConnection* conn) {
    return natsConnection_PublishRequestString(conn, next_subject_.c_str(), inbox_.c_str(), body.c_str());
  });
  return s == NATS_OK;
}

// The next answer on the inbox: a message (true, in `msg`), or a status that ended a
// request (true, `msg` null, `ended` set), or nothing within `wait_ms` (true, both null
// and unset). False when the inbox is unusable (its connection went away).
bool JetStreamConsumer::next(int64_t wait_ms, natsMsg*& msg, bool& ended) {
  msg = nullptr;
  ended = false;
  natsMsg* m = nullptr;
  natsStatus s = natsSubscription_NextMsg(&m, inbox_sub_, wait_ms);
  if (s == NATS_TIMEOUT || s == NATS_SLOW_CONSUMER) return true;
  if (s != NATS_OK) return false;
  const char* reply = natsMsg_GetReply(m);
  if (reply != nullptr && std::strncmp(reply, "$JS.ACK.", 8) == 0) {
    msg = m;
    if (open_) {
      if (--open_->remaining <= 0) open_.reset();
    } else if (prefetch_remaining_ > 0) {
      --prefetch_remaining_;
    }
    return true;
  }
  // A status: 100 (a heartbeat), 404 (nothing there, for a no-wait request), 408 (a
  // request expired), 409 (the server ended a request: too many waiting, the consumer
  // was deleted, ...).
  const char* code = nullptr;
  const char* description = nullptr;
  natsMsgHeader_Get(m, "Status", &code);
  natsMsgHeader_Get(m, "Description", &description);
  const std::string c = code != nullptr ? code : "";
  const std::string what = description != nullptr ? description : "";
  natsMsg_Destroy(m);
  if (c == "100") return true;
  ended = true;
  prefetch_remaining_ = 0;  // a no-wait request ends with a status when it has less to give
  if (c == "408") open_.reset();
  if (c == "409") {
    open_.reset();
    log_(route_, "pull request ended by the server: " + what);
    // A deleted consumer is made again by the next bind.
    if (what.find("Deleted") != std::string::npos) return false;
  }
  return true;
}

// Up to a batch: first what already came (answers to a waiting request that outlived the
// last fetch), then what the server has now (a no-wait request, answered at once); when it
// has nothing, a waiting request, returned from as soon as its first message is here so
// that a lone event does not wait for a batch to fill.
bool JetStreamConsumer::fetch(std::vector<natsMsg*>& out) {
  const auto want = static_cast<size_t>(spec_.batch);
  natsMsg* m = nullptr;
  bool ended = false;
  auto take_queued = [&] {
    while (out.size() < want) {
      if (!next(0, m, ended)) return false;
      if (m != nullptr) {
        out.push_back(m);
      } else if (!ended) {
        break;  // nothing more queued
      }
    }
    return true;
  };
  // After a full batch the next one was asked for before it ran (prefetch): it is here, or
  // on its way.
  auto ask_ahead = [&] {
    if (out.size() >= want && !open_ && !stopping_ && request(static_cast<int64_t>(want), true)) {
      prefetch_remaining_ = static_cast<int64_t>(want);
    }
    return true;
  };
  if (!take_queued()) return false;
  if (out.size() >= want) return ask_ahead();
  if (prefetch_remaining_ > 0) {
    auto deadline = Clock::now() + std::chrono::seconds(2);
    while (out.size() < want && prefetch_remaining_ > 0 && Clock::now() < deadline && !stopping_) {
      if (!next(kWaitSliceMs, m, ended)) return false;
      if (m != nullptr) out.push_back(m);
    }
    prefetch_remaining_ = 0;  // answered, or given up on: what still comes is taken later
    if (!out.empty()) return ask_ahead();
  }
  if (open_ && Clock::now() >= open_->expires + kExpiryMargin) open_.reset();
  if (!open_) {
    if (!request(static_cast<int64_t>(want - out.size()), true)) return false;
    // Answered at once: the messages there are, then a status when fewer than asked for.
    auto deadline = Clock::now() + std::chrono::seconds(2);
    while (out.size() < want && Clock::now() < deadline) {
      if (!next(kWaitSliceMs, m, ended)) return false;
      if (m != nullptr) {
        out.push_back(m);
      } else if (ended) {
        break;
      }
      if (stopping_) return true;
    }
    if (!out.empty()) return take_queued() && ask_ahead();
    if (!request(static_cast<int64_t>(want), false)) return false;
    open_ = Pull{Clock::now() + kPullExpiry, static_cast<int64_t>(want)};
  } else if (!out.empty()) {
    return true;  // the open request brings the rest
  }
  // Wait on the open request for a first message, a slice at a time.
  while (out.empty() && open_ && !stopping_) {
    if (!next(kWaitSliceMs, m, ended)) return false;
    if (m != nullptr) out.push_back(m);
    if (open_ && Clock::now() >= open_->expires + kExpiryMargin) open_.reset();
  }
  return take_queued();
}

// Acknowledgements go to the message's reply subject, as cnats' natsMsg_Ack would send
// them; the messages come from a plain subscription, which natsMsg_Ack does not take.
void JetStreamConsumer::settle_on_server(natsMsg* msg, const char* body) {
  const char* reply = natsMsg_GetReply(msg);
  if (reply == nullptr) return;
  std::string error;
  if (!nats_.publish(reply, {}, body, error)) {
    // Not acknowledged: the server redelivers after the ack wait.
    log_(route_, "acknowledgement not sent: " + error);
  }
}

// Hands every message of a fetch to the router, whose destination publishes go out without
// waiting for one another; then waits until every message is settled, and only then
// acknowledges. The client answers every publish within its timeout (and gives up on one
// itself when the connection goes), so this wait ends.
void JetStreamConsumer::run_batch(const std::vector<natsMsg*>& msgs) {
  auto batch = std::make_shared<Batch>();
  batch->entries.resize(msgs.size());  // never resized again: views point into it
  batch->unsettled = batch->entries.size();
  for (size_t i = 0; i < msgs.size(); ++i) {
    auto& e = batch->entries[i];
    e.msg = msgs[i];
    jsMsgMetaData* meta = nullptr;
    std::string id_base;
    if (natsMsg_GetMetaData(&meta, e.msg) == NATS_OK) {
      e.attempts = meta->NumDelivered;
      id_base = std::string(meta->Stream) + ":" + std::to_string(meta->Sequence.Stream);
      jsMsgMetaData_Destroy(meta);
    }
    NatsMessage message = view_of(e.msg, e.headers);
    JetStreamDelivery d{e.msg, message, e.attempts, e.attempts >= static_cast<uint64_t>(spec_.max_deliver),
                        std::move(id_base)};
    handler_(d, [batch, i](Disposition disposition) {
      std::lock_guard lock(batch->mu);
      auto& entry = batch->entries[i];
      if (entry.settled) return;
      entry.settled = true;
      entry.disposition = disposition;
      if (--batch->unsettled == 0) batch->cv.notify_all();
    });
  }
  {
    std::unique_lock lock(batch->mu);
    while (!batch->cv.wait_for(lock, std::chrono::seconds(30), [&] { return batch->unsettled == 0; })) {
      // Should not happen (every publish is answered or given up on within seconds); if
      // it does, say so rather than stall in silence.
      log_(route_, std::to_string(batch->unsettled) + " events of a batch still wait for their publishes");
    }
  }
  // Core NATS destinations and dead letters are confirmed by a flush: the server has them
  // before the source is acknowledged. If that fails, nothing is acknowledged: the events
  // come back and are published again (JetStream destinations drop the duplicates by
  // Nats-Msg-Id).
  // With the connection away a flush can only time out; while stopping, the grace period
  // is short and the server redelivers what is not acknowledged anyway.
  bool flushed = nats_.connected() && nats_.flush(stopping_ ? 1000 : 5000);
  for (auto& e : batch->entries) {
    if (e.disposition == Disposition::Retry) {
      int64_t delay_ns = backoff_for(e.attempts) * 1'000'000;
      std::string body = delay_ns > 0 ? "-NAK {\"delay\":" + std::to_string(delay_ns) + "}" : "-NAK";
      settle_on_server(e.msg, body.c_str());
    } else if (flushed) {
      settle_on_server(e.msg, "+ACK");
    } else {
      settle_on_server(e.msg, "-NAK");
    }
  }
}

}  // namespace switchboard::router
