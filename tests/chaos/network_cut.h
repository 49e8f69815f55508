// A network cut between the routers and nats-server, made of real packet drops: an
// nftables table (`inet switchboard_chaos`) in the suite's private network namespace
// (private_network.h). The routers run as a uid of their own; the suite's producers and
// readers, and nats-server, run as root and are never cut. Both directions are cut:
//
//   router -> server   packets of sockets owned by the routers' uid to the server's port
//                      (`meta skuid`); their source ports go into a set as they pass
//   server -> router   packets from the server's port to a port in that set
//
//   Blackhole  both are dropped: TCP stalls, pings go unanswered, the SYNs of reconnect
//              attempts vanish (a cable pulled, a firewall that drops). When the cut ends,
//              TCP retransmits what it still holds.
//   Reset      both are rejected with a TCP reset: each end's connection is reset at its
//              next packet, and reconnect attempts are refused (a firewall that rejects).
//
// The end of a cut deletes the table. Each rule counts what it matched; a self-check at the
// start of each cut proves the rules hold for the routers' uid.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace switchboard::chaos {

class NetworkCut {
 public:
  enum class Mode { Blackhole, Reset };
  static const char* mode_name(Mode m);

  struct Counters {
    uint64_t router_to_server = 0;  // packets dropped or rejected, the self-check's SYN among them
    uint64_t server_to_router = 0;
  };

  NetworkCut(uid_t router_uid, gid_t router_gid, int server_port);
  ~NetworkCut();  // ends a cut still on
  NetworkCut(const NetworkCut&) = delete;
  NetworkCut& operator=(const NetworkCut&) = delete;

  // Installs the rules, then checks them: before, a connection made as the routers' uid
  // must be accepted; after, dropped unanswered (blackhole) or refused (reset). False with
  // what nft said, or what the check saw, in `error` (the table is then removed).
  bool begin(Mode mode, std::string& error);
  // Reads the counters and deletes the table.
  bool end(Counters& counters, std::string& error);
  bool on() const { return on_; }

 private:
  // What a connection attempt as the routers' uid gets within `timeout_ms`.
  enum class Probe { Connected, Refused, NoAnswer, Failed };
  Probe probe(int timeout_ms);
  static const char* probe_name(Probe p);

  uid_t uid_;
  gid_t gid_;
  int port_;
  bool on_ = false;
};

// Runs nft with `args` and `input` on its standard input. Returns its exit status (-1 when
// it could not be run); `output` gets what it wrote (standard output and error).
int run_nft(const std::vector<std::string>& args, const std::string& input, std::string& output);
// nft's path: /usr/sbin/nft (Debian's nftables package) or the PATH's.
std::string nft_binary();

}  // namespace switchboard::chaos
