#include "bench/controlplane/report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/json/document.h"

namespace switchboard::bench {

const std::vector<std::string>& required_metrics() {
  static const std::vector<std::string> kMetrics = {
      "setup.routes",
      "setup.replicas",
      "setup.edits",
      "setup.burst_changes",
      "api_alone.create_seconds",
      "api_alone.creates_per_second",
      "api_alone.status_write_seconds",
      "bulk.create_seconds",
      "bulk.all_routes_ready_seconds",
      "bulk.table_written_seconds",
      "bulk.routers_applied_seconds",
      "bulk.ready_and_applied_seconds",
      "bulk.ready_and_applied_after_last_create_seconds",
      "bulk.routes_in_table",
      "bulk.controller_peak_rss_kib",
      "bulk.router_peak_rss_kib",
      "bulk.controller_cpu_seconds",
      "bulk.reconciles.total",
      "edits.count",
      "edits.apply_to_routers_ms.p50",
      "edits.apply_to_routers_ms.p99",
      "edits.apply_to_routers_ms.max",
      "edits.apply_call_ms.p50",
      "edits.apply_to_table_written_ms.p50",
      "edits.apply_to_table_written_ms.p99",
      "edits.table_written_to_routers_ms.p50",
      "edits.table_written_to_routers_ms.p99",
      "edits.apply_to_route_ready_ms.p50",
      "edits.apply_to_route_ready_ms.p99",
      "edits.apply_to_quiet_ms.p50",
      "edits.reconciles_per_edit.EventRoute",
      "edits.reconciles_per_edit.EventRouter",
      "burst.changes",
      "burst.send_seconds",
      "burst.peak_workqueue_depth.EventRoute",
      "burst.peak_workqueue_depth.EventRouter",
      "burst.peak_workqueue_depth.total",
      "burst.drain_seconds",
      "burst.drain_after_last_change_seconds",
      "burst.reconciles.total",
      "burst.reconciles_per_second",
      "burst.reconcile_errors",
      "peak_rss_kib.controller",
      "peak_rss_kib.router",
      "goals.routes_ready_and_applied_seconds.value",
      "goals.edit_applied_everywhere_p99_ms.value",
  };
  return kMetrics;
}

const kube::Object* at_path(const kube::Object& root, const std::string& path) {
  const kube::Object* v = &root;
  std::istringstream in(path);
  std::string part;
  while (std::getline(in, part, '.')) {
    if (!v->is_object() || !v->has_field(part)) return nullptr;
    v = &v->at(part);
  }
  return v;
}

bool verify_result_file(const std::string& path, std::vector<std::string>& problems) {
  std::ifstream in(path);
  if (!in) {
    problems.push_back("cannot read " + path);
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  kube::Object root;
  try {
    root = kube::Object::parse(text.str());
  } catch (const std::exception& e) {
    problems.push_back(path + " is not JSON: " + e.what());
    return false;
  }
  for (const auto& m : required_metrics()) {
    const kube::Object* v = at_path(root, m);
    if (v == nullptr) {
      problems.push_back(m + " is missing");
    } else if (!v->is_number()) {
      problems.push_back(m + " is not a number: " + v->serialize());
    } else if (!std::isfinite(v->as_double())) {
      problems.push_back(m + " is not finite");
    }
  }
  for (const char* m : {"machine.cpu", "load_average.start", "load_average.end", "command"}) {
    const kube::Object* v = at_path(root, m);
    if (v == nullptr || !v->is_string()) problems.push_back(std::string(m) + " is missing");
  }
  return problems.empty();
}

namespace {

double number(const kube::Object& root, const std::string& path) {
  const kube::Object* v = at_path(root, path);
  return v != nullptr && v->is_number() ? v->as_double() : std::nan("");
}

std::string text(const kube::Object& root, const std::string& path) {
  const kube::Object* v = at_path(root, path);
  return v != nullptr && v->is_string() ? v->as_string() : std::string("?");
}

// Fixed decimals, without trailing noise: fmt(1.23456, 2) is "1.23".
std::string fmt(double v, int decimals) {
  if (std::isnan(v)) return "?";
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(decimals);
  out << v;
  return out.str();
}

std::string count(double v) { return fmt(v, 0); }
std::string mib(double kib) { return fmt(kib / 1024.0, 1) + " MiB"; }

std::string goal(const kube::Object& root, const std::string& key, const std::string& limit) {
  const kube::Object* met = at_path(root, "goals." + key + ".met");
  if (met == nullptr || !met->is_boolean()) return limit;
  return limit + (met->as_bool() ? ": **met**" : ": **missed**");
}

}  // namespace

namespace {

void write_json(std::string& out, const kube::Object& v, int depth) {
  const std::string pad(static_cast<size_t>(depth + 1) * 2, ' '), end_pad(static_cast<size_t>(depth) * 2, ' ');
  if (v.is_object()) {
    const auto& o = v.as_object();
    if (o.size() == 0) {
      out += "{}";
      return;
    }
    out += "{\n";
    bool first = true;
    for (const auto& [key, item] : o) {
      if (!first) out += ",\n";
      first = false;
      out += pad;
      json::append_quoted(out, key);
      out += ": ";
      write_json(out, item, depth + 1);
    }
    out += "\n" + end_pad + "}";
  } else if (v.is_array()) {
    const auto& a = v.as_array();
    if (a.size() == 0) {
      out += "[]";
      return;
    }
    out += "[\n";
    for (size_t i = 0; i < a.size(); ++i) {
      if (i) out += ",\n";
      out += pad;
      write_json(out, a.at(i), depth + 1);
    }
    out += "\n" + end_pad + "]";
  } else if (v.is_string()) {
    json::append_quoted(out, v.as_string());
  } else if (v.is_number()) {
    const double d = v.as_double();
    char buf[40];
    if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 1e15) {
      std::snprintf(buf, sizeof buf, "%.0f", d);
    } else if (std::isfinite(d)) {
      std::snprintf(buf, sizeof buf, "%.10g", d);
    } else {
      std::snprintf(buf, sizeof buf, "null");
    }
    out += buf;
  } else if (v.is_boolean()) {
    out += v.as_bool() ? "true" : "false";
  } else {
    out += "null";
  }
}

}  // namespace

std::string to_json_text(const kube::Object& value) {
  std::string out;
  write_json(out, value, 0);
  out += "\n";
  return out;
}

std::string summary_markdown(const kube::Object& r) {
  std::ostringstream out;
  const std::string routes = count(number(r, "setup.routes"));
  const std::string pods = count(number(r, "setup.replicas"));
  out << "Run of " << text(r, "date") << " (" << text(r, "mode") << "): `" << text(r, "command") << "`\n\n";
  out << "Machine: " << text(r, "machine.cpu") << ", " << count(number(r, "machine.cpus")) << " CPUs, "
      << fmt(number(r, "machine.memory_kib") / 1024.0 / 1024.0, 1) << " GiB, " << text(r, "machine.os") << ", "
      << text(r, "machine.kernel") << ". Load average at start " << text(r, "load_average.start") << ", at end "
      << text(r, "load_average.end") << ".\n\n";
  out << "Setup: " << routes << " EventRoutes on one EventRouter of " << pods << " router pods (heartbeat "
      << text(r, "setup.heartbeat_interval") << "), kube-apiserver " << text(r, "setup.kube_apiserver") << ", "
      << count(number(r, "setup.parallel_clients")) << " parallel API clients for creates and patches.\n\n";
  out << "| Measurement | Result | Goal |\n|---|---|---|\n";
  out << "| " << routes << " EventRoutes created by the API server alone, no controller running ("
      << count(number(r, "api_alone.creates_per_second")) << " creates/s) | "
      << fmt(number(r, "api_alone.create_seconds"), 2) << " s | |\n";
  out << "| ... then a Ready status written to each by the API server alone ("
      << count(number(r, "api_alone.status_writes_per_second")) << " writes/s) | "
      << fmt(number(r, "api_alone.status_write_seconds"), 2) << " s | |\n";
  out << "| " << routes << " EventRoutes created (API calls returned) | " << fmt(number(r, "bulk.create_seconds"), 2)
      << " s | |\n";
  out << "| ... until every route is Ready | " << fmt(number(r, "bulk.all_routes_ready_seconds"), 2) << " s | |\n";
  out << "| ... until the controller wrote the final table ConfigMap | " << fmt(number(r, "bulk.table_written_seconds"), 2)
      << " s | |\n";
  out << "| ... until every router pod runs the table (" << count(number(r, "bulk.routes_in_table"))
      << " routes, APPLIED " << text(r, "bulk.router_status_applied") << ") | "
      << fmt(number(r, "bulk.routers_applied_seconds"), 2) << " s | |\n";
  out << "| **" << routes << " routes Ready and applied** | **" << fmt(number(r, "bulk.ready_and_applied_seconds"), 2)
      << " s** | " << goal(r, "routes_ready_and_applied_seconds", "≤ 5 s") << " |\n";
  out << "| ... counted from the last create's answer instead of the first create | "
      << fmt(number(r, "bulk.ready_and_applied_after_last_create_seconds"), 2) << " s | |\n";
  out << "| Reconciles for the bulk create (EventRoute / EventRouter) | "
      << count(number(r, "bulk.reconciles.EventRoute")) << " / " << count(number(r, "bulk.reconciles.EventRouter"))
      << " | |\n";
  out << "| Controller CPU for the bulk create | " << fmt(number(r, "bulk.controller_cpu_seconds"), 1) << " s | |\n";
  out << "| **One edit until every pod runs it**, p50 / p99 (of " << count(number(r, "edits.count")) << ", "
      << text(r, "edits.via") << ") | **" << count(number(r, "edits.apply_to_routers_ms.p50")) << " / "
      << count(number(r, "edits.apply_to_routers_ms.p99")) << " ms** | "
      << goal(r, "edit_applied_everywhere_p99_ms", "p99 ≤ 1 s") << " |\n";
  out << "| ... of which the apply call itself, p50 | " << count(number(r, "edits.apply_call_ms.p50")) << " ms | |\n";
  out << "| ... of which until the controller wrote the table ConfigMap, p50 / p99 | "
      << count(number(r, "edits.apply_to_table_written_ms.p50")) << " / "
      << count(number(r, "edits.apply_to_table_written_ms.p99")) << " ms | |\n";
  out << "| ... of which from the ConfigMap until every pod ran it, p50 / p99 | "
      << count(number(r, "edits.table_written_to_routers_ms.p50")) << " / "
      << count(number(r, "edits.table_written_to_routers_ms.p99")) << " ms | |\n";
  out << "| One edit until the route is Ready, p50 / p99 | " << count(number(r, "edits.apply_to_route_ready_ms.p50"))
      << " / " << count(number(r, "edits.apply_to_route_ready_ms.p99")) << " ms | |\n";
  out << "| One edit until the controller is quiet (last reconcile), p50 / p99 | "
      << count(number(r, "edits.apply_to_quiet_ms.p50")) << " / " << count(number(r, "edits.apply_to_quiet_ms.p99"))
      << " ms | |\n";
  out << "| Reconciles per edit (EventRoute / EventRouter) | " << fmt(number(r, "edits.reconciles_per_edit.EventRoute"), 1)
      << " / " << fmt(number(r, "edits.reconciles_per_edit.EventRouter"), 1) << " | |\n";
  out << "| Burst: " << count(number(r, "burst.changes")) << " spec changes sent | "
      << fmt(number(r, "burst.send_seconds"), 2) << " s (" << count(number(r, "burst.send_rate_per_second"))
      << "/s) | |\n";
  out << "| Peak work-queue depth (EventRoute / EventRouter) | "
      << count(number(r, "burst.peak_workqueue_depth.EventRoute")) << " / "
      << count(number(r, "burst.peak_workqueue_depth.EventRouter")) << " | |\n";
  out << "| Time to drain: from the first change / after the last | " << fmt(number(r, "burst.drain_seconds"), 2)
      << " / " << fmt(number(r, "burst.drain_after_last_change_seconds"), 2) << " s | |\n";
  out << "| Reconciles during the burst (per second) | " << count(number(r, "burst.reconciles.total")) << " ("
      << fmt(number(r, "burst.reconciles_per_second"), 1) << "/s) | |\n";
  out << "| Reconcile errors during the burst | " << count(number(r, "burst.reconcile_errors")) << " | |\n";
  out << "| Peak RSS (VmHWM): controller / one router pod | " << mib(number(r, "peak_rss_kib.controller")) << " / "
      << mib(number(r, "peak_rss_kib.router")) << " | |\n";
  return out.str();
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(values.size()));
  size_t i = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return values[std::min(i, values.size() - 1)];
}

}  // namespace switchboard::bench
