#include "tests/chaos/private_network.h"

#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace switchboard::chaos {

namespace {

size_t thread_count() {
  std::error_code ec;
  size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

}  // namespace

bool enter_private_network(std::string& error) {
  if (thread_count() > 1) {
    error = "the process already runs threads; they would stay in the host's network namespace";
    return false;
  }
  if (::unshare(CLONE_NEWNET) != 0) {
    error = std::string("cannot make a private network namespace (unshare(CLONE_NEWNET): ") + std::strerror(errno) +
            "); the network-cut scenario needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to cut the routers' packets "
            "with nftables without touching the host's network";
    return false;
  }
  // A new namespace's loopback interface is down; up, it has 127.0.0.1.
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket in the private network namespace: ") + std::strerror(errno);
    return false;
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  bool up = ::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  if (up) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    up = ::ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  }
  if (!up) error = std::string("cannot bring lo up in the private network namespace: ") + std::strerror(errno);
  ::close(fd);
  return up;
}

}  // namespace switchboard::chaos
