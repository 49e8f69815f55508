// The whole system under faults: a real etcd and kube-apiserver
// (tests/support/control_plane.sh), two switchboard-controller replicas electing a leader,
// and the router Deployment the controller writes run as processes by the e2e pod runner
// (tests/e2e/pod_runner.h), reading their table from the ConfigMap the controller keeps.
// A JetStream route carries steady load while the suite, at seeded random moments, kills
// the controller leader (-9), freezes it (SIGSTOP) past its lease and resumes it once
// another replica leads, restarts kube-apiserver (SIGTERM, and -9 with etcd compacted
// while it is down, so that watches resume from a compacted revision and must list again),
// compacts etcd under open watches, restarts router pods (-9 and SIGTERM, as a kubelet
// restarts a container) and restarts nats-server (-9 and SIGTERM) on its store. After each
// fault the route is edited: both router pods must report the new table, and route with
// it. At the end every event is accounted for. `make chaos` runs it for 10 minutes.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "core/json/document.h"
#include "kube/config.h"
#include "tests/chaos/rig.h"
#include "tests/chaos/scenarios.h"
#include "tests/e2e/pod_runner.h"
#include "tests/support/control_plane.h"
#include "tests/support/files.h"
#include "tests/support/http_probe.h"

namespace switchboard::chaos {

namespace {

constexpr const char* kNs = "chaos";
constexpr const char* kLeaseNs = "switchboard-system";


// One switchboard-controller replica, out of cluster with the admin kubeconfig.
class ControllerNode {
 public:
  ControllerNode(std::string bin, std::string identity, std::string kubeconfig, std::string log)
      : bin_(std::move(bin)), identity_(std::move(identity)), kubeconfig_(std::move(kubeconfig)), log_(std::move(log)) {}
  void start() {
    port_ = testing::free_port();
    proc_ = testing::Process({bin_, "--kubeconfig", kubeconfig_, "--metrics-addr", "127.0.0.1:" + std::to_string(port_),
                              "--leader-elect=true", "--leader-election-namespace", kLeaseNs, "--lease-duration", "15s",
                              "--renew-deadline", "10s", "--retry-period", "2s", "--pod-name", identity_,
                              "--status-stale-after", "30s", "--log-level", "debug"},
                             {}, log_);
    ++starts_;
  }
  bool leading() {
    std::string page = metrics();
    auto v = metric(page, "switchboard_controller_leader");
    return v && *v == 1.0;
  }
  std::string metrics() {
    auto r = testing::http_get(port_, "/metrics");
    return r.status == 200 ? r.body : std::string();
  }
  bool running() { return proc_.running(); }
  int kill(int sig) {
    proc_.signal(sig);
    int st = proc_.wait(20000);
    if (st == -1) st = proc_.stop(1000);
    return st;
  }
  void signal(int sig) { proc_.signal(sig); }
  // The exit status once it exits on its own within timeout_ms, else -1 (still running).
  int wait_exit(int timeout_ms) { return proc_.wait(timeout_ms); }
  const std::string& identity() const { return identity_; }
  const std::string& log() const { return log_; }

