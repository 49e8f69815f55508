// The controller's side of NATS: one connection per distinct NATS configuration (URLs and
// credentials) among the EventRouters it manages, a subscription to each router's
// heartbeat subject, and JetStream consumer deletion for the finalizer. Credentials come
// from the Secrets the EventRouter names, read with the Kubernetes client.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "controller/json_util.h"

namespace switchboard::kube {
class Client;
}

namespace switchboard::router {
class Logger;
class NatsClient;
}  // namespace switchboard::router

namespace switchboard::controller {

// A NATS configuration with the credentials' contents (not file names).
struct NatsSettings {
  std::vector<std::string> urls;
  std::string user, password, token;
  std::string nkey_seed, nkey_public;
  std::string creds;
  std::string tls_ca, tls_cert, tls_key;
  // Identifies the configuration, secrets included (as a digest): equal keys share a
  // connection.
  std::string key() const;
};

// Reads the Secrets an EventRouter names. On failure returns false with a Degraded
// reason (SecretNotFound, SecretKeyMissing) and a message; other API errors throw.
bool nats_settings(kube::Client& client, const Json& router, NatsSettings& out, std::string& reason,
                   std::string& message);

// What the reconcilers need of NATS; a fake in tests.
class FleetNats {
 public:
  virtual ~FleetNats() = default;
  // Makes sure the router's heartbeats are received over a connection with `settings`.
  // Returns an empty string, or why not (the server refused the credentials...).
  virtual std::string watch(const std::string& router_key, const std::string& subject,
                            const NatsSettings& settings) = 0;
  // Stops receiving the router's heartbeats; closes a connection no router uses.
  virtual void forget(const std::string& router_key) = 0;
  // Whether watch() was called for the router (and it was not forgotten since).
  virtual bool watching(const std::string& router_key) const = 0;
  // Why the connection the router is watched over is not up, or empty when it is (or
  // when the router is not watched). A server that refuses without saying so (one that
  // hangs up on a TLS client lacking the certificate it wants) lets watch() succeed and
  // the connection retry for ever: this is how that shows.
  virtual std::string connection_problem(const std::string& router_key) const {
    (void)router_key;
    return "";
  }
  // Deletes a durable JetStream consumer over the router's connection. A consumer or
  // stream that does not exist counts as deleted. Returns an empty string or the error.
  virtual std::string delete_consumer(const std::string& router_key, const std::string& stream,
                                      const std::string& durable) = 0;
};

class NatsFleet : public FleetNats {
 public:
  using OnHeartbeat = std::function<void(const std::string& router_key, std::string_view payload)>;
  // `name` is the connection name (switchboard-controller/<pod>); credentials are written
  // to files in a private folder under $TMPDIR, removed when the connection closes.
  // `stuck_after_ms`: see stuck(); 0 takes the NATS client's own limit (four connect
  // timeouts, at least 10 s).
  NatsFleet(std::string name, OnHeartbeat on_heartbeat, router::Logger& log, int64_t stuck_after_ms = 0);
  ~NatsFleet() override;

  std::string watch(const std::string& router_key, const std::string& subject, const NatsSettings& settings) override;
  void forget(const std::string& router_key) override;
  bool watching(const std::string& router_key) const override;
  std::string connection_problem(const std::string& router_key) const override;
  std::string delete_consumer(const std::string& router_key, const std::string& stream,
                              const std::string& durable) override;
  size_t connections() const;
  // Why the controller's NATS side is hung, or empty when it is not: a connection whose
  // client has not answered for `stuck_after_ms` (cnats 3.4.1, reconnecting to a server
  // that takes the TCP connection and never answers the CONNECT, loops for good holding
  // its connection lock, and whoever calls into that connection waits with it), or a
  // first connection that has not returned for as long. For the controller's liveness
  // probe: never waits for a connection or for the lock the reconcilers take.
  std::string stuck() const;

 private:
  struct Connection;
  struct Watch {
    std::string connection;  // NatsSettings::key()
    std::string subject;
    uint64_t subscription = 0;
  };
  void release_locked(const std::string& router_key);
  // Erases a connection, and first its entry in what stuck() looks at.
  void erase_locked(std::map<std::string, std::unique_ptr<Connection>>::iterator it);

  std::string name_;
  OnHeartbeat on_heartbeat_;
  router::Logger& log_;
  int64_t stuck_after_ms_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Connection>> connections_;
  std::map<std::string, Watch> watches_;

  // What stuck() reads, under a lock of its own that is never held while calling into a
  // connection: the connections made (by their URLs, for the message) and the first
  // connection being made, if any, with when it began.
  mutable std::mutex health_mu_;
  std::vector<std::pair<std::string, const router::NatsClient*>> clients_;
  std::string connecting_urls_;
  std::chrono::steady_clock::time_point connecting_since_{};
};

}  // namespace switchboard::controller
