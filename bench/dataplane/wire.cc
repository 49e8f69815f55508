#include "bench/dataplane/wire.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>

namespace switchboard::bench {

namespace {

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

bool parse_size(std::string_view s, size_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

bool parse_msg_line(std::string_view line, size_t& header_bytes, size_t& total_bytes) {
  // The sizes are the last one (MSG) or two (HMSG) tokens, whatever the subject and reply.
  bool with_headers = line.starts_with("HMSG ");
  auto last_token = [&line]() -> std::string_view {
    size_t sp = line.rfind(' ');
    if (sp == std::string_view::npos) return {};
    std::string_view tok = line.substr(sp + 1);
    line = line.substr(0, sp);
    return tok;
  };
  if (!parse_size(last_token(), total_bytes)) return false;
  header_bytes = 0;
  if (with_headers && !parse_size(last_token(), header_bytes)) return false;
  return true;
}

WireConnection::~WireConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool WireConnection::connect(const std::string& url, std::string& error) {
  std::string hostport = url;
  if (auto p = hostport.find("://"); p != std::string::npos) hostport = hostport.substr(p + 3);
  size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) {
    error = "expected nats://HOST:PORT, got '" + url + "'";
    return false;
  }
  std::string host = hostport.substr(0, colon), port = hostport.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    error = "resolve " + hostport + ": " + ::gai_strerror(rc);
    return false;
  }
  for (addrinfo* a = res; a != nullptr && fd_ < 0; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      fd_ = fd;
    } else {
      ::close(fd);
    }
  }
  ::freeaddrinfo(res);
  if (fd_ < 0) {
    error = errno_text(("connect " + hostport).c_str());
    return false;
  }
  // Batches are written whole; Nagle would only hold back the tail of one.
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // headers:true lets the server deliver HMSG (a relay may forward headers); no_responders
  // needs headers. verbose:false: no +OK for every PUB.
  if (!write_all("CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true,"
                 "\"name\":\"switchboard-bench-loadgen\",\"lang\":\"c++\",\"version\":\"0\",\"protocol\":1}\r\n",
                 error)) {
    return false;
  }
  return round_trip(5000, error);
}

bool WireConnection::subscribe(std::string_view subject, int sid, std::string& error) {
  std::string line = "SUB " + std::string(subject) + " " + std::to_string(sid) + "\r\n";
  return write_all(line, error) && round_trip(5000, error);
}

bool WireConnection::round_trip(int timeout_ms, std::string& error) {
  uint64_t want = pongs_ + 1;
  if (!write_all("PING\r\n", error)) return false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto ignore = [](std::string_view) {};
  while (pongs_ < want) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      error = "no PONG from the server within " + std::to_string(timeout_ms) + " ms";
      return false;
    }
    if (!poll(static_cast<int>(left.count()), ignore, error)) return false;
  }
  return true;
}

bool WireConnection::write_all(std::string_view data, std::string& error) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      error = errno_text("write");
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool WireConnection::fill(int timeout_ms, std::string& error) {
  pollfd p{fd_, POLLIN, 0};
  int rc = ::poll(&p, 1, timeout_ms);
  if (rc < 0) {
    if (errno == EINTR) return true;
    error = errno_text("poll");
    return false;
  }
  if (rc == 0) return true;
  if (end_ == buf_.size()) {
    if (begin_ > 0) {
      ::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    } else {
      buf_.resize(buf_.size() * 2);
    }
  }
  ssize_t n = ::recv(fd_, buf_.data() + end_, buf_.size() - end_, 0);
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN) return true;
    error = errno_text("read");
    return false;
  }
  if (n == 0) {
    error = "the server closed the connection";
    return false;
  }
  end_ += static_cast<size_t>(n);
  return true;
}

bool WireConnection::control(std::string_view line, std::string& error) {
  if (line == "PING") return write_all("PONG\r\n", error);
  if (line == "PONG") {
    ++pongs_;
    return true;
  }
  if (line.starts_with("-ERR")) {
    error = "server: " + std::string(line);
    return false;
  }
  return true;  // INFO, +OK
}

bool WireConnection::service(std::string& error) {
  auto ignore = [](std::string_view) {};
  return poll(0, ignore, error);
}

}  // namespace switchboard::bench
