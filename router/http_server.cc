#include "router/http_server.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace switchboard::router {

namespace {

constexpr size_t kMaxHead = 16 * 1024;     // request line and headers
constexpr int kMaxConnections = 32;        // beyond this, the longest-idle one makes room
constexpr int kIoTimeoutSeconds = 5;       // a request head must be whole within this
using Clock = std::chrono::steady_clock;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

}  // namespace

struct HttpServer::Impl {
  int listen_fd = -1;
  std::thread acceptor;
  std::atomic<bool> stopping{false};
  std::mutex conns_mu;
  std::condition_variable conns_cv;
  // Every open connection, with the moment it began to wait for its next request head
  // (Clock::time_point::max() while a request is being answered).
  std::map<int, Clock::time_point> conns;

  MetricsSource metrics;
  ReadinessCheck ready;
  HealthCheck healthy;

  void accept_loop() {
    while (!stopping.load()) {
      pollfd p{listen_fd, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      {
        std::lock_guard lock(conns_mu);
        if (stopping.load()) {
          ::close(fd);
          continue;
        }
        if (static_cast<int>(conns.size()) >= kMaxConnections && !evict_idle()) {
          ::close(fd);  // every connection is busy answering: the client tries again
          continue;
        }
        conns[fd] = Clock::now();
      }
      std::thread([this, fd] {
        serve(fd);
        std::lock_guard lock(conns_mu);
        conns.erase(fd);
        ::close(fd);
        conns_cv.notify_all();
      }).detach();
    }
  }

  // Full: the connection that has waited longest for a request head is shut down, so that
  // idle or trickling clients cannot lock the kubelet's probes out. conns_mu held. Its
  // thread sees the shutdown, closes the socket and leaves.
  bool evict_idle() {
    auto oldest = conns.end();
    for (auto it = conns.begin(); it != conns.end(); ++it) {
      if (it->second == Clock::time_point::max()) continue;
      if (oldest == conns.end() || it->second < oldest->second) oldest = it;
    }
    if (oldest == conns.end()) return false;
    ::shutdown(oldest->first, SHUT_RDWR);
    oldest->second = Clock::time_point::max();  // not chosen twice
    return true;
  }

  void set_idle(int fd, bool idle) {
    std::lock_guard lock(conns_mu);
    auto it = conns.find(fd);
    if (it != conns.end()) it->second = idle ? Clock::now() : Clock::time_point::max();
  }

  void respond(int fd, int status, std::string_view content_type, const std::string& body, bool close,
               bool allow_get = false) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
    out += "Content-Type: ";
    out += content_type;
    out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    if (allow_get) out += "Allow: GET\r\n";
    if (close) out += "Connection: close\r\n";
    out += "\r\n";
    out += body;
    send_all(fd, out);
  }

  // One connection: requests one after the other (keep-alive), each head bounded in size
  // and time. Bodies are never read: no endpoint takes one, so a request that announces a
  // body is answered and the connection closed.
  void serve(int fd) {
    timeval tv{kIoTimeoutSeconds, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    std::string buf;
    char chunk[4096];
    while (!stopping.load()) {
      // The whole head within the time limit, however it trickles in.
      const auto deadline = Clock::now() + std::chrono::seconds(kIoTimeoutSeconds);
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (buf.size() > kMaxHead) {
          respond(fd, 431, "text/plain", "request head too large", true);
          return;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
          if (!buf.empty()) respond(fd, 408, "text/plain", "request head not received in time", true);
          return;
        }
        pollfd p{fd, POLLIN, 0};
        int ready_fds = ::poll(&p, 1, static_cast<int>(left));
        if (ready_fds < 0 && errno == EINTR) continue;
        if (ready_fds <= 0) continue;  // the deadline check above decides
        ssize_t n = ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
        if (n <= 0) return;  // closed, or shut down by Stop() or to make room
        buf.append(chunk, static_cast<size_t>(n));
      }
      if (end > kMaxHead) {
        respond(fd, 431, "text/plain", "request head too large", true);
        return;
      }
      std::string head = buf.substr(0, end);
      buf.erase(0, end + 4);
      set_idle(fd, false);
      if (!handle(fd, head)) return;
      set_idle(fd, true);
    }
  }

