// switchboard-bench-report: turns the trials of one data-plane benchmark run into its
// results, and checks results files.
//
//   switchboard-bench-report write --meta META.json --trials TRIALS.jsonl --out DIR
//       writes DIR/latest.json, DIR/latest.md (tables and goals), and for
//       bench/dataplane/charts.gp DIR/throughput.dat, DIR/latency-<size>.dat and
//       DIR/charts-vars.gp; prints the goals.
//   switchboard-bench-report check --results latest.json --systems ID,ID,... [--sizes N,N]
//       exit 0 when the file is well-formed JSON and has measured results (at least one
//       run without error) for every listed system and size; says what is missing.
//
// META.json is written by scripts/bench-dataplane.sh: machine, command, settings, sizes and
// the systems in order ({id, label, chart, group, transport, skipped?}). Each line of TRIALS.jsonl
// is one run of one system at one size (switchboard-bench-loadgen run, or the nats CLI's
// numbers in the same shape).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "core/json/document.h"

namespace json = switchboard::json;

namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// ---- reading --------------------------------------------------------------------------

struct Reader {
  const json::Document& d;
  uint32_t member(uint32_t obj, std::string_view key) const {
    if (d.node(obj).type != json::Type::Object) return 0;
    return d.find_member(obj, key);
  }
  std::optional<double> number(uint32_t obj, std::string_view key) const {
    uint32_t i = member(obj, key);
    if (i == 0 || d.node(i).type != json::Type::Number) return std::nullopt;
    return d.number_value(i);
  }
  std::string string(uint32_t obj, std::string_view key) const {
    uint32_t i = member(obj, key);
    return i != 0 && d.node(i).type == json::Type::String ? std::string(d.string_value(i)) : std::string();
  }
  bool boolean(uint32_t obj, std::string_view key) const {
    uint32_t i = member(obj, key);
    return i != 0 && d.node(i).type == json::Type::True;
  }
  std::vector<uint32_t> elements(uint32_t arr) const {
    std::vector<uint32_t> out;
    if (arr == 0 || d.node(arr).type != json::Type::Array) return out;
    uint32_t c = json::Document::first_child(arr);
    for (uint32_t k = 0; k < d.node(arr).count; ++k, c = d.node(c).next) out.push_back(c);
    return out;
  }
};

struct Trial {
  std::string system, error;
  int size = 0, rep = 0;
  bool ok = false;
  std::map<std::string, double> v;  // in_per_s, lat.p99_us, base.p99_us, ...
  std::vector<std::pair<double, double>> spectrum;
  // Latency at the fixed rates of --rates: "lat.*" and "base.*" as in v, one map per rate.
  std::vector<std::map<std::string, double>> ladder;
};

