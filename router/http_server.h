// The router's operational HTTP endpoints: /metrics for Prometheus, /healthz for the
// kubelet's liveness probe, /readyz for its readiness probe.
//
// It runs on cpprestsdk's http_listener because the project standardises on cpprestsdk for
// HTTP; one HTTP stack means one set of TLS, threading and bug-fix concerns. cpprestsdk is
// kept out of this header (it drags in Boost.Asio) so users of the router library do not
// compile it.
//
// What cpprestsdk 2.10's listener does not protect against, and this class cannot reach
// (the parsing happens before any handler runs): it sets no limit on header or body size
// and no idle timeout, so a client can hold connections and make it buffer what it sends;
// and a chunked body whose chunk size is -1 or -2 terminates the process (std::bad_alloc
// escapes its I/O thread). Expose the port only to the kubelet and Prometheus (a
// NetworkPolicy), never to event producers or outside the cluster.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace switchboard::router {

struct HttpServerOptions {
  std::string address = "0.0.0.0";  // IPv4, IPv6 or a host name to resolve
  uint16_t port = 9090;              // cpprestsdk cannot bind port 0; pick a real one
};

class HttpServer {
 public:
  // The body of GET /metrics, in the Prometheus text format.
  using MetricsSource = std::function<std::string()>;
  // True when ready; otherwise sets `reason`, which becomes the 503 body. Keep the reason
  // free of secrets: anyone who can reach the port can read it.
  using ReadinessCheck = std::function<bool(std::string& reason)>;

  // The callbacks run on cpprestsdk's thread pool, possibly several at once.
  HttpServer(HttpServerOptions options, MetricsSource metrics, ReadinessCheck ready);
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
