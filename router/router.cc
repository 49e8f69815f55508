#include "router/router.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <set>

#include "core/json/document.h"
#include "core/route/dead_letter.h"
#include "router/thread_name.h"

namespace switchboard::router {

namespace {
// How long a destination stream has to confirm a publish.
constexpr int64_t kJetStreamPublishTimeoutMs = 5000;
}  // namespace

std::string now_rfc3339() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

Router::Router(RouterConfig config, NatsClient& nats, RouterEvents& events)
    : config_(std::move(config)), nats_(nats), events_(events), started_(std::chrono::steady_clock::now()) {}

Router::~Router() { stop(); }

// NATS delivers a message once per queue group name, even across different subjects, so
// a group never spans two subjects: routes on overlapping subjects (orders.*, orders.>)
// each see every event. Routes on the same subject share one group, hence one
// subscription: each event is delivered to one replica once, parsed once there, and run
// through every route on that subject by that replica's table. The name is the same on
// every replica: the router's name, the subject with what is not a letter, digit, '-' or
// '_' turned into '_', and a hash of the subject that tells apart subjects that look alike
// that way. A route's own `queueGroup` keeps a subscription of its own.
std::string Router::queue_for(const route::RouteSpec& spec) const {
  if (!spec.source.queue_group.empty()) return spec.source.queue_group;
  const std::string& subject = spec.source.subject.text;
  std::string name = config_.name + ".";
  uint64_t hash = 14695981039346656037ull;  // FNV-1a
  for (char c : subject) {
    const bool plain = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
    name += plain ? c : '_';
    hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  char suffix[20];
  std::snprintf(suffix, sizeof suffix, ".%08x", static_cast<uint32_t>(hash ^ (hash >> 32)));
  return name + suffix;
}

bool Router::apply(std::shared_ptr<const route::RouteTable> table, std::string& error) {
  std::set<SourceKey> wanted;
  for (const auto& r : table->routes()) {
    if (!r.spec.source.jetstream) wanted.insert(SourceKey{r.spec.source.subject.text, queue_for(r.spec)});
  }
  events_.routes_installing(*table);
  std::unique_lock lock(mu_);
  // Subscribe to new sources before the swap, drop old ones after it: an event on a
  // source present in both tables is never missed. The new dispatch is worked out first,
  // with the ids its new subscriptions will carry, and is there for them from their first
  // event on (incoming_).
  std::map<SourceKey, uint64_t> added;
  auto source_of = [&](const SourceKey& key) {
    auto it = subscriptions_.find(key);
    if (it != subscriptions_.end()) return it->second.source;
    auto [a, fresh] = added.try_emplace(key, next_source_);
    if (fresh) ++next_source_;
    return a->second;
  };
  auto next = std::make_shared<Dispatch>();
  next->table = table;
  for (uint32_t i = 0; i < table->routes().size(); ++i) {
    const auto& spec = table->routes()[i].spec;
    if (spec.source.jetstream) continue;
    next->routes_by_source[source_of(SourceKey{spec.source.subject.text, queue_for(spec)})].push_back(i);
  }
  std::shared_ptr<const Dispatch> dispatch = std::move(next);
  if (!added.empty()) std::atomic_store(&incoming_, dispatch);
  for (const auto& [key, source] : added) {
    std::string sub_error;
    uint64_t id = nats_.subscribe(
        key.subject, key.queue, [this, source = source](const NatsMessage& m) { on_message(source, m); },
        sub_error);
    if (id == 0) {
      // Refused: the old table stays, and so does what it subscribed to; what this apply
      // subscribed to goes.
      for (const auto& made : added) {
        auto it = subscriptions_.find(made.first);
        if (it == subscriptions_.end()) continue;
        nats_.unsubscribe(it->second.nats_id);
        subscriptions_.erase(it);
      }
      std::atomic_store(&incoming_, std::shared_ptr<const Dispatch>());
      error = sub_error;
      lock.unlock();
      reject(table->generation(), error);
      return false;
    }
    subscriptions_[key] = Subscribed{id, source};
  }
  // A round trip, so that the server has the new interest before the table counts as
  // applied: an event published after the heartbeat says "applied" is not missed. (Not
  // connected: cnats subscribes again when it reconnects.)
  if (!added.empty() && nats_.connected()) nats_.flush(2000);
  std::atomic_store(&dispatch_, std::move(dispatch));
  std::atomic_store(&incoming_, std::shared_ptr<const Dispatch>());
  std::atomic_store(&table_, std::move(table));
  auto current = std::atomic_load(&table_);
  for (auto it = subscriptions_.begin(); it != subscriptions_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    nats_.unsubscribe(it->second.nats_id);
    it = subscriptions_.erase(it);
  }
  reconcile_consumers(*current);
  status_.generation = current->generation();
  status_.hash = current->hash();
  status_.state = "applied";
  status_.error.clear();
  lock.unlock();
  events_.table_applied(current->generation(), current->hash());
  send_heartbeat();
  return true;
}

void Router::reject(uint64_t generation, const std::string& error) {
  {
    std::lock_guard lock(mu_);
    status_.state = "rejected";
    status_.error = "generation " + std::to_string(generation) + ": " + error;
  }
  events_.table_rejected(error);
  send_heartbeat();
}

void Router::on_message(uint64_t source, const NatsMessage& m) {
  // Read once per event: an event finishes on the table it started with.
  std::shared_ptr<const Dispatch> dispatch = std::atomic_load(&dispatch_);
  const std::vector<uint32_t>* routes = dispatch ? dispatch->routes_for(source) : nullptr;
  if (routes == nullptr) {
    // A source that the table being applied adds (in incoming_ until the swap, which
    // stores dispatch_ before it clears incoming_: hence the second look at dispatch_),
    // or one that the table no longer has.
    dispatch = std::atomic_load(&incoming_);
    if (!dispatch) dispatch = std::atomic_load(&dispatch_);
    routes = dispatch ? dispatch->routes_for(source) : nullptr;
    if (routes == nullptr) return;
  }
  route::Message msg{m.subject, m.headers, m.data};
  thread_local route::Processor processor;
  bool prepared = false;
  for (uint32_t i : *routes) {
    deliver(dispatch->table, i, msg, processor, prepared);
    prepared = true;  // the next route of this event reuses its parse
  }
}

void Router::reconcile_consumers(const route::RouteTable& table) {
  std::set<std::string> keep;
  for (const auto& r : table.routes()) {
    if (!r.spec.source.jetstream) continue;
    const std::string& name = r.spec.name;
    keep.insert(name);
    std::string fp = JetStreamConsumer::fingerprint(r.spec.source.subject.text, *r.spec.source.jetstream);
    auto it = consumers_.find(name);
    if (it != consumers_.end() && it->second.fingerprint == fp) continue;
    if (it != consumers_.end()) it->second.worker->stop();
    auto worker = std::make_unique<JetStreamConsumer>(
        nats_, name, r.spec.source.subject.text, *r.spec.source.jetstream,
        [this, name](const JetStreamDelivery& d, JetStreamConsumer::Settle settle) {
          // The route is looked up in the table current for this message: a reload
          // between two batches applies to the next one.
          auto t = std::atomic_load(&table_);
          if (t) {
            for (uint32_t i = 0; i < t->routes().size(); ++i) {
              if (t->routes()[i].spec.name != name) continue;
              route::Message msg{d.message.subject, d.message.headers, d.message.data};
              deliver_jetstream(t, i, msg, Delivery{true, d.attempts, d.last_attempt, d.id_base}, std::move(settle));
              return;
            }
          }
          settle(Disposition::Retry);
        },
        [this](const std::string& route_name, const std::string& error) { events_.warning(route_name, error); },
        [this](const std::string& route_name, int64_t pending) { events_.ack_pending(route_name, pending); });
    worker->start();
    consumers_[name] = Consumer{fp, std::move(worker)};
  }
  for (auto it = consumers_.begin(); it != consumers_.end();) {
    if (keep.count(it->first)) {
      ++it;
      continue;
    }
    it->second.worker->stop();
    it = consumers_.erase(it);
  }
}

void Router::dead_letter(const route::RouteSpec& spec, const route::Result& r, const route::Message& msg,
                         uint64_t attempts) {
  if (!spec.dead_letter) return;
  std::string envelope = route::dead_letter_envelope(spec.name, r, msg, static_cast<int64_t>(attempts),
                                                     now_rfc3339());
  std::string error;
  route::Headers headers{{"switchboard-route", spec.name},
                         {"switchboard-reason", std::string(route::reason_label(r.reason))}};
  if (nats_.publish(*spec.dead_letter, headers, envelope, error)) {
    totals_.dead_lettered.fetch_add(1, std::memory_order_relaxed);
    events_.dead_lettered(spec.name);
  } else {
    events_.failed(spec.name, route::FailureReason::Destination, "deadLetter", error);
  }
}

// One JetStream event whose destination publishes are in flight.
struct Router::PendingEvent {
  std::shared_ptr<const route::RouteTable> table;  // keeps the route's spec alive
  uint32_t index = 0;
  route::Message msg;
  Delivery how;
  route::Result result;
  JetStreamConsumer::Settle settle;
  std::chrono::steady_clock::time_point t0;
  std::mutex mu;
  size_t outstanding = 1;  // publishes in flight, plus one held while they are being sent
  bool failed = false;
  size_t failed_index = 0;
  std::string error;
  // The event itself, for sources whose message does not outlive the callback.
  std::string owned_subject, owned_payload;
  route::Headers owned_headers;
};

void Router::deliver(const std::shared_ptr<const route::RouteTable>& table, uint32_t index,
                     const route::Message& msg, route::Processor& processor, bool prepared) {
  const auto& spec = table->routes()[index].spec;
  auto t0 = std::chrono::steady_clock::now();
  totals_.received.fetch_add(1, std::memory_order_relaxed);
  events_.received(spec.name);
  route::Result r =
      prepared ? processor.run_prepared(*table, index, msg) : processor.process_route(*table, index, msg);
  const Delivery how{};
  bool has_jetstream = false;
  for (const auto& out : r.outputs) has_jetstream = has_jetstream || out.jetstream;
  if (r.outcome == route::Result::Outcome::Published && has_jetstream) {
    auto p = std::make_shared<PendingEvent>();
    p->table = table;
    p->index = index;
    // The cnats message goes when this returns: the event is copied for its dead letter.
    p->owned_subject.assign(msg.subject);
    p->owned_payload.assign(msg.payload);
    if (msg.headers != nullptr) p->owned_headers = *msg.headers;
    p->msg = route::Message{p->owned_subject, msg.headers != nullptr ? &p->owned_headers : nullptr,
                            p->owned_payload};
    p->how = how;
    p->result = std::move(r);
    p->settle = [](Disposition) {};  // nothing to acknowledge on core NATS
    p->t0 = t0;
    send_outputs(p);
    return;
  }
  bool publish_failed = !publish_core(r);
  conclude(spec, r, msg, how, publish_failed, t0);
}

// Publishes a result's outputs on core NATS, stopping at the first that fails; that one
// fails the result (reason destination). False when one failed.
bool Router::publish_core(route::Result& r) {
  for (size_t i = 0; r.outcome == route::Result::Outcome::Published && i < r.outputs.size(); ++i) {
    const auto& out = r.outputs[i];
    std::string error;
    if (!nats_.publish(out.subject, out.headers, out.payload, error)) {
      r.outcome = route::Result::Outcome::Failed;
      r.reason = route::FailureReason::Destination;
      r.step = "destinations[" + std::to_string(i) + "]";
      r.error = error;
      return false;
    }
  }
  return true;
}

Disposition Router::conclude(const route::RouteSpec& spec, route::Result& r, const route::Message& msg,
                             const Delivery& how, bool publish_failed, std::chrono::steady_clock::time_point t0) {
  // A publish can succeed next time: let JetStream redeliver while attempts remain.
  Disposition disposition =
      publish_failed && how.jetstream && !how.last_attempt ? Disposition::Retry : Disposition::Ack;
  switch (r.outcome) {
    case route::Result::Outcome::Published:
      totals_.published.fetch_add(1, std::memory_order_relaxed);
      events_.published(spec.name, r.outputs.size());
      break;
    case route::Result::Outcome::Filtered:
      totals_.filtered.fetch_add(1, std::memory_order_relaxed);
      events_.filtered(spec.name);
      break;
    case route::Result::Outcome::Failed:
      totals_.failed.fetch_add(1, std::memory_order_relaxed);
      events_.failed(spec.name, r.reason, r.step, r.error);
      // A failure of the event itself (not JSON, a filter or transform error) would fail
      // the same way again: it is dead-lettered at once rather than retried.
      if (disposition == Disposition::Ack) dead_letter(spec, r, msg, how.attempts);
      break;
  }
  events_.processed(spec.name,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return disposition;
}


void Router::deliver_jetstream(std::shared_ptr<const route::RouteTable> table, uint32_t index,
                               const route::Message& msg, const Delivery& how, JetStreamConsumer::Settle settle) {
  thread_local route::Processor processor;
  const auto& spec = table->routes()[index].spec;
  auto t0 = std::chrono::steady_clock::now();
  totals_.received.fetch_add(1, std::memory_order_relaxed);
  events_.received(spec.name);
  route::Result r = processor.process_route(*table, index, msg);
  bool has_jetstream = false;
  for (const auto& out : r.outputs) has_jetstream = has_jetstream || out.jetstream;
  if (r.outcome != route::Result::Outcome::Published || !has_jetstream) {
    // Nothing to wait for: core NATS publishes are confirmed by the consumer's flush.
    bool publish_failed = !publish_core(r);
    settle(conclude(spec, r, msg, how, publish_failed, t0));
    return;
  }
  auto p = std::make_shared<PendingEvent>();
  p->table = std::move(table);
  p->index = index;
  p->msg = msg;
  p->how = how;
  p->result = std::move(r);
  p->settle = std::move(settle);
  p->t0 = t0;
  send_outputs(p);
}

void Router::send_outputs(const std::shared_ptr<PendingEvent>& p) {
  const Delivery& how = p->how;
  // Whoever brings `outstanding` to zero concludes the event and settles it.
  auto finish_one = [this](const std::shared_ptr<PendingEvent>& ev, size_t i, bool ok, const std::string& error) {
    {
      std::lock_guard lock(ev->mu);
      if (!ok && (!ev->failed || i < ev->failed_index)) {
        ev->failed = true;
        ev->failed_index = i;
        ev->error = error;
      }
      if (--ev->outstanding > 0) return;
    }
    route::Result& res = ev->result;
    if (ev->failed) {
      res.outcome = route::Result::Outcome::Failed;
      res.reason = route::FailureReason::Destination;
      res.step = "destinations[" + std::to_string(ev->failed_index) + "]";
      res.error = ev->error;
    }
    const auto& route_spec = ev->table->routes()[ev->index].spec;
    Disposition d = conclude(route_spec, res, ev->msg, ev->how, ev->failed, ev->t0);
    // The message is the consumer's again from here on.
    auto settle_now = std::move(ev->settle);
    settle_now(d);
  };
  const auto& outputs = p->result.outputs;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto& out = outputs[i];
    std::string error;
    bool sent = false;
    if (out.jetstream) {
      {
        std::lock_guard lock(p->mu);
        ++p->outstanding;
      }
      sent = nats_.js_publish_async(
          out.subject, out.headers, out.payload, how.id_base.empty() ? std::string() : how.id_base + ":" + std::to_string(i),
          kJetStreamPublishTimeoutMs,
          [p, i, finish_one](bool ok, const std::string& e) { finish_one(p, i, ok, e); }, error);
      if (!sent) finish_one(p, i, false, error);  // the count taken for it
    } else {
      sent = nats_.publish(out.subject, out.headers, out.payload, error);
      if (!sent) {
        std::lock_guard lock(p->mu);
        if (!p->failed || i < p->failed_index) {
          p->failed = true;
          p->failed_index = i;
          p->error = error;
        }
      }
    }
    // A failed destination fails the event: the rest are not sent (a retry sends them all,
    // and the streams drop what they already have).
    if (!sent) break;
  }
  finish_one(p, 0, true, "");  // the count held while sending
}

std::string Router::heartbeat_json() const {
  TableStatus s = status();
  std::string out = "{\"pod\":";
  json::append_quoted(out, config_.pod);
  out += ",\"router\":";
  json::append_quoted(out, config_.name);
  out += ",\"namespace\":";
  json::append_quoted(out, config_.ns);
  out += ",\"generation\":" + std::to_string(s.generation) + ",\"hash\":";
  json::append_quoted(out, s.hash);
  out += ",\"state\":";
  json::append_quoted(out, s.state);
  if (!s.error.empty()) {
    out += ",\"error\":";
    json::append_quoted(out, s.error);
  }
  if (!s.source_error.empty()) {
    out += ",\"sourceError\":";
    json::append_quoted(out, s.source_error);
  }
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_);
  out += ",\"uptimeSeconds\":" + std::to_string(uptime.count());
  out += ",\"counters\":{\"received\":" + std::to_string(totals_.received.load()) +
         ",\"published\":" + std::to_string(totals_.published.load()) +
         ",\"filtered\":" + std::to_string(totals_.filtered.load()) +
         ",\"failed\":" + std::to_string(totals_.failed.load()) +
         ",\"deadLettered\":" + std::to_string(totals_.dead_lettered.load()) + "}";
  out += ",\"time\":";
  json::append_quoted(out, now_rfc3339());
  out += '}';
  return out;
}

void Router::send_heartbeat() {
  std::string error;
  nats_.publish(heartbeat_subject(), {}, heartbeat_json(), error);
}

void Router::heartbeat_loop() {
  std::unique_lock lock(hb_mu_);
  while (!stopping_) {
    hb_cv_.wait_for(lock, std::chrono::milliseconds(config_.heartbeat_ms), [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    send_heartbeat();
    lock.lock();
  }
}

void Router::start() {
  send_heartbeat();
  heartbeat_ = std::thread([this] {
    name_this_thread("sb-heartbeat");
    heartbeat_loop();
  });
}

void Router::stop() {
  {
    std::lock_guard lock(hb_mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
  }
  hb_cv_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
  // All of the stop fits in one grace period, the last heartbeat's flush included: with
  // NATS gone nothing can be confirmed and every wait runs to its end, and the process
  // must still exit within --grace.
  using namespace std::chrono;
  const auto deadline = steady_clock::now() + milliseconds(config_.grace_ms);
  const int64_t heartbeat_reserve = std::min<int64_t>(1000, config_.grace_ms / 4);
  auto left = [&](int64_t reserve) {
    return std::max<int64_t>(1, duration_cast<milliseconds>(deadline - steady_clock::now()).count() - reserve);
  };
  // JetStream first: each consumer finishes (acks or NAKs) the batch it holds.
  {
    std::lock_guard lock(mu_);
    for (auto& [name, c] : consumers_) c.worker->stop();
    consumers_.clear();
  }
  // Stop taking events, let handlers finish what they hold, flush what they published.
  nats_.drain(left(heartbeat_reserve));
  // JetStream publishes of core NATS events still waiting for their answer: counted (and
  // dead-lettered when refused) before this router goes; given up on when the grace is over.
  if (!nats_.wait_for_publishes(left(heartbeat_reserve))) nats_.abandon_publishes();
  {
    std::lock_guard lock(mu_);
    status_.state = status_.state == "applied" ? "stopped" : status_.state;
  }
  send_heartbeat();
  // Not connected (an outage, or a router that failed to start): nothing to wait for.
  if (nats_.connected()) nats_.flush(left(0));
}

void Router::set_source_error(const std::string& error) {
  {
    std::lock_guard lock(mu_);
    if (status_.source_error == error) return;
    status_.source_error = error;
  }
  send_heartbeat();
}

bool Router::ready(std::string& why) const {
  if (!nats_.connected()) {
    // Closed for good (credentials refused) is not the same as an outage: say which.
    std::string closed = nats_.closed_reason();
    why = closed.empty() ? "not connected to NATS"
                         : "NATS connection closed (" + closed + "); reconnecting with credentials read again";
    return false;
  }
  std::lock_guard lock(mu_);
  if (status_.generation == 0 || !std::atomic_load(&table_)) {
    why = status_.state == "rejected" ? "no route table applied: " + status_.error : "no route table applied yet";
    return false;
  }
  return true;
}

TableStatus Router::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

}  // namespace switchboard::router
