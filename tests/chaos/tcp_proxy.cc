#include "tests/chaos/tcp_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace switchboard::chaos {

namespace {

constexpr size_t kMaxBuffered = 1 << 20;  // per direction; beyond it the reader waits

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) | O_NONBLOCK); }

sockaddr_in loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

// A close that sends RST instead of FIN: the peer learns at once that the connection is gone.
void close_with_reset(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

}  // namespace

const char* TcpProxy::mode_name(Mode m) {
  switch (m) {
    case Mode::Pass: return "pass";
    case Mode::Blackhole: return "blackhole";
    case Mode::Reset: return "reset";
  }
  return "pass";
}

TcpProxy::TcpProxy(int upstream_port) : upstream_port_(upstream_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr = loopback(0);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_fd_, 64) != 0 ||
      ::pipe(wake_) != 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    return;
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  set_nonblocking(listen_fd_);
  set_nonblocking(wake_[0]);
  thread_ = std::thread([this] { loop(); });
}

TcpProxy::~TcpProxy() {
  stopping_ = true;
  if (wake_[1] >= 0) {
    char c = 1;
    (void)!::write(wake_[1], &c, 1);
  }
  if (thread_.joinable()) thread_.join();
  for (auto& p : pipes_) close_pipe(p, false);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  for (int fd : wake_) {
    if (fd >= 0) ::close(fd);
  }
}

void TcpProxy::set_mode(Mode mode) {
  mode_ = mode;
  char c = 1;
  (void)!::write(wake_[1], &c, 1);
}

TcpProxy::Stats TcpProxy::stats() const {
  std::lock_guard lock(stats_mu_);
  return stats_;
}

void TcpProxy::close_pipe(Pipe& p, bool reset) {
  for (int* fd : {&p.client, &p.server}) {
    if (*fd < 0) continue;
    if (reset) {
      close_with_reset(*fd);
    } else {
      ::close(*fd);
    }
    *fd = -1;
  }
  if (reset) {
    std::lock_guard lock(stats_mu_);
    ++stats_.resets;
  }
}

void TcpProxy::accept_one(bool reset) {
  int client = ::accept(listen_fd_, nullptr, nullptr);
  if (client < 0) return;
  if (reset) {
    close_with_reset(client);
    std::lock_guard lock(stats_mu_);
    ++stats_.resets;
    return;
  }
  // Loopback connects at once or is refused at once (nats-server down): then so is the
  // client, as it would be without the proxy.
  int server = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = loopback(upstream_port_);
  if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(server);
    close_with_reset(client);
    return;
  }
  int one = 1;
  ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  set_nonblocking(client);
  set_nonblocking(server);
  pipes_.push_back(Pipe{client, server, {}, {}});
  std::lock_guard lock(stats_mu_);
  ++stats_.accepted;
}

bool TcpProxy::pump_in(int from, std::string& buffer, uint64_t& counter) {
  char buf[65536];
  while (buffer.size() < kMaxBuffered) {
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n > 0) {
      buffer.append(buf, static_cast<size_t>(n));
      counter += static_cast<uint64_t>(n);
      continue;
    }
    if (n == 0) return false;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  }
  return true;
}

bool TcpProxy::pump_out(int to, std::string& buffer) {
  while (!buffer.empty()) {
    ssize_t n = ::send(to, buffer.data(), buffer.size(), MSG_NOSIGNAL);
    if (n > 0) {
      buffer.erase(0, static_cast<size_t>(n));
      continue;
    }
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
  }
  return true;
}

void TcpProxy::loop() {
  Mode applied = Mode::Pass;
  while (!stopping_) {
    Mode mode = mode_.load();
    if (mode == Mode::Reset && applied != Mode::Reset) {
      for (auto& p : pipes_) close_pipe(p, true);
      pipes_.clear();
    }
    applied = mode;
    std::vector<pollfd> fds;
    fds.push_back({wake_[0], POLLIN, 0});
    // Blackhole: only the wake pipe is watched, so nothing moves and nothing is accepted.
    // The kernel still completes new handshakes into the backlog, but the client hears
    // nothing after that, which is what a peer behind dropped packets looks like to it.
    if (mode != Mode::Blackhole) {
      fds.push_back({listen_fd_, POLLIN, 0});
      for (auto& p : pipes_) {
        short c = 0, s = 0;
        if (p.to_server.size() < kMaxBuffered) c |= POLLIN;
        if (p.to_client.size() < kMaxBuffered) s |= POLLIN;
        if (!p.to_client.empty()) c |= POLLOUT;
        if (!p.to_server.empty()) s |= POLLOUT;
        fds.push_back({p.client, c, 0});
        fds.push_back({p.server, s, 0});
      }
    }
    int n = ::poll(fds.data(), fds.size(), 200);
    if (n <= 0) continue;
    if (fds[0].revents & POLLIN) {
      char buf[64];
      while (::read(wake_[0], buf, sizeof buf) > 0) {
      }
    }
    if (mode == Mode::Blackhole || mode_.load() != mode) continue;
    // Only the pipes that were polled: the ones accepted below have no entry in fds yet.
    const size_t polled = pipes_.size();
    if (fds[1].revents & POLLIN) {
      for (int i = 0; i < 16; ++i) accept_one(mode == Mode::Reset);
    }
    for (size_t i = 0; i < polled; ++i) {
      Pipe& p = pipes_[i];
      const pollfd& c = fds[2 + 2 * i];
      const pollfd& s = fds[3 + 2 * i];
      bool alive = true;
      uint64_t up = 0, down = 0;
      if (c.revents & (POLLIN | POLLHUP | POLLERR)) alive = pump_in(p.client, p.to_server, up) && alive;
      if (s.revents & (POLLIN | POLLHUP | POLLERR)) alive = pump_in(p.server, p.to_client, down) && alive;
      alive = pump_out(p.server, p.to_server) && alive;
      alive = pump_out(p.client, p.to_client) && alive;
      {
        std::lock_guard lock(stats_mu_);
        stats_.bytes_up += up;
        stats_.bytes_down += down;
      }
      if (!alive) {
        // One side went away: pass on what is buffered for the other as best we can.
        pump_out(p.server, p.to_server);
        pump_out(p.client, p.to_client);
        close_pipe(p, false);
      }
    }
    std::erase_if(pipes_, [](const Pipe& p) { return p.client < 0; });
  }
}

}  // namespace switchboard::chaos
