// The whole system on a real control plane: kubectl applies the CRDs and the examples,
// switchboard-controller runs out of cluster with the kubeconfig (the real binary), the
// pod runner starts router processes from the Deployment the controller wrote, and events
// flow through a real nats-server. kube-controller-manager runs the garbage collector.
//
// Each test has its own namespace; the controller, kube-controller-manager and the
// nats-server are shared by the suite. Times that the issue bounds are measured and
// printed ("[ measured ]").
#include <gtest/gtest.h>
#include <signal.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "kube/client.h"
#include "router/nats_client.h"
#include "tests/e2e/cluster.h"
#include "tests/e2e/controller_manager.h"
#include "tests/e2e/e2e_support.h"
#include "tests/e2e/pod_runner.h"
#include "tests/e2e/router_deployment.h"
#include "tests/support/inbox.h"
#include "tests/support/process.h"
#include "tests/support/silent_server.h"
#include "tests/support/streams.h"

namespace switchboard::e2e {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::Inbox;

std::string bin(const std::string& name) { return std::string(SWITCHBOARD_BIN_DIR) + "/" + name; }
std::string source(const std::string& path) { return std::string(SWITCHBOARD_SOURCE_DIR) + "/" + path; }

std::chrono::milliseconds since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
}

// A switchboard-controller process, out of cluster, with the admin kubeconfig.
class Controller {
 public:
  Controller(const std::string& identity, const std::string& lease_ns, const std::vector<std::string>& extra = {})
      : identity_(identity) {
    dir_ = make_temp_dir("switchboard-controller-" + identity);
    log_ = dir_ + "/controller.log";
    port_ = testing::free_port();
    std::vector<std::string> argv = {bin("switchboard-controller"), "--kubeconfig", cluster().kubeconfig,
                                     "--metrics-addr", "127.0.0.1:" + std::to_string(port_), "--leader-elect=true",
                                     "--leader-election-namespace", lease_ns, "--lease-duration", "15s",
                                     "--renew-deadline", "10s", "--retry-period", "2s", "--pod-name", identity,
                                     "--status-stale-after", "30s", "--log-level", "debug"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_ = testing::Process(argv, {}, log_);
  }
  ~Controller() {
    process_.stop(10000);
    std::error_code ec;
    if (!keep_) std::filesystem::remove_all(dir_, ec);
  }
  bool healthy() { return process_.running() && http_get(port_, "/healthz").status == 200; }
  int port() const { return port_; }
  bool leading() {
    HttpReply r = http_get(port_, "/metrics");
    return r.status == 200 && metric(r.body, "switchboard_controller_leader") == 1.0;
  }
  void kill9() { process_.signal(SIGKILL), process_.wait(5000); }
  testing::Process& process() { return process_; }
  std::string log() const { return read_file(log_); }
  const std::string& identity() const { return identity_; }
  void keep_log() { keep_ = true; }

 private:
  std::string identity_, dir_, log_;
  int port_ = 0;
  bool keep_ = false;
  testing::Process process_;
};

// The condition of this type in an object's status, or an empty object.
struct Condition {
  std::string status, reason, message;
};
Condition condition(const kube::Object& obj, const std::string& type) {
  Condition c;
  if (!obj.has_object_field("status") || !obj.at("status").has_array_field("conditions")) return c;
  for (const auto& item : obj.at("status").at("conditions").as_array()) {
    if (item.has_string_field("type") && item.at("type").as_string() == type) {
      if (item.has_string_field("status")) c.status = item.at("status").as_string();
      if (item.has_string_field("reason")) c.reason = item.at("reason").as_string();
      if (item.has_string_field("message")) c.message = item.at("message").as_string();
    }
  }
  return c;
}
std::string status_field(const kube::Object& obj, const std::string& field) {
  if (!obj.has_object_field("status")) return "";
  const auto& s = obj.at("status");
  if (!s.has_field(field)) return "";
  return s.at(field).is_string() ? s.at(field).as_string() : s.at(field).serialize();
}
std::optional<kube::Object> get(const kube::Resource& r, const std::string& ns, const std::string& name) {
  try {
    return admin().get(r, ns, name);
  } catch (const kube::ApiError& e) {
    if (e.not_found()) return std::nullopt;
    throw;
  }
}

// The resource rules of `kubectl auth can-i --list` ("Resources  Non-Resource URLs
// Resource Names  Verbs" columns), one "resource [names] [verbs]" string per row; the
// rows of non-resource URLs (no resource) are left out.
std::vector<std::string> resource_rules(const std::string& table) {
  std::vector<std::string> rows;
  std::istringstream in(table);
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    if (line.empty() || std::isspace(static_cast<unsigned char>(line[0]))) continue;
    const std::string resource = line.substr(0, line.find_first_of(" \t"));
    std::vector<std::string> groups;  // [urls] [names] [verbs]
    for (size_t open = line.find('['); open != std::string::npos; open = line.find('[', open + 1)) {
      const size_t close = line.find(']', open);
      if (close == std::string::npos) break;
      groups.push_back(line.substr(open, close - open + 1));
      open = close;
    }
    rows.push_back(groups.size() == 3 ? resource + " " + groups[1] + " " + groups[2] : "unparsed: " + line);
  }
  return rows;
}

class ControllerE2eTest : public ::testing::Test {
 protected:
  // What the whole suite shares; set up once, by the first test.
  struct Shared {
    std::string error;
    std::unique_ptr<ControllerManager> kcm;
    std::unique_ptr<testing::NatsServer> nats;
    std::string lease_ns;
    std::unique_ptr<Controller> controller;
  };
  static Shared& shared() {
    static Shared s;
    return s;
  }

