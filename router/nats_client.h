// A thin owner of one cnats connection: options from configuration (several URLs,
// reconnect with backoff and jitter, TLS, user/password, token, NKey seed, creds file),
// publishing with headers, queue subscriptions, JetStream access and counters. It knows
// nothing of routes.
//
// Two things it adds to cnats:
// - Asynchronous JetStream publishes within a bounded in-flight window, each confirmed
//   (or refused, or timed out) exactly once through a callback.
// - A connection that cnats closed for good (the server refused the credentials twice in
//   a row) is rebuilt: credential files are read again, a new connection is made with
//   backoff, and subscriptions are made again on it. How long it has been closed is
//   visible, so that a liveness probe can give up on a pod that never recovers.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace switchboard::router {

struct NatsConfig {
  std::vector<std::string> urls{"nats://127.0.0.1:4222"};
  std::string name = "switchboard-router";  // connection name; carries the pod name
  int64_t reconnect_wait_ms = 250;           // first delay; cnats adds jitter
  int64_t reconnect_jitter_ms = 250;
  int64_t connect_timeout_ms = 2000;
  // The client PINGs the server this often and counts the connection lost after this many
  // unanswered: a silent cut (packets dropped, no reset) is noticed within about
  // ping_interval_ms * (max_pings_out + 1) and the client reconnects, instead of after
  // cnats' default of two minutes.
  int64_t ping_interval_ms = 10000;
  int max_pings_out = 2;
  // TLS: CA to verify the server; certificate and key for client authentication.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // Credentials: read from files so that they can come from a Secret; never logged.
  std::string user;
  std::string password;
  std::string token;
  std::string nkey_seed_file;
  std::string creds_file;
  // Where user, password and token came from, when they came from files: a rebuilt
  // connection reads them again, so a rotated Secret is picked up without a restart.
  std::string user_file;
  std::string password_file;
  std::string token_file;
  // Asynchronous JetStream publishes unconfirmed at once, over the whole connection.
  int64_t js_max_inflight = 256;
  // A closed connection is rebuilt after this wait, doubling up to the maximum.
  int64_t rebuild_wait_ms = 1000;
  int64_t rebuild_max_wait_ms = 15000;
  // Write what handlers published as soon as a subscription has no message waiting,
  // instead of when cnats' flusher next runs (it lets a millisecond pass to gather more):
  // an event that arrives alone leaves at once, while a busy stream is still written in
  // large batches. The write is a flush (PING/PONG) on a thread of its own.
  bool flush_on_idle = true;
  // What one core NATS subscription may hold that its handler has not taken yet. Beyond
  // either bound cnats drops the newest messages (a "slow consumer"): the router's memory
  // stays bounded, and the drops are counted (dropped()) and logged (State::SlowConsumer).
  int pending_limit_msgs = 65536;
  int pending_limit_bytes = 64 * 1024 * 1024;
  // After how long cnats not answering counts as stuck (stuck_for()); 0: four connect
  // timeouts, at least 10 s.
  int64_t stuck_after_ms = 0;
};

using NatsHeaders = std::vector<std::pair<std::string, std::string>>;

// A received message, valid during the callback.
struct NatsMessage {
  natsMsg* msg;
  std::string_view subject;
  std::string_view data;
  const NatsHeaders* headers;
};

// The view of a cnats message that the router works on; `headers` receives its headers
// (every value of a repeated one) and must outlive the view.
NatsMessage view_of(natsMsg* msg, NatsHeaders& headers);

class NatsClient {
 public:
  using Handler = std::function<void(const NatsMessage&)>;
  // The outcome of one asynchronous JetStream publish: ok, or why not.
  using PublishDone = std::function<void(bool ok, const std::string& error)>;
  // Something about the connection a person should know (closed, rebuilt, a rebuild that
  // failed); `error` is cnats' or the server's reason and never holds a credential.
  // Disconnected, Reconnected, SlowConsumer and AsyncError come from cnats' own threads;
  // the others from the client's. SlowConsumer: a subscription reached its pending limit
  // and messages were dropped (`error` names the subject); cnats says so once per episode,
  // dropped() counts every message. AsyncError: anything else the server or cnats reported
  // outside a call (a publish the server's permissions refused).
  enum class State { Disconnected, Reconnected, Closed, Rebuilt, RebuildFailed, SlowConsumer, AsyncError };
  using StateLog = std::function<void(State state, const std::string& error)>;

  NatsClient() = default;
  ~NatsClient();
  NatsClient(const NatsClient&) = delete;
  NatsClient& operator=(const NatsClient&) = delete;

