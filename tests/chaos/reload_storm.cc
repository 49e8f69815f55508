// Reload storms: the routes file of two router replicas is rewritten 100 times a second,
// alternating two valid tables (B adds a core route, so every change subscribes or drains
// a subscription, and the two set a different marker on each event), each change followed
// by SIGHUP, while a JetStream route carries steady load. No router may crash, no event
// may be lost or duplicated, and both must end on the last table written, in their
// metrics and in their heartbeats, and route with it.
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/json/document.h"
#include "tests/chaos/rig.h"
#include "tests/chaos/scenarios.h"

namespace switchboard::chaos {

namespace {

std::string table(char marker) {
  std::string t = R"(# The chaos suite's reload storm (tests/chaos/reload_storm.cc), table )";
  t += marker;
  t += R"(.
routes:
  - name: storm-js
    source:
      subject: chaos.storm.in.*
      jetstream: {stream: STORM_SRC, durable: storm-js, ackWait: 10s, maxDeliver: 20, backoff: [200ms, 1s], batch: 32}
    filter: 'event.kind != "skip"'
    transform:
      - set: {table: '")";
  t += marker;
  t += R"("', total: 'event.amount * 2.0'}
    destinations:
      - subject: 'chaos.storm.out.{{ event.kind }}'
        jetstream: true
    deadLetter: {subject: chaos.dlq.storm-js}
)";
  if (marker == 'B') {
    t += R"(  - name: storm-extra
    source: {subject: chaos.storm.extra.*}
    destinations:
      - subject: chaos.storm.extra-out
)";
  }
  return t;
}

void write_atomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << content;
  std::filesystem::rename(tmp, path);
}

// The "table <hash>" that `switchboard-router check` prints: the hash a router reports.
std::string table_hash(const std::string& bin, const std::string& path) {
  std::string cmd = bin + " check --routes '" + path + "' 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return "";
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  ::pclose(p);
  size_t at = out.find("sha256:");
  if (at == std::string::npos) return "";
  size_t end = out.find_first_of(" \n", at);
  return out.substr(at, end - at);
}

struct Heartbeat {
  uint64_t generation = 0;
  std::string hash, state;
  uint64_t count = 0;
};


}  // namespace