  static void SetUpTestSuite() {
    Shared& s = shared();
    try {
      if (::access(bin("switchboard-controller").c_str(), X_OK) != 0) {
        s.error = bin("switchboard-controller") + " is not built (cmake --build BUILD --target switchboard-controller)";
        return;
      }
      CommandResult r = kubectl({"apply", "-f", source("crds/")});
      if (r.status != 0) throw std::runtime_error("kubectl apply -f crds/: " + r.text());
      r = kubectl({"wait", "--for", "condition=established", "--timeout=60s", "crd/eventrouters.switchboard.dev",
                   "crd/eventroutes.switchboard.dev", "crd/eventtransforms.switchboard.dev"});
      if (r.status != 0) throw std::runtime_error("CRDs not established: " + r.text());
      // After the CRDs, so that its garbage collector knows the owners' kind from the start.
      s.kcm = std::make_unique<ControllerManager>(cluster());
      s.nats = std::make_unique<testing::NatsServer>();
      if (!s.nats->ok()) throw std::runtime_error("nats-server did not start");
      s.lease_ns = new_namespace("switchboard-system");
      s.controller = std::make_unique<Controller>("controller-a", s.lease_ns);
      if (!eventually([&] { return s.controller->leading(); }, 30s)) {
        throw std::runtime_error("controller-a did not take the lease; its log:\n" + s.controller->log());
      }
    } catch (const std::exception& e) {
      s.error = e.what();
    }
  }
  static void TearDownTestSuite() {
    Shared& s = shared();
    s.controller.reset();
    s.nats.reset();
    s.kcm.reset();
  }

  void SetUp() override {
    ASSERT_EQ(shared().error, "") << "the suite could not start";
    router::NatsConfig cfg;
    cfg.urls = {shared().nats->url()};
    cfg.name = "controller-e2e";
    std::string error;
    ASSERT_TRUE(nats_.connect(cfg, error)) << error;
  }
  void TearDown() override {
    if (HasFailure()) {
      if (runner_) std::cerr << runner_->logs();
      if (shared().controller) {
        std::string log = shared().controller->log();
        std::cerr << "--- controller log (last 8000 bytes) ---\n"
                  << log.substr(log.size() > 8000 ? log.size() - 8000 : 0) << "--- end ---\n";
      }
    }
    if (runner_) runner_->stop();
  }

  Controller& controller() { return *shared().controller; }

  void apply_file(const std::string& ns, const std::string& path, const std::string& nats_url = "") {
    std::string text = read_file(path);
    if (!nats_url.empty()) text = replace_all(text, "nats://nats.nats:4222", nats_url);
    CommandResult r = kubectl({"apply", "-n", ns, "-f", "-"}, text);
    ASSERT_EQ(r.status, 0) << r.text();
  }

  // The shipped examples, with the EventRouter pointed at the test's nats-server; then
  // the controller's Deployment, run as processes, until every pod is ready.
  void run_examples(const std::string& ns) {
    apply_file(ns, source("examples/k8s/routes.yaml"));
    apply_file(ns, source("examples/k8s/eventrouter.yaml"), shared().nats->url());
    ASSERT_TRUE(eventually([&] { return get(kube::resources::kDeployments, ns, "orders").has_value(); }, 30s))
        << "the controller wrote no Deployment";
    ASSERT_TRUE(eventually([&] { return get(kube::resources::kConfigMaps, ns, "orders-routes").has_value(); }, 30s));
    start_pods(ns);
  }

  void start_pods(const std::string& ns) {
    ASSERT_TRUE(eventually([&] { return get(kube::resources::kDeployments, ns, "orders").has_value(); }, 30s))
        << "the controller wrote no Deployment";
    PodRunnerOptions o;
    o.binary = bin("switchboard-router");
    o.api_host = cluster().host;
    o.api_port = cluster().port;
    o.ca_pem = read_file(cluster().ca_file);
    runner_ = std::make_unique<PodRunner>(admin(), o);
    runner_->start(ns, "orders");
    std::string why;
    ASSERT_TRUE(runner_->wait_ready(60s, &why)) << why;
  }

  kube::Object router_object(const std::string& ns) {
    return admin().get(kube::resources::kEventRouters, ns, "orders");
  }
  // Waits until the EventRouter says every pod runs the current table.
  bool wait_fleet_ready(const std::string& ns, const std::string& applied, std::chrono::milliseconds timeout = 60s) {
    return eventually(
        [&] {
          kube::Object r = router_object(ns);
          return status_field(r, "applied") == applied && condition(r, "Ready").status == "True";
        },
        timeout);
  }

  // Drains heartbeats until every pod in `pods` has reported a table newer than
  // `after`, applied; returns the generation.
  bool wait_generation(Inbox& beats, const std::set<std::string>& pods, double after,
                       std::chrono::milliseconds timeout, double* generation = nullptr) {
    std::set<std::string> seen;
    double gen = -1;
    auto deadline = Clock::now() + timeout;
    Inbox::Received r;
    while (seen != pods && Clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (!beats.next(r, std::max(left, 1ms))) break;
      Heartbeat h = parse_heartbeat(r.data);
      if (h.state == "applied" && h.generation > after && pods.count(h.pod)) {
        seen.insert(h.pod);
        gen = std::max(gen, h.generation);
      }
    }
    if (generation) *generation = gen;
    return seen == pods;
  }

  void publish(const std::string& subject, const std::string& data) {
    std::string error;
    ASSERT_TRUE(nats_.publish(subject, {}, data, error)) << error;
    ASSERT_TRUE(nats_.flush(5000));
  }

  router::NatsClient nats_;
  std::unique_ptr<PodRunner> runner_;
};

