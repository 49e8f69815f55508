// The soak and the network cut: the same data plane and load (rig.h), different faults.
#include <signal.h>

#include <algorithm>
#include <cstdio>

#include "tests/chaos/rig.h"
#include "tests/chaos/scenarios.h"

namespace switchboard::chaos {

namespace {

enum class Fault { RouterKill9, RouterTerm, FleetKill9, NatsKill9, NatsTerm, RouterPause, RouterTermNatsDown };

const char* fault_name(Fault f) {
  switch (f) {
    case Fault::RouterKill9: return "router_kill9";
    case Fault::RouterTerm: return "router_sigterm";
    case Fault::FleetKill9: return "fleet_kill9";
    case Fault::NatsKill9: return "nats_kill9";
    case Fault::NatsTerm: return "nats_sigterm";
    case Fault::RouterPause: return "router_pause";
    case Fault::RouterTermNatsDown: return "router_sigterm_nats_down";
  }
  return "?";
}

// Faults come in shuffled rounds of nine, so that even a short run sees nearly every kind,
// and router kills (the common case in a cluster) twice as often as the rest.
class FaultDeck {
 public:
  explicit FaultDeck(Rng& rng) : rng_(rng) {}
  Fault next() {
    if (deck_.empty()) {
      deck_ = {Fault::RouterKill9, Fault::RouterKill9, Fault::RouterTerm,  Fault::RouterTerm,
               Fault::FleetKill9,  Fault::NatsKill9,   Fault::NatsTerm,    Fault::RouterPause,
               Fault::RouterTermNatsDown};
      std::shuffle(deck_.begin(), deck_.end(), rng_.engine());
    }
    Fault f = deck_.back();
    deck_.pop_back();
    return f;
  }

 private:
  Rng& rng_;
  std::vector<Fault> deck_;
};

// Load, faults until `duration` (none in the last seconds), then drain, account, stop.
template <typename Inject>
bool run_with_faults(const Options& o, Report& report, RigConfig config, double duration, Inject inject) {
  Rig rig(o, std::move(config), report);
  if (!rig.setup()) {
    rig.keep_work_dir();
    return false;
  }
  rig.start_load();
  const double quiet_tail = o.quick ? 5.0 : 10.0;
  sleep_for(o.quick ? 3.0 : 5.0);
  while (!interrupted() && rig.now() < duration - quiet_tail) {
    inject(rig, duration - quiet_tail);
    rig.check();
  }
  while (!interrupted() && rig.now() < duration) {
    sleep_for(0.2);
    rig.check();
  }
  rig.stop_load();
  if (interrupted()) {
    report.violation("interrupted");
    rig.keep_work_dir();
    return false;
  }
  rig.settle(o.quick ? 120 : 300);
  rig.account();
  rig.shutdown();
  if (!report.passed()) rig.keep_work_dir();
  return report.passed();
}

}  // namespace

double default_duration(const std::string& scenario, bool quick) {
  if (scenario == "soak") return quick ? 75 : 600;
  if (scenario == "network-cut") return quick ? 40 : 180;
  if (scenario == "slow-destination") return quick ? 30 : 120;
  if (scenario == "reload-storm") return quick ? 10 : 60;
  if (scenario == "control-plane") return quick ? 120 : 600;
  return 60;
}

bool run_soak(const Options& o, Report& report) {
  Rng rng(o.seed);
  FaultDeck deck(rng);
  RigConfig config;
  config.name = "soak";
  config.js_rate = o.rate > 0 ? o.rate : 100;
  config.core_rate = 40;
  const double duration = o.duration_s > 0 ? o.duration_s : default_duration("soak", o.quick);
  report.figure("rate", "{\"jetstream\":" + std::to_string(static_cast<int>(config.js_rate)) +
                            ",\"core\":" + std::to_string(static_cast<int>(config.core_rate)) + "}");
  return run_with_faults(o, report, config, duration, [&](Rig& rig, double until) {
    // The wait between faults and each fault's shape come from the seed.
    double gap = o.quick ? rng.uniform(2, 6) : rng.uniform(4, 14);
    Fault f = deck.next();
    size_t target = rng.index(rig.routers());
    double down_router = rng.uniform(0.2, 4.0);
    double down_nats = rng.uniform(0.5, 5.0);
    // Half the pauses outlast the route's ackWait (10 s): the peer is given the events again.
    double pause = rng.uniform(1.0, 16.0);
    if (!sleep_for(gap) || rig.now() >= until) return;
    bool one_router = f == Fault::RouterKill9 || f == Fault::RouterTerm || f == Fault::RouterPause ||
                      f == Fault::RouterTermNatsDown;
    std::fprintf(stderr, "chaos[soak]: %6.1f s  %s%s\n", rig.now(), fault_name(f),
                 one_router ? (" router-" + std::to_string(target)).c_str() : "");
    switch (f) {
      case Fault::RouterKill9: rig.kill_router(target, SIGKILL, down_router); break;
      case Fault::RouterTerm: rig.kill_router(target, SIGTERM, down_router); break;
      case Fault::FleetKill9: rig.kill_fleet(down_router); break;
      case Fault::NatsKill9: rig.restart_nats(SIGKILL, down_nats); break;
      case Fault::NatsTerm: rig.restart_nats(SIGTERM, down_nats); break;
      case Fault::RouterPause: rig.pause_router(target, pause); break;
      case Fault::RouterTermNatsDown: rig.stop_router_while_nats_down(target, down_nats); break;
    }
  });
}

bool run_network_cut(const Options& o, Report& report) {
  if (!o.private_network) {
    report.violation("network-cut cannot run: " + o.private_network_error);
    return false;
  }
  Rng rng(o.seed);
  RigConfig config;
  config.name = "netcut";
  config.cuttable = true;
  config.js_rate = o.rate > 0 ? o.rate : 100;
  config.core_rate = 40;
  const double duration = o.duration_s > 0 ? o.duration_s : default_duration("network-cut", o.quick);
  report.figure("rate", "{\"jetstream\":" + std::to_string(static_cast<int>(config.js_rate)) +
                            ",\"core\":" + std::to_string(static_cast<int>(config.core_rate)) + "}");
  bool blackhole_next = rng.index(2) == 0;
  return run_with_faults(o, report, config, duration, [&](Rig& rig, double until) {
    double gap = o.quick ? rng.uniform(3, 6) : rng.uniform(5, 15);
    // Blackholes are the harder case (nothing tells the router the peer is gone), and
    // longer than the router's 5 s publish timeout half the time.
    NetworkCut::Mode mode = blackhole_next ? NetworkCut::Mode::Blackhole : NetworkCut::Mode::Reset;
    blackhole_next = !blackhole_next;
    double length = mode == NetworkCut::Mode::Blackhole ? rng.uniform(1, o.quick ? 8 : 15) : rng.uniform(1, 6);
    if (!sleep_for(gap) || rig.now() >= until) return;
    std::fprintf(stderr, "chaos[network-cut]: %6.1f s  %s for %.1f s\n", rig.now(), NetworkCut::mode_name(mode),
                 length);
    rig.cut(mode, length);
  });
}

}  // namespace switchboard::chaos
