// Test support: a TCP server on a loopback port that greets each connection the way
// nats-server does (an INFO line) and then answers nothing: what a hung server, or a proxy
// in front of one, looks like to a NATS client. Connections are closed when it goes away.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace switchboard::testing {

class SilentNatsServer {
 public:
  explicit SilentNatsServer(int port) : port_(port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (listener_ < 0) return;
    int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener_, 16) != 0) {
      ::close(listener_);
      listener_ = -1;
      return;
    }
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~SilentNatsServer() {
    stop_ = true;
    if (acceptor_.joinable()) acceptor_.join();
    std::lock_guard lock(mu_);
    for (int fd : connections_) {
      ::shutdown(fd, SHUT_RDWR);
      ::close(fd);
    }
    if (listener_ >= 0) ::close(listener_);
  }
  SilentNatsServer(const SilentNatsServer&) = delete;
  SilentNatsServer& operator=(const SilentNatsServer&) = delete;

  bool ok() const { return listener_ >= 0; }
  size_t connections() {
    std::lock_guard lock(mu_);
    return connections_.size();
  }

 private:
  void accept_loop() {
    const std::string info = "INFO {\"server_id\":\"silent\",\"version\":\"2.9.10\",\"proto\":1,"
                             "\"host\":\"127.0.0.1\",\"port\":" + std::to_string(port_) +
                             ",\"max_payload\":1048576}\r\n";
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) continue;
      (void)!::write(fd, info.data(), info.size());
      std::lock_guard lock(mu_);
      connections_.push_back(fd);  // what the client sends stays unread
    }
  }

  int port_;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<int> connections_;
  std::thread acceptor_;
};

}  // namespace switchboard::testing
