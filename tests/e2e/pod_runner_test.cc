// The pod runner with a Deployment written by hand the way the controller writes one
// (tests/e2e/router_deployment.h): router processes that authenticate to NATS with a
// mounted Secret and read their ConfigMap through the API as their ServiceAccount, with a
// Role that names that ConfigMap and nothing else.
#include "tests/e2e/pod_runner.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <unistd.h>

#include <filesystem>
#include <set>
#include <sstream>
#include <thread>

#include "core/route/spec_yaml.h"
#include "core/route/table.h"
#include "router/nats_client.h"
#include "tests/e2e/cluster.h"
#include "tests/e2e/e2e_support.h"
#include "tests/e2e/router_deployment.h"
#include "tests/support/inbox.h"
#include "tests/support/process.h"

namespace switchboard::e2e {
namespace {

using namespace std::chrono_literals;
using testing::Inbox;

std::string router_binary() { return std::string(SWITCHBOARD_BIN_DIR) + "/switchboard-router"; }

class PodRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(nats_.ok()) << "nats-server did not start";
    ns_ = new_namespace("pods");
    router::NatsConfig cfg;
    cfg.urls = {nats_.url()};
    cfg.token = "s3cret";
    cfg.name = "pod-runner-test";
    std::string error;
    ASSERT_TRUE(client_.connect(cfg, error)) << error;
    const char* routes = R"(routes:
  - name: large
    source: {subject: orders.*}
    filter: 'event.amount >= 100.0'
    destinations:
      - subject: 'out.{{ event.region }}'
)";
    route::RouteSet set;
    std::vector<route::SpecError> errors;
    ASSERT_TRUE(route::load_yaml(routes, "routes.yaml", set, errors));
    std::string text = route::canonical_json(set);
    kube::Object cm = kube::Object::object();
    cm["apiVersion"] = kube::Object::string("v1");
    cm["kind"] = kube::Object::string("ConfigMap");
    cm["metadata"]["name"] = kube::Object::string("orders-routes");
    cm["metadata"]["annotations"]["switchboard.dev/generation"] = kube::Object::string("1");
    cm["metadata"]["annotations"]["switchboard.dev/hash"] = kube::Object::string("sha256:" + route::sha256_hex(text));
    cm["data"]["routes.json"] = kube::Object::string(text);
    apply(cm.serialize());
    apply(R"({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "orders-settings"},
              "data": {"level": "debug"}})");
    apply(R"({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "not-yours"}, "data": {"x": "y"}})");
    apply(R"({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "orders-nats"},
              "stringData": {"token": "s3cret"}})");
    apply(R"({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "orders-router"}})");
    apply(R"({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
              "metadata": {"name": "orders-router"},
              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "orders-router"},
              "subjects": [{"kind": "ServiceAccount", "name": "orders-router", "namespace": ")" + ns_ + R"("}]})");
    apply(replace_all(replace_all(kDeployment, "\"NS\"", "\"" + ns_ + "\""), "NATS_URL", nats_.url()));
  }
  void TearDown() override {
    if (HasFailure() && runner_) std::cerr << runner_->logs();
  }
  void apply(const std::string& manifest) {
    CommandResult r = kubectl({"apply", "-n", ns_, "-f", "-"}, manifest);
    ASSERT_EQ(r.status, 0) << r.text() << "\n" << manifest;
  }
  void role(const std::string& resource_names) {
    apply(R"({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "orders-router"},
              "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [)" + resource_names +
          R"(], "verbs": ["get", "list", "watch"]}]})");
  }
  std::unique_ptr<PodRunner> make_runner() {
    PodRunnerOptions o;
    o.binary = router_binary();
    o.api_host = cluster().host;
    o.api_port = cluster().port;
    o.ca_pem = read_file(cluster().ca_file);
    return std::make_unique<PodRunner>(admin(), o);
  }

  testing::NatsServer nats_{testing::NatsServer::Config{"authorization { token: \"s3cret\" }"}};
  router::NatsClient client_;
  std::string ns_;
  std::unique_ptr<PodRunner> runner_;
};