void read_latency(const Reader& r, uint32_t obj, const std::string& prefix, Trial& t, bool spectrum) {
  if (obj == 0) return;
  for (const char* k : {"rate", "samples", "expected", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us"}) {
    if (auto x = r.number(obj, k)) t.v[prefix + k] = *x;
  }
  if (!spectrum) return;
  for (uint32_t e : r.elements(r.member(obj, "spectrum"))) {
    auto pair = r.elements(e);
    if (pair.size() == 2 && r.d.node(pair[0]).type == json::Type::Number &&
        r.d.node(pair[1]).type == json::Type::Number) {
      t.spectrum.emplace_back(r.d.number_value(pair[0]), r.d.number_value(pair[1]));
    }
  }
}

bool read_trials(const std::string& path, std::vector<Trial>& out, std::string& error) {
  std::ifstream f(path);
  if (!f) {
    error = "cannot read " + path;
    return false;
  }
  std::string line;
  for (int n = 1; std::getline(f, line); ++n) {
    if (line.empty()) continue;
    json::Document d;
    if (!d.parse(line)) {
      error = path + ":" + std::to_string(n) + ": " + d.error();
      return false;
    }
    Reader r{d};
    Trial t;
    t.system = r.string(0, "system");
    t.size = static_cast<int>(r.number(0, "size").value_or(0));
    t.rep = static_cast<int>(r.number(0, "rep").value_or(0));
    t.ok = r.boolean(0, "ok");
    t.error = r.string(0, "error");
    for (const char* k : {"in_per_s", "out_per_s", "cpu_s_per_million", "server_cpu_s_per_million",
                          "loadgen_cpu_s_per_million", "vmhwm_kib", "seconds", "out_of_order", "unparsed"}) {
      if (auto x = r.number(0, k)) t.v[k] = *x;
    }
    read_latency(r, r.member(0, "latency"), "lat.", t, true);
    read_latency(r, r.member(0, "baseline"), "base.", t, false);
    for (uint32_t step : r.elements(r.member(0, "ladder"))) {
      Trial at;
      read_latency(r, r.member(step, "latency"), "lat.", at, false);
      read_latency(r, r.member(step, "baseline"), "base.", at, false);
      if (at.v.count("lat.rate")) t.ladder.push_back(std::move(at.v));
    }
    if (t.v.count("lat.p99_us") && t.v.count("base.p99_us")) t.v["added.p99_us"] = t.v["lat.p99_us"] - t.v["base.p99_us"];
    if (t.v.count("lat.p50_us") && t.v.count("base.p50_us")) t.v["added.p50_us"] = t.v["lat.p50_us"] - t.v["base.p50_us"];
    if (t.v.count("vmhwm_kib") && t.v["vmhwm_kib"] > 0) t.v["vmhwm_mib"] = t.v["vmhwm_kib"] / 1024.0;
    if (t.v.count("lat.samples") && t.v.count("lat.expected")) {
      t.v["lat.lost"] = std::max(0.0, t.v["lat.expected"] - t.v["lat.samples"]);
    }
    if (t.system.empty() || t.size <= 0) {
      error = path + ":" + std::to_string(n) + ": a trial needs system and size";
      return false;
    }
    out.push_back(std::move(t));
  }
  return true;
}

// ---- statistics -------------------------------------------------------------------------

struct Stat {
  std::vector<double> values;  // in run order
  double median = NAN, min = NAN, max = NAN;
  bool empty() const { return values.empty(); }
};

Stat stat_of(std::vector<double> values) {
  Stat s;
  s.values = values;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  s.median = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  s.min = values.front();
  s.max = values.back();
  return s;
}

// ---- writing ----------------------------------------------------------------------------

std::string num(double v, int digits = 6) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.*g", digits, v);
  return b;
}

std::string quoted(std::string_view s) {
  std::string out;
  json::append_quoted(out, s);
  return out;
}

// "1.23M", "456k", "789"
std::string rate_text(double v) {
  if (!std::isfinite(v)) return "–";
  char b[32];
  if (v >= 1e6) std::snprintf(b, sizeof b, "%.2fM", v / 1e6);
  else if (v >= 1e4) std::snprintf(b, sizeof b, "%.0fk", v / 1e3);
  else if (v >= 1e3) std::snprintf(b, sizeof b, "%.1fk", v / 1e3);
  else std::snprintf(b, sizeof b, "%.0f", v);
  return b;
}

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "–";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

std::string micros(double v) {
  if (!std::isfinite(v)) return "–";
  return v >= 100 || v <= -100 ? fixed(v, 0) : fixed(v, 1);
}

struct System {
  std::string id, label, group, transport, skipped, chart;  // chart: a short label
};

struct Cell {  // one system at one size
  std::vector<const Trial*> ok;
  std::vector<std::string> errors;
  std::map<std::string, Stat> stats;
  const Trial* median_latency_trial = nullptr;  // whose spectrum is plotted
};

constexpr const char* kMetrics[] = {
    "in_per_s", "out_per_s", "cpu_s_per_million", "server_cpu_s_per_million", "loadgen_cpu_s_per_million",
    "vmhwm_mib", "lat.rate", "lat.p50_us", "lat.p90_us", "lat.p99_us", "lat.p999_us", "lat.max_us",
    "lat.lost", "base.p50_us", "base.p99_us", "base.p999_us", "added.p50_us", "added.p99_us", "out_of_order",
    "unparsed"};

