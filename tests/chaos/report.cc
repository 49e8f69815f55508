#include "tests/chaos/report.h"

#include <cstdio>
#include <ctime>

#include "core/json/document.h"

namespace switchboard::chaos {

namespace {

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

std::string quoted(const std::string& s) {
  std::string out;
  json::append_quoted(out, s);
  return out;
}

}  // namespace

Report::Report(std::string scenario, const Options& options, double duration_s)
    : scenario_(std::move(scenario)),
      options_(options),
      duration_s_(duration_s),
      started_utc_(utc_now()),
      machine_start_(machine_json()) {}

void Report::fault(const FaultRecord& f) { faults_.push_back(f); }

void Report::violation(const std::string& what) {
  std::fprintf(stderr, "chaos[%s]: VIOLATION: %s\n", scenario_.c_str(), what.c_str());
  violations_.push_back(what);
}

void Report::note(const std::string& what) {
  std::fprintf(stderr, "chaos[%s]: note: %s\n", scenario_.c_str(), what.c_str());
  notes_.push_back(what);
}

void Report::finish() {
  wall_s_ = since(started_);
  machine_end_ = machine_json();
}

std::string Report::json() const {
  std::string out = "{\"scenario\":" + quoted(scenario_) + ",\"mode\":" + quoted(options_.quick ? "quick" : "full") +
                    ",\"seed\":" + std::to_string(options_.seed) + ",\"replay\":" +
                    quoted("SWITCHBOARD_CHAOS_SEED=" + std::to_string(options_.seed)) +
                    ",\"startedAt\":" + quoted(started_utc_) + ",\"durationSeconds\":" + num(duration_s_) +
                    ",\"wallSeconds\":" + num(wall_s_) + ",\"passed\":" + (passed() ? "true" : "false") +
                    ",\"machineAtStart\":" + machine_start_ +
                    ",\"machineAtEnd\":" + (machine_end_.empty() ? "null" : machine_end_);
  std::map<std::string, int> by_kind;
  for (const auto& f : faults_) ++by_kind[f.kind];
  out += ",\"faults\":{\"total\":" + std::to_string(faults_.size()) + ",\"byKind\":{";
  bool first = true;
  for (const auto& [k, n] : by_kind) {
    out += (first ? "" : ",") + quoted(k) + ":" + std::to_string(n);
    first = false;
  }
  out += "},\"log\":[";
  for (size_t i = 0; i < faults_.size(); ++i) {
    const auto& f = faults_[i];
    out += (i ? "," : "") + std::string("{\"kind\":") + quoted(f.kind) + ",\"target\":" + quoted(f.target) +
           ",\"at\":" + num(f.at) + ",\"down\":" + num(f.down) + ",\"recovered\":" + num(f.recovered) +
           ",\"exitStatus\":" + std::to_string(f.exit_status) + ",\"exitMs\":" + std::to_string(f.exit_ms) + (f.figures.empty() ? "" : ",\"figures\":" + f.figures) + "}";
  }
  out += "]},\"routes\":{";
  for (size_t i = 0; i < routes_.size(); ++i) {
    out += (i ? "," : "") + quoted(routes_[i].route) + ":" + routes_[i].json;
  }
  out += "},\"figures\":{";
  first = true;
  for (const auto& [k, v] : figures_) {
    out += (first ? "" : ",") + quoted(k) + ":" + v;
    first = false;
  }
  out += "},\"violations\":[";
  for (size_t i = 0; i < violations_.size(); ++i) out += (i ? "," : "") + quoted(violations_[i]);
  out += "],\"notes\":[";
  for (size_t i = 0; i < notes_.size(); ++i) out += (i ? "," : "") + quoted(notes_[i]);
  out += "]";
  if (!work_dir_.empty()) out += ",\"workDir\":" + quoted(work_dir_);
  out += "}";
  return out;
}

std::string Report::table() const {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "== %s (%s), seed %llu, %.0f s of load, %.0f s wall ==\n", scenario_.c_str(),
                options_.quick ? "quick" : "full", static_cast<unsigned long long>(options_.seed), duration_s_, wall_s_);
  out += line;
  std::snprintf(line, sizeof line, "  %-14s %-9s %9s %9s %5s %9s %8s %6s  %s\n", "route", "source", "sent",
                "delivered", "dup", "dead-lett", "filtered", "lost", "");
  out += line;
  for (const auto& r : routes_) {
    std::snprintf(line, sizeof line, "  %-14s %-9s %9llu %9llu %5llu %9llu %8llu %6llu  %s\n", r.route.c_str(),
                  r.kind.c_str(), static_cast<unsigned long long>(r.sent),
                  static_cast<unsigned long long>(r.delivered), static_cast<unsigned long long>(r.duplicated),
                  static_cast<unsigned long long>(r.dead_lettered), static_cast<unsigned long long>(r.filtered),
                  static_cast<unsigned long long>(r.lost), r.note.c_str());
    out += line;
  }
  std::map<std::string, int> by_kind;
  for (const auto& f : faults_) ++by_kind[f.kind];
  out += "  faults:";
  if (by_kind.empty()) out += " none";
  for (const auto& [k, n] : by_kind) out += " " + k + "=" + std::to_string(n);
  out += "\n";
  for (const auto& [k, v] : figures_) {
    if (v.size() <= 120) out += "  " + k + ": " + v + "\n";
  }
  for (const auto& n : notes_) out += "  note: " + n + "\n";
  for (const auto& v : violations_) out += "  VIOLATION: " + v + "\n";
  out += passed() ? "  PASS\n" : "  FAIL\n";
  return out;
}

std::string combined_json(const std::vector<const Report*>& reports, double wall_s) {
  bool passed = true;
  for (const auto* r : reports) passed = passed && r->passed();
  std::string out = "{\"suite\":\"switchboard chaos\",\"finishedAt\":" + quoted(utc_now()) +
                    ",\"wallSeconds\":" + num(wall_s) + ",\"passed\":" + (passed ? "true" : "false") +
                    ",\"machine\":" + machine_json() + ",\"scenarios\":[";
  for (size_t i = 0; i < reports.size(); ++i) out += (i ? "," : "") + reports[i]->json();
  out += "]}\n";
  return out;
}

}  // namespace switchboard::chaos
