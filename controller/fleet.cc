#include "controller/fleet.h"

#include "core/json/document.h"

namespace switchboard::controller {

bool parse_heartbeat(std::string_view payload, Heartbeat& out, std::string& error) {
  out = Heartbeat{};
  json::Document doc;
  if (!doc.parse(payload)) {
    error = "not JSON: " + doc.error();
    return false;
  }
  if (doc.node(0).type != json::Type::Object) {
    error = "not a JSON object";
    return false;
  }
  auto text = [&](std::string_view key, std::string& into) {
    uint32_t i = doc.find_member(0, key);
    if (i != 0 && doc.node(i).type == json::Type::String) into = std::string(doc.string_value(i));
  };
  text("pod", out.pod);
  text("router", out.router);
  text("namespace", out.ns);
  text("hash", out.hash);
  text("state", out.state);
  text("error", out.error);
  text("sourceError", out.source_error);
  uint32_t g = doc.find_member(0, "generation");
  uint64_t generation = 0;
  if (g != 0 && doc.node(g).type == json::Type::Number && doc.uint64_value(g, generation)) out.generation = generation;
  if (out.pod.empty() || out.state.empty()) {
    error = "a heartbeat needs pod and state";
    return false;
  }
  return true;
}

FleetSummary summarize(const std::vector<PodView>& pods, const std::string& current_hash) {
  FleetSummary s;
  for (const auto& p : pods) {
    if (p.stale) {
      ++s.stale;
      continue;
    }
    if (p.state == "applied") ++s.applied;
    if (p.state == "rejected") {
      ++s.rejected;
      s.rejected_by.emplace_back(p.name, p.error);
    }
    if (p.state == "stopped") continue;
    ++s.live;
    if (p.state == "applied" && !current_hash.empty() && p.hash == current_hash) ++s.current;
  }
  return s;
}

bool FleetTracker::observe(const std::string& router_key, const Heartbeat& hb, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto& fleet = fleets_[router_key];
  auto it = fleet.find(hb.pod);
  bool changed = it == fleet.end() || it->second.reported_stale || now - it->second.seen >= stale_after_ ||
                 it->second.last.generation != hb.generation || it->second.last.hash != hb.hash ||
                 it->second.last.state != hb.state || it->second.last.error != hb.error ||
                 it->second.last.source_error != hb.source_error;
  fleet[hb.pod] = Pod{hb, now, false};
  return changed;
}

std::vector<PodView> FleetTracker::pods(const std::string& router_key, Clock::time_point now) const {
  std::lock_guard lock(mu_);
  std::vector<PodView> out;
  auto f = fleets_.find(router_key);
  if (f == fleets_.end()) return out;
  for (const auto& [name, pod] : f->second) {
    if (now - pod.seen >= 2 * stale_after_) continue;
    PodView v{name, pod.last.generation, pod.last.hash, pod.last.state, pod.last.error, false, pod.last.source_error};
    if (now - pod.seen >= stale_after_) {
      v.stale = true;
      v.state = "unknown";
    } else if (v.state != "applied" && v.state != "rejected" && v.state != "stopped") {
      v.state = "unknown";  // "pending": no table yet
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<std::string> FleetTracker::expire(Clock::time_point now) {
  std::lock_guard lock(mu_);
  std::vector<std::string> changed;
  for (auto f = fleets_.begin(); f != fleets_.end();) {
    bool any = false;
    for (auto p = f->second.begin(); p != f->second.end();) {
      if (now - p->second.seen >= 2 * stale_after_) {
        p = f->second.erase(p);
        any = true;
        continue;
      }
      if (now - p->second.seen >= stale_after_ && !p->second.reported_stale) {
        p->second.reported_stale = true;
        any = true;
      }
      ++p;
    }
    if (any) changed.push_back(f->first);
    if (f->second.empty()) {
      f = fleets_.erase(f);
    } else {
      ++f;
    }
  }
  return changed;
}

void FleetTracker::forget(const std::string& router_key) {
  std::lock_guard lock(mu_);
  fleets_.erase(router_key);
}

}  // namespace switchboard::controller
