// Test support: child processes that a test starts and always stops, and free loopback
// ports. Nothing here reaches beyond 127.0.0.1.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::testing {

// A port on 127.0.0.1 that nothing listens on right now.
int free_port();
// True once something accepts TCP connections on 127.0.0.1:port (polls until timeout).
bool wait_for_port(int port, int timeout_ms);

// The user and group a child process runs as, instead of the test's own.
struct Credentials {
  uid_t uid;
  gid_t gid;
};

class Process {
 public:
  Process() = default;
  // Starts argv[0] with the given arguments and extra environment ("K=V"). With `run_as`
  // (the test must be root), the child drops every group and becomes that user after
  // opening the log, and starts in "/" (the test's own folder may be closed to that user);
  // if it cannot, it writes why to the log and exits 126.
  Process(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
          const std::string& log_path = "", std::optional<Credentials> run_as = std::nullopt);
  ~Process();
  Process(Process&& o) noexcept;
  Process& operator=(Process&& o) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits for exit up to timeout_ms; returns the exit status (or -1 on timeout, 128+sig
  // when killed by a signal).
  int wait(int timeout_ms);
  // SIGTERM, then SIGKILL after timeout_ms; returns the exit status.
  int stop(int timeout_ms = 5000);

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

// A real nats-server on a free loopback port, optionally with JetStream in a temporary
// folder; stopped by the destructor.
class NatsServer {
 public:
  explicit NatsServer(bool jetstream = false, const std::vector<std::string>& extra_args = {});
  // A server configured by a nats-server config file with this body (authorization, tls...),
  // written to a temporary folder; address and port still come from the command line, which
  // overrides the file. A struct rather than a string so that a literal cannot silently
  // convert to the `bool jetstream` of the other constructor.
  struct Config {
    std::string body;
  };
  explicit NatsServer(const Config& config, const std::vector<std::string>& extra_args = {});
  ~NatsServer();
  int port() const { return port_; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  bool ok() const { return ok_; }
  void stop() { proc_.stop(); }
  void restart();
  // Servers started from a Config: rewrites the config file with `config` and has the
  // server reload it (SIGHUP), as `nats-server --signal reload` does. True once the server
  // logged that it reloaded, within timeout_ms.
  bool reload(const Config& config, int timeout_ms = 10000);
  pid_t pid() const { return proc_.pid(); }
  // Servers started from a Config: true once this server logged that it is ready and still
  // runs. ok() only sees that something answers on the port, and free_port() cannot
  // reserve a port: on a busy machine another process may take it first, and then this
  // server exits while ok() talks to the other one.
  bool ready_on_its_port(int timeout_ms = 10000);
  // The server's own log: "/dev/null" unless the server was started from a Config.
  const std::string& log_path() const { return log_path_; }

 private:
  void launch();
  int port_ = 0;
  bool jetstream_ = false;
  std::vector<std::string> extra_;
  std::string dir_;
  std::string config_path_;
  std::string log_path_ = "/dev/null";
  Process proc_;
  bool ok_ = false;
};

// A server from `config` on a port of its own (NatsServer::ready_on_its_port), started
// again on another port when the first was taken under it; null after three tries.
std::unique_ptr<NatsServer> start_nats_server(const NatsServer::Config& config,
                                              const std::vector<std::string>& extra_args = {});

}  // namespace switchboard::testing
