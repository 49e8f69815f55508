// A thin owner of one cnats connection: options from configuration (several URLs,
// reconnect with backoff and jitter, TLS, user/password, token, NKey seed, creds file),
// publishing with headers, queue subscriptions, JetStream access and counters. It knows
// nothing of routes.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::router {

struct NatsConfig {
  std::vector<std::string> urls{"nats://127.0.0.1:4222"};
  std::string name = "switchboard-router";  // connection name; carries the pod name
  int64_t reconnect_wait_ms = 250;           // first delay; cnats adds jitter
  int64_t reconnect_jitter_ms = 250;
  int64_t connect_timeout_ms = 2000;
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

  NatsClient() = default;
  ~NatsClient();
  NatsClient(const NatsClient&) = delete;
  NatsClient& operator=(const NatsClient&) = delete;

  // Connects. When no server answers yet it returns true and keeps trying in the
  // background; when a server refuses (credentials, TLS, permissions) or the configuration
  // is wrong (unreadable certificate, bad seed), it returns false with the reason.
  bool connect(const NatsConfig& config, std::string& error);

  // Async queue subscription; the handler runs on the subscription's delivery thread.
  // Returns an id for unsubscribe(), or 0 with an error.
  uint64_t subscribe(const std::string& subject, const std::string& queue, Handler handler,
                     std::string& error);
  void unsubscribe(uint64_t id);

  bool publish(std::string_view subject, const NatsHeaders& headers, std::string_view data,
               std::string& error);
  // Publishes to a stream and waits for its acknowledgement; `msg_id` (Nats-Msg-Id) lets
  // the stream drop a duplicate of a redelivered event.
  bool js_publish(std::string_view subject, const NatsHeaders& headers, std::string_view data,
                  const std::string& msg_id, int64_t timeout_ms, std::string& error);
  bool flush(int64_t timeout_ms);

  // Stops delivery on every subscription, lets handlers finish what they hold, and
  // flushes what was published; waits at most `timeout_ms`.
  void drain(int64_t timeout_ms);

  bool connected() const;
  struct Counts {
    uint64_t in_msgs = 0, in_bytes = 0, out_msgs = 0, out_bytes = 0, reconnects = 0;
  };
  Counts counts() const;

  natsConnection* connection() const { return conn_; }
  jsCtx* jetstream();

 private:
  struct Subscription {
    uint64_t id;
    natsSubscription* sub;
    std::unique_ptr<Handler> handler;
  };
  static void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);

  natsOptions* opts_ = nullptr;
  natsConnection* conn_ = nullptr;
  jsCtx* js_ = nullptr;
  std::mutex mu_;
  std::vector<Subscription> subs_;
  uint64_t next_id_ = 1;
};

// Reads a whole small file (a password, a token), trimming one trailing newline.
bool read_secret_file(const std::string& path, std::string& out, std::string& error);

}  // namespace switchboard::router