TEST_F(ControllerE2eTest, ExamplesRunAndEveryPodReportsTheTable) {
  std::string ns = new_namespace("shop");
  Inbox large(nats_, "orders.*.large");
  Inbox summary(nats_, "payments.summary.>");
  auto t0 = Clock::now();
  run_examples(ns);
  ASSERT_TRUE(wait_fleet_ready(ns, "2/2")) << router_object(ns).serialize();
  std::cout << "[ measured ] examples applied to EventRouter Ready with APPLIED 2/2: " << since(t0).count()
            << " ms (heartbeatInterval 2s)\n";

  // What an operator sees.
  CommandResult r = kubectl({"get", "eventrouter", "orders", "-n", ns});
  EXPECT_EQ(r.status, 0) << r.text();
  EXPECT_NE(r.out.find("2/2"), std::string::npos) << r.out;
  r = kubectl({"get", "eventroute", "large-orders", "-n", ns, "-o",
               "jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.status.applied}"});
  EXPECT_EQ(r.out, "True 2/2") << r.text();
  EXPECT_TRUE(eventually([&] {
    kube::Object route = admin().get(kube::resources::kEventRoutes, ns, "audit-copy");
    return condition(route, "Ready").status == "True" && status_field(route, "applied") == "2/2";
  })) << admin().get(kube::resources::kEventRoutes, ns, "audit-copy").serialize();
  r = kubectl({"get", "switchboard", "-n", ns});
  EXPECT_EQ(r.status, 0) << r.text();
  for (const char* name : {"orders", "large-orders", "audit-copy", "payment-summary", "normalize-order"}) {
    EXPECT_NE(r.out.find(name), std::string::npos) << name << " missing from `kubectl get switchboard`:\n" << r.out;
  }

  // Events through the routes the controller compiled.
  publish("orders.eu.created",
          R"({"id":12345678901234567890,"amount":150.0,"currency":"EUR","region":"eu","cust":{"tier":"gold"},"internal":1})");
  Inbox::Received m;
  ASSERT_TRUE(large.next(m));
  EXPECT_EQ(m.subject, "orders.EU.large");
  EXPECT_NE(m.data.find("\"id\":12345678901234567890"), std::string::npos) << m.data;
  EXPECT_NE(m.data.find("\"region\":\"EU\""), std::string::npos) << m.data;
  EXPECT_NE(m.data.find("\"customer\":{\"tier\":\"gold\"}"), std::string::npos) << m.data;
  EXPECT_EQ(m.data.find("internal"), std::string::npos) << m.data;
  bool tier = false;
  for (const auto& [k, v] : m.headers) tier = tier || (k == "x-tier" && v == "gold");
  EXPECT_TRUE(tier);
  publish("orders.eu.created", R"({"amount":5.0,"currency":"EUR","region":"eu"})");  // filtered
  EXPECT_FALSE(large.next(m, 500ms)) << m.subject << " " << m.data;
  publish("payments.p7", R"({"id":7,"status":"settled"})");
  ASSERT_TRUE(summary.next(m));
  EXPECT_EQ(m.subject, "payments.summary.p7");
  EXPECT_EQ(m.data, R"({"id":7,"ok":true,"source":"payments.p7"})");
}

TEST_F(ControllerE2eTest, AnEditedRouteReachesEveryRouterWithinTwoSeconds) {
  std::string ns = new_namespace("edit");
  Inbox beats(nats_, "switchboard.status." + ns + ".orders");
  Inbox big(nats_, "orders.*.big");
  run_examples(ns);
  ASSERT_TRUE(wait_fleet_ready(ns, "2/2"));
  double before = std::stod(status_field(router_object(ns), "tableGeneration"));

  // The issue's bound: an edit is running on every router within 2 seconds of kubectl
  // returning (controller reconcile, ConfigMap write, watch, compile, swap, heartbeat).
  std::vector<std::chrono::milliseconds> times;
  for (int round = 0; round < 3; ++round) {
    std::string subject = round % 2 == 0 ? "orders.{{ event.region }}.big" : "orders.{{ event.region }}.large";
    beats.clear();
    auto t0 = Clock::now();
    CommandResult r = kubectl({"patch", "eventroute", "large-orders", "-n", ns, "--type", "merge", "-p",
                               R"({"spec":{"destinations":[{"subject":")" + subject + R"("}]}})"});
    ASSERT_EQ(r.status, 0) << r.text();
    double now = 0;
    ASSERT_TRUE(wait_generation(beats, {"orders-0", "orders-1"}, before, 10s, &now))
        << "round " << round << ": not every router applied a newer table than " << before;
    times.push_back(since(t0));
    before = now;
  }
  for (size_t i = 0; i < times.size(); ++i) {
    std::cout << "[ measured ] edit " << i + 1 << " to applied on both routers: " << times[i].count() << " ms\n";
    EXPECT_LT(times[i], 2s) << "edit " << i + 1;
  }
  // Rounds 1 and 3 moved the output to .big, round 2 back to .large: it ends on .big.
  publish("orders.us.created", R"({"amount":500.0,"currency":"USD","region":"us"})");
  Inbox::Received m;
  ASSERT_TRUE(big.next(m));
  EXPECT_EQ(m.subject, "orders.US.big");
  EXPECT_TRUE(wait_fleet_ready(ns, "2/2", 30s)) << router_object(ns).serialize();
}

TEST_F(ControllerE2eTest, AnInvalidFilterIsRefusedWithItsPosition) {
  std::string ns = new_namespace("invalid");
  Inbox beats(nats_, "switchboard.status." + ns + ".orders");
  run_examples(ns);
  ASSERT_TRUE(wait_fleet_ready(ns, "2/2"));
  std::string table = status_field(router_object(ns), "tableGeneration");

  // What the schema can tell: an empty filter never reaches the controller.
  const std::string route = R"(apiVersion: switchboard.dev/v1alpha1
kind: EventRoute
metadata: {name: broken}
spec:
  router: orders
  source: {subject: orders.*.created}
  filter: FILTER
  destinations: [{subject: broken.out}]
)";
  CommandResult r = kubectl({"apply", "-n", ns, "-f", "-"}, replace_all(route, "FILTER", "''"));
  EXPECT_NE(r.status, 0) << "an empty filter was accepted";
  EXPECT_NE(r.text().find("spec.filter"), std::string::npos) << r.text();

  // What only the CEL checker can tell: Ready=False, the reason, and where.
  r = kubectl({"apply", "-n", ns, "-f", "-"}, replace_all(route, "FILTER", "'event.amount >= 100 && evnt.x'"));
  ASSERT_EQ(r.status, 0) << r.text();
  Condition c;
  ASSERT_TRUE(eventually([&] {
    c = condition(admin().get(kube::resources::kEventRoutes, ns, "broken"), "Ready");
    return c.status == "False";
  }, 30s)) << admin().get(kube::resources::kEventRoutes, ns, "broken").serialize();
  EXPECT_EQ(c.reason, "InvalidFilter");
  EXPECT_NE(c.message.find("undeclared reference to 'evnt'"), std::string::npos) << c.message;
  // file:line:column of the filter's text, and the route and field it belongs to.
  EXPECT_TRUE(std::regex_search(c.message, std::regex("broken:[0-9]+:[0-9]+: route 'broken', filter")))
      << "no position in: " << c.message;
  r = kubectl({"get", "eventroute", "broken", "-n", ns});
  EXPECT_NE(r.out.find("InvalidFilter"), std::string::npos) << r.out;
  std::cout << "[ measured ] invalid filter message: " << c.message << "\n";

  // The routers keep their table: a broken route is left out, not shipped.
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(status_field(router_object(ns), "tableGeneration"), table);
  EXPECT_TRUE(wait_fleet_ready(ns, "2/2", 10s));
}

