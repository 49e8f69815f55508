#include "tests/chaos/rig.h"

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace switchboard::chaos {

namespace {

constexpr const char* kSource = "CHAOS_SRC";
constexpr const char* kDestination = "CHAOS_DST";
constexpr const char* kCoreDestination = "CHAOS_CORE";
constexpr const char* kDeadLetters = "CHAOS_DLQ";
constexpr const char* kJsRoute = "soak-js";
constexpr const char* kCoreRoute = "soak-core";
// A core event is "at risk" when it was published from this long before a fault began (the
// router's destination publish timeout: a healthy router holds an event no longer) ...
constexpr double kWindowBefore = 5.0;
// ... until this long after every router was ready again.
constexpr double kWindowAfter = 3.0;

}  // namespace

Rig::Rig(const Options& options, RigConfig config, Report& report)
    : options_(options), config_(std::move(config)), report_(report), dir_(config_.name) {
  if (options_.keep) dir_.keep();
}

Rig::~Rig() {
  sampling_ = false;
  if (sampler_.joinable()) sampler_.join();
  js_producer_.reset();
  core_producer_.reset();
  routers_.clear();  // each Process stops its router
}

std::string Rig::routes_yaml() const {
  return std::string(R"(# The chaos suite's routes (tests/chaos/rig.h).
routes:
  - name: soak-js
    source:
      subject: chaos.js.in.*
      jetstream: {stream: CHAOS_SRC, durable: soak-js, ackWait: 10s, maxDeliver: 20, backoff: [200ms, 1s, 2s], batch: 32, maxAckPending: 512}
    filter: 'event.kind != "skip"'
    transform:
      - set: {total: 'event.amount * 2.0', routedBy: '"switchboard-chaos"'}
      - remove: [pad]
    destinations:
      - subject: 'chaos.js.out.{{ event.kind }}'
        jetstream: true
    deadLetter: {subject: chaos.dlq.soak-js}
  - name: soak-core
    source: {subject: chaos.core.in.*}
    transform:
      - set: {routedBy: '"switchboard-chaos"'}
    destinations:
      - subject: chaos.core.out.order
        jetstream: true
    deadLetter: {subject: chaos.dlq.soak-core}
)");
}

bool Rig::setup() {
  if (dir_.path().empty()) {
    report_.violation("cannot make a work folder");
    return false;
  }
  report_.set_work_dir(dir_.path());
  nats_ = std::make_unique<NatsNode>(dir_.path(), "nats");
  if (!nats_->start()) {
    report_.violation("nats-server did not start (log: " + nats_->log_path() + ")");
    return false;
  }
  if (!connect_client(admin_, nats_->url(), "chaos-admin")) {
    report_.violation("cannot connect to nats-server");
    return false;
  }
  std::string error;
  for (const StreamConfig& s : {StreamConfig{kSource, {"chaos.js.in.>"}}, StreamConfig{kDestination, {"chaos.js.out.>"}},
                                StreamConfig{kCoreDestination, {"chaos.core.out.>"}},
                                StreamConfig{kDeadLetters, {"chaos.dlq.>"}}}) {
    if (!add_stream(admin_, s, error)) {
      report_.violation(error);
      return false;
    }
  }
  const std::string routes = dir_.path() + "/routes.yaml";
  std::ofstream(routes) << routes_yaml();
  std::string router_bin = options_.bin_dir + "/switchboard-router";
  std::optional<testing::Credentials> run_as;
  if (config_.cuttable) {
    if (!open_to_routers(routes, router_bin)) return false;
    cut_ = std::make_unique<NetworkCut>(kRouterUid, kRouterGid, nats_->port());
    run_as = testing::Credentials{kRouterUid, kRouterGid};
  }
  for (size_t i = 0; i < config_.routers; ++i) {
    std::string pod = "router-" + std::to_string(i);
    routers_.push_back(std::make_unique<RouterNode>(
        router_bin, pod,
        std::vector<std::string>{"--routes", routes, "--nats", nats_->url(), "--name", "chaos", "--namespace", "chaos",
                                 "--grace", std::to_string(config_.grace_s) + "s", "--heartbeat", "2s"},
        dir_.path() + "/" + pod + ".log", run_as));
    routers_.back()->start();
  }
  if (!fleet_ready(60)) {
    report_.violation("the routers did not become ready (logs in " + dir_.path() + ")");
    return false;
  }
  // The durable consumer exists once a router bound it.
  if (!wait_until([&] { return consumer_state(admin_, kSource, kJsRoute).has_value(); }, 60)) {
    report_.violation("the durable consumer soak-js was never made");
    return false;
  }
  return true;
}

bool Rig::open_to_routers(const std::string& routes, std::string& router_bin) {
  // mkdtemp made the work folder 0700, and the build folder may sit where the routers'
  // user cannot go (under /root): the routers get a copy of the binary in the work folder,
  // which they may list (the routes file is watched) but not write. The JetStream store
  // stays the suite's.
  namespace fs = std::filesystem;
  const fs::perms everyone_reads = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                   fs::perms::others_read | fs::perms::others_exec;
  const std::string copy = dir_.path() + "/switchboard-router";
  std::error_code ec;
  fs::permissions(dir_.path(), everyone_reads, ec);
  if (!ec) fs::permissions(dir_.path() + "/nats", fs::perms::owner_all, ec);
  if (!ec) fs::copy_file(router_bin, copy, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::permissions(copy, everyone_reads, ec);
  if (!ec) {
    fs::permissions(routes, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                fs::perms::others_read, ec);
  }
  if (ec) {
    report_.violation("cannot open the work folder to the routers' uid " + std::to_string(kRouterUid) + ": " +
                      ec.message());
    return false;
  }
  router_bin = copy;
  return true;
}

void Rig::restart_crashed() {
  for (auto& r : routers_) {
    if (!r->died()) continue;
    report_.violation(r->pod() + " died on its own at " + fmt("%.1f s", now()) + " (" + r->death_notice() + ")");
    r->start();
  }
}

bool Rig::fleet_ready(double timeout_s) {
  return wait_until([&] {
    restart_crashed();
    for (auto& r : routers_) {
      if (!r->running() || !r->ready()) return false;
    }
    return true;
  }, timeout_s);
}

void Rig::start_load() {
  JetStreamProducer::Config jc;
  jc.url = nats_->url();
  jc.tag = "j";
  jc.subject_prefix = "chaos.js.in";
  jc.seed = options_.seed;
  jc.rate = config_.js_rate;
  jc.mixed = true;
  js_producer_ = std::make_unique<JetStreamProducer>(jc);
  CoreProducer::Config cc;
  cc.url = nats_->url();
  cc.tag = "c";
  cc.subject_prefix = "chaos.core.in";
  cc.seed = options_.seed;
  cc.rate = config_.core_rate;
  core_producer_ = std::make_unique<CoreProducer>(cc, epoch_);
  js_producer_->start();
  core_producer_->start();
  sampling_ = true;
  sampler_ = std::thread([this] { sample_progress(); });
}

void Rig::stop_load() {
  if (js_producer_) js_producer_->stop();
  if (core_producer_) {
    core_producer_->stop();
    core_published_ = core_producer_->published();
  }
}

void Rig::sample_progress() {
  router::NatsClient nc;
  if (!connect_client(nc, nats_->url(), "chaos-sampler")) return;
  uint64_t last_done = 0;
  double stalled_since = -1;
  while (sampling_ && !interrupted()) {
    auto dst = stream_state(nc, kDestination);
    auto dlq = stream_state(nc, kDeadLetters);
    auto consumer = consumer_state(nc, kSource, kJsRoute);
    double t = now();
    if (dst && dlq && consumer) {
      uint64_t done = dst->msgs + dlq->msgs + consumer->ack_floor_stream_seq;
      bool work = consumer->pending > 0 || consumer->ack_pending > 0;
      if (done != last_done || !work) {
        stalled_since = -1;
      } else if (stalled_since < 0) {
        stalled_since = t;
      }
      last_done = done;
    } else if (stalled_since < 0) {
      stalled_since = t;  // the server is away: that is a stall too
    }
    if (stalled_since >= 0) {
      std::lock_guard lock(progress_mu_);
      if (t - stalled_since > longest_stall_s_) {
        longest_stall_s_ = t - stalled_since;
        longest_stall_at_ = stalled_since;
      }
    }
    sleep_for(0.5);
  }
}

void Rig::kill_router(size_t index, int sig, double down_s) {
  RouterNode& r = *routers_[index];
  FaultRecord f;
  f.kind = sig == SIGKILL ? "router_kill9" : "router_sigterm";
  f.target = r.pod();
  f.at = now();
  f.exit_status = r.stop(sig, static_cast<int>(config_.grace_s * 1000 + 10000), f.exit_ms);
  if (sig == SIGTERM && f.exit_status != 0) {
    report_.violation(r.pod() + " exited " + std::to_string(f.exit_status) + " after SIGTERM (0 expected; " +
                      std::to_string(f.exit_ms) + " ms; log " + r.log_path() + ")");
  } else if (sig == SIGTERM && f.exit_ms > (config_.grace_s + 5) * 1000) {
    report_.violation(r.pod() + " took " + std::to_string(f.exit_ms) + " ms to stop after SIGTERM (grace " +
                      std::to_string(config_.grace_s) + " s)");
  }
  sleep_for(down_s);
  f.down = now() - f.at;
  r.start();
  if (!fleet_ready(60)) report_.violation(r.pod() + " not ready 60 s after its restart at " + fmt("%.1f s", now()));
  f.recovered = now();
  report_.fault(f);
}

void Rig::kill_fleet(double down_s) {
  FaultRecord f;
  f.kind = "fleet_kill9";
  f.target = "all routers";
  f.at = now();
  for (auto& r : routers_) r->stop(SIGKILL, 10000, f.exit_ms);
  f.exit_status = 128 + SIGKILL;
  sleep_for(down_s);
  f.down = now() - f.at;
  for (auto& r : routers_) r->start();
  if (!fleet_ready(60)) report_.violation("routers not ready 60 s after a fleet restart at " + fmt("%.1f s", now()));
  f.recovered = now();
  report_.fault(f);
}

void Rig::restart_nats(int sig, double down_s) {
  FaultRecord f;
  f.kind = sig == SIGKILL ? "nats_kill9" : "nats_sigterm";
  f.target = "nats-server";
  f.at = now();
  auto t0 = Clock::now();
  f.exit_status = nats_->stop(sig);
  f.exit_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  sleep_for(down_s);
  f.down = now() - f.at;
  if (!nats_->start()) {
    report_.violation("nats-server did not start again on its port (log " + nats_->log_path() + ")");
  }
  if (!fleet_ready(60)) {
    report_.violation("routers not ready 60 s after nats-server came back at " + fmt("%.1f s", now()));
  }
  f.recovered = now();
  report_.fault(f);
}

void Rig::pause_router(size_t index, double seconds) {
  RouterNode& r = *routers_[index];
  FaultRecord f;
  f.kind = "router_pause";
  f.target = r.pod();
  f.at = now();
  r.signal(SIGSTOP);
  sleep_for(seconds);
  r.signal(SIGCONT);
  f.down = now() - f.at;
  if (!fleet_ready(60)) report_.violation(r.pod() + " not ready 60 s after SIGCONT at " + fmt("%.1f s", now()));
  f.recovered = now();
  report_.fault(f);
}

void Rig::stop_router_while_nats_down(size_t index, double down_s) {
  RouterNode& r = *routers_[index];
  FaultRecord f;
  f.kind = "router_sigterm_nats_down";
  f.target = r.pod() + ", nats-server";
  f.at = now();
  nats_->stop(SIGKILL);
  f.exit_status = r.stop(SIGTERM, static_cast<int>(config_.grace_s * 1000 + 10000), f.exit_ms);
  if (f.exit_status != 0) {
    report_.violation(r.pod() + " exited " + std::to_string(f.exit_status) + " after SIGTERM with nats-server down (" +
                      std::to_string(f.exit_ms) + " ms; log " + r.log_path() + ")");
  } else if (f.exit_ms > (config_.grace_s + 5) * 1000) {
    report_.violation(r.pod() + " took " + std::to_string(f.exit_ms) + " ms to stop with nats-server down (grace " +
                      std::to_string(config_.grace_s) + " s)");
  }
  sleep_for(down_s);
  f.down = now() - f.at;
  if (!nats_->start()) report_.violation("nats-server did not start again on its port (log " + nats_->log_path() + ")");
  r.start();
  if (!fleet_ready(60)) report_.violation("routers not ready 60 s after nats-server came back at " + fmt("%.1f s", now()));
  f.recovered = now();
  report_.fault(f);
}

void Rig::cut(NetworkCut::Mode mode, double seconds) {
  FaultRecord f;
  f.kind = std::string("cut_") + NetworkCut::mode_name(mode);
  f.target = "router <-> nats-server";
  f.at = now();
  std::string error;
  if (!cut_->begin(mode, error)) {
    report_.violation("the network cut at " + fmt("%.1f s", f.at) + " could not be made: " + error);
    return;
  }
  sleep_for(seconds);
  NetworkCut::Counters c;
  if (!cut_->end(c, error)) report_.violation("the network cut could not be ended: " + error);
  f.down = now() - f.at;
  ++cuts_;
  NetworkCut::Counters& total = mode == NetworkCut::Mode::Blackhole ? dropped_ : rejected_;
  total.router_to_server += c.router_to_server;
  total.server_to_router += c.server_to_router;
  f.figures = "{\"packetsRouterToServer\":" + std::to_string(c.router_to_server) +
              ",\"packetsServerToRouter\":" + std::to_string(c.server_to_router) + "}";
  std::fprintf(stderr, "chaos[network-cut]: %6.1f s  %s ended: %llu packets router -> server, %llu server -> router %s\n",
               now(), NetworkCut::mode_name(mode), static_cast<unsigned long long>(c.router_to_server),
               static_cast<unsigned long long>(c.server_to_router),
               mode == NetworkCut::Mode::Blackhole ? "dropped" : "rejected");
  if (!fleet_ready(120)) report_.violation("routers not ready 120 s after a network cut ended at " + fmt("%.1f s", now()));
  f.recovered = now();
  report_.fault(f);
}

bool Rig::settle(double timeout_s) {
  if (!nats_->running() && !nats_->start()) {
    report_.violation("nats-server is down and does not start");
    return false;
  }
  restart_crashed();
  fleet_ready(60);
  double t0 = now();
  bool drained = wait_until([&] {
    auto c = consumer_state(admin_, kSource, kJsRoute);
    return c && c->pending == 0 && c->ack_pending == 0;
  }, timeout_s);
  auto c = consumer_state(admin_, kSource, kJsRoute);
  if (!drained) {
    report_.violation("soak-js did not drain within " + fmt("%.0f s", timeout_s) + " (pending " +
                      (c ? std::to_string(c->pending) : "?") + ", ack pending " +
                      (c ? std::to_string(c->ack_pending) : "?") + ")");
  }
  // Core events have no consumer to ask: wait until the destination stops growing.
  uint64_t last = UINT64_MAX;
  int still = 0;
  wait_until([&] {
    auto a = stream_state(admin_, kCoreDestination);
    auto b = stream_state(admin_, kDeadLetters);
    uint64_t n = (a ? a->msgs : 0) + (b ? b->msgs : 0);
    still = n == last ? still + 1 : 0;
    last = n;
    return still >= 60;  // 3 s without change
  }, 60);
  report_.figure("drainSeconds", fmt("%.1f", now() - t0));
  sampling_ = false;
  if (sampler_.joinable()) sampler_.join();
  {
    std::lock_guard lock(progress_mu_);
    report_.figure("longestStallSeconds", fmt("%.1f", longest_stall_s_));
    report_.figure("longestStallAt", fmt("%.1f", longest_stall_at_));
  }
  return drained;
}

bool account_jetstream_route(router::NatsClient& nc, const JetStreamRouteCheck& check, Report& report) {
  std::string error;
  // What the source stream holds is what was sent.
  std::vector<std::string> sent;
  Downstream found;
  if (!read_source_ids(nc, check.source, sent, error) ||
      !read_downstream(nc, {check.destination}, check.dead_letters, check.route, found, error)) {
    report.violation("cannot read the streams: " + error);
    return false;
  }
  Tally t = account_route(sent, check.tag, check.seed, check.mixed, found);
  RouteFigures f{check.route, "jetstream", tally_json(t), t.sent, t.delivered, t.duplicated,
                 t.dead_lettered_total(), t.filtered, t.lost, ""};
  const std::string& r = check.route;
  if (check.producer != nullptr) {
    f.note = "producer confirmed " + std::to_string(check.producer->confirmed()) + ", retried " +
             std::to_string(check.producer->retries());
    if (check.producer->confirmed() != t.sent) {
      report.violation(r + ": the producer had " + std::to_string(check.producer->confirmed()) +
                       " events confirmed, the source stream holds " + std::to_string(t.sent));
    }
  }
  report.route(f);
  if (t.lost > 0) {
    std::string sample;
    for (size_t i = 0; i < t.lost_numbers.size() && i < 10; ++i) {
      sample += (i ? ", " : "") + check.tag + "-" + std::to_string(t.lost_numbers[i]);
    }
    report.violation(r + ": " + std::to_string(t.lost) + " events lost (e.g. " + sample + ")");
  }
  if (t.duplicated > 0) report.violation(r + ": " + std::to_string(t.duplicated) + " duplicates downstream");
  if (t.phantom > 0) report.violation(r + ": " + std::to_string(t.phantom) + " events downstream never sent");
  if (t.misrouted > 0) report.violation(r + ": " + std::to_string(t.misrouted) + " events with the wrong outcome");
  if (t.source_duplicates > 0) {
    report.violation(r + ": " + std::to_string(t.source_duplicates) + " events twice in the source stream");
  }
  if (t.delivered_and_dead_lettered > 0) {
    report.violation(r + ": " + std::to_string(t.delivered_and_dead_lettered) +
                     " events both delivered and dead-lettered");
  }
  if (t.dead_letter_duplicates > 0) {
    report.note(r + ": " + std::to_string(t.dead_letter_duplicates) +
                " dead letters written twice (dead letters carry no Nats-Msg-Id: at least once)");
  }
  return true;
}

void Rig::account() {
  std::string error;
  JetStreamRouteCheck check;
  check.source = kSource;
  check.destination = kDestination;
  check.dead_letters = kDeadLetters;
  check.route = kJsRoute;
  check.tag = "j";
  check.seed = options_.seed;
  check.mixed = true;
  check.producer = js_producer_.get();
  if (!account_jetstream_route(admin_, check, report_)) return;

  // soak-core: what the producer published; loss is bounded by the fault windows.
  std::vector<std::string> core_sent;
  for (size_t i = 0; i < core_published_.size(); ++i) {
    core_sent.push_back(core_published_[i] < 0 ? std::string() : "c-" + std::to_string(i + 1));
  }
  Downstream core_found;
  if (!read_downstream(admin_, {kCoreDestination}, kDeadLetters, kCoreRoute, core_found, error)) {
    report_.violation("cannot read the streams: " + error);
    return;
  }
  Tally core = account_route(core_sent, "c", options_.seed, false, core_found);
  // When core events are at risk. With one replica killed the other takes over at once:
  // only what the killed one held (sent to it and not yet routed) is lost, so its window
  // closes a second after the kill (after the exit, for SIGTERM, whose drain should lose
  // nothing). With no replica subscribed (the whole fleet killed, the server down, the
  // connection cut) everything published until the fleet is ready again is at risk.
  struct Window {
    double from, to;
    std::string kind;
  };
  std::vector<Window> windows;
  for (const auto& f : report_.faults()) {
    double to = f.recovered + kWindowAfter;
    if (f.kind == "router_kill9") to = f.at + 1.0;
    if (f.kind == "router_sigterm") to = f.at + static_cast<double>(f.exit_ms) / 1000.0 + 1.0;
    windows.push_back({f.at - kWindowBefore, to, f.kind});
  }
  auto window_of = [&](double t) -> const Window* {
    for (const auto& w : windows) {
      if (t >= w.from && t <= w.to) return &w;
    }
    return nullptr;
  };
  uint64_t at_risk = 0, outside = 0;
  std::map<std::string, uint64_t> lost_by_fault, at_risk_by_fault;
  for (double t : core_published_) {
    const Window* w = t >= 0 ? window_of(t) : nullptr;
    if (w == nullptr) continue;
    ++at_risk;
    ++at_risk_by_fault[w->kind];
  }
  std::vector<uint64_t> outside_sample;
  for (uint64_t n : core.lost_numbers) {
    double t = n >= 1 && n <= core_published_.size() ? core_published_[n - 1] : -1;
    const Window* w = window_of(t);
    if (w == nullptr) {
      ++outside;
      if (outside_sample.size() < 10) outside_sample.push_back(n);
    } else {
      ++lost_by_fault[w->kind];
    }
  }
  std::string json = tally_json(core);
  json.pop_back();
  json += ",\"atRisk\":" + std::to_string(at_risk) + ",\"lostOutsideWindows\":" + std::to_string(outside) +
          ",\"windowSeconds\":{\"before\":" + fmt("%.1f", kWindowBefore) + ",\"after\":" + fmt("%.1f", kWindowAfter) +
          "},\"lostByFault\":{";
  bool first = true;
  for (const auto& [k, n] : lost_by_fault) {
    json += (first ? "\"" : ",\"") + k + "\":" + std::to_string(n);
    first = false;
  }
  json += "},\"atRiskByFault\":{";
  first = true;
  for (const auto& [k, n] : at_risk_by_fault) {
    json += (first ? "\"" : ",\"") + k + "\":" + std::to_string(n);
    first = false;
  }
  json += "}}";
  RouteFigures cf{kCoreRoute, "core", json, core.sent, core.delivered, core.duplicated, core.dead_lettered_total(),
                  core.filtered, core.lost, "at risk " + std::to_string(at_risk) + ", lost outside windows " +
                                               std::to_string(outside)};
  report_.route(cf);
  if (outside > 0) {
    std::string sample;
    for (uint64_t n : outside_sample) {
      sample += (sample.empty() ? "" : ", ") + ("c-" + std::to_string(n)) + " at " +
                fmt("%.2f s", core_published_[n - 1]);
    }
    report_.violation("soak-core: " + std::to_string(outside) +
                      " events lost outside every fault window (e.g. " + sample + ")");
  }
  if (core.lost > at_risk) report_.violation("soak-core: lost more than were at risk");
  if (core.duplicated > 0) report_.violation("soak-core: " + std::to_string(core.duplicated) + " duplicates downstream");
  if (core.phantom > 0) report_.violation("soak-core: " + std::to_string(core.phantom) + " events never sent");
  if (core.delivered_and_dead_lettered > 0) {
    report_.note("soak-core: " + std::to_string(core.delivered_and_dead_lettered) +
                 " events both delivered and dead-lettered (a confirmed publish whose answer came too late)");
  }
  if (cut_) {
    // Proof that the cuts cut: what the rules dropped and rejected, and how often each
    // router's connection had to be made again.
    std::string reconnects = "{";
    for (size_t i = 0; i < routers_.size(); ++i) {
      auto n = metric(routers_[i]->metrics(), "switchboard_router_nats_reconnects_total");
      reconnects += (i ? ",\"" : "\"") + routers_[i]->pod() + "\":" + (n ? fmt("%.0f", *n) : "null");
    }
    report_.figure("routerUid", std::to_string(kRouterUid));
    report_.figure("packetsDropped", "{\"routerToServer\":" + std::to_string(dropped_.router_to_server) +
                                         ",\"serverToRouter\":" + std::to_string(dropped_.server_to_router) + "}");
    report_.figure("packetsRejected", "{\"routerToServer\":" + std::to_string(rejected_.router_to_server) +
                                          ",\"serverToRouter\":" + std::to_string(rejected_.server_to_router) + "}");
    report_.figure("routerReconnects", reconnects + "}");
    // Each cut's self-check sends one SYN that the first rule catches: anything beyond
    // that came from the routers.
    uint64_t caught = dropped_.router_to_server + rejected_.router_to_server;
    if (cuts_ > 0 && caught <= cuts_) {
      report_.violation("the cuts caught " + std::to_string(caught) + " packets from the routers in " +
                        std::to_string(cuts_) + " cuts (the self-checks' own SYNs at most): the routers were not cut");
    }
  }
  std::string restarts = "{";
  for (size_t i = 0; i < routers_.size(); ++i) {
    restarts += (i ? ",\"" : "\"") + routers_[i]->pod() + "\":" + std::to_string(routers_[i]->starts() - 1);
  }
  report_.figure("routerRestarts", restarts + "}");
}

void Rig::shutdown() {
  for (auto& r : routers_) {
    if (!r->running()) continue;
    int64_t took = 0;
    int status = r->stop(SIGTERM, static_cast<int>(config_.grace_s * 1000 + 10000), took);
    if (status != 0) {
      report_.violation(r->pod() + " exited " + std::to_string(status) + " on the final SIGTERM (" +
                        std::to_string(took) + " ms)");
    }
  }
}

}  // namespace switchboard::chaos
