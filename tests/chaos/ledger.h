// Events with unique ids, the producers that send them at a steady rate, and the ledger
// that accounts for each one afterwards: delivered (once, or more: duplicated), dead-lettered
// with its reason, filtered on purpose, or lost.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "router/nats_client.h"
#include "tests/chaos/harness.h"

namespace switchboard::chaos {

// What a route is expected to do with an event, chosen from the seed and the event's
// number so that the checker knows it without a record of what was sent.
enum class EventKind {
  Deliver,       // passes the filter and the transform: one copy downstream
  Filter,        // kind "skip": dropped by the filter, nowhere downstream
  BadTransform,  // no amount: the transform fails, dead letter with reason "transform"
  NotJson,       // not JSON: dead letter with reason "not_json"
};
const char* kind_name(EventKind kind);
// `mixed` false: every event is Deliver.
EventKind kind_for(uint64_t seed, uint64_t n, bool mixed);

struct Event {
  std::string id;       // "<tag>-<n>", unique in a run
  EventKind kind;
  std::string subject;  // <prefix>.<kind word>
  std::string payload;
};
Event make_event(const std::string& tag, uint64_t seed, uint64_t n, bool mixed, size_t pad,
                 const std::string& subject_prefix);
// The number in an id of `tag`, or 0.
uint64_t number_of(std::string_view id, const std::string& tag);

// The id carried by a routed event (its "id" field) or a raw payload; empty if none.
std::string id_of_payload(std::string_view payload);
struct DeadLetter {
  std::string id, route, reason;
};
bool parse_dead_letter(std::string_view envelope, DeadLetter& out);

// Publishes events to a stream at a steady rate, each with its id as Nats-Msg-Id and
// retried until the stream confirms it, so the source holds each event exactly once even
// across server restarts.
class JetStreamProducer {
 public:
  struct Config {
    std::string url, tag, subject_prefix;
    uint64_t seed = 0;
    double rate = 100;  // events per second
    bool mixed = true;
    size_t pad = 0;     // bytes of padding per event
  };
  explicit JetStreamProducer(Config config);
  ~JetStreamProducer();
  void start();
  // Finishes the event in hand (retrying for up to 60 s) and stops.
  void stop();
  uint64_t confirmed() const { return confirmed_.load(); }
  uint64_t retries() const { return retries_.load(); }
  uint64_t unconfirmed() const { return unconfirmed_.load(); }

 private:
  void loop();
  Config config_;
  router::NatsClient nc_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> confirmed_{0}, retries_{0}, unconfirmed_{0};
};

// Publishes events on a core NATS subject at a steady rate and remembers when each was
// published, for the loss bound of core routes.
class CoreProducer {
 public:
  struct Config {
    std::string url, tag, subject_prefix;
    uint64_t seed = 0;
    double rate = 50;
  };
  CoreProducer(Config config, Clock::time_point epoch);
  ~CoreProducer();
  void start();
  void stop();
  // Publish time (seconds since the epoch) of event n (1-based); negative: publish failed.
  std::vector<double> published() const;

 private:
  void loop();
  Config config_;
  Clock::time_point epoch_;
  router::NatsClient nc_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::vector<double> published_;
};

// The accounting of one route.
struct Tally {
  uint64_t sent = 0;                        // JetStream: in the source stream; core: published
  uint64_t source_duplicates = 0;           // the same id twice in the source stream
  uint64_t filtered = 0;                    // dropped by the filter, as meant
  uint64_t expected_downstream = 0;         // sent - filtered
  uint64_t delivered = 0;                   // distinct events found in the destination
  uint64_t duplicated = 0;                  // extra copies in the destination
  std::map<std::string, uint64_t> dead_lettered;  // by reason: events in the dead letters only
  uint64_t dead_letter_duplicates = 0;      // extra copies in the dead letters
  uint64_t delivered_and_dead_lettered = 0; // in both (a publish confirmed too late)
  uint64_t misrouted = 0;                   // an outcome its kind forbids (a filtered event downstream)
  uint64_t lost = 0;                        // neither delivered nor dead-lettered
  uint64_t phantom = 0;                     // downstream, never sent
  std::vector<uint64_t> lost_numbers;       // event numbers, for loss windows and reports
  uint64_t dead_lettered_total() const;
};

// What was found downstream: ids with their copies.
struct Downstream {
  std::unordered_map<std::string, uint64_t> delivered;              // id -> copies
  std::unordered_map<std::string, std::vector<std::string>> dead;   // id -> reasons
};

// Reads the destination stream(s) and the dead letters of `route` into `out`.
bool read_downstream(router::NatsClient& nc, const std::vector<std::string>& destination_streams,
                     const std::string& dead_letter_stream, const std::string& route, Downstream& out,
                     std::string& error);
// The ids of the events in a source stream.
bool read_source_ids(router::NatsClient& nc, const std::string& stream, std::vector<std::string>& ids,
                     std::string& error);

// Accounts for `sent` (ids of `tag`) against what was found downstream.
Tally account_route(const std::vector<std::string>& sent, const std::string& tag, uint64_t seed, bool mixed,
              const Downstream& found);

std::string tally_json(const Tally& t);

}  // namespace switchboard::chaos
