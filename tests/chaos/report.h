// What one scenario found: faults injected, the accounting of each route, figures of its
// own (memory, backlog, reloads), and the promises it saw broken. Written as JSON and as a
// table.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tests/chaos/harness.h"

namespace switchboard::chaos {

struct FaultRecord {
  std::string kind;     // router_kill9, router_sigterm, fleet_kill9, nats_kill9, nats_sigterm, cut_blackhole...
  std::string target;   // router-0, nats-server, router <-> nats-server
  double at = 0;        // seconds since the scenario began
  double down = 0;      // how long the target stayed down (or the cut lasted)
  double recovered = 0; // when every router was ready again
  int exit_status = 0;  // of the killed process (-1: did not exit in time)
  int64_t exit_ms = 0;  // from the signal to its exit
  std::string figures;  // what else it measured, a JSON object (a cut's packet counts); empty: nothing
};

// One route's figures, as JSON (see tally_json), with a one-line summary for the table.
struct RouteFigures {
  std::string route, kind;  // kind: "jetstream" or "core"
  std::string json;
  uint64_t sent = 0, delivered = 0, duplicated = 0, dead_lettered = 0, filtered = 0, lost = 0;
  std::string note;         // e.g. the core loss bound
};

class Report {
 public:
  Report(std::string scenario, const Options& options, double duration_s);
  void fault(const FaultRecord& f);
  void route(const RouteFigures& r) { routes_.push_back(r); }
  // A figure of the scenario's own: a JSON value under "figures".
  void figure(const std::string& name, const std::string& json_value) { figures_[name] = json_value; }
  // A promise the run saw broken: the scenario fails.
  void violation(const std::string& what);
  // Something worth knowing that breaks no promise (printed, in the JSON).
  void note(const std::string& what);
  bool passed() const { return violations_.empty(); }
  const std::vector<FaultRecord>& faults() const { return faults_; }
  void set_work_dir(const std::string& dir) { work_dir_ = dir; }

  std::string json() const;
  std::string table() const;
  void finish();  // records the wall time and the load at the end

 private:
  std::string scenario_;
  Options options_;
  double duration_s_;
  Clock::time_point started_ = Clock::now();
  std::string started_utc_;
  std::string machine_start_, machine_end_;
  double wall_s_ = 0;
  std::vector<FaultRecord> faults_;
  std::vector<RouteFigures> routes_;
  std::map<std::string, std::string> figures_;
  std::vector<std::string> violations_, notes_;
  std::string work_dir_;
};

// Combines scenario reports into one JSON document and one table.
std::string combined_json(const std::vector<const Report*>& reports, double wall_s);

}  // namespace switchboard::chaos
