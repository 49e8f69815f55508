#include "tests/support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace switchboard::testing {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

bool wait_for_port(int port, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::close(fd);
    if (rc == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

Process::Process(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                 const std::string& log_path, std::optional<Credentials> run_as) {
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ == 0) {
    ::setpgid(0, 0);
    // If the test process dies without running destructors (a crash, SIGKILL), the child
    // goes with it instead of lingering.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (!log_path.empty()) {
      int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::close(fd);
      }
    }
    if (run_as) {
      if (::setgroups(0, nullptr) != 0 || ::setresgid(run_as->gid, run_as->gid, run_as->gid) != 0 ||
          ::setresuid(run_as->uid, run_as->uid, run_as->uid) != 0 || ::chdir("/") != 0) {
        static const char kMessage[] = "test process: cannot switch to the requested uid/gid (root needed)\n";
        [[maybe_unused]] ssize_t n = ::write(2, kMessage, sizeof kMessage - 1);
        ::_exit(126);
      }
      // A change of credentials clears the parent-death signal: set it again, and go if
      // the parent is already gone.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
    }
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
}

Process::~Process() { stop(); }

Process::Process(Process&& o) noexcept : pid_(o.pid_), status_(o.status_) { o.pid_ = -1; }

Process& Process::operator=(Process&& o) noexcept {
  if (this != &o) {
    stop();
    pid_ = o.pid_;
    status_ = o.status_;
    o.pid_ = -1;
  }
  return *this;
}

bool Process::running() {
  if (pid_ <= 0) return false;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    pid_ = -1;
    return false;
  }
  return true;
}

void Process::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int Process::wait(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

int Process::stop(int timeout_ms) {
  if (pid_ <= 0) return status_;
  signal(SIGTERM);
  if (wait(timeout_ms) == -1) {
    signal(SIGKILL);
    wait(5000);
  }
  return status_;
}

NatsServer::NatsServer(bool jetstream, const std::vector<std::string>& extra_args)
    : jetstream_(jetstream), extra_(extra_args) {
  port_ = free_port();
  if (jetstream_) {
    char tmpl[] = "/tmp/switchboard-js-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  launch();
}

NatsServer::NatsServer(const Config& config, const std::vector<std::string>& extra_args) : extra_(extra_args) {
  port_ = free_port();
  char tmpl[] = "/tmp/switchboard-nats-XXXXXX";
  dir_ = ::mkdtemp(tmpl);
  config_path_ = dir_ + "/nats-server.conf";
  log_path_ = dir_ + "/nats-server.log";
  std::ofstream(config_path_) << config.body << "\n";
  launch();
}

// Debian installs nats-server in /usr/sbin, which is not on every PATH.
std::string nats_server_binary() {
  if (const char* e = std::getenv("SWITCHBOARD_NATS_SERVER")) return e;
  for (const char* p : {"/usr/sbin/nats-server", "/usr/bin/nats-server"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "nats-server";
}

void NatsServer::launch() {
  std::vector<std::string> argv = {nats_server_binary(), "-a", "127.0.0.1", "-p", std::to_string(port_)};
  if (jetstream_) {
    argv.insert(argv.end(), {"-js", "-sd", dir_});
  }
  if (!config_path_.empty()) argv.insert(argv.end(), {"-c", config_path_});
  argv.insert(argv.end(), extra_.begin(), extra_.end());
  proc_ = Process(argv, {}, log_path_);
  ok_ = wait_for_port(port_, 10000);
}

void NatsServer::restart() {
  proc_.stop();
  launch();
}

bool NatsServer::ready_on_its_port(int timeout_ms) {
  if (config_path_.empty() || !ok_) return false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (proc_.running()) {
    std::ifstream in(log_path_);
    std::string line;
    while (std::getline(in, line)) {
      if (line.find("Server is ready") != std::string::npos) return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::unique_ptr<NatsServer> start_nats_server(const NatsServer::Config& config,
                                              const std::vector<std::string>& extra_args) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto server = std::make_unique<NatsServer>(config, extra_args);
    if (server->ready_on_its_port()) return server;
  }
  return nullptr;
}

bool NatsServer::reload(const Config& config, int timeout_ms) {
  if (config_path_.empty()) return false;
  auto reloads = [&] {
    std::ifstream in(log_path_);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) n += line.find("Reloaded server configuration") != std::string::npos;
    return n;
  };
  const int before = reloads();
  {
    std::string tmp = config_path_ + ".tmp";
    std::ofstream(tmp) << config.body << "\n";
    std::filesystem::rename(tmp, config_path_);
  }
  proc_.signal(SIGHUP);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (reloads() > before) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

NatsServer::~NatsServer() {
  proc_.stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

}  // namespace switchboard::testing