// The CRDs on a real API server: rules that span fields (x-kubernetes-validations) and
// patterns refuse what they should, with their message, while the same objects without the
// fault pass; kubectl explain, the short names and the scale subresource work.
TEST_F(ControllerE2eTest, TheApiServerEnforcesTheSchemaAndServesTheCrdsFeatures) {
  const std::string ns = new_namespace("schema");
  const std::string router = R"(apiVersion: switchboard.dev/v1alpha1
kind: EventRouter
metadata: {name: strict}
spec:
  replicas: 1
  nats:
    urls: [URL]
    AUTH
)";
  const std::string route = R"(apiVersion: switchboard.dev/v1alpha1
kind: EventRoute
metadata: {name: strict}
spec:
  router: strict
  source:
    subject: orders.*
    jetstream: {stream: ORDERS, durable: strict, ackWait: ACK}
  transform:
    - STEP
  destinations: [{subject: out.strict}]
)";
  auto dry_run = [&](const std::string& manifest) {
    return kubectl({"apply", "--dry-run=server", "-n", ns, "-f", "-"}, manifest);
  };
  auto router_with = [&](const std::string& url, const std::string& auth) {
    return replace_all(replace_all(router, "URL", url), "AUTH", auth);
  };
  auto route_with = [&](const std::string& ack, const std::string& step) {
    return replace_all(replace_all(route, "ACK", ack), "STEP", step);
  };
  const std::string good_auth = "auth: {secretName: nats, tokenKey: token}";
  CommandResult r = dry_run(router_with("nats://nats.nats:4222", good_auth));
  ASSERT_EQ(r.status, 0) << r.text();
  r = dry_run(route_with("30s", "set: {region: 'event.region'}"));
  ASSERT_EQ(r.status, 0) << r.text();

  struct Refusal {
    std::string manifest, says;
  };
  const std::vector<Refusal> refusals = {
      {router_with("nats://nats.nats:4222", "auth: {secretName: nats, tokenKey: token, credsKey: creds}"),
       "give exactly one of userKey and passwordKey, tokenKey, nkeySeedKey, credsKey"},
      {router_with("nats://nats.nats:4222", "auth: {secretName: nats, userKey: user}"),
       "userKey and passwordKey go together"},
      {router_with("nats://nats.nats:4222", "tls: {secretName: tls, certKey: tls.crt}"), "certKey and keyKey go together"},
      {router_with("nats://router:s3cret@nats.nats:4222", good_auth), "spec.nats.urls[0]"},
      {route_with("0s", "set: {region: 'event.region'}"), "must be more than 0 and at most 8760h"},
      // (maxProperties refuses it before the rule that says the same is evaluated.)
      {route_with("30s", "{set: {a: '1'}, remove: [b]}"), "spec.transform[0]: Too many"},
  };
  for (const auto& refusal : refusals) {
    r = dry_run(refusal.manifest);
    EXPECT_NE(r.status, 0) << "accepted:\n" << refusal.manifest;
    EXPECT_NE(r.text().find(refusal.says), std::string::npos) << r.text();
  }

  // kubectl explain reads the schema's descriptions.
  r = kubectl({"explain", "eventroute.spec.filter"});
  ASSERT_EQ(r.status, 0) << r.text();
  EXPECT_NE(r.out.find("FIELD: filter"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CEL"), std::string::npos) << "no description:\n" << r.out;
  // Short names and the category.
  r = kubectl({"apply", "-n", ns, "-f", "-"}, router_with("nats://nats.nats:4222", good_auth));
  ASSERT_EQ(r.status, 0) << r.text();
  for (const char* name : {"erouter", "switchboard"}) {
    r = kubectl({"get", name, "-n", ns, "-o", "name"});
    EXPECT_EQ(r.status, 0) << r.text();
    EXPECT_NE(r.out.find("eventrouter.switchboard.dev/strict"), std::string::npos) << name << ": " << r.out;
  }
  // kubectl scale goes through the scale subresource to spec.replicas, and the
  // controller carries it to the Deployment.
  r = kubectl({"scale", "eventrouter/strict", "-n", ns, "--replicas=3"});
  ASSERT_EQ(r.status, 0) << r.text();
  EXPECT_EQ(admin().get(kube::resources::kEventRouters, ns, "strict").at("spec").at("replicas").as_integer(), 3);
  EXPECT_TRUE(eventually([&] {
    auto d = get(kube::resources::kDeployments, ns, "strict");
    return d && d->at("spec").at("replicas").as_integer() == 3;
  }, 30s));
}

TEST_F(ControllerE2eTest, TheRoutersServiceAccountReadsItsConfigMapAndNothingElse) {
  std::string ns = new_namespace("rbac");
  apply_file(ns, source("examples/k8s/routes.yaml"));
  apply_file(ns, source("examples/k8s/eventrouter.yaml"), shared().nats->url());
  ASSERT_TRUE(eventually([&] { return get(kube::resources::kRoleBindings, ns, "orders-router").has_value(); }, 30s));
  std::string as = "system:serviceaccount:" + ns + ":orders-router";
  auto can = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"auth", "can-i", "-n", ns, "--as", as};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = kubectl(argv);
    // can-i exits 0 for yes and 1 for no; anything else is an error.
    EXPECT_TRUE(r.status == 0 || r.status == 1) << r.text();
    return r.status == 0;
  };
  EXPECT_TRUE(can({"get", "configmap/orders-routes"}));
  EXPECT_TRUE(can({"watch", "configmap/orders-routes"}));
  EXPECT_TRUE(can({"list", "configmap/orders-routes"}));
  EXPECT_FALSE(can({"get", "configmap/other"}));
  EXPECT_FALSE(can({"list", "configmaps"}));
  EXPECT_FALSE(can({"update", "configmap/orders-routes"}));
  EXPECT_FALSE(can({"get", "secrets"}));
  EXPECT_FALSE(can({"list", "secrets"}));
  EXPECT_FALSE(can({"get", "secret/anything"}));
  EXPECT_FALSE(can({"get", "pods"}));
  EXPECT_FALSE(can({"get", "eventroutes"}));
  // Not even its own router's routes in another namespace.
  std::vector<std::string> other = {"auth", "can-i", "-n", "default", "--as", as, "get", "configmap/orders-routes"};
  EXPECT_EQ(kubectl(other).status, 1);

  // Every verb on every resource at once: the whole of what the API server lets the
  // ServiceAccount do in its namespace is reading that one ConfigMap, beside what every
  // authenticated user may do (asked of a ServiceAccount that nothing is bound to).
  auto rules_of = [&](const std::string& user) {
    CommandResult list = kubectl({"auth", "can-i", "--list", "-n", ns, "--as", user});
    EXPECT_EQ(list.status, 0) << list.text();
    std::vector<std::string> rows = resource_rules(list.out);
    return std::set<std::string>(rows.begin(), rows.end());
  };
  const std::set<std::string> everyone = rules_of("system:serviceaccount:" + ns + ":nobody");
  EXPECT_NE(everyone.count("selfsubjectaccessreviews.authorization.k8s.io [] [create]"), 0u)
      << "the table was not read: the comparison below would prove nothing";
  std::set<std::string> granted;
  for (const std::string& row : rules_of(as)) {
    if (everyone.count(row) == 0) granted.insert(row);
  }
  EXPECT_EQ(granted, std::set<std::string>{"configmaps [orders-routes] [get list watch]"});
}

