// Runs events through a route table: match, filter, transform, render destinations. One
// Processor per thread; it reuses its buffers, so the steady state allocates little. It
// never throws for a bad event: every failure is a Result with a bounded reason.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/cel/program.h"
#include "core/json/document.h"
#include "core/route/table.h"

namespace switchboard::route {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Bounds on the headers an event arrives with (docs/routes.md, "Limits"): over either, the
// event fails on every route it matches, with reason too_large.
inline constexpr size_t kMaxEventHeaders = 256;
inline constexpr size_t kMaxEventHeaderBytes = 64 * 1024;  // names and values together

struct Message {
  std::string_view subject;
  const Headers* headers = nullptr;  // may be null
  std::string_view payload;
};

// Reasons are metric label values: a fixed, small set.
enum class FailureReason : uint8_t {
  NotJson,        // the route reads the payload, and it is not JSON
  TooLarge,       // over the route's maxPayloadBytes (in or out), or too many headers
  Filter,         // the filter failed or did not return a bool
  Transform,      // a step failed
  Destination,    // a subject template or header failed
  Encode,         // the result cannot be written as JSON (NaN, a non-string map key...)
};
std::string_view reason_label(FailureReason r);

struct Published {
  std::string subject;
  Headers headers;
  std::string payload;
  bool jetstream = false;
};

struct Result {
  enum class Outcome : uint8_t { Published, Filtered, Failed };
  uint32_t route = 0;
  Outcome outcome = Outcome::Failed;
  FailureReason reason = FailureReason::Filter;
  std::string step;   // where it failed: "filter", "transform[1].set.total", ...
  std::string error;  // what failed
  std::vector<Published> outputs;
};

class Processor {
 public:
  Processor();

  // Runs every matching route; appends one Result per matched route.
  void process(const RouteTable& table, const Message& msg, std::vector<Result>& out);
  // Runs one route (a JetStream consumer belongs to one route).
  Result process_route(const RouteTable& table, uint32_t route, const Message& msg);
  // Several routes on one event, parsed once: prepare_event(msg), then run_prepared() for
  // each route, with the same `msg`, before the next prepare_event.
  void prepare_event(const Message& msg) { prepare(msg); }
  Result run_prepared(const RouteTable& table, uint32_t route, const Message& msg) {
    return run_route(table, route, msg);
  }
  // Runs a list of steps on a message alone, for transform tests. On success `payload`
  // holds the output.
  bool run_steps(const std::vector<CompiledStep>& steps, bool needs_json, const Message& msg,
                 std::string& payload, std::string& error);

  // Why the last payload did not parse as JSON (empty when it did, or when no route of it
  // read the payload).
  const std::string& json_error() const { return json_error_; }

 private:
  void prepare(const Message& msg);
  void parse_payload();  // the event's payload, once, when a route first needs it
  Result run_route(const RouteTable& table, uint32_t route, const Message& msg);
  bool apply_steps(const std::vector<CompiledStep>& steps, cel::Value& event, std::string& where,
                   std::string& error);
  void release_event();
  // The working event of one route: however the route ends, the maps its transform built
  // go back to spare_maps_.
  class EventScope {
   public:
    EventScope(Processor& processor, cel::Value& event) : processor_(processor), event_(event) {}
    EventScope(const EventScope&) = delete;
    EventScope& operator=(const EventScope&) = delete;
    ~EventScope();

   private:
    Processor& processor_;
    cel::Value& event_;
  };
  size_t publishes_before(const RouteTable& table, uint32_t route, std::string_view subject);

  json::Document doc_;
  std::string_view payload_;   // of the prepared event
  bool parse_pending_ = false;  // prepared, not parsed yet
  bool parsed_ = false;
  std::string json_error_;
  std::string headers_error_;  // why the event's headers are over the limits, or empty
  std::vector<uint32_t> fanout_matched_;
  cel::Activation activation_;
  std::vector<uint32_t> matched_;
  std::vector<cel::Value> set_values_;  // reused by every set step
  // Owned maps of earlier events, emptied: a transform copies each object along an edited
  // path into a map, and taking these instead of new ones keeps that free of allocations.
  std::vector<cel::Value> spare_maps_;
};

// Appends standard base64 (with padding): how bytes travel inside JSON.
void append_base64(std::string& out, std::string_view in);

// Writes a value as JSON. Untouched JSON-backed values are copied byte for byte. Members
// of an object of `source` (the document the value was read from) that an edit left as
// they were are copied from its text when it has no spacing, several in one go: the same
// output, faster. Stops with an error once `out` holds more than max_bytes, so that a
// value which shares one large part many times ([event, event, ...]) cannot build an
// unbounded output.
bool encode_json(const cel::Value& v, std::string& out, std::string& error, size_t max_bytes = SIZE_MAX,
                 int depth = 0, const json::Document* source = nullptr);

}  // namespace switchboard::route
