#include "router/jetstream_consumer.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
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
  jsCtx* js = nats_.jetstream();
  if (js == nullptr) return false;
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = spec_.stream.c_str();
  so.Config.AckPolicy = js_AckExplicit;
  so.Config.AckWait = spec_.ack_wait_ms * 1'000'000;
  so.Config.MaxDeliver = spec_.max_deliver;
  so.Config.MaxAckPending = spec_.max_ack_pending;
  so.Config.FilterSubject = subject_.c_str();
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_PullSubscribe(&sub_, js, subject_.c_str(), spec_.durable.c_str(), nullptr, &so, &code);
  if (s != NATS_OK) {
    log_(route_, "cannot bind durable consumer '" + spec_.durable + "' on stream '" + spec_.stream +
                     "': " + js_error(s, code));
    sub_ = nullptr;
    return false;
  }
  return true;
}

void JetStreamConsumer::start() {
  thread_ = std::thread([this] { loop(); });
}

void JetStreamConsumer::stop() {
  stopping_ = true;
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (sub_ != nullptr) {
    // Unsubscribe would delete a durable consumer; destroy only detaches from it.
    natsSubscription_Destroy(sub_);
    sub_ = nullptr;
  }
}

void JetStreamConsumer::loop() {
  int64_t retry_ms = 250;
  auto next_report = std::chrono::steady_clock::now();
  while (!stopping_) {
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
      log_(route_, "fetch: " + js_error(s, code));
      natsMsgList_Destroy(&list);
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_.load(); });
      continue;
    }
    std::vector<std::pair<natsMsg*, Disposition>> decided;
    decided.reserve(static_cast<size_t>(list.Count));
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* m = list.Msgs[i];
      jsMsgMetaData* meta = nullptr;
      uint64_t attempts = 1;
      std::string id_base;
      if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
        attempts = meta->NumDelivered;
        id_base = std::string(meta->Stream) + ":" + std::to_string(meta->Sequence.Stream);
        jsMsgMetaData_Destroy(meta);
      }
      NatsHeaders headers;
      NatsMessage message = view_of(m, headers);
      JetStreamDelivery d{m, message, attempts,
                          attempts >= static_cast<uint64_t>(spec_.max_deliver), id_base};
      decided.emplace_back(m, handler_(d));
      // NAK delays follow the route's backoff list by attempt; the last entry repeats.
      if (decided.back().second == Disposition::Retry) {
        int64_t delay = 0;
        if (!spec_.backoff_ms.empty()) {
          size_t idx = std::min<size_t>(static_cast<size_t>(attempts > 0 ? attempts - 1 : 0),
                                        spec_.backoff_ms.size() - 1);
          delay = spec_.backoff_ms[idx];
        }
        natsMsg_NakWithDelay(m, delay, nullptr);  // milliseconds
      }
    }
    // Core NATS destinations are confirmed by a flush: the server has them before the
    // source is acknowledged.
    // If that fails, nothing is acknowledged: the events come back and are published again
    // (JetStream destinations drop the duplicates by Nats-Msg-Id).
    bool flushed = nats_.flush(5000);
    for (auto& [m, disposition] : decided) {
      if (disposition != Disposition::Ack) continue;
      if (flushed) natsMsg_Ack(m, nullptr);
      else natsMsg_Nak(m, nullptr);
    }
    natsMsgList_Destroy(&list);
  }
}

}  // namespace switchboard::router
