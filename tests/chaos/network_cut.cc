#include "tests/chaos/network_cut.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace switchboard::chaos {

namespace {

constexpr const char* kTable = "inet switchboard_chaos";

// The number after "counter packets " on the first line holding `marker`.
uint64_t packets_on_line_with(const std::string& listing, const std::string& marker) {
  size_t at = listing.find(marker);
  if (at == std::string::npos) return 0;
  size_t line_end = listing.find('\n', at);
  size_t counter = listing.find("counter packets ", at);
  if (counter == std::string::npos || (line_end != std::string::npos && counter > line_end)) return 0;
  return std::strtoull(listing.c_str() + counter + std::strlen("counter packets "), nullptr, 10);
}

}  // namespace

std::string nft_binary() {
  for (const char* p : {"/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "nft";
}

int run_nft(const std::vector<std::string>& args, const std::string& input, std::string& output) {
  output.clear();
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return -1;
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return -1;
  }
  std::vector<std::string> argv = {nft_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::execvp(cargv[0], cargv.data());
    static const char kMessage[] = "cannot run nft (install the nftables package: scripts/install-deps.sh)\n";
    [[maybe_unused]] ssize_t n = ::write(2, kMessage, sizeof kMessage - 1);
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  if (pid < 0) {
    ::close(in[1]);
    ::close(out[0]);
    return -1;
  }
  // nft reads all of its input before it writes much: write, then read.
  for (size_t done = 0; done < input.size();) {
    ssize_t n = ::write(in[1], input.data() + done, input.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(in[1]);
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    output.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

const char* NetworkCut::mode_name(Mode m) { return m == Mode::Blackhole ? "blackhole" : "reset"; }

const char* NetworkCut::probe_name(Probe p) {
  switch (p) {
    case Probe::Connected: return "connected";
    case Probe::Refused: return "refused";
    case Probe::NoAnswer: return "no answer";
    case Probe::Failed: return "failed";
  }
  return "?";
}

NetworkCut::NetworkCut(uid_t router_uid, gid_t router_gid, int server_port)
    : uid_(router_uid), gid_(router_gid), port_(server_port) {}

NetworkCut::~NetworkCut() {
  if (!on_) return;
  Counters ignored;
  std::string error;
  end(ignored, error);
}

NetworkCut::Probe NetworkCut::probe(int timeout_ms) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setresgid(gid_, gid_, gid_) != 0 || ::setresuid(uid_, uid_, uid_) != 0) {
      ::_exit(3);
    }
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    if (fd < 0) ::_exit(3);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) ::_exit(0);
    if (errno == ECONNREFUSED) ::_exit(1);
    if (errno != EINPROGRESS) ::_exit(3);
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, timeout_ms) == 0) ::_exit(2);
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    ::_exit(err == 0 ? 0 : err == ECONNREFUSED ? 1 : err == ETIMEDOUT ? 2 : 3);
  }
  if (pid < 0) return Probe::Failed;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Probe::Failed;
  }
  switch (WIFEXITED(status) ? WEXITSTATUS(status) : 3) {
    case 0: return Probe::Connected;
    case 1: return Probe::Refused;
    case 2: return Probe::NoAnswer;
    default: return Probe::Failed;
  }
}

bool NetworkCut::begin(Mode mode, std::string& error) {
  if (Probe before = probe(2000); before != Probe::Connected) {
    error = "before the cut, a connection as uid " + std::to_string(uid_) + " to port " + std::to_string(port_) +
            " got: " + probe_name(before);
    return false;
  }
  const std::string verdict = mode == Mode::Blackhole ? "drop" : "reject with tcp reset";
  const std::string uid = std::to_string(uid_), port = std::to_string(port_);
  // The add and delete first clear what a cut that did not end may have left. In reset mode
  // the resets that reject sends to a router pass the second rule (they come from the
  // server's port to a router's), else the router would never see them.
  std::string script = std::string("add table ") + kTable + "\ndelete table " + kTable + "\n" + "table " + kTable +
                       " {\n"
                       "  set router_ports { type inet_service; flags dynamic; }\n"
                       "  chain output {\n"
                       "    type filter hook output priority filter; policy accept;\n"
                       "    meta skuid " + uid + " tcp dport " + port +
                       " add @router_ports { tcp sport } counter " + verdict + "\n" +
                       "    tcp sport " + port + " tcp dport @router_ports " +
                       (mode == Mode::Reset ? "tcp flags & rst == 0 " : "") + "counter " + verdict + "\n" +
                       "  }\n"
                       "}\n";
  std::string output;
  int status = run_nft({"-f", "-"}, script, output);
  if (status != 0) {
    error = "nft -f - exited " + std::to_string(status) + ": " + output;
    return false;
  }
  on_ = true;
  Probe during = probe(500);
  Probe expected = mode == Mode::Blackhole ? Probe::NoAnswer : Probe::Refused;
  if (during != expected) {
    error = std::string("the ") + mode_name(mode) + " rules do not hold: a connection as uid " + uid + " to port " +
            port + " got: " + probe_name(during) + " (expected: " + probe_name(expected) + ")";
    Counters ignored;
    std::string end_error;
    end(ignored, end_error);
    return false;
  }
  return true;
}

bool NetworkCut::end(Counters& counters, std::string& error) {
  std::string listing, output;
  int listed = run_nft({"list", "table", "inet", "switchboard_chaos"}, "", listing);
  int deleted = run_nft({"-f", "-"}, std::string("delete table ") + kTable + "\n", output);
  if (deleted == 0) on_ = false;
  if (deleted != 0) {
    error = "nft: cannot delete the table (exit " + std::to_string(deleted) + "): " + output;
    return false;
  }
  if (listed != 0) {
    error = "nft: cannot list the table (exit " + std::to_string(listed) + "): " + listing;
    return false;
  }
  counters.router_to_server = packets_on_line_with(listing, "meta skuid");
  counters.server_to_router = packets_on_line_with(listing, "tcp dport @router_ports");
  return true;
}

}  // namespace switchboard::chaos
