// The data plane: consumes NATS subjects for the routes of the current table, runs events
// through the routing core and publishes the results. A new table is compiled whole before
// it is applied; events in flight finish on the table they started with; a refused table
// leaves the old one running. What runs is reported on a heartbeat subject.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/route/processor.h"
#include "core/route/table.h"
#include "router/jetstream_consumer.h"
#include "router/nats_client.h"

namespace switchboard::router {

// What the router tells the outside world about each event and table; metrics implement it.
class RouterEvents {
 public:
  virtual ~RouterEvents() = default;
  virtual void received(const std::string& route) = 0;
  virtual void published(const std::string& route, size_t outputs) = 0;
  virtual void filtered(const std::string& route) = 0;
  virtual void failed(const std::string& route, route::FailureReason reason, const std::string& step,
                      const std::string& error) = 0;
  virtual void dead_lettered(const std::string& route) = 0;
  virtual void processed(const std::string& route, double seconds) = 0;
  virtual void table_applied(uint64_t generation, const std::string& hash) = 0;
  // A table is about to go live: every route of it may see events from now on, so a sink
  // that exports per-route series creates them here (a series that appears only with its
  // first event hides that event from rate() and from alerts).
  virtual void routes_installing(const route::RouteTable& table) { (void)table; }
  virtual void table_rejected(const std::string& error) = 0;
  // Something a person should know that is not about one event (a consumer that cannot bind).
  virtual void warning(const std::string& route, const std::string& message) { (void)route, (void)message; }
  // JetStream: delivered but not yet acknowledged events of a route's consumer.
  virtual void ack_pending(const std::string& route, int64_t pending) { (void)route, (void)pending; }
};

struct RouterConfig {
  std::string name = "switchboard";  // the fleet; queue groups are "<name>.<route>"
  std::string ns = "default";        // namespace, for the heartbeat subject
  std::string pod;                   // this process
  int64_t heartbeat_ms = 5000;
  int64_t grace_ms = 20000;          // SIGTERM: time to drain and flush
};

struct TableStatus {
  uint64_t generation = 0;
  std::string hash;
  std::string state = "pending";  // pending | applied | rejected
  std::string error;              // why the last table was refused
  std::string source_error;       // a problem with where tables come from (a deleted ConfigMap)
};

class Router {
 public:
  Router(RouterConfig config, NatsClient& nats, RouterEvents& events);
  ~Router();

  // Applies a compiled table: subscribes to new sources, drops old ones. Returns false
  // (and keeps the running table) when the table cannot run here.
  bool apply(std::shared_ptr<const route::RouteTable> table, std::string& error);
  // Records a table that did not compile; the running one stays.
  void reject(uint64_t generation, const std::string& error);
  // Records a problem with the table source itself (empty: resolved); reported in the
  // heartbeat as sourceError. The running table stays.
  void set_source_error(const std::string& error);

  void start();           // heartbeats
  void stop();            // drain, flush, stop heartbeats; idempotent
  bool ready(std::string& why) const;
  TableStatus status() const;
  std::shared_ptr<const route::RouteTable> table() const { return std::atomic_load(&table_); }

  struct Totals {
    std::atomic<uint64_t> received{0}, published{0}, filtered{0}, failed{0}, dead_lettered{0};
  };
  const Totals& totals() const { return totals_; }
  std::string heartbeat_subject() const { return "switchboard.status." + config_.ns + "." + config_.name; }
  std::string heartbeat_json() const;

 private:
  struct SourceKey {
    std::string subject, queue;
    bool operator<(const SourceKey& o) const {
      return subject != o.subject ? subject < o.subject : queue < o.queue;
    }
  };
  std::string queue_for(const route::RouteSpec& spec) const;
  // `source` names a subscription for as long as it lives, across tables.
  void on_message(uint64_t source, const NatsMessage& m);
  // How an event arrived: core NATS (one attempt), or JetStream (attempts so far, and the
  // stream position that destination message ids are made from).
  struct Delivery {
    bool jetstream = false;
    uint64_t attempts = 1;
    bool last_attempt = true;
    std::string id_base;
  };
  // Runs one route for one event from a core NATS subscription and publishes what comes
  // out. JetStream destinations are published without waiting (within the client's
  // in-flight bound), from a copy of the event, so the subscription takes the next one
  // meanwhile; a refused publish is dead-lettered once its answer comes.
  // `prepared`: `processor` already parsed this event (for an earlier route on its subject).
  void deliver(const std::shared_ptr<const route::RouteTable>& table, uint32_t index, const route::Message& msg,
               route::Processor& processor, bool prepared);
  // The same for an event from a JetStream consumer: JetStream destinations are published
  // without waiting (within the client's in-flight bound), and `settle` runs once every
  // publish of the event is confirmed or one has failed. `msg` must stay valid until then.
  void deliver_jetstream(std::shared_ptr<const route::RouteTable> table, uint32_t index, const route::Message& msg,
                         const Delivery& how, JetStreamConsumer::Settle settle);
  bool publish_core(route::Result& r);
  struct PendingEvent;
  // Sends an event's outputs; whoever brings its count of publishes in flight to zero
  // concludes the event and settles it.
  void send_outputs(const std::shared_ptr<PendingEvent>& p);
  // Counts an event's outcome and dead-letters a failed one that will not be retried.
  Disposition conclude(const route::RouteSpec& spec, route::Result& r, const route::Message& msg,
                       const Delivery& how, bool publish_failed, std::chrono::steady_clock::time_point t0);
  void dead_letter(const route::RouteSpec& spec, const route::Result& r, const route::Message& msg,
                   uint64_t attempts);
  void reconcile_consumers(const route::RouteTable& table);
  void send_heartbeat();
  void heartbeat_loop();

  RouterConfig config_;
  NatsClient& nats_;
  RouterEvents& events_;
  std::shared_ptr<const route::RouteTable> table_;  // accessed with std::atomic_load/store
  // What an event on a core NATS subscription runs: the table, and for each subscription
  // the routes it feeds, worked out once per table rather than once per event. Swapped
  // whole with the table (std::atomic_load/store).
  struct Dispatch {
    std::shared_ptr<const route::RouteTable> table;
    std::unordered_map<uint64_t, std::vector<uint32_t>> routes_by_source;
    const std::vector<uint32_t>* routes_for(uint64_t source) const {
      auto it = routes_by_source.find(source);
      return it == routes_by_source.end() ? nullptr : &it->second;
    }
  };
  std::shared_ptr<const Dispatch> dispatch_;
  // During an apply, the dispatch being installed: the server hands a new subscription
  // events as soon as it has it, before the round trip that confirms it and the swap, and
  // those are routed by the table that asked for them rather than dropped. Null between
  // applies (std::atomic_load/store).
  std::shared_ptr<const Dispatch> incoming_;
  mutable std::mutex mu_;  // subscriptions, status
  struct Subscribed {
    uint64_t nats_id = 0;  // for NatsClient::unsubscribe
    uint64_t source = 0;   // what its messages carry to on_message
  };
  std::map<SourceKey, Subscribed> subscriptions_;
  uint64_t next_source_ = 1;
  struct Consumer {
    std::string fingerprint;
    std::unique_ptr<JetStreamConsumer> worker;
  };
  std::map<std::string, Consumer> consumers_;  // by route name
  TableStatus status_;
  Totals totals_;
  std::chrono::steady_clock::time_point started_;
  std::thread heartbeat_;
  std::mutex hb_mu_;
  std::condition_variable hb_cv_;
  bool stopping_ = false;
  bool stopped_ = false;
};

std::string now_rfc3339();

}  // namespace switchboard::router
