// The route spec: what a user writes, in a standalone YAML file or as the `spec` of an
// EventRoute / EventTransform. Plain data; loading checks its shape, compiling (table.h)
// checks its meaning.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace switchboard::route {

// Where a value came from, for error messages.
struct Location {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based
  // How the text of an expression maps into the file: the column of its first character,
  // and whether lines after the first start at `block_indent` (block scalars).
  bool block = false;
  int block_indent = 0;
};

struct Located {
  std::string text;
  Location at;
};

using NamedExprs = std::vector<std::pair<std::string, Located>>;  // key → expression

struct JetStreamSpec {
  std::string stream;
  std::string durable;               // default: the route's name
  int64_t ack_wait_ms = 30'000;
  int32_t max_deliver = 5;
  std::vector<int64_t> backoff_ms;   // NAK delays by attempt; the last one repeats
  int32_t batch = 64;                // messages per fetch
  int32_t max_ack_pending = 1024;
};

struct SourceSpec {
  Located subject;
  std::string queue_group;           // default: one per source subject (docs/router.md)
  std::optional<JetStreamSpec> jetstream;
};

struct StepSpec {
  enum class Kind { Set, Remove, Rename, Payload, Use };
  Kind kind = Kind::Set;
  NamedExprs set;                                       // Set: field path → expression
  std::vector<std::string> remove;                      // Remove: field paths
  std::vector<std::pair<std::string, std::string>> rename;  // Rename: from → to
  Located payload;                                      // Payload: the new whole payload
  std::string use;                                      // Use: a named transform
  Location at;
};

struct DestinationSpec {
  Located subject;      // may hold {{ expr }} parts
  NamedExprs headers;   // header name → expression
  bool jetstream = false;  // publish with JetStream acks (destination is a stream)
};

struct RouteSpec {
  std::string name;
  std::string router;
  SourceSpec source;
  std::optional<Located> filter;
  std::vector<StepSpec> transform;
  std::vector<DestinationSpec> destinations;
  std::optional<std::string> dead_letter;
  int64_t max_payload_bytes = 1 << 20;
  Location at;
};

// An event as the dry-run CLI and transform tests write it.
struct TestEvent {
  std::string subject;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload;  // raw bytes: JSON text of "data", or the "raw" string
};

struct TransformTest {
  std::string name;
  TestEvent input;
  std::optional<std::string> expect_json;  // expected output payload, as JSON text
  std::optional<std::string> expect_error; // expected failure, a substring of the error
  Location at;
};

struct TransformSpec {
  std::string name;
  std::vector<StepSpec> steps;
  std::vector<TransformTest> tests;
  Location at;
};

struct RouteSet {
  std::vector<RouteSpec> routes;
  std::vector<TransformSpec> transforms;
};

// A problem found while loading or compiling, with everything a person needs to fix it.
struct SpecError {
  Location at;
  std::string object;   // "route 'large-orders'" / "transform 'normalize'"
  std::string field;    // "filter", "transform[1].set.total", "destinations[0].subject"
  std::string message;
  std::string snippet;  // source line with a caret, when there is one
  // False when the object was still read whole (an unknown field beside valid ones), so
  // that it can be compiled to report its other errors in the same run.
  bool object_incomplete = true;

  // "routes.yaml:12:13: route 'x', filter: message\n | ...\n | ^"
  std::string render() const;
};

}  // namespace switchboard::route