  // Connects. When no server answers yet it returns true and keeps trying in the
  // background; when a server refuses (credentials, TLS, permissions) or the configuration
  // is wrong (unreadable certificate, bad seed, a creds file without a JWT), it returns
  // false with the reason.
  bool connect(const NatsConfig& config, std::string& error);
  // Called on the client's own thread; set before connect().
  void set_state_log(StateLog log) { state_log_ = std::move(log); }

  // Async queue subscription; the handler runs on the subscription's delivery thread.
  // Returns an id for unsubscribe(), or 0 with an error. The subscription survives a
  // rebuilt connection.
  uint64_t subscribe(const std::string& subject, const std::string& queue, Handler handler,
                     std::string& error);
  void unsubscribe(uint64_t id);

  bool publish(std::string_view subject, const NatsHeaders& headers, std::string_view data,
               std::string& error);
  // Publishes to a stream and waits for its acknowledgement; `msg_id` (Nats-Msg-Id) lets
  // the stream drop a duplicate of a redelivered event.
  bool js_publish(std::string_view subject, const NatsHeaders& headers, std::string_view data,
                  const std::string& msg_id, int64_t timeout_ms, std::string& error);
  // Publishes to a stream without waiting for its acknowledgement. Blocks while
  // js_max_inflight publishes are unconfirmed. `done` runs exactly once, on a cnats thread
  // (or this one), when the stream confirmed or refused the message, or once timeout_ms
  // has passed without an answer (at the latest about a second later, also when the
  // connection went away). Returns false, without calling `done`, when the message could
  // not be sent at all.
  bool js_publish_async(std::string_view subject, const NatsHeaders& headers, std::string_view data,
                        const std::string& msg_id, int64_t timeout_ms, PublishDone done, std::string& error);
  struct JsPublishStats {
    int64_t inflight = 0;       // sent, not yet confirmed
    int64_t max_inflight = 0;   // the most ever unconfirmed at once
    int64_t limit = 0;          // js_max_inflight
    uint64_t confirmed = 0, failed = 0, duplicates = 0;  // duplicates: dropped by Nats-Msg-Id
  };
  JsPublishStats js_publish_stats() const;
  // Waits until no JetStream publish waits for its answer; false after `timeout_ms`.
  bool wait_for_publishes(int64_t timeout_ms);
  // Fails every publish still waiting for its answer now: their `done` runs before this
  // returns (for a caller that is going away).
  void abandon_publishes();
  // Flushes made because a subscription ran out of waiting messages (flush_on_idle).
  uint64_t idle_flushes() const { return idle_flushes_.load(std::memory_order_relaxed); }

  bool flush(int64_t timeout_ms);

  // Stops delivery on every subscription, lets handlers finish what they hold, and
  // flushes what was published; waits at most `timeout_ms`.
  void drain(int64_t timeout_ms);

  bool connected() const;
  // A connection cnats gave up on (it does after the server refused the credentials twice
  // in a row) and no new one yet: how long, and why. Zero while a connection is usable or
  // is reconnecting by itself.
  std::chrono::milliseconds closed_for() const;
  std::string closed_reason() const;
  // Grows by one each time the connection is replaced: whatever holds cnats objects made
  // on the previous one (a JetStream pull subscription) must make them again.
  uint64_t generation() const;

  struct Counts {
    uint64_t in_msgs = 0, in_bytes = 0, out_msgs = 0, out_bytes = 0, reconnects = 0;
  };
  Counts counts() const;
  // Messages dropped because a subscription was over its pending limit, over the client's
  // life: its subscriptions now, and those removed or replaced before.
  uint64_t dropped() const;
  // How long cnats has not answered a look at its connection's state, once that passed
  // NatsConfig::stuck_after_ms; zero otherwise. cnats 3.4.1 can hang for good, holding the
  // connection's lock and growing its buffer, when it reconnects to a server that takes
  // the TCP connection and answers nothing (fixed upstream after 3.4.1): then no publish,
  // flush or rebuild can run, and only a restart helps, so the router's liveness fails.
  std::chrono::milliseconds stuck_for() const;
  // Connections refused for a signature cnats 3.4.1 left out, and made again (see open()).
  uint64_t signature_retries() const { return signature_retries_.load(); }

  // Runs `fn` with the current connection and its JetStream context (both null when there
  // is none); the connection is not replaced while `fn` runs, so keep it short.
  // `generation` receives the connection's generation.
  natsStatus with_jetstream(const std::function<natsStatus(natsConnection*, jsCtx*)>& fn, uint64_t& generation);
  // Runs `fn` on the connection of `generation`; NATS_CONNECTION_CLOSED once that one was
  // replaced, without calling `fn`.
  natsStatus on_connection(uint64_t generation, const std::function<natsStatus(natsConnection*)>& fn);
  // The current connection and JetStream context, for tests and tools: valid until the
  // connection is rebuilt.
  natsConnection* connection() const;
  jsCtx* jetstream();

