// switchboard-bench-controlplane: the control plane under load, end to end, against a
// running kube-apiserver (scripts/bench-control-plane.sh starts one, with etcd, and stops
// it). This program starts the rest and stops it again: a nats-server, the real
// switchboard-controller (out of cluster, with the admin kubeconfig), and the router pods
// of the Deployment the controller writes, as processes (tests/e2e/pod_runner.h). Then:
//
//  api    before the controller starts: N EventRoutes of the same shape created by the
//         same parallel clients in a namespace nobody watches, a Ready status written to
//         each, then all deleted: how fast the API server alone takes the creates and the
//         status writes, the floor under bulk's time.
//  bulk   N EventRoutes created at once (parallel API clients): the time until every route
//         is Ready and every router pod runs the table the EventRouter's status names.
//  edits  one route edited (`kubectl apply --server-side`, or a merge patch), E times,
//         each from a quiet system: the time from the call until every pod's heartbeat
//         shows a newer table; until the route is Ready; until the controller is quiet.
//  burst  B spec changes spread over the N routes, sent as fast as parallel clients go:
//         peak work-queue depth, time to drain, reconciles per second, errors.
//
// Memory: VmHWM of the controller and of each router pod. Everything is measured, nothing
// asserted: the goals are reported as met or missed. Writes one JSON file (--out).
//
// --verify FILE checks a result file instead: JSON, and every metric a number.
// --summary FILE prints a result file as the Markdown table of docs/benchmarks.md.
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "bench/controlplane/observe.h"
#include "bench/controlplane/report.h"
#include "bench/controlplane/workload.h"
#include "kube/config.h"
#include "tests/e2e/e2e_support.h"
#include "tests/e2e/pod_runner.h"
#include "tests/support/process.h"

namespace switchboard::bench {
namespace {

using namespace std::chrono_literals;
using Object = kube::Object;
namespace res = kube::resources;

const char* const kUsage = R"(usage: switchboard-bench-controlplane --kubeconfig FILE --bin DIR --out FILE [options]
       switchboard-bench-controlplane --verify FILE
       switchboard-bench-controlplane --summary FILE

  --kubeconfig FILE   admin kubeconfig of a running control plane (CRDs installed)
  --kubectl PATH      kubectl (default: $KUBECTL, else scripts/test-tools.sh paths)
  --bin DIR           where switchboard-controller and switchboard-router are
  --out FILE          the JSON result
  --work DIR          logs and pod folders (default: a new temp folder, removed unless --keep)
  --routes N          EventRoutes in the bulk phase (1000)
  --replicas N        router pods (2)
  --edits N           single-route edits (50)
  --burst N           changes in the burst (5000)
  --parallel N        API clients that create and patch at once (2: on a 2-core machine
                      more were slower, as they compete with kube-apiserver for the CPU)
  --heartbeat D       the EventRouter's heartbeatInterval (1s)
  --edit-via WAY      kubectl (apply --server-side) or api (a merge patch from this program)
  --scrape-ms N       how often the controller's /metrics is read (50)
  --timeout-s N       the longest any one wait may take (600)
  --mode NAME         recorded in the result (full, quick, smoke)
  --command TEXT      the command line to record
  --keep              keep the work folder (logs)
)";

struct Options {
  std::string kubeconfig, kubectl, bin, out, work, command, mode = "full", edit_via = "kubectl", heartbeat = "1s";
  std::string verify, summary;
  int routes = 1000, replicas = 2, edits = 50, burst = 5000, parallel = 2, scrape_ms = 50, timeout_s = 600;
  bool keep = false;
};

bool parse(int argc, char** argv, Options& o, std::string& error) {
  std::vector<std::string> a(argv + 1, argv + argc);
  for (size_t i = 0; i < a.size(); ++i) {
    auto value = [&](std::string& out) {
      if (i + 1 >= a.size()) {
        error = a[i] + " needs a value";
        return false;
      }
      out = a[++i];
      return true;
    };
    auto number = [&](int& out) {
      std::string v;
      if (!value(v)) return false;
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (end == v.c_str() || *end != '\0' || n < 0 || n > 1000000) {
        error = a[i - 1] + ": not a number: " + v;
        return false;
      }
      out = static_cast<int>(n);
      return true;
    };
    const std::string& f = a[i];
    bool ok = true;
    if (f == "--kubeconfig") ok = value(o.kubeconfig);
    else if (f == "--kubectl") ok = value(o.kubectl);
    else if (f == "--bin") ok = value(o.bin);
    else if (f == "--out") ok = value(o.out);
    else if (f == "--work") ok = value(o.work);
    else if (f == "--command") ok = value(o.command);
    else if (f == "--mode") ok = value(o.mode);
    else if (f == "--edit-via") ok = value(o.edit_via);
    else if (f == "--heartbeat") ok = value(o.heartbeat);
    else if (f == "--verify") ok = value(o.verify);
    else if (f == "--summary") ok = value(o.summary);
    else if (f == "--routes") ok = number(o.routes);
    else if (f == "--replicas") ok = number(o.replicas);
    else if (f == "--edits") ok = number(o.edits);
    else if (f == "--burst") ok = number(o.burst);
    else if (f == "--parallel") ok = number(o.parallel);
    else if (f == "--scrape-ms") ok = number(o.scrape_ms);
    else if (f == "--timeout-s") ok = number(o.timeout_s);
    else if (f == "--keep") o.keep = true;
    else {
      error = "unknown argument " + f;
      return false;
    }
    if (!ok) return false;
  }
  if (!o.verify.empty() || !o.summary.empty()) return true;
  if (o.kubeconfig.empty() || o.bin.empty() || o.out.empty()) {
    error = "--kubeconfig, --bin and --out are required";
    return false;
  }
  if (o.routes < 1 || o.replicas < 1 || o.parallel < 1 || o.scrape_ms < 1) {
    error = "--routes, --replicas, --parallel and --scrape-ms must be at least 1";
    return false;
  }
  if (o.edit_via != "kubectl" && o.edit_via != "api") {
    error = "--edit-via is kubectl or api";
    return false;
  }
  return true;
}

void say(const std::string& text) { std::cerr << "bench-control-plane: " << text << std::endl; }

Object num(double v) { return Object::number(v); }
double round_to(double v, double unit) { return std::round(v / unit) * unit; }
Object seconds(double s) { return num(round_to(s, 0.001)); }
Object millis(double ms) { return num(round_to(ms, 0.1)); }

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown";
}

