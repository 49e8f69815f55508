// The suite's own network: a private network namespace holding nothing but a loopback
// interface, so that the firewall rules of a network cut (network_cut.h) never touch the
// host's, and everything the suite starts talks over that loopback alone.
#pragma once

#include <string>

namespace switchboard::chaos {

// Moves this process into a new network namespace and brings its loopback interface up
// (127.0.0.1). Must run before the process starts a thread: a namespace belongs to a
// thread, and only threads and processes started after the move inherit it (the NATS
// library's own threads among them, which reconnect clients). Needs root (CAP_SYS_ADMIN
// and CAP_NET_ADMIN). False, with what went wrong and what is needed in `error`.
bool enter_private_network(std::string& error);

}  // namespace switchboard::chaos
