// EventRoutes and EventTransforms through the routing core: each object becomes the YAML
// document a user could have written in a routes file, and route::load_yaml reads it as it
// reads any file, so an EventRoute means in the cluster exactly what the same text means
// to `switchboard-router check`. Errors keep their line, column and caret, counted in that
// document (whose `spec:` lists fields in the order `kubectl get -o yaml` shows them).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "controller/json_util.h"
#include "core/route/spec.h"
#include "core/route/table.h"
#include "core/route/transform_tests.h"

namespace switchboard::controller {

// The YAML document for an EventRoute or EventTransform object: apiVersion, kind,
// metadata.name and spec. Expressions are written so that columns inside them are exact.
std::string object_document(const Json& object, const std::string& kind);

// "eventroute/<name>" / "eventtransform/<name>": the file name that errors carry.
std::string document_name(const std::string& kind, const std::string& name);

struct LoadedTransform {
  std::string name;
  int64_t generation = 0;
  bool loaded = false;                 // read without errors
  // uid, metadata.generation and the spec's text: everything the load depends on, and
  // what a route check that uses this transform depends on (SpecCache).
  std::string fingerprint;
  std::vector<route::SpecError> errors;
  route::TransformSpec spec;
};
LoadedTransform load_transform(const Json& transform);
// The fingerprint of an EventRoute or EventTransform: uid, metadata.generation and the
// spec's text. Objects with the same name and fingerprint load and check the same.
std::string object_fingerprint(const Json& object);
// The transforms of a namespace, by name.
using TransformIndex = std::map<std::string, LoadedTransform>;
TransformIndex load_transforms(const std::vector<Json>& transforms);

// Ready-condition reasons for a route that is refused.
namespace reasons {
inline constexpr const char* kInvalidSpec = "InvalidSpec";
inline constexpr const char* kInvalidSource = "InvalidSource";
inline constexpr const char* kInvalidFilter = "InvalidFilter";
inline constexpr const char* kInvalidTransform = "InvalidTransform";
inline constexpr const char* kUnknownTransform = "UnknownTransform";
inline constexpr const char* kInvalidDestination = "InvalidDestination";
inline constexpr const char* kInvalidDeadLetter = "InvalidDeadLetter";
}  // namespace reasons

struct RouteCheck {
  bool ok = false;
  std::string reason;   // when !ok: one of reasons::
  std::string message;  // when !ok: every error, rendered with its position
  route::RouteSpec spec;                 // as loaded
  std::vector<std::string> uses;         // names of the transforms it uses, in order
};
// Loads and compiles one route with the transforms it uses.
RouteCheck check_route(const Json& route, const TransformIndex& transforms);
// The reason for one error of a route (exposed for tests).
std::string reason_for(const route::SpecError& error, const std::string& route_name);

struct TransformCheck {
  bool compiled = false;
  std::string message;  // when !compiled: the errors, with positions
  std::vector<route::TransformTestResult> results;
  int passed = 0;
};
// Compiles one transform alone and runs its embedded tests.
TransformCheck check_transform(const Json& transform);

// Label selectors (matchLabels and matchExpressions), as Kubernetes evaluates them.
bool selector_matches(const Json& selector, const Json& labels);
// Whether an EventRouter runs an EventRoute: the route names it in spec.router, or names
// no router and the router's routeSelector selects the route's labels.
bool router_selects(const Json& router, const Json& route);

struct RouterTable {
  route::RouteSet set;                          // the valid routes selected, and their transforms
  std::map<std::string, int64_t> routes;        // route name → metadata.generation in the table
  std::vector<std::string> left_out;            // selected routes that are invalid
  std::map<std::string, std::string> route_ids;  // route name → route_identity() of the object in the table
  std::string canonical;                        // canonical JSON
  std::string hash;                             // "sha256:<hex>"
  std::string error;                            // when the whole set does not compile
  // The compiled table, kept so that the router's next table takes over its unchanged
  // routes instead of compiling them again (route::RouteTable::compile).
  std::shared_ptr<const route::RouteTable> compiled;
};
// What tells one generation of one route object from another: "uid/generation".
std::string route_identity(const Json& route);
// The table an EventRouter runs: every route of its namespace it selects that compiles,
// sorted by name, with the transforms they use, sorted by name. `routes` and
// `transforms` are the objects of the router's namespace.
RouterTable build_table(const Json& router, const std::vector<Json>& routes, const TransformIndex& transforms);

// The two halves of build_table, for SpecCache: the routes a router selects (not being
// deleted), sorted by name; and the table of those routes given each one's check, taking
// over from `previous` (the router's last table) the routes that did not change.
std::vector<const Json*> selected_routes(const Json& router, const std::vector<Json>& routes);
RouterTable table_of_checked(const std::vector<std::pair<const Json*, const RouteCheck*>>& checked,
                           const TransformIndex& transforms, const route::RouteTable* previous = nullptr);

}  // namespace switchboard::controller