TEST_F(ControllerE2eTest, DeletingAnEventRouterRemovesWhatItOwned) {
  std::string ns = new_namespace("gc");
  apply_file(ns, source("examples/k8s/routes.yaml"));
  apply_file(ns, source("examples/k8s/eventrouter.yaml"), shared().nats->url());
  struct Owned {
    const kube::Resource* r;
    std::string name;
  };
  std::vector<Owned> owned = {{&kube::resources::kDeployments, "orders"},
                              {&kube::resources::kConfigMaps, "orders-routes"},
                              {&kube::resources::kServiceAccounts, "orders-router"},
                              {&kube::resources::kRoles, "orders-router"},
                              {&kube::resources::kRoleBindings, "orders-router"},
                              {&kube::resources::kServices, "orders-metrics"},
                              {&kube::resources::kPodDisruptionBudgets, "orders"}};
  for (const auto& o : owned) {
    ASSERT_TRUE(eventually([&] { return get(*o.r, ns, o.name).has_value(); }, 30s))
        << o.r->kind << " " << o.name << " was never written";
    kube::Object obj = *get(*o.r, ns, o.name);
    EXPECT_TRUE(obj.at("metadata").has_array_field("ownerReferences")) << o.r->kind << " " << o.name;
  }
  auto t0 = Clock::now();
  CommandResult r = kubectl({"delete", "eventrouter", "orders", "-n", ns, "--wait=true", "--timeout=60s"});
  ASSERT_EQ(r.status, 0) << r.text();
  for (const auto& o : owned) {
    EXPECT_TRUE(eventually([&] { return !get(*o.r, ns, o.name).has_value(); }, 60s))
        << o.r->kind << " " << o.name << " outlived its EventRouter";
  }
  std::cout << "[ measured ] EventRouter deleted to every owned object gone: " << since(t0).count() << " ms\n";
  // Its routes stay: they belong to the user, not to the router.
  EXPECT_TRUE(get(kube::resources::kEventRoutes, ns, "large-orders").has_value());
}

TEST_F(ControllerE2eTest, ThePodTemplatePassesThePodSecurityRestrictedProfile) {
  std::string ns = new_namespace("restricted", {"pod-security.kubernetes.io/enforce=restricted",
                                                "pod-security.kubernetes.io/enforce-version=latest"});
  apply_file(ns, source("examples/k8s/routes.yaml"));
  apply_file(ns, source("examples/k8s/eventrouter.yaml"), shared().nats->url());
  ASSERT_TRUE(eventually([&] { return get(kube::resources::kDeployments, ns, "orders").has_value(); }, 30s));
  kube::Object d = *get(kube::resources::kDeployments, ns, "orders");
  // No kubelet here, so no ReplicaSet makes the pods: create one from the template with a
  // server-side dry run, which runs admission (PodSecurity included) and stores nothing.
  auto pod_from = [&](const kube::Object& template_spec) {
    kube::Object pod = kube::Object::object();
    pod["apiVersion"] = kube::Object::string("v1");
    pod["kind"] = kube::Object::string("Pod");
    pod["metadata"]["name"] = kube::Object::string("orders-dry-run");
    pod["metadata"]["namespace"] = kube::Object::string(ns);
    pod["spec"] = template_spec;
    return pod.serialize();
  };
  kube::Object spec = d.at("spec").at("template").at("spec");
  CommandResult r = kubectl({"create", "--dry-run=server", "-o", "name", "-f", "-"}, pod_from(spec));
  EXPECT_EQ(r.status, 0) << r.text();
  EXPECT_EQ(r.out, "pod/orders-dry-run\n") << r.text();
  EXPECT_EQ(r.err.find("violate"), std::string::npos) << r.err;

  // The namespace does enforce: the same pod on the host's network is refused.
  spec["hostNetwork"] = kube::Object::boolean(true);
  r = kubectl({"create", "--dry-run=server", "-f", "-"}, pod_from(spec));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.text().find("violates PodSecurity \"restricted"), std::string::npos) << r.text();
}

