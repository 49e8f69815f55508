#include "tests/e2e/e2e_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "core/json/document.h"

#ifndef SWITCHBOARD_SOURCE_DIR
#error "SWITCHBOARD_SOURCE_DIR must name the source tree"
#endif

namespace switchboard::e2e {

using Clock = std::chrono::steady_clock;

std::string make_temp_dir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp " + tmpl + " failed");
  // Searchable, not readable, by others: pods run as the user of their securityContext.
  ::chmod(buf.data(), 0711);
  return buf.data();
}

CommandResult run_command(const std::vector<std::string>& argv, const std::string& input,
                          const std::vector<std::string>& env, std::chrono::milliseconds timeout) {
  CommandResult result;
  std::string dir = make_temp_dir("switchboard-cmd");
  std::string in_path = dir + "/stdin", out_path = dir + "/stdout", err_path = dir + "/stderr";
  write_file(in_path, input);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int in = ::open(in_path.c_str(), O_RDONLY);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) ::_exit(126);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  auto deadline = Clock::now() + timeout;
  int st = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      result.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (Clock::now() >= deadline) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      result.status = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  result.out = read_file(out_path);
  result.err = read_file(err_path);
  if (result.status == -1) result.err += "\n(timed out after " + std::to_string(timeout.count()) + " ms)";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return result;
}

HttpReply http_get(int port, const std::string& path) {
  HttpReply reply;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return reply;
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return reply;
  }
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                        "\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return reply;
  }
  // Connection: close, so the body ends where the stream does.
  std::string raw;
  char buf[4096];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size_t header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos || raw.compare(0, 9, "HTTP/1.1 ") != 0) return reply;
  reply.status = std::atoi(raw.c_str() + 9);
  reply.body = raw.substr(header_end + 4);
  return reply;
}

std::optional<double> metric(const std::string& page, const std::string& series) {
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    if (space == series.size() && line.compare(0, space, series) == 0) return std::stod(line.substr(space + 1));
  }
  return std::nullopt;
}

Heartbeat parse_heartbeat(const std::string& text) {
  Heartbeat h;
  json::Document d;
  if (!d.parse(text) || d.node(0).type != json::Type::Object) return h;
  auto str = [&](const char* key) {
    uint32_t i = d.find_member(0, key);
    return i && d.node(i).type == json::Type::String ? std::string(d.string_value(i)) : std::string();
  };
  h.pod = str("pod");
  h.router = str("router");
  h.ns = str("namespace");
  h.state = str("state");
  h.error = str("error");
  h.source_error = str("sourceError");
  h.hash = str("hash");
  if (uint32_t g = d.find_member(0, "generation")) h.generation = d.number_value(g);
  if (uint32_t u = d.find_member(0, "uptimeSeconds")) h.uptime_seconds = d.number_value(u);
  return h;
}

std::string tool_path(const std::string& name) {
  if (const char* e = std::getenv(name.c_str()); e && *e) return e;
  static std::mutex mu;
  static std::map<std::string, std::string> paths;
  static bool read = false;
  std::lock_guard lock(mu);
  if (!read) {
    read = true;
    CommandResult r = run_command({SWITCHBOARD_SOURCE_DIR "/scripts/test-tools.sh", "paths"});
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
      size_t eq = line.find('=');
      if (eq != std::string::npos) paths[line.substr(0, eq)] = line.substr(eq + 1);
    }
  }
  auto it = paths.find(name);
  if (it == paths.end() || ::access(it->second.c_str(), X_OK) != 0) {
    throw std::runtime_error(name + " is not built: run scripts/test-tools.sh (it builds the Kubernetes tools "
                                    "from the Go module proxy and caches them), or set " + name + "=PATH");
  }
  return it->second;
}

}  // namespace switchboard::e2e
