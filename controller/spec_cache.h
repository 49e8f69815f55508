// What the controller already read: loaded EventTransforms, checked EventRoutes and
// compiled route tables, each kept until what it was made from changes. Reading a route
// (object → YAML document → route::load_yaml → compile) costs about a millisecond, and
// every EventRouter reconcile needs every route of its table: without this, a heartbeat
// re-read 1,000 routes.
//
// What each entry depends on, and so what invalidates it:
//   a transform   its uid, metadata.generation and spec (object_fingerprint)
//   a route check the route's fingerprint, and the fingerprints of the transforms it
//                 `use`s (or their absence); when one of those is missing, the fingerprint
//                 of every transform of the namespace ("did you mean" looks at them all)
//   a table       the router's selection, in order, and the check of each route in it
// An entry whose dependencies differ is computed again on its next lookup; forget_route
// drops a deleted route, forget_router a deleted router's table. Thread-safe: lookups of
// several workers may run at once (two may compute the same entry; either result is right).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "controller/json_util.h"
#include "controller/specs.h"

namespace switchboard::controller {

class SpecCache {
 public:
  // The transforms of namespace `ns`, given its EventTransform objects: each loaded again
  // only when its fingerprint changed.
  std::shared_ptr<const TransformIndex> transforms(const std::string& ns, const std::vector<Json>& objects);
  // check_route(route, transforms), from the cache while nothing it depends on changed.
  std::shared_ptr<const RouteCheck> check(const Json& route, const TransformIndex& transforms);
  // build_table(router, routes, transforms), with each route's check from the cache, and
  // the compiled table itself reused while the router selects the same checked routes.
  std::shared_ptr<const RouterTable> table(const Json& router, const std::vector<Json>& routes,
                                           const TransformIndex& transforms);

  void forget_route(const std::string& key);   // "namespace/name" of a deleted EventRoute
  void forget_router(const std::string& key);  // "namespace/name" of a deleted EventRouter

  // For tests and logs: work done and work saved.
  struct Stats {
    uint64_t route_checks = 0;  // check_route calls
    uint64_t route_hits = 0;
    uint64_t transform_loads = 0;
    uint64_t transform_hits = 0;
    uint64_t table_compiles = 0;
    uint64_t table_hits = 0;
  };
  Stats stats() const;
  size_t cached_routes() const;
  bool has_route(const std::string& key) const;

 private:
  struct RouteEntry {
    std::string fingerprint;  // the route's
    std::string depends;      // the transforms it depends on
    uint64_t id = 0;          // unique per computed check: what a table key names
    std::shared_ptr<const RouteCheck> check;
  };
  struct TableEntry {
    std::string key;
    std::shared_ptr<const RouterTable> table;
  };
  struct NamespaceTransforms {
    std::map<std::string, std::shared_ptr<const LoadedTransform>> by_key;  // name → loaded
    std::string combined;                                                  // every fingerprint
    std::shared_ptr<const TransformIndex> index;
  };
  // The check with its entry id.
  std::pair<std::shared_ptr<const RouteCheck>, uint64_t> check_entry(const Json& route,
                                                                     const TransformIndex& transforms);

  mutable std::mutex mu_;
  std::map<std::string, RouteEntry> routes_;              // route key → entry
  std::map<std::string, TableEntry> tables_;              // router key → entry
  std::map<std::string, NamespaceTransforms> transforms_;  // namespace → its transforms
  uint64_t next_id_ = 1;
  Stats stats_;
};

// What a route's check depends on among `transforms`, given the names it uses.
std::string transform_dependencies(const std::vector<std::string>& uses, const TransformIndex& transforms);

}  // namespace switchboard::controller
