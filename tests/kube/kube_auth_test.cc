// Authentication and trust against a real kube-apiserver: client certificates, bearer
// tokens from a TokenRequest, token files that rotate, the in-cluster configuration,
// insecure-skip-tls-verify, and the transport errors of a client that does not trust the
// server or finds nobody listening.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/kube/kube_test.h"
#include "tests/support/files.h"
#include "tests/support/process.h"

namespace switchboard::kube::testing {
namespace {

using switchboard::testing::read_file;

namespace fs = std::filesystem;

class AuthTest : public KubeTest {
 protected:
  void SetUp() override {
    KubeTest::SetUp();
    if (HasFatalFailure()) return;
    char tmpl[] = "/tmp/switchboard-kube-auth-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override {
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  // A ServiceAccount of this namespace and a fresh token for it (TokenRequest).
  std::string token_for(const std::string& sa) {
    Object obj = Object::object();
    obj["metadata"]["name"] = Object::string(sa);
    try {
      client().create(resources::kServiceAccounts, ns_, obj);
    } catch (const ApiError& e) {
      if (e.status() != 409) throw;
    }
    Object request = Object::object();
    request["apiVersion"] = Object::string(resources::kTokenRequests.api_version());
    request["kind"] = Object::string(resources::kTokenRequests.kind);
    request["spec"]["expirationSeconds"] = Object::number(3600);
    Object answer = client().create_subresource(resources::kServiceAccounts, ns_, sa, "token", request);
    EXPECT_EQ(answer["kind"].as_string(), "TokenRequest");
    return answer["status"]["token"].as_string();
  }
  std::string sa_user(const std::string& sa) const { return "system:serviceaccount:" + ns_ + ":" + sa; }

  Config token_config(const std::string& token) const {
    Config cfg;
    cfg.server = cp().server_url();
    cfg.ca_pem = read_file(cp().ca_path());
    cfg.token = token;
    return cfg;
  }

  std::string dir_;
};

TEST_F(AuthTest, ClientCertificateFromTheKubeconfig) {
  EXPECT_FALSE(config_.client_cert_pem.empty());
  EXPECT_TRUE(config_.token.empty());
  EXPECT_EQ(whoami(client()), "switchboard-admin");
}

TEST_F(AuthTest, BearerTokenFromATokenRequest) {
  const std::string token = token_for("robot");
  ASSERT_FALSE(token.empty());
  auto robot = make_client(token_config(token));
  EXPECT_EQ(whoami(*robot), sa_user("robot"));
  // Authenticated, but RBAC gives a bare service account nothing: a 403 with the reason.
  try {
    robot->list(resources::kConfigMaps, ns_);
    ADD_FAILURE() << "a service account without roles listed configmaps";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 403);
    EXPECT_EQ(e.reason(), "Forbidden");
    EXPECT_NE(e.message().find(sa_user("robot")), std::string::npos) << e.message();
  }
  // A token the server never issued: 401.
  auto stranger = make_client(token_config("not-a-token"));
  try {
    whoami(*stranger);
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 401);
    EXPECT_EQ(e.reason(), "Unauthorized");
  }
}

TEST_F(AuthTest, TokenFileRotation) {
  const std::string first = token_for("robot-a");
  const std::string second = token_for("robot-b");
  const std::string token_file = dir_ + "/token";
  auto rotate = [&](const std::string& token) {
    std::ofstream(token_file + ".new") << token;
    fs::rename(token_file + ".new", token_file);  // as the kubelet swaps it
  };
  rotate(first);
  Config cfg = token_config("");
  cfg.token_file = token_file;
  auto robot = make_client(cfg);
  EXPECT_EQ(whoami(*robot), sa_user("robot-a"));
  EXPECT_EQ(whoami(*robot), sa_user("robot-a"));
  rotate(second);
  EXPECT_EQ(whoami(*robot), sa_user("robot-b"));
  // Rewritten in place rather than replaced: seen too (size and time change).
  std::ofstream(token_file, std::ios::trunc) << first << "\n";
  EXPECT_EQ(whoami(*robot), sa_user("robot-a"));
}

TEST_F(AuthTest, InClusterConfiguration) {
  const std::string sa_dir = dir_ + "/serviceaccount";
  fs::create_directories(sa_dir);
  std::ofstream(sa_dir + "/token") << token_for("in-pod");
  fs::copy_file(cp().ca_path(), sa_dir + "/ca.crt");
  std::ofstream(sa_dir + "/namespace") << ns_;

  const char* old_host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* old_port = std::getenv("KUBERNETES_SERVICE_PORT");
  const std::string saved_host = old_host ? old_host : "", saved_port = old_port ? old_port : "";
  ::setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", std::to_string(cp().server_port()).c_str(), 1);
  Config cfg;
  try {
    cfg = in_cluster_config(sa_dir);
  } catch (const ConfigError& e) {
    ADD_FAILURE() << e.what();
  }
  if (old_host) ::setenv("KUBERNETES_SERVICE_HOST", saved_host.c_str(), 1); else ::unsetenv("KUBERNETES_SERVICE_HOST");
  if (old_port) ::setenv("KUBERNETES_SERVICE_PORT", saved_port.c_str(), 1); else ::unsetenv("KUBERNETES_SERVICE_PORT");

  EXPECT_EQ(cfg.server, cp().server_url());
  EXPECT_EQ(cfg.ns, ns_);
  EXPECT_EQ(cfg.token_file, sa_dir + "/token");
  auto pod_client = make_client(cfg);
  EXPECT_EQ(whoami(*pod_client), sa_user("in-pod"));
}

TEST_F(AuthTest, InsecureSkipTlsVerifyTrustsAnyServer) {
  Config cfg = token_config(token_for("robot"));
  cfg.ca_pem.clear();
  cfg.insecure_skip_tls_verify = true;
  EXPECT_EQ(whoami(*make_client(cfg)), sa_user("robot"));

  // The same without the flag: the test CA is in no system bundle, so TLS fails.
  cfg.insecure_skip_tls_verify = false;
  try {
    whoami(*make_client(cfg));
    ADD_FAILURE() << "an untrusted server was trusted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 0);
    EXPECT_TRUE(e.transient());
    EXPECT_NE(e.message().find(cp().server_url()), std::string::npos) << e.message();
  }
}

TEST_F(AuthTest, ServerSignedByAnotherCaIsRefused) {
  const std::string other_ca = dir_ + "/other-ca.crt";
  std::string out;
  ASSERT_EQ(switchboard::testing::run_command({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                                               "-subj", "/CN=someone-else", "-keyout", dir_ + "/other-ca.key", "-out",
                                               other_ca},
                                              &out),
            0)
      << out;
  Config cfg = config_;  // the admin's client certificate, but trusting another CA only
  cfg.ca_pem = read_file(other_ca);
  try {
    make_client(cfg)->get(resources::kNamespaces, "", ns_);
    ADD_FAILURE() << "a server signed by another CA was trusted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 0);
    EXPECT_NE(e.message().find("SSL"), std::string::npos) << e.message();
  }
}

TEST_F(AuthTest, NobodyListeningIsATransportError) {
  Config cfg = config_;
  const int port = switchboard::testing::free_port();
  cfg.server = "https://127.0.0.1:" + std::to_string(port);
  try {
    make_client(cfg)->get(resources::kNamespaces, "", ns_);
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 0);
    EXPECT_TRUE(e.reason().empty());
    EXPECT_NE(e.message().find("127.0.0.1:" + std::to_string(port)), std::string::npos) << e.message();
  }
}

}  // namespace
}  // namespace switchboard::kube::testing
