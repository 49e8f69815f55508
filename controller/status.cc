#include "controller/status.h"

#include <algorithm>

namespace switchboard::controller {

namespace {

constexpr size_t kMaxListed = 256;  // the CRDs' maxItems of pods and rejectedBy

Json old_conditions(const Json& old_status) {
  const Json* c = find(old_status, {"conditions"});
  return c == nullptr ? Json::null() : *c;
}

std::string rejected_text(const std::vector<std::pair<std::string, std::string>>& rejected) {
  std::string out;
  for (size_t i = 0; i < rejected.size() && i < 3; ++i) {
    out += (i ? "; " : "") + std::string("pod ") + rejected[i].first + ": " + rejected[i].second;
  }
  if (rejected.size() > 3) out += "; and " + std::to_string(rejected.size() - 3) + " more";
  return out;
}

}  // namespace

Applied applied_of(const FleetSummary& s, int64_t desired_replicas) {
  return Applied{s.current, std::max<int64_t>(s.live, desired_replicas)};
}

Json router_status(const Json& old_status, const RouterStatusInput& in, const std::string& now) {
  FleetSummary fleet = summarize(in.pods, in.table_hash);
  Applied applied = applied_of(fleet, in.desired);
  Json s = Json::object();
  s["observedGeneration"] = num(in.generation);
  s["replicas"] = num(in.replicas);
  s["readyReplicas"] = num(in.ready_replicas);
  s["selector"] = str(in.selector);
  if (in.table_generation > 0) {
    s["tableGeneration"] = num(static_cast<int64_t>(in.table_generation));
    s["tableHash"] = str(in.table_hash);
  }
  s["applied"] = str(applied.text());
  std::vector<Json> pods;
  for (const auto& p : in.pods) {
    if (pods.size() == kMaxListed) break;
    Json j = obj({{"name", str(p.name)}, {"state", str(p.state)}});
    if (p.generation > 0) j["generation"] = num(static_cast<int64_t>(p.generation));
    if (!p.hash.empty()) j["hash"] = str(p.hash);
    if (!p.error.empty()) j["error"] = str(bounded_text(p.error));
    if (!p.source_error.empty()) j["sourceError"] = str(bounded_text(p.source_error));
    pods.push_back(std::move(j));
  }
  s["pods"] = arr(std::move(pods));

  const std::string table = "route table generation " + std::to_string(in.table_generation);
  const bool written = in.table_generation > 0;
  const bool degraded = !in.degraded_reason.empty();
  const bool rejected = fleet.rejected > 0;
  const bool done = written && applied.current == applied.total && !rejected;
  std::string left_out;
  if (!in.left_out.empty()) {
    left_out = " (left out, invalid: ";
    for (size_t i = 0; i < in.left_out.size(); ++i) left_out += (i ? ", " : "") + in.left_out[i];
    left_out += ")";
  }

  Condition ready{"Ready", "False", reasons::kApplying, "", in.generation};
  if (degraded) {
    ready.reason = in.degraded_reason;
    ready.message = in.degraded_message;
  } else if (rejected) {
    ready.reason = reasons::kRejected;
    ready.message = "refused by " + std::to_string(fleet.rejected) + " pod(s): " + rejected_text(fleet.rejected_by);
  } else if (done) {
    ready.status = "True";
    ready.reason = reasons::kApplied;
    ready.message = applied.total == 0 ? "no pods asked for; " + table + " written" + left_out
                                       : "every pod (" + applied.text() + ") runs " + table + left_out;
  } else if (!written) {
    ready.message = "the route table is not written yet";
  } else {
    ready.message = applied.text() + " pods run " + table + left_out;
  }

  Condition progressing{"Progressing", "False", reasons::kComplete, "", in.generation};
  if (done) {
    progressing.message = "every pod runs " + table;
  } else if (degraded || rejected) {
    progressing.reason = reasons::kStalled;
    progressing.message = ready.message;
  } else {
    progressing.status = "True";
    progressing.reason = reasons::kApplying;
    progressing.message = ready.message;
  }

  Condition degraded_c{"Degraded", "False", reasons::kAsExpected, "", in.generation};
  if (degraded) {
    degraded_c.status = "True";
    degraded_c.reason = in.degraded_reason;
    degraded_c.message = in.degraded_message;
  } else if (rejected) {
    degraded_c.status = "True";
    degraded_c.reason = reasons::kRejected;
    degraded_c.message = ready.message;
  }

  Json conditions = old_conditions(old_status);
  for (const Condition& c : {ready, progressing, degraded_c}) conditions = set_condition(conditions, c, now);
  s["conditions"] = conditions;
  return s;
}

Json route_status(const Json& old_status, const RouteStatusInput& in, const std::string& now) {
  Json s = Json::object();
  s["observedGeneration"] = num(in.generation);
  Condition ready{"Ready", "False", "", "", in.generation};
  std::vector<Json> rejected_by;
  if (!in.valid) {
    ready.reason = in.invalid_reason;
    ready.message = in.invalid_message;
  } else if (in.fleets.empty()) {
    ready.reason = in.no_router_reason;
    ready.message = in.no_router_message;
  } else {
    Applied total;
    bool all_in_table = true;
    std::vector<std::pair<std::string, std::string>> rejected;
    std::string waiting;
    for (const auto& f : in.fleets) {
      Applied a = applied_of(f.summary, f.desired);
      total.current += f.in_table ? a.current : 0;
      total.total += a.total;
      if (!f.in_table) {
        all_in_table = false;
        waiting += (waiting.empty() ? "" : ", ") + f.router;
      }
      for (const auto& r : f.summary.rejected_by) rejected.push_back(r);
    }
    for (const auto& [pod, error] : rejected) {
      if (rejected_by.size() == kMaxListed) break;
      Json j = obj({{"pod", str(pod)}});
      if (!error.empty()) j["error"] = str(bounded_text(error));
      rejected_by.push_back(std::move(j));
    }
    s["applied"] = str(total.text());
    std::string routers;
    for (const auto& f : in.fleets) routers += (routers.empty() ? "" : ", ") + f.router;
    if (!rejected.empty()) {
      ready.reason = reasons::kRejected;
      ready.message = "router " + routers + ": refused by " + std::to_string(rejected.size()) +
                      " pod(s): " + rejected_text(rejected);
    } else if (!all_in_table) {
      ready.reason = reasons::kApplying;
      ready.message = "waiting for the route table of " + waiting + " to take this generation";
    } else if (total.current == total.total) {
      ready.status = "True";
      ready.reason = reasons::kApplied;
      ready.message = total.total == 0 ? "router " + routers + " has no pods"
                                       : "every pod of router " + routers + " runs it (" + total.text() + ")";
    } else {
      ready.reason = reasons::kApplying;
      ready.message = total.text() + " pods of router " + routers + " run it";
    }
  }
  if (!in.deleting_message.empty()) {
    ready.status = "False";
    ready.reason = reasons::kDeletingConsumer;
    ready.message = in.deleting_message;
  }
  s["rejectedBy"] = arr(std::move(rejected_by));
  s["conditions"] = set_condition(old_conditions(old_status), ready, now);
  return s;
}

Json transform_status(const Json& old_status, int64_t generation, const TransformCheck& check,
                      const std::string& now) {
  Json s = Json::object();
  s["observedGeneration"] = num(generation);
  std::vector<Json> tests;
  std::string failed;
  int failures = 0;
  for (const auto& r : check.results) {
    Json j = obj({{"name", str(r.test)}, {"passed", boolean(r.passed)}});
    if (!r.passed) {
      j["difference"] = str(bounded_text(r.difference));
      if (++failures <= 3) failed += "\ntest '" + r.test + "': " + r.difference;
    }
    tests.push_back(std::move(j));
  }
  const int total = static_cast<int>(check.results.size());
  s["testsPassed"] = str(std::to_string(check.passed) + "/" + std::to_string(total));
  s["tests"] = arr(std::move(tests));
  Condition ready{"Ready", "False", reasons::kInvalidTransform, check.message, generation};
  if (check.compiled && failures == 0) {
    ready.status = "True";
    ready.reason = reasons::kTestsPassed;
    ready.message = total == 0 ? "the steps compiled; there are no tests"
                               : "the steps compiled and every test passed (" + std::to_string(total) + ")";
  } else if (check.compiled) {
    ready.reason = reasons::kTestsFailed;
    ready.message = std::to_string(failures) + " of " + std::to_string(total) + " tests failed:" + failed;
    if (failures > 3) ready.message += "\n(and " + std::to_string(failures - 3) + " more)";
  }
  s["conditions"] = set_condition(old_conditions(old_status), ready, now);
  return s;
}

}  // namespace switchboard::controller