 private:
  std::string bin_, identity_, kubeconfig_, log_;
  int port_ = 0;
  int starts_ = 0;
  testing::Process proc_;
};

struct PodBeat {
  double generation = -1;
  double uptime = -1;
  std::string state, source_error;
  uint64_t beats = 0;
  uint64_t incarnations = 0;    // processes seen under this pod's name (uptime went back)
  bool applied_once = false;    // by this process
  uint64_t not_applied = 0;     // once applied: neither "applied" nor "stopped" (the last, on SIGTERM)
  uint64_t source_errors = 0;   // heartbeats saying the table source has a problem
};

}  // namespace

bool run_control_plane(const Options& o, Report& report) {
  const double duration = o.duration_s > 0 ? o.duration_s : default_duration("control-plane", o.quick);
  Rng rng(o.seed);
  WorkDir dir("cp");
  if (o.keep) dir.keep();
  report.set_work_dir(dir.path());
  auto fail = [&](const std::string& why) {
    report.violation(why);
    dir.keep();
    return false;
  };
  const std::string controller_bin = o.bin_dir + "/switchboard-controller";
  if (::access(controller_bin.c_str(), X_OK) != 0) {
    return fail("no " + controller_bin + " (build the target switchboard-controller)");
  }
  std::string source_dir = SWITCHBOARD_SOURCE_DIR;

  // The control plane.
  testing::ControlPlane cp;
  std::string error;
  if (!cp.start(&error)) return fail("the control plane did not start: " + error);
  auto kubectl = [&](const std::vector<std::string>& args, std::string* out = nullptr) {
    std::string text;
    int st = cp.kubectl(args, &text);
    if (out != nullptr) *out = text;
    return st;
  };
  std::string out;
  if (kubectl({"apply", "-f", source_dir + "/crds/"}, &out) != 0) return fail("kubectl apply crds: " + out);
  if (kubectl({"wait", "--for", "condition=established", "--timeout=60s", "crd/eventrouters.switchboard.dev",
               "crd/eventroutes.switchboard.dev", "crd/eventtransforms.switchboard.dev"},
              &out) != 0) {
    return fail("CRDs not established: " + out);
  }
  kubectl({"create", "namespace", kNs});
  kubectl({"create", "namespace", kLeaseNs});

  // The data plane's server and streams.
  NatsNode nats(dir.path(), "nats");
  router::NatsClient admin;
  if (!nats.start() || !connect_client(admin, nats.url(), "chaos-admin")) return fail("nats-server did not start");
  for (const StreamConfig& s : {StreamConfig{"CP_SRC", {"chaos.cp.in.>"}}, StreamConfig{"CP_DST", {"chaos.cp.out.>"}},
                                StreamConfig{"CP_DLQ", {"chaos.dlq.>"}}}) {
    if (!add_stream(admin, s, error)) return fail(error);
  }

  // Heartbeats: what table each router pod runs.
  std::mutex hb_mu;
  std::map<std::string, PodBeat> beats;
  uint64_t hb_sub = admin.subscribe(std::string("switchboard.status.") + kNs + ".chaos", "", [&](const router::NatsMessage& m) {
    json::Document d;
    if (!d.parse(m.data)) return;
    std::lock_guard lock(hb_mu);
    PodBeat& b = beats[std::string(d.string_value(d.find_member(0, "pod")))];
    // A restarted pod is a new process: until it applies its table it is "pending".
    double uptime = d.number_value(d.find_member(0, "uptimeSeconds"));
    if (b.beats == 0 || uptime < b.uptime) {
      b.applied_once = false;
      ++b.incarnations;
    }
    b.uptime = uptime;
    b.generation = d.number_value(d.find_member(0, "generation"));
    b.state = std::string(d.string_value(d.find_member(0, "state")));
    uint32_t se = d.find_member(0, "sourceError");
    b.source_error = se == 0 ? std::string() : std::string(d.string_value(se));
    ++b.beats;
    if (b.state == "applied") b.applied_once = true;
    if (b.applied_once && b.state != "applied" && b.state != "stopped") ++b.not_applied;
    if (!b.source_error.empty()) ++b.source_errors;
  }, error);
  struct Unsubscribe {
    router::NatsClient& nc;
    uint64_t id;
    ~Unsubscribe() {
      if (id != 0) nc.unsubscribe(id);
    }
  } unsubscribe_heartbeats{admin, hb_sub};

  // Two controllers; one leads.
  std::vector<std::unique_ptr<ControllerNode>> controllers;
  for (const char* id : {"controller-a", "controller-b"}) {
    controllers.push_back(std::make_unique<ControllerNode>(controller_bin, id, cp.kubeconfig(),
                                                           dir.path() + "/" + id + ".log"));
    controllers.back()->start();
  }
  // A controller that loses its lease exits (1) for Kubernetes to restart it, as
  // controller-runtime's do; the suite restarts it as a kubelet would (restartPolicy: Always).
  uint64_t controller_restarts = 0;
  uint64_t router_restarts = 0;
  auto revive = [&] {
    for (auto& c : controllers) {
      if (!c->running()) {
        c->start();
        ++controller_restarts;
      }
    }
  };
  auto leader = [&]() -> ControllerNode* {
    revive();
    for (auto& c : controllers) {
      if (c->running() && c->leading()) return c.get();
    }
    return nullptr;
  };
  if (!wait_until([&] { return leader() != nullptr; }, 60)) return fail("no controller took the lease");

  // The router fleet and its route, as a user would write them.
  auto route_yaml = [&](int edit) {
    return std::string(R"(apiVersion: switchboard.dev/v1alpha1
kind: EventRoute
metadata: {name: cp-js}
spec:
  router: chaos
  source:
    subject: chaos.cp.in.*
    jetstream: {stream: CP_SRC, durable: cp-js, ackWait: 10s, maxDeliver: 20, backoff: [200ms, 1s]}
  filter: 'event.kind != "skip"'
  transform:
    - set: {edit: ')") + std::to_string(edit) + R"(', total: 'event.amount * 2.0'}
  destinations:
    - subject: 'chaos.cp.out.{{ event.kind }}'
      jetstream: true
  deadLetter: {subject: chaos.dlq.cp-js}
)";
  };
  const std::string router_yaml = std::string(R"(apiVersion: switchboard.dev/v1alpha1
kind: EventRouter
metadata: {name: chaos}
spec:
  replicas: 2
  nats:
    urls: [)") + nats.url() + R"(]
  heartbeatInterval: 1s
)";
  auto apply = [&](const std::string& yaml) {
    const std::string path = dir.path() + "/apply.yaml";
    std::ofstream(path) << yaml;
    std::string text;
    // The API server may be coming back: a few tries.
    for (int i = 0; i < 30; ++i) {
      if (kubectl({"apply", "-n", kNs, "-f", path}, &text) == 0) return true;
      if (!sleep_for(1)) break;
    }
    report.violation("kubectl apply failed: " + text);
    return false;
  };
  if (!apply(router_yaml) || !apply(route_yaml(0))) return fail("cannot apply the EventRouter and its route");
  if (!wait_until([&] { return kubectl({"get", "deployment", "-n", kNs, "chaos"}) == 0; }, 60)) {
    return fail("the controller wrote no Deployment");
  }
  e2e::PodRunnerOptions po;
  po.binary = o.bin_dir + "/switchboard-router";
  po.api_host = "127.0.0.1";
  po.api_port = cp.server_port();
  po.ca_pem = testing::read_file(cp.ca_path());
  po.work_dir = dir.path() + "/pods";
  std::filesystem::create_directories(po.work_dir);
  std::unique_ptr<kube::Client> client = kube::make_client(kube::load_kubeconfig(cp.kubeconfig()));
  e2e::PodRunner runner(*client, po);
  try {
    runner.start(kNs, "chaos");
  } catch (const std::exception& e) {
    return fail(std::string("the pod runner could not start the Deployment: ") + e.what());
  }
  std::string why;
  if (!runner.wait_ready(std::chrono::seconds(90), &why)) return fail("router pods not ready: " + why);
  std::vector<std::string> pods;
  for (size_t i = 0; i < runner.size(); ++i) pods.push_back(runner.pod(i).plan.name);

  auto fleet_generation = [&](double& lowest) {
    std::lock_guard lock(hb_mu);
    lowest = 1e18;
    for (const auto& p : pods) {
      auto it = beats.find(p);
      if (it == beats.end() || it->second.state != "applied") return false;
      lowest = std::min(lowest, it->second.generation);
    }
    return true;
  };
  double g0 = 0;
  if (!wait_until([&] { return fleet_generation(g0) && g0 > 0; }, 60)) return fail("the routers report no table");

  JetStreamProducer::Config pc;
  pc.url = nats.url();
  pc.tag = "k";
  pc.subject_prefix = "chaos.cp.in";
  pc.seed = o.seed;
  pc.rate = o.rate > 0 ? o.rate : 50;
  pc.mixed = true;
  JetStreamProducer producer(pc);
  auto epoch = Clock::now();
  producer.start();

  // An edit of the route, and the wait until both pods run it. Events produced after that
  // and before the next edit must carry its marker.
  struct Edit {
    int value;
    uint64_t converged_after = 0, next_from = UINT64_MAX;  // event numbers
    double seconds = -1;
    std::string after;
  };
  std::vector<Edit> edits;
  int next_edit = 1;
  auto edit_and_converge = [&](const std::string& after_fault) {
    if (!edits.empty()) edits.back().next_from = producer.confirmed();
    // The generation both pods run before the edit. A pod restarted a moment ago may not
    // yet have said in a heartbeat that it applied its table; measured then, "before"
    // would be no generation at all and the edit could never be seen to arrive.
    double before = 0;
    if (!wait_until([&] { return fleet_generation(before); }, 30)) {
      report.violation("before edit " + std::to_string(next_edit) + " after " + after_fault +
                       ": the router pods did not both report an applied table within 30 s");
    }
    Edit e;
    e.value = next_edit++;
    e.after = after_fault;
    auto t0 = Clock::now();
    if (!apply(route_yaml(e.value))) return;
    double now_gen = 0;
    bool ok = wait_until([&] {
      revive();
      return fleet_generation(now_gen) && now_gen > before;
    }, 90);
    e.seconds = since(t0);
    e.converged_after = producer.confirmed();
    if (!ok) {
      report.violation("edit " + std::to_string(e.value) + " after " + after_fault +
                       " did not reach both router pods within 90 s");
      e.converged_after = UINT64_MAX;
    }
    std::fprintf(stderr, "chaos[control-plane]: %6.1f s  edit %d after %s: on both pods in %.1f s\n", since(epoch),
                 e.value, after_fault.c_str(), e.seconds);
    edits.push_back(e);
  };

  const std::string pid_file = cp.dir() + "/kube-apiserver.pid";
  std::unique_ptr<testing::Process> apiserver;  // once the suite restarted it, it is ours
  auto apiserver_pid = [&]() -> pid_t {
    std::ifstream in(pid_file);
    pid_t pid = 0;
    in >> pid;
    return pid;
  };
  auto api_ready = [&] { return kubectl({"get", "--raw", "/readyz"}) == 0; };
  auto etcd_compact = [&]() -> std::string {
    std::string text;
    testing::run_command({"curl", "-sS", "--max-time", "5", "-X", "POST", cp.etcd_url() + "/v3/kv/range", "-d",
                          R"({"key":"AA=="})"},
                         &text);
    json::Document d;
    if (!d.parse(text)) return "no answer from etcd: " + text;
    uint32_t header = d.find_member(0, "header");
    std::string rev = header == 0 ? "" : std::string(d.string_value(d.find_member(header, "revision")));
    if (rev.empty()) return "no revision from etcd: " + text;
    testing::run_command({"curl", "-sS", "--max-time", "10", "-X", "POST", cp.etcd_url() + "/v3/kv/compaction", "-d",
                          "{\"revision\":\"" + rev + "\",\"physical\":true}"},
                         &text);
    return "";
  };
  // kube-apiserver stopped by `sig` and started again with the same command line, so that
  // control_plane.sh can still stop it (its pid file is updated).
  auto restart_apiserver = [&](int sig, bool compact_while_down, FaultRecord& f) {
    pid_t pid = apiserver ? apiserver->pid() : apiserver_pid();
    std::string cmdline = testing::read_file("/proc/" + std::to_string(pid) + "/cmdline");
    std::vector<std::string> argv;
    for (size_t start = 0; start < cmdline.size();) {
      size_t end = cmdline.find('\0', start);
      if (end == std::string::npos) end = cmdline.size();
      argv.push_back(cmdline.substr(start, end - start));
      start = end + 1;
    }
    if (argv.empty()) {
      report.violation("cannot read kube-apiserver's command line");
      return;
    }
    auto t0 = Clock::now();
    // As a kubelet stops a container: SIGTERM, then -9 after the 30 s grace period
    // (kube-apiserver here can take longer than that to drain).
    if (apiserver) {
      apiserver->signal(sig);
      f.exit_status = apiserver->wait(30000);
      if (f.exit_status == -1) apiserver->stop(1000);
    } else {
      ::kill(pid, sig);
      if (!wait_until([&] { return ::kill(pid, 0) != 0; }, 30)) {
        f.exit_status = -1;
        ::kill(pid, SIGKILL);
        wait_until([&] { return ::kill(pid, 0) != 0; }, 10);
      }
    }
    f.exit_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    if (compact_while_down) {
      // Changes the watchers have not seen, then compaction past them: a watch resumed from
      // the controller's last resourceVersion finds it compacted (410 Gone) and must list.
      std::string err = etcd_compact();
      if (!err.empty()) report.violation("etcd compaction: " + err);
    }
    sleep_for(rng.uniform(1, 4));
    apiserver = std::make_unique<testing::Process>(argv, std::vector<std::string>{},
                                                   cp.dir() + "/kube-apiserver.log");
    std::ofstream(pid_file) << apiserver->pid() << "\n";
    if (!wait_until(api_ready, 120)) report.violation("kube-apiserver not ready 120 s after its restart");
  };

  // The faults, in shuffled rounds, until the load phase ends.
  std::vector<std::string> deck;
  int round = 0;
  const double quiet_tail = 5;
  sleep_for(3);
  while (!interrupted() && since(epoch) < duration - quiet_tail) {
    if (deck.empty()) {
      deck = {"controller_leader_kill9", "controller_leader_paused", "apiserver_sigterm",
              "apiserver_kill9_etcd_compacted", "etcd_compaction", "router_kill9", "router_sigterm",
              "nats_kill9", "nats_sigterm"};
      std::shuffle(deck.begin(), deck.end(), rng.engine());
      ++round;
    }
    std::string kind = deck.back();
    deck.pop_back();
    if (!sleep_for(o.quick ? rng.uniform(2, 4) : rng.uniform(4, 10)) || since(epoch) >= duration - quiet_tail) break;
    std::fprintf(stderr, "chaos[control-plane]: %6.1f s  %s\n", since(epoch), kind.c_str());
    FaultRecord f;
    f.kind = kind;
    f.at = since(epoch);
    if (kind == "controller_leader_kill9") {
      ControllerNode* l = leader();
      if (l == nullptr) {
        report.violation("no controller leads at " + fmt("%.1f s", f.at));
        continue;
      }
      f.target = l->identity();
      f.exit_status = l->kill(SIGKILL);
      // The edit goes in while nobody leads: a controller must take the lease once it
      // expires (15 s) and reconcile it. The killed one comes back as a kubelet would bring
      // it back, a moment later (revive, in the wait).
      edit_and_converge(kind);
      f.down = since(epoch) - f.at;
    } else if (kind == "controller_leader_paused") {
      // Frozen (SIGSTOP, as a paused VM or a stalled node freezes it) past its lease: the
      // other replica takes the lease and reconciles the edit. Resumed, the old leader must
      // find its lease gone and step down (exit 1; the kubelet restarts it) without
      // writing what it knew before the freeze: a stale table written now would show as
      // events carrying an older edit's marker, which the ledger counts as a violation.
      ControllerNode* l = leader();
      if (l == nullptr) {
        report.violation("no controller leads at " + fmt("%.1f s", f.at));
        continue;
      }
      f.target = l->identity();
      l->signal(SIGSTOP);
      edit_and_converge(kind);
      l->signal(SIGCONT);
      f.exit_status = l->wait_exit(20000);
      if (f.exit_status == -1) {
        report.violation(l->identity() + " resumed after its lease passed to another replica and kept running");
        l->kill(SIGKILL);
      }
      sleep_for(3);  // events flow on the table the new leader wrote (the ledger checks them)
      f.down = since(epoch) - f.at;
    } else if (kind == "apiserver_sigterm") {
      f.target = "kube-apiserver";
      restart_apiserver(SIGTERM, false, f);
      f.down = since(epoch) - f.at;
      edit_and_converge(kind);
    } else if (kind == "apiserver_kill9_etcd_compacted") {
      f.target = "kube-apiserver, etcd";
      restart_apiserver(SIGKILL, true, f);
      f.down = since(epoch) - f.at;
      edit_and_converge(kind);
    } else if (kind == "router_kill9" || kind == "router_sigterm") {
      // A container restart: the new process reads the table from the ConfigMap, and the
      // events the old one held come again after ackWait (or at once, after SIGTERM).
      const int sig = kind == "router_kill9" ? SIGKILL : SIGTERM;
      const size_t i = rng.index(runner.size());
      const auto down = std::chrono::milliseconds(static_cast<int>(rng.uniform(200, 4000)));
      f.target = pods[i];
      auto t0 = Clock::now();
      f.exit_status = runner.restart(i, sig, 15000, down);
      f.exit_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0 - down).count();
      ++router_restarts;
      if (sig == SIGTERM && f.exit_status != 0) {
        report.violation(pods[i] + " exited " + std::to_string(f.exit_status) + " after SIGTERM (0 expected)");
      }
      if (!runner.wait_ready(std::chrono::seconds(60), &why)) report.violation("after " + kind + ": " + why);
      f.down = since(epoch) - f.at;
      edit_and_converge(kind);
    } else if (kind == "nats_kill9" || kind == "nats_sigterm") {
      f.target = "nats-server";
      auto t0 = Clock::now();
      f.exit_status = nats.stop(kind == "nats_kill9" ? SIGKILL : SIGTERM);
      f.exit_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
      sleep_for(rng.uniform(0.5, 5.0));
      if (!nats.start()) report.violation("nats-server did not start again on its port (log " + nats.log_path() + ")");
      if (!runner.wait_ready(std::chrono::seconds(60), &why)) report.violation("after " + kind + ": " + why);
      f.down = since(epoch) - f.at;
      edit_and_converge(kind);
    } else {
      f.target = "etcd";
      // A few changes first, so that compaction removes history the watches have seen.
      edit_and_converge("edits before compaction");
      std::string err = etcd_compact();
      if (!err.empty()) report.violation("etcd compaction: " + err);
      f.down = since(epoch) - f.at;
      edit_and_converge(kind);
    }
    f.recovered = since(epoch);
    report.fault(f);
  }
  while (!interrupted() && since(epoch) < duration) sleep_for(0.2);
  if (!edits.empty()) edits.back().next_from = producer.confirmed();
  producer.stop();

