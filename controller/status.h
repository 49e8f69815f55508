// The status of each kind, computed from what the controller knows: pure functions of the
// old status (for lastTransitionTime), the facts and the time. The reconcilers write the
// result only when it differs from what is stored.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "controller/conditions.h"
#include "controller/fleet.h"
#include "controller/json_util.h"
#include "controller/specs.h"

namespace switchboard::controller {

// Reasons of conditions that are not about a route's spec (see specs.h for those).
namespace reasons {
inline constexpr const char* kApplied = "Applied";
inline constexpr const char* kApplying = "Applying";
inline constexpr const char* kRejected = "Rejected";
inline constexpr const char* kUnknownRouter = "UnknownRouter";
inline constexpr const char* kNoRouter = "NoRouter";
inline constexpr const char* kDeletingConsumer = "DeletingConsumer";
inline constexpr const char* kComplete = "Complete";
inline constexpr const char* kStalled = "Stalled";
inline constexpr const char* kAsExpected = "AsExpected";
inline constexpr const char* kTestsPassed = "TestsPassed";
inline constexpr const char* kTestsFailed = "TestsFailed";
// EventRouter Degraded reasons.
inline constexpr const char* kSecretNotFound = "SecretNotFound";
inline constexpr const char* kSecretKeyMissing = "SecretKeyMissing";
inline constexpr const char* kNatsUnavailable = "NatsUnavailable";
inline constexpr const char* kApplyFailed = "ApplyFailed";
inline constexpr const char* kTableInvalid = "TableInvalid";
}  // namespace reasons

// "x/y" of a fleet for one table: x pods run it, y is every live pod, and at least the
// replicas asked for (a pod that has not started yet counts as not running it).
struct Applied {
  int64_t current = 0;
  int64_t total = 0;
  std::string text() const { return std::to_string(current) + "/" + std::to_string(total); }
};
Applied applied_of(const FleetSummary& s, int64_t desired_replicas);

struct RouterStatusInput {
  int64_t generation = 0;  // metadata.generation
  int64_t desired = 0;     // spec.replicas
  int64_t replicas = 0;    // from the Deployment's status
  int64_t ready_replicas = 0;
  std::string selector;
  uint64_t table_generation = 0;  // 0: no table written yet
  std::string table_hash;
  std::vector<PodView> pods;
  std::vector<std::string> left_out;  // selected routes that are invalid
  std::string degraded_reason;        // empty when nothing is wrong on the controller's side
  std::string degraded_message;
};
Json router_status(const Json& old_status, const RouterStatusInput& in, const std::string& now);

struct RouteFleet {
  std::string router;
  bool in_table = false;        // the router's current table holds this generation of the route
  uint64_t table_generation = 0;
  int64_t desired = 0;
  FleetSummary summary;         // against the router's current table
};
struct RouteStatusInput {
  int64_t generation = 0;
  bool valid = false;
  std::string invalid_reason, invalid_message;
  std::string no_router_reason, no_router_message;  // when no router runs it
  std::vector<RouteFleet> fleets;
  std::string deleting_message;  // the JetStream consumer cannot be deleted yet, and why
};
Json route_status(const Json& old_status, const RouteStatusInput& in, const std::string& now);

Json transform_status(const Json& old_status, int64_t generation, const TransformCheck& check, const std::string& now);

}  // namespace switchboard::controller
