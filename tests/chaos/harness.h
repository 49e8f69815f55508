// The fault suite's moving parts: a nats-server that can be killed and started again on the
// same port and JetStream store, router processes that can be killed and started again,
// JetStream helpers for setting up and reading streams, and a seeded random source.
// Everything runs on 127.0.0.1; every process is stopped by a destructor.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "router/nats_client.h"
#include "tests/support/process.h"

namespace switchboard::chaos {

using Clock = std::chrono::steady_clock;

// Seconds since the scenario began; every record of the run is on this clock.
double since(Clock::time_point start);
// One number in a printf format ("%.1f"), for messages and JSON.
std::string fmt(const char* format, double value);

// SIGINT or SIGTERM to the suite: scenarios stop early, destructors stop every process.
void install_interrupt_handler();
bool interrupted();
// Sleeps up to `seconds`; false if interrupted.
bool sleep_for(double seconds);
// Polls `done` every 50 ms until it holds (true), the timeout passes or the suite is
// interrupted (false).
bool wait_until(const std::function<bool()>& done, double timeout_s);

// What the user asked for, shared by every scenario.
struct Options {
  std::string scenario;
  bool quick = false;         // the short version that runs in `make test`
  double duration_s = 0;      // load (and faults) phase; 0: the scenario's default
  uint64_t seed = 0;
  std::string bin_dir;        // switchboard-router
  std::string report_path;    // JSON of this run
  bool keep = false;          // keep the work folder (logs, stores) even on success
  double rate = 0;            // JetStream events per second; 0: the scenario's default
  // The process moved into a private network namespace (private_network.h) before it
  // started anything, as the network cut needs; else why it could not.
  bool private_network = false;
  std::string private_network_error;
};

// A seeded random source. The seed is printed, so that a run's sequence of faults (kinds,
// targets, waits) can be replayed with SWITCHBOARD_CHAOS_SEED.
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(gen_); }
  size_t index(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(gen_); }
  std::mt19937_64& engine() { return gen_; }

 private:
  std::mt19937_64 gen_;
};

// A folder for one scenario's stores and logs: removed at the end unless kept.
class WorkDir {
 public:
  explicit WorkDir(const std::string& name);
  ~WorkDir();
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  const std::string& path() const { return path_; }
  void keep() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

// A nats-server with JetStream whose port and store folder survive restarts, so that a
// restarted server recovers its streams and consumers and clients reconnect to it.
class NatsNode {
 public:
  NatsNode(const std::string& dir, const std::string& name);
  bool start();
  // Signals the server and waits for it to exit; returns the exit status.
  int stop(int sig);
  bool running() { return proc_.running(); }
  int port() const { return port_; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  const std::string& log_path() const { return log_; }

 private:
  std::string dir_, log_;
  int port_ = 0;
  testing::Process proc_;
};

// One `switchboard-router run` process. Each start takes a new metrics port: a port just
// closed by a killed process may not be bindable again at once.
class RouterNode {
 public:
  // With `run_as`, the router runs as that user (the suite must be root).
  RouterNode(std::string bin, std::string pod, std::vector<std::string> args, std::string log_path,
             std::optional<testing::Credentials> run_as = std::nullopt);
  void start();
  // Sends `sig` and waits up to timeout_ms; a process still alive then is killed (-9).
  // Returns the exit status (128+n when killed by signal n); `took_ms` is how long it took.
  int stop(int sig, int timeout_ms, int64_t& took_ms);
  bool running() { return proc_.running(); }
  // Not running, and not because the suite stopped it: it crashed or exited on its own.
  bool died() { return starts_ > 0 && !stopped_ && !proc_.running(); }
  // After it ended: its exit status (128+n when killed by signal n).
  int exit_status() { return proc_.wait(0); }
  // The last lines of its log that are not JSON: what the C library or a crash said.
  std::string last_words() const;
  // How it ended, for a report: status, signal, last words, log.
  std::string death_notice();
  void signal(int sig) { proc_.signal(sig); }
  pid_t pid() const { return proc_.pid(); }
  int metrics_port() const { return metrics_port_; }
  const std::string& pod() const { return pod_; }
  const std::string& log_path() const { return log_; }
  bool ready();            // /readyz answers 200
  std::string metrics();   // the /metrics page, empty when unreachable
  int64_t rss_kib() const; // resident memory, from /proc; -1 when not running
  int starts() const { return starts_; }

 private:
  std::string bin_, pod_;
  std::vector<std::string> args_;
  std::string log_;
  std::optional<testing::Credentials> run_as_;
  int metrics_port_ = 0;
  int starts_ = 0;
  bool stopped_ = false;  // by stop(), until the next start()
  testing::Process proc_;
};

// The value of one series in a Prometheus text page.
std::optional<double> metric(const std::string& page, const std::string& series);

// A client for the suite's own producing and checking, connected to the server and
// reconnecting forever. It runs as the suite's user, whose packets a network cut never drops.
bool connect_client(router::NatsClient& nc, const std::string& url, const std::string& name);

struct StreamConfig {
  std::string name;
  std::vector<std::string> subjects;
  int64_t duplicates_s = 120;  // the Nats-Msg-Id window (the server's default)
};
// Creates the stream (file storage); retries while the server is starting.
bool add_stream(router::NatsClient& nc, const StreamConfig& config, std::string& error);

struct StreamState {
  uint64_t msgs = 0, bytes = 0, first_seq = 0, last_seq = 0;
};
std::optional<StreamState> stream_state(router::NatsClient& nc, const std::string& stream);

struct ConsumerState {
  int64_t ack_pending = 0;
  uint64_t pending = 0, redelivered = 0, delivered_stream_seq = 0, ack_floor_stream_seq = 0;
};
std::optional<ConsumerState> consumer_state(router::NatsClient& nc, const std::string& stream,
                                            const std::string& durable);

// A message read back from a stream.
struct StoredMessage {
  uint64_t seq = 0;
  std::string subject, data;
  router::NatsHeaders headers;
};
// Reads every message of `stream` (through a temporary consumer that is deleted after).
bool read_stream(router::NatsClient& nc, const std::string& stream,
                 const std::function<void(const StoredMessage&)>& each, std::string& error);

std::string header_value(const router::NatsHeaders& headers, const std::string& key);

// Where and on what the suite ran: cores, memory, load, kernel, nats-server version.
std::string machine_json();
std::string nats_server_version();

// The path of nats-server (Debian installs it in /usr/sbin).
std::string nats_server_binary();

}  // namespace switchboard::chaos