  bool drained = wait_until([&] {
    auto c = consumer_state(admin, "CP_SRC", "cp-js");
    return c && c->pending == 0 && c->ack_pending == 0;
  }, o.quick ? 120 : 300);
  if (!drained) report.violation("cp-js did not drain");
  JetStreamRouteCheck check;
  check.source = "CP_SRC";
  check.destination = "CP_DST";
  check.dead_letters = "CP_DLQ";
  check.route = "cp-js";
  check.tag = "k";
  check.seed = o.seed;
  check.mixed = true;
  check.producer = &producer;
  account_jetstream_route(admin, check, report);

  // Each edit, once both pods reported it, is what routes the events that follow it.
  uint64_t stale = 0;
  read_stream(admin, "CP_DST", [&](const StoredMessage& m) {
    json::Document d;
    if (!d.parse(m.data)) return;
    uint64_t n = number_of(d.string_value(d.find_member(0, "id")), "k");
    int edit = static_cast<int>(d.number_value(d.find_member(0, "edit")));
    for (const auto& e : edits) {
      // A newer edit is right for an event whose first try failed (a killed pod held
      // it, nats-server was down) and that came again after the next edit.
      if (n > e.converged_after && n <= e.next_from && edit < e.value) ++stale;
    }
  }, error);
  if (stale > 0) report.violation(std::to_string(stale) + " events routed by an older edit after both pods reported a newer one");

