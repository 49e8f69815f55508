#include "router/http_server.h"

#include <cpprest/http_listener.h>
#include <cpprest/uri_builder.h>

#include <cctype>
#include <exception>
#include <set>
#include <stdexcept>
#include <utility>

namespace switchboard::router {

namespace http = web::http;
using web::http::experimental::listener::http_listener;

namespace {

constexpr const char* kTextPlain = "text/plain; charset=utf-8";
// What Prometheus expects for the text format; a scraper may refuse anything else.
constexpr const char* kPrometheusText = "text/plain; version=0.0.4; charset=utf-8";

http::http_response text_response(http::status_code status, std::string body,
                                  const char* content_type = kTextPlain) {
  http::http_response response(status);
  response.set_body(std::move(body), content_type);
  return response;
}

// None of these endpoints takes a body, so a client that sends one is not a scraper or a
// probe: it gets its answer and loses the connection instead of keeping it open for more.
// (This does not bound memory: cpprestsdk reads the whole body before it sends any reply.)
bool has_body(const http::http_request& request) {
  const auto& headers = request.headers();
  if (headers.has(http::header_names::transfer_encoding)) return true;
  uint64_t length = 0;
  return headers.match(http::header_names::content_length, length) && length > 0;
}

// Addresses this process serves. cpprestsdk shares one acceptor per host:port across all
// listeners in the process, so a second listener on a busy host:port does not fail to bind;
// it fails to register, and cpprestsdk's cleanup then tears down the acceptor the first
// listener is using. Refusing the duplicate up front keeps the first server alive.
std::mutex g_bound_mu;
std::set<std::string> g_bound;

std::string bound_key(const HttpServerOptions& options) {
  std::string key = options.address;
  for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return key + ":" + std::to_string(options.port);
}

}  // namespace

struct HttpServer::Impl {
  MetricsSource metrics;
  ReadinessCheck ready;
  std::unique_ptr<http_listener> listener;

  http::http_response respond(const http::http_request& request) const {
    std::string path;
    try {
      path = request.relative_uri().path();
    } catch (const std::exception&) {
      return text_response(http::status_codes::BadRequest, "bad request");
    }
    const bool known = path == "/metrics" || path == "/healthz" || path == "/readyz";
    if (!known) return text_response(http::status_codes::NotFound, "not found");
    if (request.method() != http::methods::GET) {
      auto response = text_response(http::status_codes::MethodNotAllowed, "method not allowed");
      response.headers().add(http::header_names::allow, "GET");
      return response;
    }
    if (path == "/healthz") return text_response(http::status_codes::OK, "ok");
    if (path == "/readyz") {
      std::string reason;
      if (ready && !ready(reason)) {
        return text_response(http::status_codes::ServiceUnavailable,
                             reason.empty() ? "not ready" : std::move(reason));
      }
      return text_response(http::status_codes::OK, "ready");
    }
    return text_response(http::status_codes::OK, metrics ? metrics() : std::string(),
                         kPrometheusText);
  }

  void handle(const http::http_request& request) const {
    http::http_response response;
    try {
      response = respond(request);
    } catch (...) {
      // A failing callback must not leak its message (or crash the listener thread).
      response = text_response(http::status_codes::InternalError, "internal error");
    }
    if (has_body(request)) response.headers().add(http::header_names::connection, "close");
    // The reply task fails when the client goes away mid-response. pplx terminates the
    // process for a task exception nobody observes; cpprestsdk 2.10.18 happens not to
    // trigger that for reply tasks today, but that rests on its internals, so observe it.
    request.reply(response).then([](const pplx::task<void>& sent) {
      try {
        sent.get();
      } catch (...) {
      }
    });
  }
};

HttpServer::HttpServer(HttpServerOptions options, MetricsSource metrics, ReadinessCheck ready)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  impl_->metrics = std::move(metrics);
  impl_->ready = std::move(ready);
}

HttpServer::~HttpServer() {
  try {
    Stop();
  } catch (...) {
  }
}

void HttpServer::Start() {
  std::lock_guard lock(mu_);
  if (running_) return;
  const std::string where = options_.address + ":" + std::to_string(options_.port);
  const std::string key = bound_key(options_);
  std::lock_guard bound_lock(g_bound_mu);
  if (g_bound.count(key) != 0) {
    throw std::runtime_error("http server: cannot listen on " + where +
                             ": another server in this process listens there");
  }
  try {
    web::uri_builder uri;
    uri.set_scheme("http");
    // uri wants IPv6 literals in brackets.
    const bool v6 = options_.address.find(':') != std::string::npos &&
                    options_.address.front() != '[';
    uri.set_host(v6 ? "[" + options_.address + "]" : options_.address);
    uri.set_port(options_.port);
    uri.set_path("/");
    auto listener = std::make_unique<http_listener>(uri.to_uri());
    Impl* impl = impl_.get();
    auto handler = [impl](const http::http_request& request) { impl->handle(request); };
    listener->support(handler);
    // The catch-all handler above does not see OPTIONS and TRACE: cpprestsdk answers those
    // itself unless a handler is registered for the method, and its TRACE echoes the whole
    // request (headers included) back to the caller.
    listener->support(http::methods::OPTIONS, handler);
    listener->support(http::methods::TRCE, handler);
    listener->open().wait();
    impl_->listener = std::move(listener);
  } catch (const std::exception& e) {
    throw std::runtime_error("http server: cannot listen on " + where + ": " + e.what());
  }
  g_bound.insert(key);
  running_ = true;
}

void HttpServer::Stop() {
  std::lock_guard lock(mu_);
  if (!running_) return;
  running_ = false;
  auto listener = std::move(impl_->listener);
  try {
    listener->close().wait();
  } catch (const std::exception&) {
    // Closing failed part way; the listener's destructor retries and nothing else can be
    // done about it here.
  }
  std::lock_guard bound_lock(g_bound_mu);
  g_bound.erase(bound_key(options_));
}

bool HttpServer::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

}  // namespace switchboard::router
