// The data plane the soak and the network cut break: one nats-server with JetStream, two
// router replicas sharing one durable consumer, and two routes under steady load:
//
//   soak-js    CHAOS_SRC (chaos.js.in.*) -> filter, transform -> CHAOS_DST (chaos.js.out.*),
//              dead letters on chaos.dlq.soak-js, kept by the stream CHAOS_DLQ
//   soak-core  core subject chaos.core.in.* -> transform -> CHAOS_CORE (chaos.core.out.*),
//              dead letters on chaos.dlq.soak-core
//
// For the network cut, the routers run as a user of their own (kRouterUid), whose packets
// to and from the server a NetworkCut drops or rejects; the suite's own producers and
// readers are never cut.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "router/nats_client.h"
#include "tests/chaos/harness.h"
#include "tests/chaos/ledger.h"
#include "tests/chaos/report.h"
#include "tests/chaos/network_cut.h"

namespace switchboard::chaos {

// Accounts for every event of a JetStream route: read from its source stream, looked for
// in its destination stream and dead letters. Records the figures and any broken promise
// (a loss, a duplicate, an event with the wrong outcome).
struct JetStreamRouteCheck {
  std::string source, destination, dead_letters, route, tag;
  uint64_t seed = 0;
  bool mixed = true;
  const JetStreamProducer* producer = nullptr;
};
bool account_jetstream_route(router::NatsClient& nc, const JetStreamRouteCheck& check, Report& report);

// The routers' user and group when their network can be cut: nobody, who owns no file, so
// the routers read only what the rig opens to everyone.
constexpr uid_t kRouterUid = 65534;
constexpr gid_t kRouterGid = 65534;

struct RigConfig {
  std::string name;         // the work folder's name
  size_t routers = 2;
  bool cuttable = false;    // routers run as kRouterUid, and cut() can cut them
  double js_rate = 100;     // events per second on soak-js
  double core_rate = 40;    // events per second on soak-core
  int64_t grace_s = 5;      // the routers' --grace
};

class Rig {
 public:
  Rig(const Options& options, RigConfig config, Report& report);
  ~Rig();
  Rig(const Rig&) = delete;
  Rig& operator=(const Rig&) = delete;

  // Starts the server, makes the streams, writes the routes, starts the routers and waits
  // until they are ready. False (with a violation recorded) when that fails.
  bool setup();
  void start_load();
  void stop_load();

  // Faults. Each waits for the fleet to be ready again and records itself in the report.
  void kill_router(size_t index, int sig, double down_s);
  void kill_fleet(double down_s);
  void restart_nats(int sig, double down_s);
  // SIGSTOP, then SIGCONT: a frozen process (a stalled node, a long pause) that comes back
  // holding messages its peers have meanwhile been given again.
  void pause_router(size_t index, double seconds);
  // nats-server killed, then a router told to stop while it is gone: it must still exit 0
  // within its grace, and lose nothing.
  void stop_router_while_nats_down(size_t index, double down_s);
  // Every router's packets to and from nats-server dropped or rejected for `seconds`
  // (network_cut.h); RigConfig::cuttable only.
  void cut(NetworkCut::Mode mode, double seconds);
  // Between faults: notices routers that died on their own.
  void check() { restart_crashed(); }

  // Everything up, producers stopped: waits until the routes have nothing in flight.
  bool settle(double timeout_s);
  // Reads the streams and records the figures of both routes.
  void account();
  // SIGTERM to every router: each must exit 0 within its grace.
  void shutdown();

  size_t routers() const { return routers_.size(); }
  Clock::time_point epoch() const { return epoch_; }
  double now() const { return since(epoch_); }
  const std::string& work_dir() const { return dir_.path(); }
  void keep_work_dir() { dir_.keep(); }

 private:
  bool fleet_ready(double timeout_s);
  // A router that died on its own is a broken promise: recorded with how it ended, then
  // started again (as a kubelet would) so that the run goes on.
  void restart_crashed();
  std::string routes_yaml() const;
  void sample_progress();

  Options options_;
  RigConfig config_;
  Report& report_;
  Clock::time_point epoch_ = Clock::now();
  WorkDir dir_;
  std::unique_ptr<NatsNode> nats_;
  std::unique_ptr<NetworkCut> cut_;
  // What the cuts dropped (blackhole) and rejected (reset), over the run.
  NetworkCut::Counters dropped_, rejected_;
  uint64_t cuts_ = 0;
  // Router binary, routes and folder opened to the routers' user.
  bool open_to_routers(const std::string& routes, std::string& router_bin);
  router::NatsClient admin_;
  std::vector<std::unique_ptr<RouterNode>> routers_;
  std::unique_ptr<JetStreamProducer> js_producer_;
  std::unique_ptr<CoreProducer> core_producer_;
  std::vector<double> core_published_;
  // Progress: the longest time the destination did not move while the source had work.
  std::thread sampler_;
  std::atomic<bool> sampling_{false};
  std::mutex progress_mu_;
  double longest_stall_s_ = 0, longest_stall_at_ = 0;
};

}  // namespace switchboard::chaos
