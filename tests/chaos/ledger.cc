#include "tests/chaos/ledger.h"

#include <cstdio>
#include <unordered_set>

#include "core/json/document.h"

namespace switchboard::chaos {

namespace {

uint64_t mix(uint64_t x) {
  // splitmix64: a fixed, well-spread function of (seed, n), the same on every machine.
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

const char* subject_word(EventKind kind) {
  switch (kind) {
    case EventKind::Deliver: return "order";
    case EventKind::Filter: return "skip";
    case EventKind::BadTransform: return "bad";
    case EventKind::NotJson: return "raw";
  }
  return "order";
}

// Paces a loop at `rate` per second. Behind by more than a second (a server outage), it
// starts over rather than sending the backlog in one burst.
class Pacer {
 public:
  explicit Pacer(double rate) : step_(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate))) {}
  void wait() {
    next_ += step_;
    auto now = Clock::now();
    if (now > next_ + std::chrono::seconds(1)) next_ = now;
    if (next_ > now) std::this_thread::sleep_for(next_ - now);
  }

 private:
  Clock::duration step_;
  Clock::time_point next_ = Clock::now();
};

}  // namespace

const char* kind_name(EventKind kind) {
  switch (kind) {
    case EventKind::Deliver: return "deliver";
    case EventKind::Filter: return "filter";
    case EventKind::BadTransform: return "bad_transform";
    case EventKind::NotJson: return "not_json";
  }
  return "deliver";
}

EventKind kind_for(uint64_t seed, uint64_t n, bool mixed) {
  if (!mixed) return EventKind::Deliver;
  uint64_t r = mix(seed ^ (n * 0x2545f4914f6cdd1dULL)) % 100;
  if (r < 80) return EventKind::Deliver;
  if (r < 90) return EventKind::Filter;
  if (r < 95) return EventKind::BadTransform;
  return EventKind::NotJson;
}

Event make_event(const std::string& tag, uint64_t seed, uint64_t n, bool mixed, size_t pad,
                 const std::string& subject_prefix) {
  Event e;
  e.id = tag + "-" + std::to_string(n);
  e.kind = kind_for(seed, n, mixed);
  e.subject = subject_prefix + "." + subject_word(e.kind);
  if (e.kind == EventKind::NotJson) {
    e.payload = "garbage " + e.id + " is not JSON";
    return e;
  }
  e.payload = "{\"id\":\"" + e.id + "\",\"n\":" + std::to_string(n) + ",\"kind\":\"" + subject_word(e.kind) + "\"";
  if (e.kind != EventKind::BadTransform) {
    char amount[32];
    std::snprintf(amount, sizeof amount, "%llu.25", static_cast<unsigned long long>(n % 1000));
    e.payload += std::string(",\"amount\":") + amount;
  }
  if (pad > 0) e.payload += ",\"pad\":\"" + std::string(pad, 'x') + "\"";
  e.payload += "}";
  return e;
}

uint64_t number_of(std::string_view id, const std::string& tag) {
  if (id.size() <= tag.size() + 1 || id.compare(0, tag.size(), tag) != 0 || id[tag.size()] != '-') return 0;
  uint64_t n = 0;
  for (size_t i = tag.size() + 1; i < id.size(); ++i) {
    if (id[i] < '0' || id[i] > '9') return 0;
    n = n * 10 + static_cast<uint64_t>(id[i] - '0');
  }
  return n;
}

namespace {

std::string id_of_raw(std::string_view text) {
  constexpr std::string_view kPrefix = "garbage ";
  if (text.substr(0, kPrefix.size()) != kPrefix) return "";
  text.remove_prefix(kPrefix.size());
  return std::string(text.substr(0, text.find(' ')));
}

}  // namespace

std::string id_of_payload(std::string_view payload) {
  json::Document d;
  if (d.parse(payload) && d.node(0).type == json::Type::Object) {
    uint32_t id = d.find_member(0, "id");
    return id == 0 ? std::string() : std::string(d.string_value(id));
  }
  return id_of_raw(payload);
}

