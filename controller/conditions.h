// status.conditions in the shape of metav1.Condition. lastTransitionTime moves only when
// a condition's status changes, so that "Ready since" means what it says and a status
// rewritten with the same content is equal to the one stored (and not written at all).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "controller/json_util.h"

namespace switchboard::controller {

struct Condition {
  std::string type;    // Ready, Progressing, Degraded
  std::string status;  // True, False, Unknown
  std::string reason;  // one CamelCase word
  std::string message;
  int64_t observed_generation = 0;
};

// Returns `conditions` (an array, or null) with `c` set: the entry of the same type is
// replaced, keeping its lastTransitionTime when the status is unchanged; `now` is used
// otherwise. Entries of other types are kept, in order.
Json set_condition(const Json& conditions, const Condition& c, const std::string& now);
// The entry of this type, or nullptr.
const Json* find_condition(const Json& conditions, const std::string& type);

// RFC 3339 in UTC to the second, as metav1.Time writes it: 2026-11-26T07:33:24Z.
std::string rfc3339(std::chrono::system_clock::time_point t);

}  // namespace switchboard::controller
