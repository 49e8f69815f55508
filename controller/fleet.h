// What the router pods say they run: their heartbeats (router/router.cc heartbeat_json),
// kept per router fleet, with the time each arrived. A pod that has not sent for
// `stale_after` is stale (counted nowhere, shown as unknown); after twice that it is
// forgotten. Time is passed in, never read here, so tests need no clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::controller {

struct Heartbeat {
  std::string pod, router, ns;
  uint64_t generation = 0;
  std::string hash;
  std::string state;  // applied | rejected | stopped | pending
  std::string error;
  std::string source_error;  // a problem with where the pod reads its table (it keeps its table)
};
// False with `error` when the payload is not a heartbeat.
bool parse_heartbeat(std::string_view payload, Heartbeat& out, std::string& error);

struct PodView {
  std::string name;
  uint64_t generation = 0;
  std::string hash;
  std::string state;  // applied | rejected | stopped | unknown (stale, or no table yet)
  std::string error;
  bool stale = false;
  std::string source_error = {};  // the heartbeat's sourceError
};

// How far a fleet got with one route table.
struct FleetSummary {
  int live = 0;       // pods heard from lately that are not stopping
  int current = 0;    // of those, running the table with this hash
  int applied = 0;    // pods whose last word was "applied" (any table), not stale
  int rejected = 0;   // pods whose last word was "rejected", not stale
  int stale = 0;
  std::vector<std::pair<std::string, std::string>> rejected_by;  // pod, error
};
FleetSummary summarize(const std::vector<PodView>& pods, const std::string& current_hash);

class FleetTracker {
 public:
  using Clock = std::chrono::steady_clock;
  explicit FleetTracker(Clock::duration stale_after) : stale_after_(stale_after) {}

  // Records a heartbeat of the fleet `router_key` ("namespace/name"). Returns true when
  // what a status shows of the fleet changed (a new pod, another table or state).
  bool observe(const std::string& router_key, const Heartbeat& hb, Clock::time_point now);
  // The fleet's pods, sorted by name.
  std::vector<PodView> pods(const std::string& router_key, Clock::time_point now) const;
  // Ages pods out; returns the fleets whose view changed since the last call (a pod went
  // stale or was forgotten).
  std::vector<std::string> expire(Clock::time_point now);
  void forget(const std::string& router_key);

 private:
  struct Pod {
    Heartbeat last;
    Clock::time_point seen;
    bool reported_stale = false;
  };
  Clock::duration stale_after_;
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, Pod>> fleets_;
};

}  // namespace switchboard::controller