bool parse_dead_letter(std::string_view envelope, DeadLetter& out) {
  json::Document d;
  if (!d.parse(envelope) || d.node(0).type != json::Type::Object) return false;
  out.route = std::string(d.string_value(d.find_member(0, "route")));
  out.reason = std::string(d.string_value(d.find_member(0, "reason")));
  if (uint32_t data = d.find_member(0, "data"); data != 0 && d.node(data).type == json::Type::Object) {
    uint32_t id = d.find_member(data, "id");
    out.id = id == 0 ? std::string() : std::string(d.string_value(id));
  } else if (uint32_t raw = d.find_member(0, "raw"); raw != 0) {
    out.id = id_of_raw(d.string_value(raw));
  }
  return !out.id.empty();
}

JetStreamProducer::JetStreamProducer(Config config) : config_(std::move(config)) {}

JetStreamProducer::~JetStreamProducer() { stop(); }

void JetStreamProducer::start() {
  connect_client(nc_, config_.url, "chaos-producer-" + config_.tag);
  thread_ = std::thread([this] { loop(); });
}

void JetStreamProducer::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void JetStreamProducer::loop() {
  Pacer pacer(config_.rate);
  for (uint64_t n = 1; !stopping_ && !interrupted(); ++n) {
    Event e = make_event(config_.tag, config_.seed, n, config_.mixed, config_.pad, config_.subject_prefix);
    // The same Nats-Msg-Id on every attempt: an attempt whose answer was lost and that the
    // stream did store is dropped as a duplicate the next time.
    auto give_up = Clock::now() + std::chrono::seconds(60);
    bool ok = false;
    while (!ok && !interrupted()) {
      std::string error;
      ok = nc_.js_publish(e.subject, {}, e.payload, e.id, 2000, error);
      if (ok) break;
      ++retries_;
      if (stopping_ && Clock::now() > give_up) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (ok) {
      ++confirmed_;
    } else {
      ++unconfirmed_;
    }
    pacer.wait();
  }
}

CoreProducer::CoreProducer(Config config, Clock::time_point epoch) : config_(std::move(config)), epoch_(epoch) {}

CoreProducer::~CoreProducer() { stop(); }

void CoreProducer::start() {
  connect_client(nc_, config_.url, "chaos-producer-" + config_.tag);
  thread_ = std::thread([this] { loop(); });
}

void CoreProducer::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  // What is still in the client's buffers reaches the server (or the loss count).
  nc_.flush(5000);
}

std::vector<double> CoreProducer::published() const {
  std::lock_guard lock(mu_);
  return published_;
}

void CoreProducer::loop() {
  Pacer pacer(config_.rate);
  for (uint64_t n = 1; !stopping_ && !interrupted(); ++n) {
    Event e = make_event(config_.tag, config_.seed, n, false, 0, config_.subject_prefix);
    std::string error;
    double at = since(epoch_);
    bool ok = nc_.publish(e.subject, {}, e.payload, error);
    {
      std::lock_guard lock(mu_);
      published_.push_back(ok ? at : -1.0);
    }
    pacer.wait();
  }
}

uint64_t Tally::dead_lettered_total() const {
  uint64_t n = 0;
  for (const auto& [reason, count] : dead_lettered) n += count;
  return n;
}

bool read_downstream(router::NatsClient& nc, const std::vector<std::string>& destination_streams,
                     const std::string& dead_letter_stream, const std::string& route, Downstream& out,
                     std::string& error) {
  for (const auto& stream : destination_streams) {
    if (!read_stream(nc, stream, [&](const StoredMessage& m) {
          std::string id = id_of_payload(m.data);
          ++out.delivered[id.empty() ? "?" + std::to_string(m.seq) : id];
        }, error)) {
      return false;
    }
  }
  if (dead_letter_stream.empty()) return true;
  return read_stream(nc, dead_letter_stream, [&](const StoredMessage& m) {
    DeadLetter dl;
    if (!parse_dead_letter(m.data, dl)) {
      out.dead["?" + std::to_string(m.seq)].push_back("unreadable");
      return;
    }
    if (dl.route == route) out.dead[dl.id].push_back(dl.reason);
  }, error);
}