bool run_reload_storm(const Options& o, Report& report) {
  const double storm_s = o.duration_s > 0 ? o.duration_s : default_duration("reload-storm", o.quick);
  const double changes_per_s = 100;
  const double rate = o.rate > 0 ? o.rate : 150;
  WorkDir dir("storm");
  if (o.keep) dir.keep();
  report.set_work_dir(dir.path());
  NatsNode nats(dir.path(), "nats");
  router::NatsClient admin;
  if (!nats.start() || !connect_client(admin, nats.url(), "chaos-admin")) {
    report.violation("nats-server did not start");
    dir.keep();
    return false;
  }
  std::string error;
  for (const StreamConfig& s : {StreamConfig{"STORM_SRC", {"chaos.storm.in.>"}}, StreamConfig{"STORM_DST", {"chaos.storm.out.>"}},
                                StreamConfig{"STORM_DLQ", {"chaos.dlq.>"}}}) {
    if (!add_stream(admin, s, error)) {
      report.violation(error);
      dir.keep();
      return false;
    }
  }
  const std::string bin = o.bin_dir + "/switchboard-router";
  const std::string routes = dir.path() + "/routes.yaml";
  std::map<char, std::string> hashes;
  for (char m : {'A', 'B'}) {
    std::string path = dir.path() + "/table-" + m + ".yaml";
    std::ofstream(path) << table(m);
    hashes[m] = table_hash(bin, path);
    if (hashes[m].empty()) {
      report.violation(std::string("switchboard-router check refused table ") + m);
      dir.keep();
      return false;
    }
  }
  write_atomically(routes, table('A'));

  // Heartbeats say which table each pod runs.
  std::mutex hb_mu;
  std::map<std::string, Heartbeat> heartbeats;
  uint64_t hb_sub = admin.subscribe("switchboard.status.chaos.storm", "", [&](const router::NatsMessage& m) {
    json::Document d;
    if (!d.parse(m.data)) return;
    std::lock_guard lock(hb_mu);
    Heartbeat& h = heartbeats[std::string(d.string_value(d.find_member(0, "pod")))];
    h.generation = static_cast<uint64_t>(d.number_value(d.find_member(0, "generation")));
    h.hash = std::string(d.string_value(d.find_member(0, "hash")));
    h.state = std::string(d.string_value(d.find_member(0, "state")));
    ++h.count;
  }, error);
  // Stops the heartbeat callback before what it writes to goes away, on every path.
  struct Unsubscribe {
    router::NatsClient& nc;
    uint64_t id;
    ~Unsubscribe() {
      if (id != 0) nc.unsubscribe(id);
    }
  } unsubscribe_heartbeats{admin, hb_sub};
  admin.flush(2000);

  std::vector<std::unique_ptr<RouterNode>> routers;
  for (int i = 0; i < 2; ++i) {
    std::string pod = "router-" + std::to_string(i);
    routers.push_back(std::make_unique<RouterNode>(
        bin, pod,
        std::vector<std::string>{"--routes", routes, "--nats", nats.url(), "--name", "storm", "--namespace", "chaos",
                                 "--grace", "5s", "--heartbeat", "1s", "--reload-interval", "20ms"},
        dir.path() + "/" + pod + ".log"));
    routers.back()->start();
  }
  auto all_running = [&] {
    for (auto& r : routers) {
      if (!r->running()) return false;
    }
    return true;
  };
  if (!wait_until([&] {
        for (auto& r : routers) {
          if (!r->ready()) return false;
        }
        return true;
      }, 60) ||
      !wait_until([&] { return consumer_state(admin, "STORM_SRC", "storm-js").has_value(); }, 60)) {
    report.violation("the routers did not become ready");
    dir.keep();
    return false;
  }

  JetStreamProducer::Config pc;
  pc.url = nats.url();
  pc.tag = "r";
  pc.subject_prefix = "chaos.storm.in";
  pc.seed = o.seed;
  pc.rate = rate;
  pc.mixed = true;
  JetStreamProducer producer(pc);
  producer.start();
  sleep_for(2);

  // The storm: each change is a whole new file, then SIGHUP to both replicas.
  auto storm_from = Clock::now();
  const auto step = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / changes_per_s));
  auto next = storm_from;
  uint64_t changes = 0;
  char last = 'A';
  bool crashed = false;
  while (!interrupted() && since(storm_from) < storm_s) {
    last = last == 'A' ? 'B' : 'A';
    write_atomically(routes, table(last));
    for (auto& r : routers) ::kill(r->pid(), SIGHUP);
    ++changes;
    if (changes % 50 == 0 && !all_running()) {
      crashed = true;
      break;
    }
    next += step;
    if (next > Clock::now()) std::this_thread::sleep_for(next - Clock::now());
  }
  double storm_wall = since(storm_from);
  if (crashed || !all_running()) {
    for (auto& r : routers) {
      if (r->died()) report.violation(r->pod() + " died during the reload storm (" + r->death_notice() + ")");
    }
  }
  std::fprintf(stderr, "chaos[reload-storm]: %llu table changes in %.1f s; the last is table %c\n",
               static_cast<unsigned long long>(changes), storm_wall, last);

  // Convergence: every replica runs the last table, by its metrics and by its heartbeat.
  const std::string want = hashes[last];
  auto converged = [&](RouterNode& r) {
    std::string page = r.metrics();
    auto info = metric(page, "switchboard_router_route_table_info{hash=\"" + want + "\"}");
    auto generation = metric(page, "switchboard_router_route_table_generation");
    std::lock_guard lock(hb_mu);
    auto hb = heartbeats.find(r.pod());
    return info && *info == 1 && generation && hb != heartbeats.end() && hb->second.hash == want &&
           hb->second.state == "applied" && static_cast<double>(hb->second.generation) == *generation;
  };
  auto converge_from = Clock::now();
  bool all_converged = wait_until([&] {
    for (auto& r : routers) {
      if (!converged(*r)) return false;
    }
    return true;
  }, 30);
  double converge_s = since(converge_from);
  // Events produced from here on must carry the last table's marker.
  uint64_t marker_from = producer.confirmed() + 1;
  sleep_for(o.quick ? 3 : 5);
  producer.stop();

  std::string per_router = "{";
  for (size_t i = 0; i < routers.size(); ++i) {
    auto& r = *routers[i];
    std::string page = r.metrics();
    Heartbeat hb;
    {
      std::lock_guard lock(hb_mu);
      hb = heartbeats[r.pod()];
    }
    per_router += (i ? ",\"" : "\"") + r.pod() + "\":{\"generation\":" +
                  fmt("%.0f", metric(page, "switchboard_router_route_table_generation").value_or(-1)) +
                  ",\"reloadsApplied\":" +
                  fmt("%.0f", metric(page, "switchboard_router_reloads_total{result=\"applied\"}").value_or(-1)) +
                  ",\"reloadsRejected\":" +
                  fmt("%.0f", metric(page, "switchboard_router_reloads_total{result=\"rejected\"}").value_or(-1)) +
                  ",\"heartbeatGeneration\":" + std::to_string(hb.generation) + ",\"heartbeatHash\":\"" + hb.hash +
                  "\",\"heartbeatState\":\"" + hb.state + "\",\"rssKiB\":" + std::to_string(r.rss_kib()) + "}";
    if (metric(page, "switchboard_router_reloads_total{result=\"rejected\"}").value_or(0) > 0) {
      report.violation(r.pod() + " rejected a table during the storm (both are valid)");
    }
  }
  per_router += "}";
  report.figure("storm", "{\"changes\":" + std::to_string(changes) + ",\"seconds\":" + fmt("%.1f", storm_wall) +
                             ",\"changesPerSecond\":" + fmt("%.1f", static_cast<double>(changes) / storm_wall) +
                             ",\"lastTable\":\"" + std::string(1, last) + "\",\"lastHash\":\"" + want +
                             "\",\"convergeSeconds\":" + fmt("%.2f", converge_s) + "}");
  report.figure("routers", per_router);
  if (!all_converged) report.violation("the replicas did not converge on the last table within 30 s");

  // Drain, then account. Also: which table handled each event.
  bool drained = wait_until([&] {
    auto c = consumer_state(admin, "STORM_SRC", "storm-js");
    return c && c->pending == 0 && c->ack_pending == 0;
  }, o.quick ? 120 : 300);
  if (!drained) report.violation("storm-js did not drain");
  JetStreamRouteCheck check;
  check.source = "STORM_SRC";
  check.destination = "STORM_DST";
  check.dead_letters = "STORM_DLQ";
  check.route = "storm-js";
  check.tag = "r";
  check.seed = o.seed;
  check.mixed = true;
  check.producer = &producer;
  account_jetstream_route(admin, check, report);
  std::map<std::string, uint64_t> by_table;
  uint64_t stale_after_storm = 0;
  read_stream(admin, "STORM_DST", [&](const StoredMessage& m) {
    json::Document d;
    if (!d.parse(m.data)) return;
    std::string t(d.string_value(d.find_member(0, "table")));
    ++by_table[t];
    uint64_t n = number_of(d.string_value(d.find_member(0, "id")), "r");
    if (n >= marker_from && t != std::string(1, last)) ++stale_after_storm;
  }, error);
  std::string tables = "{";
  for (const auto& [t, n] : by_table) tables += (tables.size() > 1 ? ",\"" : "\"") + t + "\":" + std::to_string(n);
  report.figure("eventsByTable", tables + "}");
  if (stale_after_storm > 0) {
    report.violation(std::to_string(stale_after_storm) + " events produced after convergence were routed by an old table");
  }
  for (auto& r : routers) {
    if (!r->running()) continue;
    int64_t took = 0;
    int status = r->stop(SIGTERM, 15000, took);
    if (status != 0) report.violation(r->pod() + " exited " + std::to_string(status) + " on SIGTERM");
  }
  if (!report.passed()) dir.keep();
  return report.passed();
}

}  // namespace switchboard::chaos
