// switchboard-chaos: the fault suite (`make chaos`, and its short versions in `make test`).
//
//   switchboard-chaos SCENARIO[,SCENARIO...]|all [--quick] [--duration SECONDS] [--seed N] [--rate N]
//                     [--bin-dir DIR] [--report FILE] [--keep]
//
// Scenarios: soak, network-cut, slow-destination, reload-storm, and control-plane where the
// controller and the e2e pod runner are part of the build. The seed comes from
// --seed, else SWITCHBOARD_CHAOS_SEED, else the clock; it is printed so that a run's faults
// can be replayed. Exit 0 when every promise held, 1 when one broke, 2 on bad usage.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "tests/chaos/harness.h"
#include "tests/chaos/private_network.h"
#include "tests/chaos/report.h"
#include "tests/chaos/scenarios.h"

using namespace switchboard::chaos;

namespace {

const std::vector<std::string> kScenarios = {"soak", "network-cut", "slow-destination", "reload-storm",
#ifdef SWITCHBOARD_CHAOS_CONTROL_PLANE
                                             "control-plane"
#endif
};

int usage() {
  std::cerr << "usage: switchboard-chaos SCENARIO[,SCENARIO...]|all [--quick] [--duration SECONDS] [--seed N] [--rate N]\n"
               "                         [--bin-dir DIR] [--report FILE] [--keep]\n"
               "scenarios: soak, network-cut, slow-destination, reload-storm"
#ifdef SWITCHBOARD_CHAOS_CONTROL_PLANE
               ", control-plane"
#endif
               "\n";
  return 2;
}

bool run(const std::string& scenario, const Options& o, Report& report) {
  if (scenario == "soak") return run_soak(o, report);
  if (scenario == "network-cut") return run_network_cut(o, report);
  if (scenario == "slow-destination") return run_slow_destination(o, report);
  if (scenario == "reload-storm") return run_reload_storm(o, report);
#ifdef SWITCHBOARD_CHAOS_CONTROL_PLANE
  if (scenario == "control-plane") return run_control_plane(o, report);
#endif
  return false;
}

std::string self_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  Options o;
  o.scenario = argv[1];
  o.bin_dir = self_dir();
  bool seeded = false;
  if (const char* s = std::getenv("SWITCHBOARD_CHAOS_SEED"); s != nullptr && *s != '\0') {
    o.seed = std::strtoull(s, nullptr, 10);
    seeded = true;
  }
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      o.quick = true;
      continue;
    }
    if (a == "--keep") {
      o.keep = true;
      continue;
    }
    if (i + 1 >= argc) return usage();
    std::string v = argv[++i];
    if (a == "--duration") o.duration_s = std::atof(v.c_str());
    else if (a == "--seed") {
      o.seed = std::strtoull(v.c_str(), nullptr, 10);
      seeded = true;
    } else if (a == "--rate") o.rate = std::atof(v.c_str());
    else if (a == "--bin-dir") o.bin_dir = v;
    else if (a == "--report") o.report_path = v;
    else return usage();
  }
  std::vector<std::string> scenarios;
  if (o.scenario == "all") {
    scenarios = kScenarios;
  } else {
    for (size_t start = 0; start <= o.scenario.size();) {
      size_t end = o.scenario.find(',', start);
      if (end == std::string::npos) end = o.scenario.size();
      std::string s = o.scenario.substr(start, end - start);
      if (std::find(kScenarios.begin(), kScenarios.end(), s) == kScenarios.end()) return usage();
      scenarios.push_back(s);
      start = end + 1;
    }
  }
  if (!seeded) {
    o.seed = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) % 1000000007ULL;
  }
  // Before anything else (the move must come before the first thread): the network cut
  // needs a network namespace of its own, and with it every scenario of this run has one.
  if (std::find(scenarios.begin(), scenarios.end(), "network-cut") != scenarios.end()) {
    o.private_network = enter_private_network(o.private_network_error);
    if (!o.private_network) {
      std::fprintf(stderr, "switchboard-chaos: %s\n", o.private_network_error.c_str());
    }
  }
  if (::access((o.bin_dir + "/switchboard-router").c_str(), X_OK) != 0) {
    std::cerr << "switchboard-chaos: no switchboard-router in " << o.bin_dir << " (use --bin-dir)\n";
    return 2;
  }
  install_interrupt_handler();
  std::fprintf(stderr, "switchboard-chaos: seed %llu (replay: SWITCHBOARD_CHAOS_SEED=%llu)\n",
               static_cast<unsigned long long>(o.seed), static_cast<unsigned long long>(o.seed));

  auto t0 = Clock::now();
  std::vector<std::unique_ptr<Report>> reports;
  bool passed = true;
  for (const auto& s : scenarios) {
    if (interrupted()) break;
    Options so = o;
    so.scenario = s;
    // With several scenarios, --duration sets the soak's length; the others keep their own.
    double duration = o.duration_s > 0 && (scenarios.size() == 1 || s == "soak") ? o.duration_s
                                                                                  : default_duration(s, so.quick);
    so.duration_s = duration;
    std::fprintf(stderr, "switchboard-chaos: %s (%s, %.0f s of load)\n", s.c_str(), so.quick ? "quick" : "full",
                 duration);
    reports.push_back(std::make_unique<Report>(s, so, duration));
    bool ok = run(s, so, *reports.back());
    reports.back()->finish();
    passed = passed && ok;
    std::fputs(reports.back()->table().c_str(), stdout);
    std::fflush(stdout);
  }
  std::vector<const Report*> all;
  for (const auto& r : reports) all.push_back(r.get());
  if (reports.size() > 1) {
    std::printf("\n==== switchboard chaos: %zu scenarios, seed %llu, %.1f min ====\n", reports.size(),
                static_cast<unsigned long long>(o.seed), since(t0) / 60);
    for (const auto& r : reports) std::fputs(r->table().c_str(), stdout);
  }
  std::string json = combined_json(all, since(t0));
  if (!o.report_path.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(o.report_path).parent_path(), ec);
    std::ofstream(o.report_path) << json;
    std::fprintf(stderr, "switchboard-chaos: report in %s\n", o.report_path.c_str());
  }
  std::fprintf(stderr, "switchboard-chaos: seed %llu: %s\n", static_cast<unsigned long long>(o.seed),
               interrupted() ? "INTERRUPTED" : passed ? "PASS" : "FAIL");
  if (interrupted()) return 130;
  return passed ? 0 : 1;
}
