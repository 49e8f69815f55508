// How the pod runner resolves a pod template, with fixed inputs and no cluster: args and env
// with $(VAR) references, fieldRefs, Secret and ConfigMap keys, volumes, the service
// account, the metrics port and the probes.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tests/e2e/e2e_support.h"
#include "tests/e2e/pod_runner.h"
#include "tests/e2e/router_deployment.h"

namespace switchboard::e2e {
namespace {


class FakeInputs : public PodInputs {
 public:
  std::map<std::string, kube::Object> secrets, config_maps, service_accounts;
  std::vector<std::string> token_requests;
  kube::Object secret(const std::string& ns, const std::string& name) override { return find(secrets, ns, name); }
  kube::Object config_map(const std::string& ns, const std::string& name) override {
    return find(config_maps, ns, name);
  }
  kube::Object service_account(const std::string& ns, const std::string& name) override {
    return find(service_accounts, ns, name);
  }
  std::string token(const std::string& ns, const std::string& sa, const std::vector<std::string>& audiences,
                    int64_t) override {
    std::string a;
    for (const auto& x : audiences) a += x;
    token_requests.push_back(ns + "/" + sa + "/" + a);
    return "token-for-" + sa;
  }

 private:
  static kube::Object find(std::map<std::string, kube::Object>& m, const std::string& ns, const std::string& name) {
    auto it = m.find(ns + "/" + name);
    if (it == m.end()) throw kube::ApiError(404, "NotFound", name + " not found");
    return it->second;
  }
};

TEST(ExpandVars, FollowsKubernetes) {
  std::map<std::string, std::string> vars = {{"A", "1"}, {"B", "two"}};
  EXPECT_EQ(expand_vars("$(A)/$(B)", vars), "1/two");
  EXPECT_EQ(expand_vars("$$(A)", vars), "$(A)");
  EXPECT_EQ(expand_vars("$(C) stays", vars), "$(C) stays");
  EXPECT_EQ(expand_vars("$A $", vars), "$A $");
  EXPECT_EQ(expand_vars("$(A", vars), "$(A");
  EXPECT_EQ(expand_vars("$$$(A)", vars), "$1");
}

class PlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir("switchboard-plan");
    deployment_ = kube::Object::parse(replace_all(replace_all(kDeployment, "\"NS\"", "\"shop\""), "NATS_URL",
                                                  "nats://127.0.0.1:4222"));
    inputs_.secrets["shop/orders-nats"] = kube::Object::parse(R"({"data":{"token":"czNjcmV0"}})");  // s3cret
    inputs_.config_maps["shop/orders-settings"] = kube::Object::parse(R"({"data":{"level":"debug"}})");
    inputs_.service_accounts["shop/orders-router"] = kube::Object::parse(R"({"metadata":{"name":"orders-router"}})");
    options_.binary = "/opt/bin/switchboard-router";
    options_.api_port = 6443;
    options_.ca_pem = "CA";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  PodPlan plan(int index = 1) {
    int next = 30000;
    return plan_pod(deployment_, index, inputs_, options_, dir_, [&] { return next++; });
  }
  static std::map<std::string, std::string> env_map(const PodPlan& p) {
    std::map<std::string, std::string> m;
    for (const auto& kv : p.env) m[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
    return m;
  }

  std::string dir_;
  kube::Object deployment_;
  FakeInputs inputs_;
  PodRunnerOptions options_;
};

TEST_F(PlanTest, ResolvesArgsEnvVolumesAndTheServiceAccount) {
  PodPlan p = plan(1);
  EXPECT_EQ(p.name, "orders-1");
  EXPECT_EQ(p.ns, "shop");
  std::vector<std::string> expected = {
      "/opt/bin/switchboard-router", "run", "--configmap", "shop/orders-routes", "--nats", "nats://127.0.0.1:4222",
      "--name", "orders", "--namespace", "shop", "--pod", "orders-1", "--metrics-addr", "127.0.0.1:30000",
      "--heartbeat", "200ms", "--grace", "5s", "--log-level", "debug", "--nats-token-file",
      dir_ + "/volumes/nats-auth/token"};
  EXPECT_EQ(p.argv, expected);
  auto env = env_map(p);
  EXPECT_EQ(env["POD_NAME"], "orders-1");
  EXPECT_EQ(env["POD_NAMESPACE"], "shop");
  EXPECT_EQ(env["TIER"], "data");
  EXPECT_EQ(env["GREETING"], "pod orders-1 in data, $(POD_NAME) kept, $(NOPE) kept");
  EXPECT_EQ(env["KUBERNETES_SERVICE_HOST"], "127.0.0.1");
  EXPECT_EQ(env["KUBERNETES_SERVICE_PORT"], "6443");
  EXPECT_EQ(env["SWITCHBOARD_SA_DIR"], dir_ + "/serviceaccount");
  EXPECT_EQ(env["HOSTNAME"], "orders-1");
  EXPECT_EQ(read_file(dir_ + "/volumes/nats-auth/token"), "s3cret");
  EXPECT_EQ(read_file(dir_ + "/serviceaccount/token"), "token-for-orders-router");
  EXPECT_EQ(read_file(dir_ + "/serviceaccount/ca.crt"), "CA");
  EXPECT_EQ(read_file(dir_ + "/serviceaccount/namespace"), "shop");
  EXPECT_EQ(inputs_.token_requests, std::vector<std::string>{"shop/orders-router/"});
  EXPECT_EQ(p.ports, (std::map<int, int>{{9090, 30000}}));
  EXPECT_EQ(p.readiness_path, "/readyz");
  EXPECT_EQ(p.readiness_port, 30000);
  EXPECT_EQ(p.liveness_path, "/healthz");
  EXPECT_EQ(p.liveness_port, 30000);
}

TEST_F(PlanTest, ProjectedVolumesAndAnExplicitServiceAccountMount) {
  kube::Object& spec = deployment_["spec"]["template"]["spec"];
  spec["automountServiceAccountToken"] = kube::Object::boolean(false);
  spec["volumes"][1] = kube::Object::parse(R"({"name": "kube-api", "projected": {"sources": [
      {"serviceAccountToken": {"path": "token", "audience": "api", "expirationSeconds": 3600}},
      {"configMap": {"name": "orders-settings", "items": [{"key": "level", "path": "conf/level"}]}},
      {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}})");
  spec["containers"][0]["volumeMounts"][1] =
      kube::Object::parse(R"({"name": "kube-api", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"})");
  PodPlan p = plan(0);
  EXPECT_EQ(p.sa_dir, dir_ + "/volumes/kube-api");
  EXPECT_EQ(env_map(p)["SWITCHBOARD_SA_DIR"], dir_ + "/volumes/kube-api");
  EXPECT_EQ(read_file(dir_ + "/volumes/kube-api/token"), "token-for-orders-router");
  EXPECT_EQ(read_file(dir_ + "/volumes/kube-api/conf/level"), "debug");
  EXPECT_EQ(read_file(dir_ + "/volumes/kube-api/namespace"), "shop");
  EXPECT_EQ(inputs_.token_requests, std::vector<std::string>{"shop/orders-router/api"});
}

