#include "router/jetstream_consumer.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <vector>

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
  if (!ack_pending_ || sub_ == nullptr) return;
  jsConsumerInfo* ci = nullptr;
  if (natsSubscription_GetConsumerInfo(&ci, sub_, nullptr, nullptr) == NATS_OK && ci != nullptr) {
    ack_pending_(route_, ci->NumAckPending);
  }
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

bool JetStreamConsumer::subscribe() {
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = spec_.stream.c_str();
  so.Config.AckPolicy = js_AckExplicit;
  so.Config.AckWait = spec_.ack_wait_ms * 1'000'000;
  so.Config.MaxDeliver = spec_.max_deliver;
  so.Config.MaxAckPending = spec_.max_ack_pending;
  so.Config.FilterSubject = subject_.c_str();
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = nats_.js_pull_subscribe(&sub_, subject_, spec_.durable, &so, &code, generation_);
  if (s != NATS_OK) {
    // A closed connection is the client's to report (and to rebuild).
    if (s != NATS_CONNECTION_CLOSED) {
      log_(route_, "cannot bind durable consumer '" + spec_.durable + "' on stream '" + spec_.stream +
                       "': " + js_error(s, code));
    }
    sub_ = nullptr;
    return false;
  }
  return true;
}

void JetStreamConsumer::unbind() {
  if (sub_ == nullptr) return;
  // Unsubscribe would delete a durable consumer; destroy only detaches from it.
  natsSubscription_Destroy(sub_);
  sub_ = nullptr;
}

void JetStreamConsumer::start() {
  thread_ = std::thread([this] { loop(); });
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

void JetStreamConsumer::loop() {
  int64_t retry_ms = 250;
  auto next_report = std::chrono::steady_clock::now();
  while (!stopping_) {
    // A rebuilt connection: the subscription made on the old one fetches nothing more.
    if (sub_ != nullptr && nats_.generation() != generation_) unbind();
    if (sub_ != nullptr && std::chrono::steady_clock::now() >= next_report) {
      report_ack_pending();
      next_report = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    }
    if (sub_ == nullptr && !subscribe()) {
      // The stream may not exist yet: try again, backing off to 10 s.
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(retry_ms), [this] { return stopping_.load(); });
      retry_ms = std::min<int64_t>(retry_ms * 2, 10'000);
      continue;
    }
    retry_ms = 250;
    natsMsgList list{nullptr, 0};
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = natsSubscription_Fetch(&list, sub_, spec_.batch, 500, &code);
    if (s == NATS_TIMEOUT) continue;
    if (s != NATS_OK) {
      if (s != NATS_CONNECTION_CLOSED) log_(route_, "fetch: " + js_error(s, code));
      natsMsgList_Destroy(&list);
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_.load(); });
      continue;
    }
    run_batch(list);
    natsMsgList_Destroy(&list);
  }
}

// Hands every message of a fetch to the router, whose destination publishes go out without
// waiting for one another; then waits until every message is settled, and only then
// acknowledges. The client answers every publish within its timeout (and gives up on one
// itself when the connection goes), so this wait ends.
void JetStreamConsumer::run_batch(natsMsgList& list) {
  auto batch = std::make_shared<Batch>();
  batch->entries.resize(static_cast<size_t>(list.Count));  // never resized again: views point into it
  batch->unsettled = batch->entries.size();
  for (int i = 0; i < list.Count; ++i) {
    auto& e = batch->entries[static_cast<size_t>(i)];
    e.msg = list.Msgs[i];
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
      auto& entry = batch->entries[static_cast<size_t>(i)];
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
  bool flushed = nats_.flush(5000);
  for (auto& e : batch->entries) {
    if (e.disposition == Disposition::Retry) {
      natsMsg_NakWithDelay(e.msg, backoff_for(e.attempts), nullptr);  // milliseconds
    } else if (flushed) {
      natsMsg_Ack(e.msg, nullptr);
    } else {
      natsMsg_Nak(e.msg, nullptr);
    }
  }
}

}  // namespace switchboard::router