  // Returns false when the connection must close.
  bool handle(int fd, const std::string& head) {
    size_t line_end = head.find("\r\n");
    std::string_view line = std::string_view(head).substr(0, line_end);
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
        line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0 || line.size() - sp2 - 1 != 8) {
      respond(fd, 400, "text/plain", "bad request", true);
      return false;
    }
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    bool http10 = line.substr(sp2 + 1) == "HTTP/1.0";
    bool close = http10;
    bool has_body = false;
    // Headers: only what decides the connection's fate is looked at.
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t next = head.find("\r\n", pos);
      if (next == std::string::npos) next = head.size();
      std::string_view h = std::string_view(head).substr(pos, next - pos);
      size_t colon = h.find(':');
      if (colon == std::string_view::npos) {
        respond(fd, 400, "text/plain", "bad request", true);
        return false;
      }
      std::string name = lower(h.substr(0, colon));
      std::string value = lower(h.substr(colon + 1));
      value.erase(0, value.find_first_not_of(" \t"));
      if (name == "connection" && value.find("close") != std::string::npos) close = true;
      if (name == "transfer-encoding") has_body = true;
      if (name == "content-length" && value.find_first_not_of("0 \t") != std::string::npos) has_body = true;
      pos = next + 2;
    }
    close = close || has_body;
    // Only GET: what Prometheus and the kubelet send.
    if (method != "GET") {
      respond(fd, 405, "text/plain", "method not allowed", true, true);
      return false;
    }
    std::string_view path = target.substr(0, target.find('?'));
    if (path == "/metrics") {
      std::string body;
      try {
        body = metrics();
      } catch (...) {
        respond(fd, 500, "text/plain", "internal error", close);
        return !close;
      }
      respond(fd, 200, "text/plain; version=0.0.4; charset=utf-8", body, close);
    } else if (path == "/healthz") {
      std::string reason;
      bool ok = true;
      if (healthy) {
        try {
          ok = healthy(reason);
        } catch (...) {
          ok = true;  // a failing check must not get a pod restarted
        }
      }
      respond(fd, ok ? 200 : 503, "text/plain", ok ? std::string("ok") : reason, close);
    } else if (path == "/readyz") {
      std::string reason;
      bool ok = false;
      try {
        ok = ready(reason);
      } catch (...) {
        reason = "readiness check failed";
      }
      respond(fd, ok ? 200 : 503, "text/plain", ok ? std::string("ready") : reason, close);
    } else {
      respond(fd, 404, "text/plain", "not found", close);
    }
    return !close;
  }
};

HttpServer::HttpServer(HttpServerOptions options, MetricsSource metrics, ReadinessCheck ready,
                       HealthCheck healthy)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  impl_->metrics = std::move(metrics);
  impl_->ready = std::move(ready);
  impl_->healthy = std::move(healthy);
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Start() {
  std::lock_guard lock(mu_);
  if (running_) return;
  std::string where = options_.address + ":" + std::to_string(options_.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(options_.address.c_str(), std::to_string(options_.port).c_str(), &hints, &res);
  if (rc != 0) throw std::runtime_error("cannot listen on " + where + ": " + ::gai_strerror(rc));
  int fd = -1;
  std::string error = "no address";
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 64) == 0) break;
    error = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd < 0) throw std::runtime_error("cannot listen on " + where + ": " + error);
  impl_->listen_fd = fd;
  impl_->stopping = false;
  impl_->acceptor = std::thread([this] { impl_->accept_loop(); });
  running_ = true;
}

void HttpServer::Stop() {
  std::lock_guard lock(mu_);
  if (!running_) return;
  impl_->stopping = true;
  if (impl_->acceptor.joinable()) impl_->acceptor.join();
  ::close(impl_->listen_fd);
  impl_->listen_fd = -1;
  std::unique_lock conns_lock(impl_->conns_mu);
  // Wake every connection blocked in recv; each thread then closes its socket.
  for (const auto& [c, idle_since] : impl_->conns) ::shutdown(c, SHUT_RDWR);
  impl_->conns_cv.wait(conns_lock, [this] { return impl_->conns.empty(); });
  running_ = false;
}

bool HttpServer::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

}  // namespace switchboard::router