TEST_F(ControllerE2eTest, RoutersAndTheControllerAuthenticateWithTheEventRoutersSecret) {
  // A nats-server of its own that wants a token: the routers read it from the Secret the
  // Deployment mounts, the controller from the Secret itself. APPLIED 2/2 needs both.
  testing::NatsServer secured(testing::NatsServer::Config{"authorization { token: \"t0ken-e2e\" }"});
  ASSERT_TRUE(secured.ok());
  router::NatsClient client;
  router::NatsConfig cfg;
  cfg.urls = {secured.url()};
  cfg.token = "t0ken-e2e";
  std::string error;
  ASSERT_TRUE(client.connect(cfg, error)) << error;
  Inbox summary(client, "payments.summary.>");

  std::string ns = new_namespace("auth");
  apply_file(ns, source("examples/k8s/routes.yaml"));
  CommandResult r = kubectl({"create", "secret", "generic", "nats-token", "-n", ns, "--from-literal=token=t0ken-e2e"});
  ASSERT_EQ(r.status, 0) << r.text();
  std::string router = read_file(source("examples/k8s/eventrouter.yaml"));
  router = replace_all(router, "urls: [nats://nats.nats:4222]",
                       "urls: [" + secured.url() + "]\n    auth: {secretName: nats-token, tokenKey: token}");
  r = kubectl({"apply", "-n", ns, "-f", "-"}, router);
  ASSERT_EQ(r.status, 0) << r.text();
  ASSERT_TRUE(eventually([&] { return get(kube::resources::kDeployments, ns, "orders").has_value(); }, 30s));
  start_pods(ns);
  // The credential reached the router as a file in the mounted Secret, not as a value.
  const PodPlan& plan = runner_->pod(0).plan;
  bool file_flag = false;
  for (size_t i = 0; i + 1 < plan.argv.size(); ++i) {
    if (plan.argv[i] == "--nats-token-file") {
      file_flag = true;
      EXPECT_EQ(read_file(plan.argv[i + 1]), "t0ken-e2e") << plan.argv[i + 1];
    }
    EXPECT_EQ(plan.argv[i].find("t0ken-e2e"), std::string::npos) << "the token is on the command line";
  }
  EXPECT_TRUE(file_flag) << "no --nats-token-file in the Deployment's args";
  ASSERT_TRUE(wait_fleet_ready(ns, "2/2")) << router_object(ns).serialize();

  std::string publish_error;
  ASSERT_TRUE(client.publish("payments.p9", {}, R"({"id":9,"status":"open"})", publish_error)) << publish_error;
  client.flush(5000);
  Inbox::Received m;
  ASSERT_TRUE(summary.next(m));
  EXPECT_EQ(m.data, R"({"id":9,"ok":false,"source":"payments.p9"})");
  runner_->stop();
  // Neither the routers nor the controller wrote the token anywhere in their logs (the
  // controller logs at debug level here).
  const std::string logs = runner_->logs();
  EXPECT_NE(logs.find("router started"), std::string::npos) << "no router log: the check below would prove nothing";
  EXPECT_EQ(logs.find("t0ken-e2e"), std::string::npos) << logs;
  EXPECT_EQ(shared().controller->log().find("t0ken-e2e"), std::string::npos);
}

// A JetStream route's durable consumer, made by the router pods, is removed through the
// finalizer when the route is deleted: the route stays (Terminating) until every pod runs a
// table without it and the controller has deleted the consumer, then goes.
TEST_F(ControllerE2eTest, DeletingAJetStreamRouteRemovesItsConsumerThroughTheFinalizer) {
  testing::NatsServer js_server(true);
  ASSERT_TRUE(js_server.ok());
  router::NatsClient js;
  router::NatsConfig cfg;
  cfg.urls = {js_server.url()};
  std::string error;
  ASSERT_TRUE(js.connect(cfg, error)) << error;
  ASSERT_EQ(testing::add_stream(js.jetstream(), "ORDERS", "orders.>"), "");
  auto consumer_exists = [&] { return testing::consumer_exists(js.jetstream(), "ORDERS", "orders-js"); };

  const std::string ns = new_namespace("finalizer");
  apply_file(ns, source("examples/k8s/eventrouter.yaml"), js_server.url());
  CommandResult r = kubectl({"apply", "-n", ns, "-f", "-"}, R"(apiVersion: switchboard.dev/v1alpha1
kind: EventRoute
metadata:
  name: orders-js
  labels: {app.kubernetes.io/part-of: orders}
spec:
  router: orders
  source:
    subject: orders.*
    jetstream: {stream: ORDERS, durable: orders-js}
  destinations: [{subject: js.out}]
)");
  ASSERT_EQ(r.status, 0) << r.text();
  start_pods(ns);
  ASSERT_TRUE(wait_fleet_ready(ns, "2/2")) << router_object(ns).serialize();
  ASSERT_TRUE(eventually(consumer_exists, 30s)) << "the router pods made no consumer";
  ASSERT_TRUE(eventually([&] {
    auto route = get(kube::resources::kEventRoutes, ns, "orders-js");
    return route && route->at("metadata").has_array_field("finalizers") &&
           route->at("metadata").at("finalizers").serialize().find("switchboard.dev/jetstream-consumer") !=
               std::string::npos;
  }, 30s)) << "no finalizer on the route";

  r = kubectl({"delete", "eventroute", "orders-js", "-n", ns, "--wait=false"});
  ASSERT_EQ(r.status, 0) << r.text();
  EXPECT_TRUE(eventually([&] { return !get(kube::resources::kEventRoutes, ns, "orders-js").has_value(); }, 60s))
      << get(kube::resources::kEventRoutes, ns, "orders-js")->serialize();
  EXPECT_FALSE(consumer_exists()) << "the route is gone but its consumer stayed";
  runner_->stop();
}