int64_t mem_total_kib() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemTotal:", 0) == 0) return std::atoll(line.c_str() + 9);
  }
  return 0;
}

std::string load_average() {
  std::string l = read_first_line("/proc/loadavg");
  std::istringstream in(l);
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// ---------------------------------------------------------------------------------------

// What a phase changes, read before and after it.
struct Snapshot {
  ControllerScraper::Sample metrics;
  ProcessStats controller;
  std::map<std::string, double> api;
  uint64_t flips = 0;
};

struct RouterStatus {
  std::string hash, applied, ready;
  int64_t generation = 0;
};

class Bench {
 public:
  explicit Bench(Options o) : o_(std::move(o)) {}
  ~Bench();
  Object run();

 private:
  void start();
  Object api_alone();
  // call(client, i) for i in 0..n-1 from o_.parallel clients, each retried on a transient
  // error; throws (saying `what`) when one fails for good.
  void in_parallel(int n, const std::string& what, const std::function<void(kube::Client&, int)>& call);
  // Creates routes 0..n-1 (version "v0") in `ns`; `created` gets what the API returned.
  void create_routes(const std::string& ns, int n, std::vector<Object>* created = nullptr);
  Object bulk();
  Object edits();
  Object burst();

  RouterStatus router_status();
  bool controller_alive();
  void check_alive();
  // Waits until nothing moves: every route Ready (unless `routes` is false), every pod on
  // the table the EventRouter names, the queues empty and no reconcile for `quiet`. False
  // at the deadline.
  bool wait_quiet(Clock::time_point deadline, bool routes = true, std::chrono::milliseconds quiet = 1000ms);
  Snapshot snapshot(bool with_api = true);
  Object delta(const Snapshot& a, const Snapshot& b, double seconds_elapsed);
  int64_t router_peak_rss();
  double max_heartbeat_generation();
  std::optional<size_t> routes_in_table(const std::string& hash);
  Clock::time_point deadline() const { return Clock::now() + std::chrono::seconds(o_.timeout_s); }
  std::string kubectl_path();

  Options o_;
  std::string work_;
  bool own_work_ = false;
  kube::Config config_;
  std::unique_ptr<kube::Client> client_;
  std::string ns_;
  std::unique_ptr<testing::NatsServer> nats_;
  int controller_port_ = 0;
  testing::Process controller_;
  std::unique_ptr<ControllerScraper> scraper_;
  router::NatsClient bench_nats_;
  std::unique_ptr<HeartbeatLog> beats_;
  std::unique_ptr<RouteReadiness> routes_;
  std::unique_ptr<TableConfigMapLog> tables_;
  std::unique_ptr<e2e::PodRunner> runner_;
  std::set<std::string> pods_;
  int64_t controller_peak_ = 0;
  Object api_alone_;
};

Bench::~Bench() {
  // Reverse order of start: pods, then what watches, then the controller and NATS.
  if (runner_) runner_->stop(10000);
  runner_.reset();
  tables_.reset();
  routes_.reset();
  beats_.reset();
  scraper_.reset();
  controller_.stop(10000);
  nats_.reset();
  if (own_work_ && !o_.keep) {
    std::error_code ec;
    std::filesystem::remove_all(work_, ec);
  } else if (own_work_) {
    say("logs kept in " + work_);
  }
}

std::string Bench::kubectl_path() {
  if (o_.kubectl.empty()) o_.kubectl = e2e::tool_path("KUBECTL");
  return o_.kubectl;
}

bool Bench::controller_alive() { return controller_.running(); }

void Bench::check_alive() {
  if (!controller_alive()) throw std::runtime_error("the controller exited; see " + work_ + "/controller.log");
  if (runner_) {
    for (size_t i = 0; i < runner_->size(); ++i) {
      if (!runner_->pod(i).process.running()) {
        throw std::runtime_error("router pod " + runner_->pod(i).plan.name + " exited; see " +
                                 runner_->pod(i).plan.log_path);
      }
    }
  }
}

RouterStatus Bench::router_status() {
  RouterStatus s;
  Object r = client_->get(res::kEventRouters, ns_, kRouterName);
  if (!r.has_object_field("status")) return s;
  const Object& st = r.at("status");
  if (st.has_string_field("tableHash")) s.hash = st.at("tableHash").as_string();
  if (st.has_string_field("applied")) s.applied = st.at("applied").as_string();
  if (st.has_integer_field("tableGeneration")) s.generation = st.at("tableGeneration").as_number().to_int64();
  if (st.has_array_field("conditions")) {
    for (const auto& c : st.at("conditions").as_array()) {
      if (c.has_string_field("type") && c.at("type").as_string() == "Ready" && c.has_string_field("status")) {
        s.ready = c.at("status").as_string();
      }
    }
  }
  return s;
}

bool Bench::wait_quiet(Clock::time_point until, bool routes, std::chrono::milliseconds quiet) {
  const std::string all = std::to_string(o_.replicas) + "/" + std::to_string(o_.replicas);
  while (Clock::now() < until) {
    check_alive();
    ControllerScraper::Sample s = scraper_->last();
    bool ok = s.ok && s.total_depth() == 0 && Clock::now() - scraper_->last_activity() >= quiet &&
              (!routes || routes_->all_ready());
    if (ok) {
      RouterStatus r = router_status();
      ok = r.ready == "True" && r.applied == all && !r.hash.empty();
      if (ok) {
        auto latest = beats_->latest();
        for (const auto& pod : pods_) {
          auto it = latest.find(pod);
          ok = ok && it != latest.end() && it->second.state == "applied" && it->second.hash == r.hash;
        }
      }
    }
    if (ok) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

Snapshot Bench::snapshot(bool with_api) {
  Snapshot s;
  s.metrics = scraper_->scrape_now();
  s.controller = process_stats(controller_.pid());
  controller_peak_ = std::max(controller_peak_, s.controller.vm_hwm_kib);
  if (with_api) s.api = api_request_counts(kubectl_path(), o_.kubeconfig);
  s.flips = routes_->flips();
  return s;
}

Object Bench::delta(const Snapshot& a, const Snapshot& b, double elapsed) {
  Object out = Object::object();
  Object rec = Object::object();
  double total = 0;
  std::map<std::string, double> by_kind;
  for (const auto& [key, v] : b.metrics.reconciles) {
    auto it = a.metrics.reconciles.find(key);
    const double d = v - (it == a.metrics.reconciles.end() ? 0 : it->second);
    rec[key.first + "." + key.second] = num(d);
    by_kind[key.first] += d;
    total += d;
  }
  for (const auto& [kind, d] : by_kind) rec[kind] = num(d);
  rec["total"] = num(total);
  out["reconciles"] = rec;
  out["reconciles_per_second"] = num(elapsed > 0 ? round_to(total / elapsed, 0.1) : 0);
  Object mean_ms = Object::object();
  Object wait_ms = Object::object();
  auto value = [](const std::map<std::string, double>& m, const std::string& k) {
    auto it = m.find(k);
    return it == m.end() ? 0.0 : it->second;
  };
  for (const auto& [kind, count] : b.metrics.duration_count) {
    const double dc = count - value(a.metrics.duration_count, kind);
    const double ds = value(b.metrics.duration_sum, kind) - value(a.metrics.duration_sum, kind);
    if (dc > 0) mean_ms[kind] = millis(ds / dc * 1000);
  }
  for (const auto& [kind, count] : b.metrics.wait_count) {
    const double dc = count - value(a.metrics.wait_count, kind);
    const double ds = value(b.metrics.wait_sum, kind) - value(a.metrics.wait_sum, kind);
    if (dc > 0) wait_ms[kind] = millis(ds / dc * 1000);
  }
  out["reconcile_mean_ms"] = mean_ms;
  out["queue_wait_mean_ms"] = wait_ms;
  out["controller_cpu_seconds"] = seconds(b.controller.cpu_seconds - a.controller.cpu_seconds);
  out["controller_peak_rss_kib"] = num(static_cast<double>(b.controller.vm_hwm_kib));
  out["router_peak_rss_kib"] = num(static_cast<double>(router_peak_rss()));
  out["route_status_flips"] = num(static_cast<double>(b.flips - a.flips));
  Object api = Object::object();
  for (const auto& [key, v] : b.api) {
    auto it = a.api.find(key);
    const double d = v - (it == a.api.end() ? 0 : it->second);
    if (d > 0) api[key] = num(d);
  }
  out["api_requests"] = api;
  return out;
}

int64_t Bench::router_peak_rss() {
  int64_t peak = 0;
  for (size_t i = 0; runner_ && i < runner_->size(); ++i) {
    peak = std::max(peak, process_stats(runner_->pod(i).process.pid()).vm_hwm_kib);
  }
  return peak;
}

double Bench::max_heartbeat_generation() {
  double g = -1;
  for (const auto& [pod, beat] : beats_->latest()) g = std::max(g, beat.generation);
  return g;
}

std::optional<size_t> Bench::routes_in_table(const std::string& hash) {
  Object cm = client_->get(res::kConfigMaps, ns_, std::string(kRouterName) + "-routes");
  if (!cm.has_object_field("data")) return std::nullopt;
  const Object& data = cm.at("data");
  std::string text;
  if (data.has_string_field("routes.json")) {
    text = data.at("routes.json").as_string();
  } else if (data.has_string_field("index.json")) {
    Object index = Object::parse(data.at("index.json").as_string());
    for (const auto& part : index.at("parts").as_array()) {
      Object p = client_->get(res::kConfigMaps, ns_, part.at("name").as_string());
      text += p.at("data").at("part").as_string();
    }
  } else {
    return std::nullopt;
  }
  const Object* annotations = at_path(cm, "metadata.annotations");
  if (annotations != nullptr && annotations->has_string_field("switchboard.dev/hash") &&
      annotations->at("switchboard.dev/hash").as_string() != hash) {
    say("the ConfigMap holds table " + annotations->at("switchboard.dev/hash").as_string() + ", the status names " +
        hash);
  }
  Object table = Object::parse(text);
  if (!table.has_array_field("routes")) return std::nullopt;
  return table.at("routes").as_array().size();
}

// ---------------------------------------------------------------------------------------

void Bench::start() {
  if (o_.work.empty()) {
    work_ = e2e::make_temp_dir("switchboard-bench-cp");
    own_work_ = true;
  } else {
    work_ = o_.work;
    std::filesystem::create_directories(work_);
  }
  config_ = kube::load_kubeconfig(o_.kubeconfig);
  client_ = kube::make_client(config_);

  nats_ = std::make_unique<testing::NatsServer>();
  if (!nats_->ok()) throw std::runtime_error("nats-server did not start");

  std::mt19937 rng(std::random_device{}());
  ns_ = "bench-cp-" + std::to_string(rng() % 100000);
  Object nsobj = Object::object();
  nsobj["apiVersion"] = Object::string("v1");
  nsobj["kind"] = Object::string("Namespace");
  nsobj["metadata"]["name"] = Object::string(ns_);
  client_->create(res::kNamespaces, "", nsobj);
  api_alone_ = api_alone();

  controller_port_ = testing::free_port();
  controller_ = testing::Process({o_.bin + "/switchboard-controller", "--kubeconfig", o_.kubeconfig, "--metrics-addr",
                                  "127.0.0.1:" + std::to_string(controller_port_), "--leader-elect=false",
                                  "--pod-name", "bench-controller", "--log-level", "info"},
                                 {}, work_ + "/controller.log");
  if (!e2e::eventually([&] { return !controller_alive() || e2e::http_get(controller_port_, "/readyz").status == 200; },
                       60s) ||
      !controller_alive()) {
    throw std::runtime_error("the controller did not become ready; see " + work_ + "/controller.log");
  }
  scraper_ = std::make_unique<ControllerScraper>(controller_port_, std::chrono::milliseconds(o_.scrape_ms));

  router::NatsConfig nc;
  nc.urls = {nats_->url()};
  nc.name = "bench-control-plane";
  std::string error;
  if (!bench_nats_.connect(nc, error)) throw std::runtime_error("NATS: " + error);
  beats_ = std::make_unique<HeartbeatLog>(bench_nats_, "switchboard.status." + ns_ + "." + kRouterName);
  routes_ = std::make_unique<RouteReadiness>(*client_, ns_, static_cast<size_t>(o_.routes));
  if (!routes_->wait_synced(30s)) throw std::runtime_error("the EventRoute informer did not sync");
  tables_ = std::make_unique<TableConfigMapLog>(*client_, ns_, std::string(kRouterName) + "-routes");

  // The fleet, running an empty table, before any route exists.
  client_->create(res::kEventRouters, ns_, router_object(ns_, o_.replicas, nats_->url(), o_.heartbeat));
  if (!e2e::eventually(
          [&] {
            try {
              client_->get(res::kDeployments, ns_, kRouterName);
              return true;
            } catch (const kube::ApiError&) {
              return false;
            }
          },
          60s)) {
    throw std::runtime_error("the controller wrote no Deployment for EventRouter " + std::string(kRouterName));
  }
  e2e::PodRunnerOptions po;
  po.binary = o_.bin + "/switchboard-router";
  const std::string& server = config_.server;
  po.api_host = "127.0.0.1";
  po.api_port = std::atoi(server.c_str() + server.rfind(':') + 1);
  po.ca_pem = config_.ca_pem;
  po.work_dir = work_ + "/pods";
  po.keep_work_dir = true;
  runner_ = std::make_unique<e2e::PodRunner>(*client_, po);
  runner_->start(ns_, kRouterName);
  std::string why;
  if (!runner_->wait_ready(120s, &why)) throw std::runtime_error("router pods not ready: " + why);
  for (size_t i = 0; i < runner_->size(); ++i) pods_.insert(runner_->pod(i).plan.name);
  if (!wait_quiet(deadline(), false)) {
    RouterStatus r = router_status();
    throw std::runtime_error("the empty fleet never settled: EventRouter Ready=" + r.ready + " applied " + r.applied);
  }
  say("fleet of " + std::to_string(pods_.size()) + " router pods ready in namespace " + ns_);
}

void Bench::in_parallel(int n, const std::string& what, const std::function<void(kube::Client&, int)>& call) {
  std::atomic<int> next{0}, failures{0};
  std::mutex error_mu;
  std::string first_error;
  std::vector<std::thread> threads;
  for (int t = 0; t < o_.parallel; ++t) {
    threads.emplace_back([&] {
      std::unique_ptr<kube::Client> c = kube::make_client(config_);
      for (int i = next++; i < n; i = next++) {
        for (int attempt = 0;; ++attempt) {
          try {
            call(*c, i);
            break;
          } catch (const kube::ApiError& e) {
            if (e.transient() && attempt < 5) continue;
            ++failures;
            std::lock_guard lock(error_mu);
            if (first_error.empty()) first_error = e.what();
            break;
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  if (failures > 0) throw std::runtime_error(std::to_string(failures.load()) + " " + what + " failed: " + first_error);
}

void Bench::create_routes(const std::string& ns, int n, std::vector<Object>* created) {
  if (created != nullptr) created->assign(static_cast<size_t>(n), Object::null());
  in_parallel(n, "creates", [&](kube::Client& c, int i) {
    Object o = c.create(res::kEventRoutes, ns, route_object(ns, i, "v0"));
    if (created != nullptr) (*created)[static_cast<size_t>(i)] = std::move(o);
  });
}

Object Bench::api_alone() {
  const std::string ns = ns_ + "-api";
  Object nsobj = Object::object();
  nsobj["apiVersion"] = Object::string("v1");
  nsobj["kind"] = Object::string("Namespace");
  nsobj["metadata"]["name"] = Object::string(ns);
  client_->create(res::kNamespaces, "", nsobj);
  say("api: creating " + std::to_string(o_.routes) + " EventRoutes with no controller running");
  std::vector<Object> created;
  const auto t0 = Clock::now();
  create_routes(ns, o_.routes, &created);
  const double took = seconds_between(t0, Clock::now());
  // Then one status write per route, as the controller's PUT of a Ready status.
  const auto t1 = Clock::now();
  in_parallel(o_.routes, "status writes", [&](kube::Client& c, int i) {
    Object o = created[static_cast<size_t>(i)];
    o["status"] = ready_status(kRouterName, o_.replicas);
    c.replace_status(res::kEventRoutes, o);
  });
  const double status_took = seconds_between(t1, Clock::now());
  say("api: created in " + std::to_string(took) + " s, a status written to each in " + std::to_string(status_took) +
      " s; deleting them");
  // One DELETE of the collection, so that the controller, started next, finds none left.
  e2e::CommandResult d = e2e::run_command({kubectl_path(), "--kubeconfig", o_.kubeconfig, "delete", "--raw",
                                           res::kEventRoutes.path(ns)});
  if (d.status != 0) throw std::runtime_error("api: cannot delete the EventRoutes of " + ns + ": " + d.text());
  if (!client_->list(res::kEventRoutes, ns).items.empty()) {
    throw std::runtime_error("api: EventRoutes left in " + ns + " after the delete");
  }
  client_->remove(res::kNamespaces, "", ns);
  Object out = Object::object();
  out["routes"] = num(o_.routes);
  out["create_seconds"] = seconds(took);
  out["creates_per_second"] = num(std::round(o_.routes / took));
  out["status_write_seconds"] = seconds(status_took);
  out["status_writes_per_second"] = num(std::round(o_.routes / status_took));
  return out;
}

Object Bench::bulk() {
  say("bulk: creating " + std::to_string(o_.routes) + " EventRoutes with " + std::to_string(o_.parallel) +
      " parallel clients");
  Snapshot before = snapshot();
  const auto t0 = Clock::now();
  create_routes(ns_, o_.routes);
  const auto created = Clock::now();
  say("bulk: created in " + std::to_string(seconds_between(t0, created)) + " s; waiting for Ready");

  std::optional<RouteReadiness::AllReady> all = routes_->wait_all(t0, deadline());
  if (!all) throw std::runtime_error("bulk: not every route became Ready (" + std::to_string(routes_->ready_count()) +
                                     "/" + std::to_string(o_.routes) + ")");
  if (!wait_quiet(deadline())) throw std::runtime_error("bulk: the controller never became quiet");
  RouterStatus status = router_status();
  all = routes_->wait_all(t0, deadline());  // the last time all were Ready, after any flip
  std::optional<Clock::time_point> routers = beats_->wait_all(
      pods_, t0, [&](const HeartbeatLog::Beat& b) { return b.state == "applied" && b.hash == status.hash; },
      deadline());
  if (!routers) throw std::runtime_error("bulk: not every pod reported table " + status.hash);
  auto written = tables_->wait(t0, [&](const std::string& h) { return h == status.hash; }, deadline());
  if (!written) throw std::runtime_error("bulk: the ConfigMap never carried table " + status.hash);
  Snapshot after = snapshot();

  const double ready_s = seconds_between(t0, all->last);
  const double routers_s = seconds_between(t0, *routers);
  std::optional<size_t> in_table = routes_in_table(status.hash);
  Object out = delta(before, after, seconds_between(t0, std::max(all->last, *routers)));
  out["routes"] = num(o_.routes);
  out["create_seconds"] = seconds(seconds_between(t0, created));
  out["first_all_routes_ready_seconds"] = seconds(seconds_between(t0, all->first));
  out["all_routes_ready_seconds"] = seconds(ready_s);
  out["table_written_seconds"] = seconds(seconds_between(t0, *written));
  out["routers_applied_seconds"] = seconds(routers_s);
  out["ready_and_applied_seconds"] = seconds(std::max(ready_s, routers_s));
  out["ready_and_applied_after_last_create_seconds"] =
      seconds(std::max(0.0, std::max(ready_s, routers_s) - seconds_between(t0, created)));
  out["table_hash"] = Object::string(status.hash);
  out["table_generation"] = num(static_cast<double>(status.generation));
  out["router_status_applied"] = Object::string(status.applied);
  out["routes_in_table"] = in_table ? num(static_cast<double>(*in_table)) : Object::null();
  say("bulk: all Ready after " + std::to_string(ready_s) + " s, every pod on " + status.hash + " after " +
      std::to_string(routers_s) + " s");
  return out;
}

Object Bench::edits() {
  say("edits: " + std::to_string(o_.edits) + " single-route edits via " + o_.edit_via);
  Snapshot before = snapshot();
  std::vector<double> to_routers, call, to_route_ready, to_quiet, to_all_ready, to_table, table_to_routers;
  Object samples = Object::array();
  int not_quiet = 0;
  const auto phase_start = Clock::now();
  for (int e = 0; e < o_.edits; ++e) {
    if (!wait_quiet(Clock::now() + 120s)) ++not_quiet;
    const int index = static_cast<int>((static_cast<int64_t>(e) * 7919) % o_.routes);
    const std::string name = route_name(index);
    const std::string version = "e" + std::to_string(e + 1);
    const double gen_before = max_heartbeat_generation();
    const std::string table_before = tables_->current_hash();
    Object current = client_->get(res::kEventRoutes, ns_, name);
    routes_->require_generation(name, kube::generation_of(current) + 1);

    const auto t0 = Clock::now();
    if (o_.edit_via == "kubectl") {
      e2e::CommandResult r = e2e::run_command({kubectl_path(), "--kubeconfig", o_.kubeconfig, "apply",
                                               "--server-side", "--force-conflicts", "--field-manager=bench-editor",
                                               "-f", "-"},
                                              route_object(ns_, index, version).serialize());
      if (r.status != 0) throw std::runtime_error("kubectl apply: " + r.text());
    } else {
      client_->merge_patch(res::kEventRoutes, ns_, name, version_patch(index, version));
    }
    const auto returned = Clock::now();
    auto routers = beats_->wait_all(
        pods_, t0, [&](const HeartbeatLog::Beat& b) { return b.state == "applied" && b.generation > gen_before; },
        deadline());
    if (!routers) throw std::runtime_error("edit " + std::to_string(e + 1) + ": not every pod applied a new table");
    auto written = tables_->wait(
        t0, [&](const std::string& h) { return !h.empty() && h != table_before; }, deadline());
    if (!written) throw std::runtime_error("edit " + std::to_string(e + 1) + ": no new table in the ConfigMap");
    auto ready = routes_->wait_route(name, t0, deadline());
    if (!ready) throw std::runtime_error("edit " + std::to_string(e + 1) + ": " + name + " never became Ready");
    if (!wait_quiet(deadline())) throw std::runtime_error("edit " + std::to_string(e + 1) + ": never quiet again");
    auto all = routes_->wait_all(t0, Clock::now());

    auto ms = [&](Clock::time_point t) { return seconds_between(t0, t) * 1000; };
    to_routers.push_back(ms(*routers));
    to_table.push_back(ms(*written));
    table_to_routers.push_back(ms(*routers) - ms(*written));
    call.push_back(ms(returned));
    to_route_ready.push_back(ms(*ready));
    to_quiet.push_back(std::max(0.0, ms(scraper_->last_activity())));
    if (all) to_all_ready.push_back(ms(all->last));
    Object s = Object::object();
    s["route"] = Object::string(name);
    s["apply_call_ms"] = millis(call.back());
    s["apply_to_table_written_ms"] = millis(to_table.back());
    s["apply_to_routers_ms"] = millis(to_routers.back());
    s["apply_to_route_ready_ms"] = millis(to_route_ready.back());
    s["apply_to_quiet_ms"] = millis(to_quiet.back());
    samples[samples.size()] = s;
    say("edit " + std::to_string(e + 1) + "/" + std::to_string(o_.edits) + " " + name + ": table written after " +
        std::to_string(static_cast<int>(to_table.back())) + " ms, every pod after " +
        std::to_string(static_cast<int>(to_routers.back())) + " ms, Ready after " +
        std::to_string(static_cast<int>(to_route_ready.back())) + " ms");
  }
  Snapshot after = snapshot();
  Object out = delta(before, after, seconds_between(phase_start, Clock::now()));
  auto dist = [](const std::vector<double>& v) {
    Object d = Object::object();
    d["p50"] = millis(percentile(v, 50));
    d["p90"] = millis(percentile(v, 90));
    d["p99"] = millis(percentile(v, 99));
    d["min"] = millis(v.empty() ? 0 : *std::min_element(v.begin(), v.end()));
    d["max"] = millis(v.empty() ? 0 : *std::max_element(v.begin(), v.end()));
    double sum = 0;
    for (double x : v) sum += x;
    d["mean"] = millis(v.empty() ? 0 : sum / static_cast<double>(v.size()));
    return d;
  };
  out["count"] = num(o_.edits);
  out["via"] = Object::string(o_.edit_via == "kubectl" ? "kubectl apply --server-side" : "merge patch (API)");
  out["apply_call_ms"] = dist(call);
  out["apply_to_routers_ms"] = dist(to_routers);
  out["apply_to_table_written_ms"] = dist(to_table);
  out["table_written_to_routers_ms"] = dist(table_to_routers);
  out["apply_to_route_ready_ms"] = dist(to_route_ready);
  out["apply_to_quiet_ms"] = dist(to_quiet);
  out["apply_to_all_routes_ready_ms"] = dist(to_all_ready);
  out["edits_started_before_quiet"] = num(not_quiet);
  Object per_edit = Object::object();
  const Object& rec = out.at("reconciles");
  for (const char* kind : {"EventRoute", "EventRouter"}) {
    per_edit[kind] = num(rec.has_field(kind) && o_.edits > 0
                             ? round_to(rec.at(kind).as_double() / o_.edits, 0.1)
                             : 0);
  }
  out["reconciles_per_edit"] = per_edit;
  out["samples"] = samples;
  return out;
}

Object Bench::burst() {
  const int changes = o_.burst;
  say("burst: " + std::to_string(changes) + " spec changes over " + std::to_string(o_.routes) + " routes with " +
      std::to_string(o_.parallel) + " parallel clients");
  if (!wait_quiet(deadline())) throw std::runtime_error("burst: not quiet before the burst");
  Snapshot before = snapshot();
  // Every route must reach the generation its last change gives it.
  std::vector<int64_t> generation(static_cast<size_t>(o_.routes));
  for (const auto& r : client_->list(res::kEventRoutes, ns_).items) {
    const std::string n = kube::name_of(r);
    const int index = std::atoi(n.c_str() + n.find('-') + 1);
    if (index >= 0 && index < o_.routes) generation[static_cast<size_t>(index)] = kube::generation_of(r);
  }
  for (int i = 0; i < o_.routes; ++i) {
    const int64_t rounds = changes / o_.routes + (i < changes % o_.routes ? 1 : 0);
    routes_->require_generation(route_name(i), generation[static_cast<size_t>(i)] + rounds);
  }
  const double gen_before = max_heartbeat_generation();

  std::atomic<int> next{0}, failures{0};
  std::mutex error_mu;
  std::string first_error;
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < o_.parallel; ++t) {
    threads.emplace_back([&] {
      std::unique_ptr<kube::Client> c = kube::make_client(config_);
      for (int j = next++; j < changes; j = next++) {
        const int index = j % o_.routes;
        const std::string version = "b" + std::to_string(j / o_.routes + 1);
        for (int attempt = 0;; ++attempt) {
          try {
            c->merge_patch(res::kEventRoutes, ns_, route_name(index), version_patch(index, version));
            break;
          } catch (const kube::ApiError& e) {
            if (e.transient() && attempt < 5) continue;
            ++failures;
            std::lock_guard lock(error_mu);
            if (first_error.empty()) first_error = e.what();
            break;
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto sent = Clock::now();
  if (failures > 0) throw std::runtime_error(std::to_string(failures.load()) + " patches failed: " + first_error);
  say("burst: sent in " + std::to_string(seconds_between(t0, sent)) + " s; waiting for the queues to drain");

  if (!routes_->wait_all(t0, deadline())) {
    throw std::runtime_error("burst: not every route became Ready at its last generation (" +
                             std::to_string(routes_->ready_count()) + "/" + std::to_string(o_.routes) + ")");
  }
  if (!wait_quiet(deadline())) throw std::runtime_error("burst: the controller never became quiet");
  RouterStatus status = router_status();
  auto all = routes_->wait_all(t0, Clock::now());
  auto routers = beats_->wait_all(
      pods_, t0,
      [&](const HeartbeatLog::Beat& b) {
        return b.state == "applied" && b.hash == status.hash && b.generation > gen_before;
      },
      deadline());
  if (!routers) throw std::runtime_error("burst: not every pod reported table " + status.hash);
  auto written = tables_->wait(t0, [&](const std::string& h) { return h == status.hash; }, deadline());
  if (!written) throw std::runtime_error("burst: the ConfigMap never carried table " + status.hash);
  const auto last_reconcile = scraper_->last_activity();
  Snapshot after = snapshot();

  // Peak depth from the samples taken while the burst was on.
  std::map<std::string, double> peak;
  double peak_total = 0;
  std::vector<ControllerScraper::Sample> samples = scraper_->between(t0, Clock::now());
  for (const auto& s : samples) {
    for (const auto& [kind, d] : s.depth) peak[kind] = std::max(peak[kind], d);
    peak_total = std::max(peak_total, s.total_depth());
  }
  const auto drained = std::max({all->last, *routers, last_reconcile});
  Object out = delta(before, after, seconds_between(t0, last_reconcile));
  out["changes"] = num(changes);
  out["kind_of_change"] = Object::string("spec: the destination's x-version header (a new generation and table)");
  out["send_seconds"] = seconds(seconds_between(t0, sent));
  out["send_rate_per_second"] = num(round_to(changes / std::max(1e-9, seconds_between(t0, sent)), 0.1));
  Object pk = Object::object();
  for (const char* kind : {"EventRouter", "EventRoute", "EventTransform"}) pk[kind] = num(peak[kind]);
  pk["total"] = num(peak_total);
  out["peak_workqueue_depth"] = pk;
  out["depth_samples"] = num(static_cast<double>(samples.size()));
  out["drain_seconds"] = seconds(seconds_between(t0, drained));
  out["drain_after_last_change_seconds"] = seconds(std::max(0.0, seconds_between(sent, drained)));
  out["all_routes_ready_seconds"] = seconds(seconds_between(t0, all->last));
  out["last_table_written_seconds"] = seconds(seconds_between(t0, *written));
  out["routers_applied_seconds"] = seconds(seconds_between(t0, *routers));
  out["last_reconcile_seconds"] = seconds(seconds_between(t0, last_reconcile));
  double errors = 0;
  for (const auto& [key, v] : after.metrics.reconciles) {
    if (key.second == "error") {
      auto it = before.metrics.reconciles.find(key);
      errors += v - (it == before.metrics.reconciles.end() ? 0 : it->second);
    }
  }
  out["reconcile_errors"] = num(errors);
  out["table_generations"] = num(static_cast<double>(status.generation) - gen_before);
  say("burst: drained after " + std::to_string(seconds_between(t0, drained)) + " s, peak depth " +
      std::to_string(static_cast<int>(peak_total)));
  return out;
}

Object Bench::run() {
  Object result = Object::object();
  result["benchmark"] = Object::string("controlplane");
  result["date"] = Object::string(utc_now());
  result["mode"] = Object::string(o_.mode);
  result["command"] = Object::string(o_.command);
  Object machine = Object::object();
  machine["cpu"] = Object::string(cpu_model());
  machine["cpus"] = num(static_cast<double>(std::thread::hardware_concurrency()));
  machine["memory_kib"] = num(static_cast<double>(mem_total_kib()));
  utsname u{};
  if (::uname(&u) == 0) machine["kernel"] = Object::string(std::string(u.sysname) + " " + u.release);
  machine["os"] = Object::string(read_first_line("/etc/debian_version").empty()
                                     ? "unknown"
                                     : "Debian " + read_first_line("/etc/debian_version"));
  result["machine"] = machine;
  Object load = Object::object();
  load["start"] = Object::string(load_average());

  start();
  Object setup = Object::object();
  setup["routes"] = num(o_.routes);
  setup["replicas"] = num(o_.replicas);
  setup["edits"] = num(o_.edits);
  setup["burst_changes"] = num(o_.burst);
  setup["parallel_clients"] = num(o_.parallel);
  setup["heartbeat_interval"] = Object::string(o_.heartbeat);
  setup["scrape_interval_ms"] = num(o_.scrape_ms);
  setup["namespace"] = Object::string(ns_);
  setup["controller_flags"] = Object::string("--leader-elect=false --log-level info");
  e2e::CommandResult v = e2e::run_command({kubectl_path(), "--kubeconfig", o_.kubeconfig, "version", "-o", "json"});
  if (v.status == 0) {
    try {
      Object ver = Object::parse(v.out);
      if (const Object* s = at_path(ver, "serverVersion.gitVersion"); s && s->is_string()) {
        setup["kube_apiserver"] = *s;
      }
    } catch (const std::exception&) {
    }
  }
  result["setup"] = setup;

  // A phase asked for zero times is left out (for runs by hand; the result then lacks its
  // metrics and --verify says so).
  result["api_alone"] = api_alone_;
  result["bulk"] = bulk();
  if (o_.edits > 0) result["edits"] = edits();
  if (o_.burst > 0) result["burst"] = burst();

  Object peak = Object::object();
  controller_peak_ = std::max(controller_peak_, process_stats(controller_.pid()).vm_hwm_kib);
  peak["controller"] = num(static_cast<double>(controller_peak_));
  peak["router"] = num(static_cast<double>(router_peak_rss()));
  result["peak_rss_kib"] = peak;
  load["end"] = Object::string(load_average());
  result["load_average"] = load;

  Object goals = Object::object();
  Object g1 = Object::object();
  const double ready = result.at("bulk").at("ready_and_applied_seconds").as_double();
  g1["goal"] = Object::string(std::to_string(o_.routes) + " routes Ready and applied within 5 s");
  g1["value"] = seconds(ready);
  g1["limit"] = num(5);
  g1["met"] = Object::boolean(ready <= 5.0);
  goals["routes_ready_and_applied_seconds"] = g1;
  Object g2 = Object::object();
  const Object* p99_value = at_path(result, "edits.apply_to_routers_ms.p99");
  const double p99 = p99_value != nullptr ? p99_value->as_double() : std::nan("");
  g2["goal"] = Object::string("one edit applied everywhere within 1 s p99");
  g2["value"] = millis(p99);
  g2["limit"] = num(1000);
  g2["met"] = p99_value != nullptr ? Object::boolean(p99 <= 1000.0) : Object::null();
  goals["edit_applied_everywhere_p99_ms"] = g2;
  result["goals"] = goals;
  return result;
}

}  // namespace
}  // namespace switchboard::bench

int main(int argc, char** argv) {
  using namespace switchboard::bench;
  Options o;
  std::string error;
  if (argc > 1 && (std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help")) {
    std::cout << kUsage;
    return 0;
  }
  if (!parse(argc, argv, o, error)) {
    std::cerr << "switchboard-bench-controlplane: " << error << "\n\n" << kUsage;
    return 2;
  }
  if (!o.verify.empty()) {
    std::vector<std::string> problems;
    if (verify_result_file(o.verify, problems)) {
      std::cout << o.verify << ": every metric present\n";
      return 0;
    }
    for (const auto& p : problems) std::cerr << o.verify << ": " << p << "\n";
    return 1;
  }
  if (!o.summary.empty()) {
    std::vector<std::string> problems;
    if (!verify_result_file(o.summary, problems)) {
      for (const auto& p : problems) std::cerr << o.summary << ": " << p << "\n";
      return 1;
    }
    std::ifstream in(o.summary);
    std::stringstream text;
    text << in.rdbuf();
    std::cout << summary_markdown(switchboard::kube::Object::parse(text.str()));
    return 0;
  }
  try {
    switchboard::kube::Object result;
    {
      Bench bench(o);
      result = bench.run();
    }  // everything stopped before the file is written
    std::ofstream out(o.out, std::ios::trunc);
    out << to_json_text(result);
    if (!out) throw std::runtime_error("cannot write " + o.out);
    std::cerr << "bench-control-plane: wrote " << o.out << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench-control-plane: error: " << e.what() << "\n";
    return 1;
  }
}
