// At-least-once delivery from a JetStream stream: one durable pull consumer per route and a
// thread that fetches in batches, hands each message to the router, and acknowledges it
// only after every destination publish is confirmed. A failure NAKs with the route's
// backoff; after maxDeliver attempts the event is dead-lettered.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "core/route/spec.h"
#include "router/nats_client.h"

namespace switchboard::router {

// What the router decided for one message.
enum class Disposition { Ack, Retry };

struct JetStreamDelivery {
  natsMsg* msg;
  NatsMessage message;
  uint64_t attempts;        // 1 on first delivery
  bool last_attempt;        // attempts >= maxDeliver: dead-letter instead of retrying
  std::string id_base;      // "<stream>:<sequence>": destination Nats-Msg-Id prefix
};

class JetStreamConsumer {
 public:
  using Handler = std::function<Disposition(const JetStreamDelivery&)>;
  using ErrorLog = std::function<void(const std::string& route, const std::string& error)>;
  // Called every 2 seconds with the consumer's count of delivered, unacknowledged events.
  using AckPending = std::function<void(const std::string& route, int64_t pending)>;

  JetStreamConsumer(NatsClient& nats, std::string route, std::string subject, route::JetStreamSpec spec,
                    Handler handler, ErrorLog log, AckPending ack_pending = nullptr);
  ~JetStreamConsumer();

  void start();
  // Stops fetching; the batch in hand is finished (acked or NAKed) first.
  void stop();
  // Identity of the consumer configuration: a change means a new consumer.
  static std::string fingerprint(const std::string& subject, const route::JetStreamSpec& spec);

 private:
  void loop();
  bool subscribe();

  NatsClient& nats_;
  std::string route_, subject_;
  route::JetStreamSpec spec_;
  Handler handler_;
  ErrorLog log_;
  AckPending ack_pending_;
  void report_ack_pending();
  natsSubscription* sub_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace switchboard::router
