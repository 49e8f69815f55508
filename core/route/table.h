// A compiled, immutable route table: every expression parsed and checked once, named
// transforms inlined, source subjects in a trie. A table is built whole or not at all, so a
// router can swap it in atomically and keep the old one when a new one is refused.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/cel/program.h"
#include "core/route/spec.h"
#include "core/route/subject.h"

namespace switchboard::route {

using FieldPath = std::vector<std::string>;

// Fan-out bounds (docs/routes.md, "Limits"). A route with more destinations is refused when
// the table compiles. An event's publishes are the destinations of every route its subject
// matches, counted in declaration order whether or not their filters pass: a route that
// would take the count over the limit fails the event (reason destination).
inline constexpr size_t kMaxDestinationsPerRoute = 16;
inline constexpr size_t kMaxPublishesPerEvent = 64;
// A rendered destination header value; over it the event fails (reason destination).
// (Subjects, literal or rendered, are held to kMaxSubjectLength by validate_subject.)
inline constexpr size_t kMaxHeaderValueBytes = 4096;

struct CompiledStep {
  StepSpec::Kind kind = StepSpec::Kind::Set;
  std::string origin;  // "transform[1]" or "transform[1] (normalize.steps[0])", for errors
  std::vector<std::pair<FieldPath, cel::Program>> set;
  std::vector<FieldPath> remove;
  std::vector<std::pair<FieldPath, FieldPath>> rename;
  std::optional<cel::Program> payload;
};

// "orders.{{ event.region }}.large": literal parts around expressions.
struct SubjectTemplate {
  std::vector<std::string> literals;  // one more than exprs
  std::vector<cel::Program> exprs;
};

struct CompiledDestination {
  SubjectTemplate subject;
  std::vector<std::pair<std::string, cel::Program>> headers;
  bool jetstream = false;
};

struct CompiledRoute {
  RouteSpec spec;
  // sha256 of the route's canonical JSON and of the transforms it uses: a route with the
  // same key compiles to the same thing, so a later table can take it over (compile()).
  std::string key;
  std::optional<cel::Program> filter;
  std::vector<CompiledStep> steps;
  std::vector<CompiledDestination> destinations;
  bool needs_json = false;  // an expression reads `event`, or a step edits the payload
};

struct CompiledTransform {
  TransformSpec spec;
  std::string key;  // sha256 of the transform's canonical JSON
  std::vector<CompiledStep> steps;
  bool needs_json = false;
};

// How much of a table was compiled and how much taken over from the previous one.
struct CompileStats {
  size_t routes_compiled = 0;
  size_t routes_reused = 0;
  size_t transforms_compiled = 0;
  size_t transforms_reused = 0;
};

class RouteTable {
 public:
  // Compiles every route and transform; on failure returns every error found.
  //
  // With `previous` (a table compiled before in this process, with the same limits), a
  // route whose spec and used transforms are unchanged, by content hash, takes over the
  // previous table's compiled route instead of compiling again, and likewise a transform:
  // one edited route in a large table costs one route's compilation. Compiled programs
  // are immutable and shared by reference count, so the two tables may live on, on any
  // threads, side by side. A reused route is one that compiled without errors before,
  // and the checks that depend on the rest of the table (names, transforms) run again.
  static std::variant<std::shared_ptr<const RouteTable>, std::vector<SpecError>> compile(
      RouteSet set, uint64_t generation, const cel::Limits& limits = {}, const RouteTable* previous = nullptr);

  uint64_t generation() const { return generation_; }
  // "sha256:<hex>" of the canonical JSON of the spec: equal specs, equal hashes.
  const std::string& hash() const { return hash_; }
  const std::string& canonical_json() const { return canonical_; }
  const std::vector<CompiledRoute>& routes() const { return routes_; }
  const std::vector<CompiledTransform>& transforms() const { return transforms_; }

  // Indices of the routes whose source matches, in declaration order.
  void match(std::string_view subject, std::vector<uint32_t>& out) const { trie_.match(subject, out); }
  // The destinations of all routes together: when within kMaxPublishesPerEvent, no event
  // can go over it and the processor skips counting.
  size_t total_destinations() const { return total_destinations_; }
  const CompileStats& stats() const { return stats_; }

 private:
  uint64_t generation_ = 0;
  cel::Limits limits_;
  CompileStats stats_;
  std::string hash_;
  std::string canonical_;
  std::vector<CompiledRoute> routes_;
  std::vector<CompiledTransform> transforms_;
  SubjectTrie trie_;
  size_t total_destinations_ = 0;
};

// The spec as canonical JSON (fixed key order, defaults filled in): what the hash covers
// and what the controller ships to routers.
std::string canonical_json(const RouteSet& set);

std::string sha256_hex(std::string_view data);

}  // namespace switchboard::route