TEST_F(PlanTest, ResolvesTheSecurityContextContainerOverPod) {
  kube::Object& spec = deployment_["spec"]["template"]["spec"];
  spec["volumes"][1] = kube::Object::parse(R"({"name": "scratch", "emptyDir": {}})");
  spec["containers"][0]["volumeMounts"][1] = kube::Object::parse(R"({"name": "scratch", "mountPath": "/tmp"})");
  PodPlan p = plan(0);
  EXPECT_EQ(p.security.run_as_user, 65532);
  EXPECT_EQ(p.security.run_as_group, 65532);
  EXPECT_EQ(p.security.fs_group, 65532);
  EXPECT_TRUE(p.security.run_as_non_root);
  EXPECT_TRUE(p.security.read_only_root);
  EXPECT_TRUE(p.security.no_new_privs);
  EXPECT_TRUE(p.security.drop_all_capabilities);
  EXPECT_EQ(p.security.writable, std::vector<std::string>{dir_ + "/volumes/scratch"});
  EXPECT_EQ(std::filesystem::status(dir_ + "/volumes/scratch").permissions(), std::filesystem::perms::all);
  if (::geteuid() == 0) {
    // fsGroup owns the volume files, which its members may read.
    struct stat st {};
    ASSERT_EQ(::stat((dir_ + "/volumes/nats-auth/token").c_str(), &st), 0);
    EXPECT_EQ(st.st_gid, 65532u);
    EXPECT_NE(st.st_mode & S_IRGRP, 0u);
  }

  // The container's fields win over the pod's.
  spec["containers"][0]["securityContext"]["runAsUser"] = kube::Object::number(1000);
  EXPECT_EQ(plan(0).security.run_as_user, 1000);
  spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = kube::Object::boolean(true);
  EXPECT_FALSE(plan(0).security.no_new_privs);

  // What a kubelet would refuse to start, or could only start with the image's user.
  spec["containers"][0]["securityContext"]["runAsUser"] = kube::Object::number(0);
  EXPECT_THROW(plan(0), PodError);
  spec["containers"][0]["securityContext"].erase("runAsUser");
  spec["securityContext"].erase("runAsUser");
  try {
    plan(0);
    FAIL() << "runAsNonRoot without a user";
  } catch (const PodError& e) {
    EXPECT_NE(std::string(e.what()).find("runAsNonRoot without runAsUser"), std::string::npos) << e.what();
  }
}

