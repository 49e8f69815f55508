#include "tests/support/control_plane.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#ifndef SWITCHBOARD_SOURCE_DIR
#error "SWITCHBOARD_SOURCE_DIR must name the source tree"
#endif

extern char** environ;

namespace switchboard::testing {

namespace {

const std::string kSourceDir = SWITCHBOARD_SOURCE_DIR;
const std::string kScript = kSourceDir + "/tests/support/control_plane.sh";

std::map<std::string, std::string> parse_key_values(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    std::string key = line.substr(0, eq);
    bool is_key = true;
    for (char c : key) is_key = is_key && ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
    if (is_key) out[key] = line.substr(eq + 1);
  }
  return out;
}

std::string tail(const std::string& text, size_t max_lines) {
  size_t pos = text.size();
  for (size_t n = 0; n <= max_lines && pos > 0; ++n) {
    pos = text.rfind('\n', pos - 1);
    if (pos == std::string::npos) return text;
  }
  return text.substr(pos + 1);
}

bool pid_alive(const std::string& pid) {
  if (pid.empty()) return false;
  return ::kill(static_cast<pid_t>(std::stol(pid)), 0) == 0;
}

}  // namespace

int run_command(const std::vector<std::string>& argv, std::string* output, const std::vector<std::string>& env) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  // Everything the child needs is built before fork: after it, only exec-safe calls.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  for (const auto& kv : env) {
    const std::string key = kv.substr(0, kv.find('=') + 1);
    std::erase_if(env_strings, [&](const std::string& s) { return s.rfind(key, 0) == 0; });
    env_strings.push_back(kv);
  }
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args_copy = argv;
  std::vector<char*> args;
  for (auto& a : args_copy) args.push_back(a.data());
  args.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::close(fds[0]);
    ::close(fds[1]);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::execvpe(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (output) *output = std::move(out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::vector<std::pair<std::string, std::string>> kube_tool_paths() {
  std::string out;
  // `paths` exits 1 when any tool is missing, even one these tests do not use; the
  // lines are printed either way.
  run_command({"bash", kSourceDir + "/scripts/test-tools.sh", "paths"}, &out);
  std::vector<std::pair<std::string, std::string>> tools;
  for (const auto& [k, v] : parse_key_values(out)) tools.emplace_back(k, v);
  return tools;
}

int ControlPlane::server_port() const {
  auto colon = server_url_.rfind(':');
  return colon == std::string::npos ? 0 : std::stoi(server_url_.substr(colon + 1));
}

bool ControlPlane::read_env_file(const std::string& path, std::string* error) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  auto kv = parse_key_values(s.str());
  dir_ = kv["CONTROL_PLANE_DIR"];
  kubeconfig_ = kv["KUBECONFIG"];
  server_url_ = kv["KUBE_APISERVER_URL"];
  etcd_url_ = kv["ETCD_URL"];
  if (dir_.empty() || kubeconfig_.empty() || server_url_.empty() || etcd_url_.empty()) {
    *error = "control plane: " + path + " lacks CONTROL_PLANE_DIR, KUBECONFIG, KUBE_APISERVER_URL or ETCD_URL";
    server_url_.clear();
    return false;
  }
  return true;
}

bool ControlPlane::start(std::string* error, const std::string& shared_dir) {
  std::map<std::string, std::string> tools;
  for (const auto& [k, v] : kube_tool_paths()) tools[k] = v;
  std::string missing;
  for (const char* tool : {"KUBE_APISERVER", "ETCD", "KUBECTL"}) {
    const std::string& path = tools[tool];
    if (path.empty() || ::access(path.c_str(), X_OK) != 0) {
      missing += std::string(missing.empty() ? "" : ", ") + tool + " (" + (path.empty() ? "unknown" : path) + ")";
    }
  }
  if (!missing.empty()) {
    *error =
        "The Kubernetes test tools are not built: missing " + missing +
        ". Run scripts/test-tools.sh once (it builds kube-apiserver, etcd and kubectl from source, about 20 "
        "minutes on a fresh machine, then caches them); `make test` runs it for you.";
    return false;
  }
  kubectl_ = tools["KUBECTL"];
  const std::vector<std::string> env = {"KUBE_APISERVER=" + tools["KUBE_APISERVER"], "ETCD=" + tools["ETCD"]};

  auto start_script = [&](const std::vector<std::string>& args) {
    std::string out;
    std::vector<std::string> argv = {"bash", kScript, "start"};
    argv.insert(argv.end(), args.begin(), args.end());
    int rc = run_command(argv, &out, env);
    auto kv = parse_key_values(out);
    if (rc != 0 || kv["CONTROL_PLANE_DIR"].empty()) {
      *error = "control plane did not start (tests/support/control_plane.sh exited " + std::to_string(rc) +
               "):\n" + tail(out, 30);
      return false;
    }
    return read_env_file(kv["CONTROL_PLANE_DIR"] + "/env", error);
  };

  if (shared_dir.empty()) {
    owned_ = true;
    return start_script({});
  }

  owned_ = false;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(shared_dir).parent_path(), ec);
  // Next to the folder, not in it: `control_plane.sh stop` removes the folder.
  const std::string lock_path = shared_dir + ".lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) {
    *error = "control plane: cannot open " + lock_path + ": " + std::strerror(errno);
    return false;
  }
  while (::flock(lock_fd, LOCK_EX) != 0 && errno == EINTR) {
  }
  bool ok = false;
  const std::string env_file = shared_dir + "/env";
  if (std::filesystem::exists(env_file, ec)) {
    std::ifstream in(env_file);
    std::stringstream s;
    s << in.rdbuf();
    auto kv = parse_key_values(s.str());
    if (pid_alive(kv["ETCD_PID"]) && pid_alive(kv["KUBE_APISERVER_PID"])) ok = read_env_file(env_file, error);
  }
  if (!ok) ok = start_script({shared_dir});
  ::flock(lock_fd, LOCK_UN);
  ::close(lock_fd);
  return ok;
}

void ControlPlane::stop() {
  if (owned_ && !dir_.empty()) run_command({"bash", kScript, "stop", dir_});
  owned_ = false;
  dir_.clear();
  kubeconfig_.clear();
  server_url_.clear();
  etcd_url_.clear();
}

int ControlPlane::kubectl(const std::vector<std::string>& args, std::string* output) const {
  std::vector<std::string> argv = {kubectl_, "--kubeconfig", kubeconfig_};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, output);
}

namespace {
ControlPlane& instance() {
  static ControlPlane cp;
  return cp;
}
std::string& start_error() {
  static std::string e = "the control plane was not started (is ControlPlaneEnvironment registered?)";
  return e;
}
}  // namespace

void ControlPlaneEnvironment::SetUp() {
  const char* shared = std::getenv("SWITCHBOARD_CONTROL_PLANE_DIR");
  std::string error;
  if (instance().start(&error, shared ? shared : "")) {
    start_error().clear();
  } else {
    start_error() = error;
  }
}

void ControlPlaneEnvironment::TearDown() { instance().stop(); }

ControlPlane& ControlPlaneEnvironment::control_plane() { return instance(); }

const std::string& ControlPlaneEnvironment::error() { return start_error(); }

}  // namespace switchboard::testing
