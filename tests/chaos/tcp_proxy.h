// A TCP proxy on 127.0.0.1 between routers and nats-server that the suite can cut:
//
//   Pass       bytes flow both ways.
//   Blackhole  nothing is read, written, accepted or closed: packets are "dropped" and
//              both ends see a silent peer, as with a cable pulled or a firewall that drops
//              (TCP keeps the connections; when the cut ends, what was queued flows on).
//   Reset      every connection is closed with a reset and new ones are accepted and reset
//              at once: a peer that went away, or a firewall that rejects.
//
// One thread, poll(2), non-blocking sockets; nothing beyond loopback.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace switchboard::chaos {

class TcpProxy {
 public:
  enum class Mode { Pass, Blackhole, Reset };
  static const char* mode_name(Mode m);

  explicit TcpProxy(int upstream_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  bool ok() const { return listen_fd_ >= 0; }
  int port() const { return port_; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  void set_mode(Mode mode);
  Mode mode() const { return mode_.load(); }

  struct Stats {
    uint64_t accepted = 0, resets = 0, bytes_up = 0, bytes_down = 0;
  };
  Stats stats() const;

 private:
  struct Pipe {
    int client = -1, server = -1;
    std::string to_server, to_client;  // read from one side, not yet written to the other
  };
  void loop();
  void accept_one(bool reset);
  void close_pipe(Pipe& p, bool reset);
  // Moves bytes from `from` into `buffer`; false when `from` closed or failed.
  bool pump_in(int from, std::string& buffer, uint64_t& counter);
  bool pump_out(int to, std::string& buffer);

  int upstream_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  int wake_[2] = {-1, -1};
  std::atomic<Mode> mode_{Mode::Pass};
  std::atomic<bool> stopping_{false};
  std::vector<Pipe> pipes_;  // the proxy thread's own
  mutable std::mutex stats_mu_;
  Stats stats_;
  std::thread thread_;
};

}  // namespace switchboard::chaos