TEST_F(PlanTest, NoTokenWhenAutomountIsOff) {
  inputs_.service_accounts["shop/orders-router"]["automountServiceAccountToken"] = kube::Object::boolean(false);
  PodPlan p = plan(0);
  EXPECT_EQ(p.sa_dir, "");
  EXPECT_EQ(env_map(p).count("SWITCHBOARD_SA_DIR"), 0u);
  EXPECT_TRUE(inputs_.token_requests.empty());
}

TEST_F(PlanTest, SaysWhatIsMissing) {
  inputs_.secrets.clear();
  try {
    plan(0);
    FAIL() << "planned without its Secret";
  } catch (const PodError& e) {
    EXPECT_NE(std::string(e.what()).find("Secret shop/orders-nats"), std::string::npos) << e.what();
  }
  inputs_.secrets["shop/orders-nats"] = kube::Object::parse(R"({"data":{"token":"czNjcmV0"}})");
  inputs_.service_accounts.clear();
  EXPECT_THROW(plan(0), PodError);
  inputs_.service_accounts["shop/orders-router"] = kube::Object::parse(R"({"metadata":{"name":"orders-router"}})");
  deployment_["spec"]["template"]["spec"]["containers"][0]["name"] = kube::Object::string("other");
  EXPECT_THROW(plan(0), PodError);
}

TEST_F(PlanTest, RefusesWhatItCannotDoFaithfully) {
  kube::Object& container = deployment_["spec"]["template"]["spec"]["containers"][0];
  container["readinessProbe"] = kube::Object::parse(R"({"exec": {"command": ["true"]}})");
  EXPECT_THROW(plan(0), PodError);
  container["readinessProbe"] = kube::Object::parse(R"({"httpGet": {"path": "/readyz", "port": 8080}})");
  try {
    plan(0);
    FAIL() << "a probe on a port the runner does not map";
  } catch (const PodError& e) {
    EXPECT_NE(std::string(e.what()).find("not the metrics port"), std::string::npos) << e.what();
  }
  container.erase("readinessProbe");
  deployment_["spec"]["template"]["spec"]["volumes"][0] =
      kube::Object::parse(R"({"name": "nats-auth", "hostPath": {"path": "/etc"}})");
  EXPECT_THROW(plan(0), PodError);
}

}  // namespace
}  // namespace switchboard::e2e