bool read_source_ids(router::NatsClient& nc, const std::string& stream, std::vector<std::string>& ids,
                     std::string& error) {
  return read_stream(nc, stream, [&](const StoredMessage& m) { ids.push_back(id_of_payload(m.data)); }, error);
}

Tally account_route(const std::vector<std::string>& sent, const std::string& tag, uint64_t seed, bool mixed,
              const Downstream& found) {
  Tally t;
  std::unordered_set<std::string> seen;
  for (const auto& id : sent) {
    if (id.empty()) continue;  // a core publish that failed outright: never sent
    if (!seen.insert(id).second) {
      ++t.source_duplicates;
      continue;
    }
    ++t.sent;
    uint64_t n = number_of(id, tag);
    EventKind kind = kind_for(seed, n, mixed);
    auto d = found.delivered.find(id);
    auto dl = found.dead.find(id);
    uint64_t copies = d == found.delivered.end() ? 0 : d->second;
    size_t dead = dl == found.dead.end() ? 0 : dl->second.size();
    if (kind == EventKind::Filter) {
      ++t.filtered;
      if (copies > 0 || dead > 0) ++t.misrouted;
      continue;
    }
    ++t.expected_downstream;
    if (copies > 0) {
      ++t.delivered;
      t.duplicated += copies - 1;
      if (dead > 0) ++t.delivered_and_dead_lettered;
      if (kind != EventKind::Deliver) ++t.misrouted;
    } else if (dead > 0) {
      const std::string& reason = dl->second.front();
      ++t.dead_lettered[reason];
      t.dead_letter_duplicates += dead - 1;
      bool expected = (kind == EventKind::BadTransform && reason == "transform") ||
                      (kind == EventKind::NotJson && reason == "not_json") ||
                      (kind == EventKind::Deliver && reason == "destination");
      if (!expected) ++t.misrouted;
    } else {
      ++t.lost;
      t.lost_numbers.push_back(n);
    }
  }
  for (const auto& [id, copies] : found.delivered) {
    if (!seen.count(id)) t.phantom += copies;
  }
  for (const auto& [id, reasons] : found.dead) {
    if (!seen.count(id)) t.phantom += reasons.size();
  }
  return t;
}

std::string tally_json(const Tally& t) {
  std::string out = "{\"sent\":" + std::to_string(t.sent) + ",\"filtered\":" + std::to_string(t.filtered) +
                    ",\"expectedDownstream\":" + std::to_string(t.expected_downstream) +
                    ",\"delivered\":" + std::to_string(t.delivered) + ",\"duplicated\":" + std::to_string(t.duplicated) +
                    ",\"deadLettered\":" + std::to_string(t.dead_lettered_total()) + ",\"deadLetteredByReason\":{";
  bool first = true;
  for (const auto& [reason, n] : t.dead_lettered) {
    if (!first) out += ",";
    first = false;
    json::append_quoted(out, reason);
    out += ":" + std::to_string(n);
  }
  out += "},\"deadLetterDuplicates\":" + std::to_string(t.dead_letter_duplicates) +
         ",\"deliveredAndDeadLettered\":" + std::to_string(t.delivered_and_dead_lettered) +
         ",\"misrouted\":" + std::to_string(t.misrouted) + ",\"lost\":" + std::to_string(t.lost) +
         ",\"phantom\":" + std::to_string(t.phantom) + ",\"sourceDuplicates\":" + std::to_string(t.source_duplicates) +
         ",\"lostSample\":[";
  for (size_t i = 0; i < t.lost_numbers.size() && i < 20; ++i) {
    if (i) out += ",";
    out += std::to_string(t.lost_numbers[i]);
  }
  out += "]}";
  return out;
}

}  // namespace switchboard::chaos