TEST_F(PodRunnerTest, RunsTheDeploymentsReplicasAsItsServiceAccount) {
  role(R"("orders-routes")");
  Inbox beats(client_, "switchboard.status." + ns_ + ".orders");
  Inbox out(client_, "out.>");
  runner_ = make_runner();
  runner_->start(ns_, "orders");
  ASSERT_EQ(runner_->size(), 2u);
  std::string why;
  ASSERT_TRUE(runner_->wait_ready(30s, &why)) << why;
  // Both replicas report, under the pod names the Deployment's fieldRefs gave them.
  std::set<std::string> applied;
  ASSERT_TRUE(eventually([&] {
    Inbox::Received r;
    while (beats.next(r, 100ms)) {
      Heartbeat h = parse_heartbeat(r.data);
      if (h.state == "applied" && h.generation == 1) applied.insert(h.pod);
    }
    return applied.size() == 2;
  })) << applied.size();
  EXPECT_EQ(applied, (std::set<std::string>{"orders-0", "orders-1"}));
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(http_get(runner_->pod(i).plan.liveness_port, runner_->pod(i).plan.liveness_path).status, 200);
  }
  // ... and as the securityContext says (the pod runner is root here, as in CI): user and
  // groups 65532, no new privileges, no capabilities, and a read-only root filesystem.
  // So the router did all of the above without writing a file or being root.
  ASSERT_EQ(::geteuid(), 0u) << "the e2e tests run pods as their securityContext says, which needs root";
  for (size_t i = 0; i < 2; ++i) {
    const std::string proc = "/proc/" + std::to_string(runner_->pod(i).process.pid());
    const std::string status = read_file(proc + "/status");
    EXPECT_NE(status.find("\nUid:\t65532\t65532\t65532\t65532\n"), std::string::npos) << status;
    EXPECT_NE(status.find("\nGid:\t65532\t65532\t65532\t65532\n"), std::string::npos) << status;
    EXPECT_NE(status.find("\nGroups:\t65532 \n"), std::string::npos) << status;
    EXPECT_NE(status.find("\nNoNewPrivs:\t1\n"), std::string::npos) << status;
    EXPECT_NE(status.find("\nCapEff:\t0000000000000000\n"), std::string::npos) << status;
    EXPECT_NE(status.find("\nCapBnd:\t0000000000000000\n"), std::string::npos) << status;
    // mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS ..."; the root's options start with ro.
    std::istringstream mounts(read_file(proc + "/mountinfo"));
    std::string line, root_options;
    while (std::getline(mounts, line)) {
      std::istringstream f(line);
      std::string id, parent, dev, root, point, options;
      f >> id >> parent >> dev >> root >> point >> options;
      if (point == "/") root_options = options;
    }
    EXPECT_EQ(root_options.rfind("ro", 0), 0u) << "/ is mounted " << root_options;
  }
  // The replicas share the route's queue group: each event comes out once.
  std::string error;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(client_.publish("orders.new", {}, R"({"amount":500,"region":"r)" + std::to_string(i) + "\"}", error));
  }
  client_.flush(5000);
  std::set<std::string> subjects;
  Inbox::Received r;
  while (subjects.size() < 20 && out.next(r, 5s)) subjects.insert(r.subject);
  EXPECT_EQ(subjects.size(), 20u);
  EXPECT_FALSE(out.next(r, 300ms)) << "duplicate: " << r.subject;
  std::vector<int> statuses = runner_->stop();
  EXPECT_EQ(statuses, (std::vector<int>{0, 0}));
}

TEST_F(PodRunnerTest, ARestartedPodComesBackUnderItsNameAndReadsItsTableAgain) {
  role(R"("orders-routes")");
  runner_ = make_runner();
  runner_->start(ns_, "orders");
  std::string why;
  ASSERT_TRUE(runner_->wait_ready(30s, &why)) << why;
  // Old enough that a new process's uptime tells it apart.
  std::this_thread::sleep_for(2s);
  Inbox beats(client_, "switchboard.status." + ns_ + ".orders");
  const pid_t killed = runner_->pod(0).process.pid();
  EXPECT_EQ(runner_->restart(0, SIGKILL), 128 + SIGKILL);
  EXPECT_NE(runner_->pod(0).process.pid(), killed);
  EXPECT_EQ(runner_->restart(1, SIGTERM, 10000, 200ms), 0) << "SIGTERM must end a router with 0";
  ASSERT_TRUE(runner_->wait_ready(30s, &why)) << why;
  // Both come back under their own names, as new processes, and apply the table again.
  std::set<std::string> fresh;
  ASSERT_TRUE(eventually([&] {
    Inbox::Received r;
    while (beats.next(r, 100ms)) {
      Heartbeat h = parse_heartbeat(r.data);
      if (h.state == "applied" && h.generation == 1 && h.uptime_seconds >= 0 && h.uptime_seconds < 2) {
        fresh.insert(h.pod);
      }
    }
    return fresh.size() == 2;
  })) << fresh.size() << "\n" << runner_->logs();
  EXPECT_EQ(fresh, (std::set<std::string>{"orders-0", "orders-1"}));
  // The first process's lines stay in the pod's log, above the second's.
  std::string log = read_file(runner_->pod(0).plan.log_path);
  size_t first = log.find("# pod " + ns_ + "/orders-0");
  ASSERT_NE(first, std::string::npos);
  EXPECT_NE(log.find("# pod " + ns_ + "/orders-0", first + 1), std::string::npos);
  EXPECT_EQ(runner_->stop(), (std::vector<int>{0, 0}));
}

TEST_F(PodRunnerTest, ARoleWithoutTheConfigMapLeavesTheRouterUnready) {
  role(R"("not-yours")");
  Inbox beats(client_, "switchboard.status." + ns_ + ".orders");
  runner_ = make_runner();
  runner_->start(ns_, "orders");
  Heartbeat h;
  ASSERT_TRUE(eventually([&] {
    Inbox::Received r;
    while (beats.next(r, 100ms)) {
      h = parse_heartbeat(r.data);
      if (!h.source_error.empty()) return true;
    }
    return false;
  })) << runner_->logs();
  EXPECT_NE(h.source_error.find("403"), std::string::npos) << h.source_error;
  EXPECT_NE(h.source_error.find("Forbidden"), std::string::npos) << h.source_error;
  EXPECT_EQ(h.state, "pending");
  EXPECT_EQ(http_get(runner_->pod(0).plan.readiness_port, "/readyz").status, 503);
}

}  // namespace
}  // namespace switchboard::e2e
