#include "controller/conditions.h"

#include <ctime>

namespace switchboard::controller {

const Json* find_condition(const Json& conditions, const std::string& type) {
  if (!conditions.is_array()) return nullptr;
  for (const auto& c : conditions.as_array()) {
    if (string_at(c, {"type"}) == type) return &c;
  }
  return nullptr;
}

Json set_condition(const Json& conditions, const Condition& c, const std::string& now) {
  std::string since = now;
  if (const Json* old = find_condition(conditions, c.type); old != nullptr && string_at(*old, {"status"}) == c.status) {
    since = string_at(*old, {"lastTransitionTime"}, now);
  }
  Json entry = obj({{"type", str(c.type)},
                    {"status", str(c.status)},
                    {"reason", str(c.reason)},
                    {"message", str(bounded_text(c.message))},
                    {"lastTransitionTime", str(since)},
                    {"observedGeneration", num(c.observed_generation)}});
  std::vector<Json> out;
  bool replaced = false;
  if (conditions.is_array()) {
    for (const auto& old : conditions.as_array()) {
      if (string_at(old, {"type"}) == c.type) {
        out.push_back(entry);
        replaced = true;
      } else {
        out.push_back(old);
      }
    }
  }
  if (!replaced) out.push_back(entry);
  return arr(std::move(out));
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace switchboard::controller
