// Small helpers the e2e tests share: commands with their output (kubectl), plain HTTP GETs
// on loopback (probes, /metrics), Prometheus text, and router heartbeats.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/files.h"

namespace switchboard::e2e {

struct CommandResult {
  int status = -1;  // exit status; -1 on timeout (the command is then killed)
  std::string out, err;
  std::string text() const { return out + err; }
};

// Runs argv (no shell) with `input` on stdin and the given extra environment ("K=V"),
// and collects stdout and stderr apart.
CommandResult run_command(const std::vector<std::string>& argv, const std::string& input = "",
                          const std::vector<std::string>& env = {}, std::chrono::milliseconds timeout =
                                                                       std::chrono::seconds(60));

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string body;
};
// A plain HTTP/1.1 GET on 127.0.0.1, what a kubelet probe or a Prometheus scrape sends.
HttpReply http_get(int port, const std::string& path);

// The value of one series ("name" or "name{label=\"v\"}") in a Prometheus text page.
std::optional<double> metric(const std::string& page, const std::string& series);

// Polls `done` until it holds or the timeout passes (15 s unless told).
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  return testing::eventually(done, timeout);
}

struct Heartbeat {
  std::string pod, router, ns, state, error, source_error, hash;
  double generation = -1;
  double uptime_seconds = -1;
};
Heartbeat parse_heartbeat(const std::string& text);

using testing::read_file;
using testing::write_file;
// A new folder under $TMPDIR (or /tmp) named after `prefix`.
std::string make_temp_dir(const std::string& prefix);

// The tools scripts/test-tools.sh built (KUBECTL, KUBE_CONTROLLER_MANAGER, ...); throws
// std::runtime_error naming the tool and how to build it when one is missing.
std::string tool_path(const std::string& name);

}  // namespace switchboard::e2e
