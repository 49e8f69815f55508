// At-least-once delivery from a JetStream stream: one durable pull consumer per route and a
// thread that pulls in batches and hands each message to the router. The router publishes
// a batch's destinations without waiting for each answer and settles every message once
// all of its publishes are confirmed (or one failed); the consumer then acknowledges it, or
// NAKs it with the route's backoff. After maxDeliver attempts the event is dead-lettered.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/route/spec.h"
#include "router/nats_client.h"

namespace switchboard::router {

// What the router decided for one message.
enum class Disposition { Ack, Retry };

struct JetStreamDelivery {
  natsMsg* msg;
  NatsMessage message;      // valid until the message is settled
  uint64_t attempts;        // 1 on first delivery
  bool last_attempt;        // attempts >= maxDeliver: dead-letter instead of retrying
  std::string id_base;      // "<stream>:<sequence>": destination Nats-Msg-Id prefix
};

class JetStreamConsumer {
 public:
  // Called exactly once per message, on any thread, when its fate is known.
  using Settle = std::function<void(Disposition)>;
  // Runs on the consumer's thread; may settle at once or later.
  using Handler = std::function<void(const JetStreamDelivery&, Settle)>;
  using ErrorLog = std::function<void(const std::string& route, const std::string& error)>;
  // Called every 2 seconds with the consumer's count of delivered, unacknowledged events.
  using AckPending = std::function<void(const std::string& route, int64_t pending)>;

  JetStreamConsumer(NatsClient& nats, std::string route, std::string subject, route::JetStreamSpec spec,
                    Handler handler, ErrorLog log, AckPending ack_pending = nullptr);
  ~JetStreamConsumer();

  void start();
  // Stops fetching; the batch in hand is finished (every message settled, then acked or
  // NAKed) first.
  void stop();
  // Identity of the consumer configuration: a change means a new consumer.
  static std::string fingerprint(const std::string& subject, const route::JetStreamSpec& spec);

 private:
  using Clock = std::chrono::steady_clock;
  // One pull request sent to the server and not yet answered in full.
  struct Pull {
    Clock::time_point expires;
    int64_t remaining;
  };

  void loop();
  bool bind();
  void unbind();
  // Fills `out` with up to spec_.batch messages. Returns false when the inbox is unusable
  // (the connection went away, the consumer was deleted).
  bool fetch(std::vector<natsMsg*>& out);
  bool request(int64_t batch, bool no_wait);
  bool next(int64_t wait_ms, natsMsg*& msg, bool& ended);
  void run_batch(const std::vector<natsMsg*>& msgs);
  // On the way out: NAKs what came and will not be handled, so that another replica gets
  // it at once instead of after the ack wait.
  void release_unhandled();
  void settle_on_server(natsMsg* msg, const char* body);
  int64_t backoff_for(uint64_t attempts) const;
  void report_ack_pending();

  NatsClient& nats_;
  std::string route_, subject_;
  route::JetStreamSpec spec_;
  Handler handler_;
  ErrorLog log_;
  AckPending ack_pending_;
  // The pull protocol is spoken here over a private inbox rather than through cnats'
  // natsSubscription_Fetch, which in 3.4.1 writes past its message array when answers to
  // an earlier request are waiting (nats.c #749, fixed after 3.4.1): see docs/router.md.
  natsSubscription* inbox_sub_ = nullptr;
  std::string inbox_;
  std::string next_subject_;   // $JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>
  std::optional<Pull> open_;   // the waiting request, while it may still bring messages
  // Messages still to come for the no-wait request sent ahead after a full batch (so that
  // the server sends the next batch while this one runs); 0 when none is outstanding.
  int64_t prefetch_remaining_ = 0;
  uint64_t generation_ = 0;    // of the connection inbox_sub_ was made on
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace switchboard::router