Cell cell_of(const std::vector<Trial>& trials, const std::string& system, int size) {
  Cell c;
  for (const Trial& t : trials) {
    if (t.system != system || t.size != size) continue;
    if (t.ok) c.ok.push_back(&t);
    else c.errors.push_back("rep " + std::to_string(t.rep) + ": " + t.error);
  }
  for (const char* m : kMetrics) {
    std::vector<double> vals;
    for (const Trial* t : c.ok) {
      auto it = t->v.find(m);
      if (it != t->v.end() && std::isfinite(it->second) && !(std::string_view(m) == "cpu_s_per_million" && it->second < 0)) {
        vals.push_back(it->second);
      }
    }
    if (!vals.empty()) c.stats[m] = stat_of(vals);
  }
  // The run whose p99 is the median one stands for the system in the latency chart.
  std::vector<const Trial*> with_lat;
  for (const Trial* t : c.ok) {
    if (!t->spectrum.empty() && t->v.count("lat.p99_us")) with_lat.push_back(t);
  }
  std::sort(with_lat.begin(), with_lat.end(),
            [](const Trial* a, const Trial* b) { return a->v.at("lat.p99_us") < b->v.at("lat.p99_us"); });
  if (!with_lat.empty()) c.median_latency_trial = with_lat[(with_lat.size() - 1) / 2];
  return c;
}

double median_of(const Cell& c, const char* metric) {
  auto it = c.stats.find(metric);
  return it == c.stats.end() ? NAN : it->second.median;
}

// One row of the fixed-rate latency table: the medians over the repetitions that ran it.
struct LadderRow {
  std::string system;
  int size = 0;
  double rate = 0;
  std::map<std::string, double> v;  // lat.p50_us, lat.p99_us, lat.p999_us, base.p99_us, added.p99_us, lat.lost
};