TEST_F(ControllerE2eTest, ALargeTableIsSplitIntoPartsThatTheRoutersAssemble) {
  std::string ns = new_namespace("large");
  Inbox out(nats_, "big.out");
  // 64 routes with a filter of 16,000 characters each: about 1 MiB of canonical JSON,
  // more than one ConfigMap holds.
  std::string routes;
  const std::string filler(16000 - 40, 'x');
  for (int i = 0; i < 64; ++i) {
    routes += "---\napiVersion: switchboard.dev/v1alpha1\nkind: EventRoute\nmetadata: {name: big-" +
              std::to_string(i) + "}\nspec:\n  router: orders\n  source: {subject: big." + std::to_string(i) +
              "}\n  filter: 'event.k == \"" + filler + "\" || event.k == \"go\"'\n  destinations: [{subject: big.out}]\n";
  }
  CommandResult r = kubectl({"apply", "--server-side", "-n", ns, "-f", "-"}, routes);
  ASSERT_EQ(r.status, 0) << r.text().substr(0, 2000);
  auto t0 = Clock::now();
  apply_file(ns, source("examples/k8s/eventrouter.yaml"), shared().nats->url());
  std::optional<kube::Object> cm;
  ASSERT_TRUE(eventually([&] {
    cm = get(kube::resources::kConfigMaps, ns, "orders-routes");
    return cm && cm->has_object_field("data") && cm->at("data").has_string_field("index.json");
  }, 60s)) << (cm ? cm->serialize().substr(0, 2000) : std::string("no ConfigMap"));
  kube::Object index = kube::Object::parse(cm->at("data").at("index.json").as_string());
  size_t parts = index.at("parts").as_array().size();
  EXPECT_GE(parts, 2u);
  // The Role names each part: the routers read them as their ServiceAccount.
  kube::Object role = admin().get(kube::resources::kRoles, ns, "orders-router");
  std::set<std::string> names;
  for (const auto& rule : role.at("rules").as_array()) {
    if (rule.has_array_field("resourceNames")) {
      for (const auto& n : rule.at("resourceNames").as_array()) names.insert(n.as_string());
    }
  }
  for (const auto& part : index.at("parts").as_array()) {
    EXPECT_TRUE(names.count(part.at("name").as_string())) << part.at("name").as_string() << " not in the Role";
  }
  start_pods(ns);
  ASSERT_TRUE(wait_fleet_ready(ns, "2/2")) << router_object(ns).serialize();
  std::cout << "[ measured ] 64 routes (" << parts << " parts) applied to APPLIED 2/2: " << since(t0).count()
            << " ms\n";
  publish("big.17", R"({"k":"go"})");
  publish("big.18", R"({"k":"stay"})");
  Inbox::Received m;
  ASSERT_TRUE(out.next(m));
  EXPECT_EQ(m.data, R"({"k":"go"})");
  EXPECT_FALSE(out.next(m, 500ms)) << m.data;
}

TEST_F(ControllerE2eTest, DriftIsRepairedWhileTheRoutersKeepRunning) {
  std::string ns = new_namespace("drift");
  Inbox beats(nats_, "switchboard.status." + ns + ".orders");
  Inbox summary(nats_, "payments.summary.>");
  run_examples(ns);
  ASSERT_TRUE(wait_fleet_ready(ns, "2/2"));
  kube::Object cm = admin().get(kube::resources::kConfigMaps, ns, "orders-routes");
  std::string uid = cm.at("metadata").at("uid").as_string();
  std::string routes = cm.at("data").at("routes.json").as_string();

  // A hand edit of the table is put back.
  CommandResult r = kubectl({"patch", "configmap", "orders-routes", "-n", ns, "--type", "merge", "-p",
                             R"({"data":{"routes.json":"{\"routes\":[]}"}})"});
  ASSERT_EQ(r.status, 0) << r.text();
  EXPECT_TRUE(eventually([&] {
    return admin().get(kube::resources::kConfigMaps, ns, "orders-routes").at("data").at("routes.json").as_string() ==
           routes;
  }, 20s)) << "the edited ConfigMap was not repaired";

  // Deleted owned objects come back.
  auto t0 = Clock::now();
  for (const char* what : {"configmap/orders-routes", "deployment/orders", "role/orders-router"}) {
    r = kubectl({"delete", what, "-n", ns});
    ASSERT_EQ(r.status, 0) << r.text();
  }
  EXPECT_TRUE(eventually([&] {
    auto c = get(kube::resources::kConfigMaps, ns, "orders-routes");
    return c && c->at("metadata").at("uid").as_string() != uid &&
           get(kube::resources::kDeployments, ns, "orders").has_value() &&
           get(kube::resources::kRoles, ns, "orders-router").has_value();
  }, 30s)) << "deleted objects were not recreated";
  std::cout << "[ measured ] deleted ConfigMap, Deployment and Role recreated: " << since(t0).count() << " ms\n";

  // The routers ran on throughout, and whatever they saw of the gap (a refused edit, a
  // missing ConfigMap) is behind them: every pod runs the table again.
  EXPECT_TRUE(wait_fleet_ready(ns, "2/2", 30s)) << router_object(ns).serialize();
  beats.clear();
  Heartbeat h;
  ASSERT_TRUE(eventually([&] {
    Inbox::Received m;
    while (beats.next(m, 100ms)) {
      h = parse_heartbeat(m.data);
      if (h.pod == "orders-0") return true;
    }
    return false;
  }, 10s));
  EXPECT_EQ(h.state, "applied");
  EXPECT_EQ(h.source_error, "") << "the router still reports a problem with its ConfigMap";
  publish("payments.p3", R"({"id":3,"status":"settled"})");
  Inbox::Received m;
  ASSERT_TRUE(summary.next(m));
  EXPECT_EQ(m.subject, "payments.summary.p3");
}

// Last in the file: it leaves controller-b leading, alone.
TEST_F(ControllerE2eTest, ASecondControllerTakesOverWhenTheLeaderIsKilled) {
  std::string ns = new_namespace("failover");
  Inbox beats(nats_, "switchboard.status." + ns + ".orders");
  run_examples(ns);
  ASSERT_TRUE(wait_fleet_ready(ns, "2/2"));
  Controller& a = controller();
  ASSERT_TRUE(a.leading());
  auto b = std::make_unique<Controller>("controller-b", shared().lease_ns);
  ASSERT_TRUE(eventually([&] { return b->healthy(); }, 30s)) << b->log();
  std::this_thread::sleep_for(3s);  // a few retry periods: b must stay a standby
  EXPECT_FALSE(b->leading());
  kube::Object lease = admin().get(kube::resources::kLeases, shared().lease_ns, "switchboard-controller");
  // The identity is the pod name and a suffix of its own (a restarted pod is a new holder).
  EXPECT_EQ(lease.at("spec").at("holderIdentity").as_string().rfind("controller-a", 0), 0u) << lease.serialize();

  // kill -9: no release; b waits for the lease to expire (15s) and takes it.
  auto t0 = Clock::now();
  a.kill9();
  ASSERT_TRUE(eventually([&] { return b->leading(); }, 30s)) << b->log();
  auto took_lease = since(t0);
  lease = admin().get(kube::resources::kLeases, shared().lease_ns, "switchboard-controller");
  EXPECT_EQ(lease.at("spec").at("holderIdentity").as_string().rfind("controller-b", 0), 0u) << lease.serialize();

  std::cout << "[ measured ] leader killed (kill -9) to controller-b leading: " << took_lease.count() << " ms\n";
  EXPECT_LT(took_lease, 20s);

  // And it reconciles: an edit reaches the routers through the new leader.
  double before = std::stod(status_field(router_object(ns), "tableGeneration"));
  beats.clear();
  auto t1 = Clock::now();
  CommandResult r = kubectl({"patch", "eventroute", "large-orders", "-n", ns, "--type", "merge", "-p",
                             R"({"spec":{"destinations":[{"subject":"orders.{{ event.region }}.failover"}]}})"});
  ASSERT_EQ(r.status, 0) << r.text();
  ASSERT_TRUE(wait_generation(beats, {"orders-0", "orders-1"}, before, 20s)) << b->log();
  std::cout << "[ measured ] after the takeover, an edit to applied on both routers: " << since(t1).count()
            << " ms\n";
  EXPECT_LT(since(t1), 5s);
  EXPECT_TRUE(wait_fleet_ready(ns, "2/2", 30s)) << b->log();

  // The rest of the suite (if any comes after) goes on with b leading.
  shared().controller = std::move(b);
}

