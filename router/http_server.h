// The router's operational HTTP endpoints: /metrics for Prometheus, /healthz for the
// kubelet's liveness probe, /readyz for its readiness probe.
//
// A small server of our own on plain sockets, not cpprestsdk's http_listener: that
// listener (2.10.18) terminates the process on a chunked body with a chunk size of -1
// (std::bad_alloc escapes its I/O thread), and sets no limit on header size, body size or
// idle time, with no hook before its parsing. Three GET endpoints need none of its
// features, so this server reads a request head of at most 16 KiB within 5 seconds (the
// whole head, however slowly it trickles), never reads a body, serves one request at a
// time per connection (keep-alive), and holds at most 32 connections: a new one makes
// room by closing the one that has waited longest for a request, so idle clients cannot
// lock out the kubelet's probes. cpprestsdk stays the HTTP client of the Kubernetes API.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace switchboard::router {

struct HttpServerOptions {
  std::string address = "0.0.0.0";  // an IPv4 or IPv6 address, or a host name
  uint16_t port = 9090;
};

class HttpServer {
 public:
  // The body of GET /metrics, in the Prometheus text format.
  using MetricsSource = std::function<std::string()>;
  // True when ready; otherwise sets `reason`, which becomes the 503 body. Keep the reason
  // free of secrets: anyone who can reach the port can read it.
  using ReadinessCheck = std::function<bool(std::string& reason)>;
  // The same for /healthz (the liveness probe): false makes the kubelet restart the pod, so
  // only for what a restart can cure. Without one, /healthz always answers "ok".
  using HealthCheck = std::function<bool(std::string& reason)>;

  // The callbacks run on the connections' threads, possibly several at once.
  HttpServer(HttpServerOptions options, MetricsSource metrics, ReadinessCheck ready,
             HealthCheck healthy = nullptr);
  ~HttpServer();  // stops
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Listens; throws std::runtime_error naming the address when that fails (port in use,
  // address not local). Calling it while running does nothing.
  void Start();
  // Stops accepting, closes open connections and returns once the listener is closed.
  // Safe to call when not running, and more than once.
  void Stop();
  bool running() const;

  const HttpServerOptions& options() const { return options_; }

 private:
  struct Impl;

  HttpServerOptions options_;
  std::unique_ptr<Impl> impl_;
  mutable std::mutex mu_;       // serialises Start and Stop
  bool running_ = false;
};

}  // namespace switchboard::router