std::vector<LadderRow> ladder_rows(const std::vector<Trial>& trials, const std::vector<std::string>& order) {
  std::map<std::tuple<std::string, int, double>, std::map<std::string, std::vector<double>>> acc;
  for (const Trial& t : trials) {
    if (!t.ok) continue;
    for (const auto& step : t.ladder) {
      auto& m = acc[{t.system, t.size, step.at("lat.rate")}];
      auto add = [&](const char* name, const char* key) {
        auto it = step.find(key);
        if (it != step.end() && std::isfinite(it->second)) m[name].push_back(it->second);
      };
      add("lat.p50_us", "lat.p50_us");
      add("lat.p99_us", "lat.p99_us");
      add("lat.p999_us", "lat.p999_us");
      add("base.p99_us", "base.p99_us");
      if (step.count("lat.p99_us") && step.count("base.p99_us")) {
        m["added.p99_us"].push_back(step.at("lat.p99_us") - step.at("base.p99_us"));
      }
      if (step.count("lat.samples") && step.count("lat.expected")) {
        m["lat.lost"].push_back(std::max(0.0, step.at("lat.expected") - step.at("lat.samples")));
      }
    }
  }
  std::vector<LadderRow> rows;
  for (const auto& id : order) {
    for (const auto& [key, metrics] : acc) {
      if (std::get<0>(key) != id) continue;
      LadderRow row{id, std::get<1>(key), std::get<2>(key), {}};
      for (const auto& [name, vals] : metrics) row.v[name] = stat_of(vals).median;
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

struct Goal {
  std::string text;
  int size;
  double value, target;
  std::string unit;
  bool measured, met;
};

// A goal's measured value in its unit: "0.72×", "183 µs", "54.1 MiB".
std::string goal_value(double v, const std::string& unit) {
  if (unit == "×") return fixed(v, 2) + "×";
  if (unit == "µs") return micros(v) + " µs";
  return fixed(v, 1) + " " + unit;
}

std::string stat_json(const Stat& s) {
  std::string out = "{\"median\":" + num(s.median) + ",\"min\":" + num(s.min) + ",\"max\":" + num(s.max) + ",\"values\":[";
  for (size_t i = 0; i < s.values.size(); ++i) out += (i ? "," : "") + num(s.values[i]);
  return out + "]}";
}

std::string size_label(int size) { return size % 1024 == 0 ? std::to_string(size / 1024) + " KiB" : std::to_string(size) + " B"; }

int write_command(const std::string& meta_path, const std::string& trials_path, const std::string& out_dir) {
  auto meta_text = read_file(meta_path);
  if (!meta_text) {
    std::cerr << "report: cannot read " << meta_path << "\n";
    return 1;
  }
  json::Document meta;
  if (!meta.parse(*meta_text)) {
    std::cerr << "report: " << meta_path << ": " << meta.error() << "\n";
    return 1;
  }
  Reader mr{meta};
  std::vector<System> systems;
  for (uint32_t e : mr.elements(mr.member(0, "systems"))) {
    systems.push_back(System{mr.string(e, "id"), mr.string(e, "label"), mr.string(e, "group"),
                             mr.string(e, "transport"), mr.string(e, "skipped"), mr.string(e, "chart")});
    if (systems.back().chart.empty()) systems.back().chart = systems.back().id;
  }
  std::vector<int> sizes;
  for (uint32_t e : mr.elements(mr.member(0, "sizes"))) sizes.push_back(static_cast<int>(meta.number_value(e)));
  std::vector<Trial> trials;
  std::string error;
  if (!read_trials(trials_path, trials, error)) {
    std::cerr << "report: " << error << "\n";
    return 1;
  }

  std::map<std::pair<std::string, int>, Cell> cells;
  for (const System& s : systems) {
    for (int size : sizes) cells[{s.id, size}] = cell_of(trials, s.id, size);
  }
  auto cell = [&cells](const std::string& id, int size) -> const Cell& { return cells.at({id, size}); };
  auto known = [&systems](const std::string& id) {
    return std::any_of(systems.begin(), systems.end(), [&id](const System& s) { return s.id == id; });
  };

  std::vector<std::string> order;
  for (const System& s : systems) order.push_back(s.id);
  const std::vector<LadderRow> ladder = ladder_rows(trials, order);

  // ---- goals (reported, never asserted) ----
  std::vector<Goal> goals;
  for (int size : sizes) {
    auto ratio_goal = [&](const std::string& text, const std::string& over, double target) {
      if (!known("sb-transform") || !known(over)) return;
      double a = median_of(cell("sb-transform", size), "in_per_s");
      double b = median_of(cell(over, size), "in_per_s");
      bool measured = std::isfinite(a) && std::isfinite(b) && b > 0;
      double v = measured ? a / b : NAN;
      goals.push_back(Goal{text, size, v, target, "×", measured, measured && v >= target});
    };
    ratio_goal("filter+transform route ≥ 60% of the cnats pass-through relay (events in/s)", "cnats-relay", 0.6);
    ratio_goal("filter+transform route ≥ 2× the Go relay (events in/s)", "go-relay", 2.0);
    ratio_goal("filter+transform route ≥ 5× the Node.js relay (events in/s)", "node-relay", 5.0);
    if (known("sb-100routes")) {
      double mib = median_of(cell("sb-100routes", size), "vmhwm_mib");
      bool measured = std::isfinite(mib);
      goals.push_back(Goal{"peak resident memory with 100 routes under load ≤ 50 MB: sb-100routes", size, mib, 50,
                           "MiB", measured, measured && mib <= 50});
    }
    for (const char* id : {"sb-pass", "sb-filter", "sb-transform"}) {
      if (!known(id)) continue;
      double v = median_of(cell(id, size), "added.p99_us");
      bool measured = std::isfinite(v);
      goals.push_back(Goal{std::string("p99 added latency at half load ≤ 250 µs: ") + id, size, v, 250, "µs",
                           measured, measured && v <= 250});
    }
  }

  // ---- latest.json ----
  // "run": the script's description of the run, less the systems, which follow with results.
  std::string run = "{";
  {
    uint32_t c = json::Document::first_child(0);
    for (uint32_t k = 0; k < meta.node(0).count; ++k) {
      uint32_t value = meta.node(c).next;
      if (meta.string_value(c) != "systems") {
        run += std::string(run.size() > 1 ? ",\n    " : "\n    ") + quoted(meta.string_value(c)) + ": " +
               std::string(meta.raw(value));
      }
      c = meta.node(value).next;
    }
  }
  run += "\n  }";
  std::string j = "{\n  \"schema\": \"switchboard-bench-dataplane/1\",\n  \"run\": " + run + ",\n  \"systems\": [";
  for (size_t si = 0; si < systems.size(); ++si) {
    const System& s = systems[si];
    j += std::string(si ? "," : "") + "\n    {\"id\": " + quoted(s.id) + ", \"label\": " + quoted(s.label) +
         ", \"group\": " + quoted(s.group) + ", \"transport\": " + quoted(s.transport);
    if (!s.skipped.empty()) j += ", \"skipped\": " + quoted(s.skipped);
    j += ", \"sizes\": {";
    for (size_t zi = 0; zi < sizes.size(); ++zi) {
      const Cell& c = cell(s.id, sizes[zi]);
      j += std::string(zi ? "," : "") + "\n      " + quoted(std::to_string(sizes[zi])) + ": {\"runs\": " +
           std::to_string(c.ok.size()) + ", \"errors\": [";
      for (size_t k = 0; k < c.errors.size(); ++k) j += (k ? ", " : "") + quoted(c.errors[k]);
      j += "]";
      for (const auto& [name, st] : c.stats) j += ", " + quoted(name) + ": " + stat_json(st);
      if (c.median_latency_trial != nullptr) {
        j += ", \"latency_spectrum_us\": [";
        const auto& sp = c.median_latency_trial->spectrum;
        for (size_t k = 0; k < sp.size(); ++k) j += std::string(k ? "," : "") + "[" + num(sp[k].first) + "," + num(sp[k].second) + "]";
        j += "]";
      }
      j += "}";
    }
    j += "}}";
  }
  j += "\n  ],\n  \"ladder\": [";
  for (size_t k = 0; k < ladder.size(); ++k) {
    const LadderRow& row = ladder[k];
    j += std::string(k ? "," : "") + "\n    {\"system\": " + quoted(row.system) + ", \"size\": " +
         std::to_string(row.size) + ", \"rate\": " + num(row.rate);
    for (const auto& [name, value] : row.v) j += ", " + quoted(name) + ": " + num(value);
    j += "}";
  }
  j += "\n  ],\n  \"goals\": [";
  for (size_t k = 0; k < goals.size(); ++k) {
    const Goal& g = goals[k];
    j += std::string(k ? "," : "") + "\n    {\"goal\": " + quoted(g.text) + ", \"size\": " + std::to_string(g.size) +
         ", \"value\": " + num(g.value) + ", \"target\": " + num(g.target) + ", \"unit\": " + quoted(g.unit) +
         ", \"result\": " + quoted(!g.measured ? "not measured" : g.met ? "met" : "missed") + "}";
  }
  j += "\n  ]\n}\n";

  // ---- latest.md ----
  std::string md;
  for (int size : sizes) {
    md += "#### " + size_label(size) + " events\n\n";
    md += "| System | In, events/s | Out, events/s | CPU s / M events | Peak RSS | Rate for latency | p50 | p99 | p99.9 | p99 added |\n";
    md += "|---|---|---|---|---|---|---|---|---|---|\n";
    for (const System& s : systems) {
      const Cell& c = cell(s.id, size);
      md += "| " + s.label;
      if (!s.skipped.empty()) {
        md += " | skipped: " + s.skipped + " | | | | | | | | |\n";
        continue;
      }
      if (c.ok.empty()) {
        md += " | failed: " + (c.errors.empty() ? std::string("no run") : c.errors.front()) + " | | | | | | | | |\n";
        continue;
      }
      auto range = [&c](const char* m) {
        auto it = c.stats.find(m);
        if (it == c.stats.end()) return std::string("–");
        const Stat& st = it->second;
        std::string out = rate_text(st.median);
        if (st.values.size() > 1) out += " (" + rate_text(st.min) + "–" + rate_text(st.max) + ")";
        return out;
      };
      auto us = [&c](const char* m) { return micros(median_of(c, m)) + (c.stats.count(m) ? " µs" : ""); };
      auto us_range = [&c, &us](const char* m) {
        auto it = c.stats.find(m);
        if (it == c.stats.end() || it->second.values.size() < 2) return us(m);
        return micros(it->second.median) + " (" + micros(it->second.min) + "–" + micros(it->second.max) + ") µs";
      };
      double rss = median_of(c, "vmhwm_mib");
      md += " | " + range("in_per_s") + " | " + range("out_per_s") + " | " + fixed(median_of(c, "cpu_s_per_million"), 2) +
            " | " + (std::isfinite(rss) ? fixed(rss, 1) + " MiB" : "–") + " | " + rate_text(median_of(c, "lat.rate")) +
            (c.stats.count("lat.rate") ? "/s" : "") + " | " + us("lat.p50_us") + " | " + us_range("lat.p99_us") + " | " +
            us("lat.p999_us") + " | " + us("added.p99_us") + " |\n";
    }
    md += "\n";
  }
  if (!ladder.empty()) {
    md += "#### Latency at fixed rates\n\n"
          "The same measurement at rates that leave the machine room to breathe: the load generator, "
          "the server and the relay share its cores, and at half of a system's maximum their queues, "
          "not the relay, set the tail. Baseline: the same rate straight through the server.\n\n"
          "| System | Size | Rate | p50 | p99 | p99.9 | Baseline p99 | p99 added |\n"
          "|---|---|---|---|---|---|---|---|\n";
    for (const LadderRow& row : ladder) {
      auto us = [&row](const char* m) {
        auto it = row.v.find(m);
        return it == row.v.end() ? std::string("–") : micros(it->second) + " µs";
      };
      std::string label = row.system;
      for (const System& sys : systems) {
        if (sys.id == row.system) label = sys.label;
      }
      md += "| " + label + " | " + size_label(row.size) + " | " + rate_text(row.rate) + "/s | " + us("lat.p50_us") +
            " | " + us("lat.p99_us") + " | " + us("lat.p999_us") + " | " + us("base.p99_us") + " | " +
            us("added.p99_us") + " |\n";
    }
    md += "\n";
  }
  md += "#### Goals (reported, not asserted)\n\n| Goal | Size | Result | Target | |\n|---|---|---|---|---|\n";
  for (const Goal& g : goals) {
    std::string v = !g.measured ? "–" : goal_value(g.value, g.unit);
    std::string t = g.unit == "×" ? fixed(g.target, 2) + "×" : fixed(g.target, 0) + " " + g.unit;
    md += "| " + g.text + " | " + size_label(g.size) + " | " + v + " | " + t + " | " +
          (!g.measured ? "not measured" : g.met ? "**met**" : "**missed**") + " |\n";
  }

  // ---- chart data ----
  std::string tp = "# system";
  for (int size : sizes) tp += " median_" + std::to_string(size) + " min max";
  tp += "\n";
  for (const System& s : systems) {
    if (!s.skipped.empty()) continue;
    tp += quoted(s.chart);
    for (int size : sizes) {
      auto it = cell(s.id, size).stats.find("in_per_s");
      if (it == cell(s.id, size).stats.end()) tp += " NaN NaN NaN";
      else tp += " " + num(it->second.median) + " " + num(it->second.min) + " " + num(it->second.max);
    }
    tp += "\n";
  }
  std::map<int, std::string> lat;
  std::string vars;  // gnuplot variables for charts.gp
  for (int size : sizes) {
    // Columns: quantile, then one per system with a spectrum; first line names them.
    std::vector<const System*> cols;
    for (const System& s : systems) {
      if (cell(s.id, size).median_latency_trial != nullptr) cols.push_back(&s);
    }
    vars += "lat_cols_" + std::to_string(size) + " = " + std::to_string(cols.size() + 1) + "\n";
    std::string& d = lat[size];
    d = "quantile";
    for (const System* s : cols) d += " " + quoted(s->chart);
    d += "\n";
    if (cols.empty()) continue;
    size_t rows = cell(cols[0]->id, size).median_latency_trial->spectrum.size();
    for (size_t r = 0; r < rows; ++r) {
      d += num(cell(cols[0]->id, size).median_latency_trial->spectrum[r].first);
      for (const System* s : cols) {
        const auto& sp = cell(s->id, size).median_latency_trial->spectrum;
        d += " " + (r < sp.size() ? num(sp[r].second) : std::string("NaN"));
      }
      d += "\n";
    }
  }

  auto write = [&out_dir](const std::string& name, const std::string& text) {
    std::string path = out_dir + "/" + name;
    std::ofstream f(path + ".tmp", std::ios::binary);
    f << text;
    f.close();
    if (!f || std::rename((path + ".tmp").c_str(), path.c_str()) != 0) {
      std::cerr << "report: cannot write " << path << "\n";
      return false;
    }
    return true;
  };
  vars += "tp_rows = " + std::to_string(std::count_if(systems.begin(), systems.end(), [](const System& s) { return s.skipped.empty(); })) + "\n";
  if (!write("latest.json", j) || !write("latest.md", md) || !write("throughput.dat", tp) ||
      !write("charts-vars.gp", vars)) {
    return 1;
  }
  for (const auto& [size, text] : lat) {
    if (!write("latency-" + std::to_string(size) + ".dat", text)) return 1;
  }

  std::cout << "goals (reported, not asserted):\n";
  for (const Goal& g : goals) {
    std::string v = !g.measured ? "not measured" : goal_value(g.value, g.unit);
    std::cout << "  " << (!g.measured ? "[ -- ] " : g.met ? "[ met ] " : "[MISSED] ") << g.text << " (" << size_label(g.size)
              << "): " << v << "\n";
  }
  return 0;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

int check_command(const std::string& path, const std::vector<std::string>& want, const std::vector<std::string>& sizes) {
  auto text = read_file(path);
  if (!text) {
    std::cerr << "check: cannot read " << path << "\n";
    return 1;
  }
  json::Document d;
  if (!d.parse(*text)) {
    std::cerr << "check: " << path << " is not valid JSON: " << d.error() << "\n";
    return 1;
  }
  Reader r{d};
  if (r.string(0, "schema") != "switchboard-bench-dataplane/1") {
    std::cerr << "check: " << path << ": unexpected schema '" << r.string(0, "schema") << "'\n";
    return 1;
  }
  std::map<std::string, uint32_t> by_id;
  for (uint32_t e : r.elements(r.member(0, "systems"))) by_id[r.string(e, "id")] = e;
  int problems = 0;
  for (const std::string& id : want) {
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      std::cerr << "check: system '" << id << "' is missing\n";
      ++problems;
      continue;
    }
    uint32_t sz = r.member(it->second, "sizes");
    for (const std::string& size : sizes) {
      uint32_t c = r.member(sz, size);
      double runs = c == 0 ? 0 : r.number(c, "runs").value_or(0);
      auto in = c == 0 ? std::nullopt : r.number(r.member(c, "in_per_s"), "median");
      if (runs < 1 || !in || *in <= 0) {
        std::cerr << "check: system '" << id << "' has no measured run at " << size << " bytes\n";
        ++problems;
      }
    }
  }
  if (problems == 0) std::cout << "check: " << path << ": " << want.size() << " systems × " << sizes.size() << " sizes measured\n";
  return problems == 0 ? 0 : 1;
}

int usage() {
  std::cerr << "usage: switchboard-bench-report write --meta META.json --trials TRIALS.jsonl --out DIR\n"
               "       switchboard-bench-report check --results latest.json --systems ID,... [--sizes N,...]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  std::string cmd = argv[1];
  std::map<std::string, std::string> flags;
  for (int i = 2; i + 1 < argc; i += 2) flags[argv[i]] = argv[i + 1];
  if ((argc - 2) % 2 != 0) return usage();
  if (cmd == "write") {
    if (!flags.count("--meta") || !flags.count("--trials") || !flags.count("--out")) return usage();
    return write_command(flags["--meta"], flags["--trials"], flags["--out"]);
  }
  if (cmd == "check") {
    if (!flags.count("--results") || !flags.count("--systems")) return usage();
    return check_command(flags["--results"], split(flags["--systems"]),
                         split(flags.count("--sizes") ? flags["--sizes"] : "200,1024"));
  }
  return usage();
}