 private:
  // Subscription callbacks find their client and handler here.
  struct Delivery {
    NatsClient* client;
    Handler handler;
  };
  struct Subscription {
    uint64_t id = 0;
    natsSubscription* sub = nullptr;
    std::unique_ptr<Delivery> handler;
    std::string subject, queue;
    // The subscription's dropped count when last read: cnats answers no more once the
    // subscription is closed (drained, or its connection gone), so that is what counts.
    mutable uint64_t dropped_seen = 0;
  };
  struct InFlight {
    PublishDone done;
    std::chrono::steady_clock::time_point give_up;
    uint64_t generation;
  };
  enum class Opened { Connected, Pending, Refused };
  static void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  void flush_loop();
  static void on_closed(natsConnection*, void* closure);
  static void on_disconnected(natsConnection*, void* closure);
  static void on_reconnected(natsConnection*, void* closure);
  static void on_js_ack(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* err, void* closure);
  // Makes a connection from `config`; on Refused (or a bad configuration) `error` says why.
  Opened open(const NatsConfig& config, natsConnection** conn, std::string& error);
  natsStatus subscribe_on(natsConnection* conn, Subscription& s);
  void supervise();
  bool rebuild(std::string& error);
  void expire_publishes(bool everything, uint64_t generation_below);
  jsCtx* async_context();  // conn_mu_ held (shared)

  NatsConfig config_;        // the supervisor's, once connected
  int64_t js_limit_ = 256;   // js_max_inflight
  uintptr_t key_ = 0;        // what cnats callbacks find this client by
  StateLog state_log_;
  mutable std::shared_mutex conn_mu_;  // conn_, js_, ajs_, generation_: unique to replace
  natsConnection* conn_ = nullptr;
  jsCtx* js_ = nullptr;
  jsCtx* ajs_ = nullptr;  // for asynchronous publishes, with the in-flight bound
  uint64_t generation_ = 0;
  std::mutex js_mu_;      // creating js_ or ajs_ under a shared conn_mu_

  mutable std::mutex mu_;  // subs_
  std::vector<Subscription> subs_;
  std::atomic<uint64_t> dropped_gone_{0};  // dropped() of subscriptions destroyed
  std::atomic<uint64_t> signature_retries_{0};
  // The drops of a subscription at its end, added to dropped_gone_ (call before destroying).
  void count_dropped(const Subscription& s);
  static void on_async_error(natsConnection*, natsSubscription* sub, natsStatus err, void* closure);
  uint64_t next_id_ = 1;

  mutable std::mutex pub_mu_;  // inflight_ and the window
  std::condition_variable pub_cv_;
  std::unordered_map<natsMsg*, InFlight> inflight_;
  int64_t max_inflight_seen_ = 0;
  std::atomic<uint64_t> confirmed_{0}, failed_{0}, duplicates_{0};

  mutable std::mutex sup_mu_;  // what the supervisor knows
  std::condition_variable sup_cv_;
  bool stopping_ = false;
  bool closed_signalled_ = false;
  std::chrono::steady_clock::time_point closed_since_{};  // epoch: not closed
  std::string closed_reason_;
  std::thread supervisor_;
  // The prober looks at the connection's state every half second; while it waits for
  // cnats, probe_since_ns_ holds when it began (steady clock), else 0.
  std::atomic<int64_t> probe_since_ns_{0};
  int64_t stuck_limit_ms_ = 10'000;  // set by connect() before the prober starts
  std::thread prober_;
  void probe_loop();

  // Flush on idle (NatsConfig::flush_on_idle).
  bool flush_on_idle_ = false;           // set once, by connect()
  std::atomic<bool> unflushed_{false};  // a core publish since the last flush began
  std::mutex flush_mu_;
  std::condition_variable flush_cv_;
  bool flush_wanted_ = false;
  bool flush_stopping_ = false;
  std::atomic<uint64_t> idle_flushes_{0};
  std::thread flusher_;
};

// `text` with the user information of every URL in it replaced by "***"
// (nats://alice:secret@host:4222 -> nats://***@host:4222): what a log line, an error or a
// status message may show of a NATS URL. cnats reports a server by the URL it was given,
// credentials included.
std::string redact_url_credentials(std::string_view text);

// Reads a whole small file (a password, a token), trimming one trailing newline.
bool read_secret_file(const std::string& path, std::string& out, std::string& error);

// Checks a creds file the way the server will need it: a user JWT and a user NKey seed
// that signs. The error names the file and what is missing, never its content.
bool check_creds_file(const std::string& path, std::string& error);

}  // namespace switchboard::router