// SIGTERM (a rollout, a drained node) is not kill -9: the leader gives the Lease up on its
// way out, so a standby takes over at once instead of waiting for it to expire. A
// controller of its own, with a Lease and a watched namespace of its own, so that it
// leaves the suite's controller and objects alone.
TEST_F(ControllerE2eTest, ALeaderStoppedWithSigtermReleasesTheLease) {
  const std::string ns = new_namespace("lease");
  auto holder = [&] {
    kube::Object lease = admin().get(kube::resources::kLeases, ns, "switchboard-controller");
    return lease.at("spec").has_string_field("holderIdentity") ? lease.at("spec").at("holderIdentity").as_string()
                                                               : std::string();
  };
  Controller c("controller-c", ns, {"--namespace", ns});
  ASSERT_TRUE(eventually([&] { return c.leading(); }, 30s)) << c.log();
  EXPECT_EQ(holder().rfind("controller-c", 0), 0u);
  EXPECT_EQ(c.process().stop(10000), 0) << "SIGTERM must end the controller with status 0\n" << c.log();
  EXPECT_EQ(holder(), "") << "the Lease was not released\n" << c.log();
  // The next one takes it (leading in less than the 15 s lease duration follows, but the
  // empty holder above is what says it did not have to wait).
  Controller d("controller-d", ns, {"--namespace", ns});
  ASSERT_TRUE(eventually([&] { return d.leading(); }, 30s)) << d.log();
  EXPECT_EQ(holder().rfind("controller-d", 0), 0u);
}

// /readyz says ready only once every cache has listed: a controller that starts while the
// API server does not answer (here: kube-apiserver stopped with SIGSTOP, so its socket
// takes connections and answers nothing) is alive but not ready, and becomes ready once
// the server answers, without a restart.
TEST_F(ControllerE2eTest, ItIsNotReadyUntilItsCachesHaveListed) {
  const std::string ns = new_namespace("readyz");
  const std::string pid_text = read_file(cluster().dir + "/kube-apiserver.pid");
  const pid_t apiserver = static_cast<pid_t>(std::stol(pid_text.empty() ? "0" : pid_text));
  ASSERT_GT(apiserver, 0) << "no kube-apiserver.pid in " << cluster().dir;
  ASSERT_EQ(::kill(apiserver, SIGSTOP), 0);
  struct Resume {  // whatever happens below, the shared API server runs again
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{apiserver};
  Controller c("controller-r", ns, {"--namespace", ns});
  ASSERT_TRUE(eventually([&] { return c.healthy(); }, 20s)) << c.log();
  HttpReply r = http_get(c.port(), "/readyz");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.body, "caches not synced yet");
  ::kill(apiserver, SIGCONT);
  ASSERT_TRUE(eventually([&] { return http_get(c.port(), "/readyz").status == 200; }, 60s)) << c.log();
  EXPECT_TRUE(c.healthy());
}

// An EventRouter whose NATS server takes the TCP connection and never answers: cnats 3.4.1
// does not return from the first connection (nor from a reconnect to such a server), and
// the reconciles that touch NATS wait with it. The controller's liveness fails with the
// reason, so that the kubelet restarts it, and recovers when the server lets go.
TEST_F(ControllerE2eTest, ItFailsLivenessWhileANatsConnectionHangs) {
  const std::string ns = new_namespace("hung");
  const int port = testing::free_port();
  auto silent = std::make_unique<testing::SilentNatsServer>(port);
  ASSERT_TRUE(silent->ok());
  const std::string url = "nats://127.0.0.1:" + std::to_string(port);
  Controller c("controller-h", ns, {"--namespace", ns});
  ASSERT_TRUE(eventually([&] { return c.healthy(); }, 20s)) << c.log();
  std::string router = read_file(source("examples/k8s/eventrouter.yaml"));
  router = replace_all(router, "urls: [nats://nats.nats:4222]", "urls: [" + url + "]");
  CommandResult r = kubectl({"apply", "-n", ns, "-f", "-"}, router);
  ASSERT_EQ(r.status, 0) << r.text();
  HttpReply health;
  const bool failed = eventually(
      [&] {
        health = http_get(c.port(), "/healthz");
        return health.status == 503;
      },
      60s);
  silent.reset();  // closes the connections: cnats returns, and the reconciles go on
  ASSERT_TRUE(failed) << "liveness did not fail while the NATS connection hung; last answer " << health.status
                      << " " << health.body << "\n" << c.log();
  EXPECT_NE(health.body.find("connecting to NATS at " + url + " has not returned for"), std::string::npos)
      << health.body;
  EXPECT_TRUE(eventually([&] { return c.healthy(); }, 30s)) << "liveness did not recover\n" << c.log();
  EXPECT_TRUE(eventually([&] { return shared().controller->healthy(); }, 30s))
      << "the suite's controller, which reconciled the same EventRouter, did not recover";
  EXPECT_EQ(kubectl({"delete", "eventrouter", "--all", "-n", ns, "--wait=false"}).status, 0);
}

}  // namespace
}  // namespace switchboard::e2e