  std::string edits_json = "[";
  for (size_t i = 0; i < edits.size(); ++i) {
    edits_json += (i ? "," : "") + std::string("{\"edit\":") + std::to_string(edits[i].value) + ",\"after\":\"" +
                  edits[i].after + "\",\"seconds\":" + fmt("%.1f", edits[i].seconds) + "}";
  }
  report.figure("edits", edits_json + "]");
  std::string pods_json = "{";
  {
    std::lock_guard lock(hb_mu);
    for (const auto& [pod, b] : beats) {
      pods_json += (pods_json.size() > 1 ? ",\"" : "\"") + pod + "\":{\"heartbeats\":" + std::to_string(b.beats) +
                   ",\"processes\":" + std::to_string(b.incarnations) +
                   ",\"notApplied\":" + std::to_string(b.not_applied) +
                   ",\"withSourceError\":" + std::to_string(b.source_errors) + ",\"generation\":" +
                   fmt("%.0f", b.generation) + "}";
      if (b.not_applied > 0) {
        report.violation(pod + " reported " + std::to_string(b.not_applied) +
                         " heartbeats without an applied table (a router must keep its table through control-plane faults)");
      }
    }
  }
  report.figure("routerPods", pods_json + "}");
  report.figure("controllerRestarts", std::to_string(controller_restarts));
  report.figure("routerRestarts", std::to_string(router_restarts));

  std::vector<int> statuses = runner.stop(10000);
  for (size_t i = 0; i < statuses.size(); ++i) {
    if (statuses[i] != 0) report.violation(pods[i] + " exited " + std::to_string(statuses[i]) + " on SIGTERM");
  }
  for (auto& c : controllers) c->kill(SIGTERM);
  apiserver.reset();  // ours, if restarted; control_plane.sh stops it otherwise
  if (!report.passed()) dir.keep();
  return report.passed();
}

}  // namespace switchboard::chaos
