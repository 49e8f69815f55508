// Kubeconfig files, the in-cluster service account, and the order load_config tries them.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include <cpprest/asyncrt_utils.h>

#include "kube/config.h"

namespace switchboard::kube {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/switchboard-kubecfg-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string write(const std::string& name, const std::string& body) const {
    fs::path p = fs::path(path_) / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << body;
    return p.string();
  }

 private:
  std::string path_;
};

// Sets (or unsets) environment variables for one test and puts them back after.
class EnvGuard {
 public:
  void set(const std::string& name, const std::optional<std::string>& value) {
    if (!saved_.count(name)) {
      const char* old = std::getenv(name.c_str());
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value) {
      ::setenv(name.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
  ~EnvGuard() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

const char* kCa = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
const char* kCert = "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n";
const char* kKey = "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n";

std::string b64(const std::string& s) {
  return utility::conversions::to_base64(std::vector<unsigned char>(s.begin(), s.end()));
}

std::string expect_config_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError";
  return "";
}

TEST(KubeConfig, ClientCertificateFilesRelativeToTheKubeconfig) {
  TempDir dir;
  dir.write("pki/ca.crt", kCa);
  dir.write("pki/admin.crt", kCert);
  dir.write("pki/admin.key", kKey);
  const std::string path = dir.write("sub/../kubeconfig", R"(apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority: pki/ca.crt
users:
- name: u
  user:
    client-certificate: pki/admin.crt
    client-key: pki/admin.key
contexts:
- name: ctx
  context: {cluster: c, user: u, namespace: team-a}
current-context: ctx
)");
  Config cfg = load_kubeconfig(path);
  EXPECT_EQ(cfg.server, "https://127.0.0.1:6443");  // trailing slash dropped
  EXPECT_EQ(cfg.ca_pem, kCa);
  EXPECT_EQ(cfg.client_cert_pem, kCert);
  EXPECT_EQ(cfg.client_key_pem, kKey);
  EXPECT_EQ(cfg.ns, "team-a");
  EXPECT_FALSE(cfg.insecure_skip_tls_verify);
  EXPECT_TRUE(cfg.token.empty());
}

TEST(KubeConfig, InlineDataWinsOverFiles) {
  TempDir dir;
  const std::string path = dir.write("kubeconfig", "clusters:\n- name: c\n  cluster:\n    server: https://k:443\n"
                                                   "    certificate-authority: /nonexistent/ca.crt\n"
                                                   "    certificate-authority-data: " + b64(kCa) + "\n"
                                                   "users:\n- name: u\n  user:\n"
                                                   "    client-certificate-data: " + b64(kCert) + "\n"
                                                   "    client-key-data: " + b64(kKey) + "\n"
                                                   "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                                                   "current-context: x\n");
  Config cfg = load_kubeconfig(path);
  EXPECT_EQ(cfg.ca_pem, kCa);
  EXPECT_EQ(cfg.client_cert_pem, kCert);
  EXPECT_EQ(cfg.client_key_pem, kKey);
  EXPECT_EQ(cfg.ns, "default");  // no namespace in the context
}

TEST(KubeConfig, BearerTokenAndInsecure) {
  TempDir dir;
  const std::string path = dir.write("kubeconfig", R"(clusters:
- name: c
  cluster: {server: "https://10.0.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: "  abc.def  "}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
)");
  Config cfg = load_kubeconfig(path);
  EXPECT_TRUE(cfg.insecure_skip_tls_verify);
  EXPECT_EQ(cfg.token, "abc.def");
  EXPECT_TRUE(cfg.ca_pem.empty());
}

TEST(KubeConfig, TokenFileRelativeToTheKubeconfig) {
  TempDir dir;
  dir.write("secrets/token", "tok\n");
  const std::string path = dir.write("kubeconfig", R"(clusters:
- {name: c, cluster: {server: "https://k"}}
users:
- {name: u, user: {tokenFile: secrets/token}}
contexts:
- {name: x, context: {cluster: c, user: u}}
current-context: x
)");
  Config cfg = load_kubeconfig(path);
  EXPECT_EQ(cfg.token_file, dir.path() + "/secrets/token");
  EXPECT_TRUE(cfg.token.empty());  // read by the client, so that rotation is seen
}

TEST(KubeConfig, ExplicitContextOverCurrent) {
  TempDir dir;
  const std::string path = dir.write("kubeconfig", R"(clusters:
- {name: one, cluster: {server: "https://one"}}
- {name: two, cluster: {server: "https://two"}}
users:
- {name: u, user: {token: t}}
contexts:
- {name: a, context: {cluster: one, user: u}}
- {name: b, context: {cluster: two, user: u, namespace: nb}}
current-context: a
)");
  EXPECT_EQ(load_kubeconfig(path).server, "https://one");
  Config b = load_kubeconfig(path, "b");
  EXPECT_EQ(b.server, "https://two");
  EXPECT_EQ(b.ns, "nb");
}

TEST(KubeConfig, ClearErrors) {
  TempDir dir;
  struct Case {
    const char* name;
    std::string body;
    std::vector<std::string> says;
  };
  const std::vector<Case> cases = {
      {"no current context", "clusters: []\n", {"no context given and no current-context"}},
      {"missing context", "current-context: gone\ncontexts: []\n", {"context 'gone' not found"}},
      {"missing cluster",
       "current-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\n",
       {"cluster 'c' not found"}},
      {"no server",
       "current-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\nclusters:\n- {name: c, cluster: {}}\n",
       {"cluster 'c'", "has no server"}},
      {"not a URL",
       "current-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\nclusters:\n- {name: c, cluster: {server: "
       "k:6443}}\n",
       {"not an http:// or https:// URL"}},
      {"missing user",
       "current-context: x\ncontexts:\n- {name: x, context: {cluster: c, user: u}}\nclusters:\n- {name: c, "
       "cluster: {server: 'https://k'}}\n",
       {"user 'u' not found"}},
      {"certificate without key",
       "current-context: x\ncontexts:\n- {name: x, context: {cluster: c, user: u}}\nclusters:\n- {name: c, "
       "cluster: {server: 'https://k'}}\nusers:\n- {name: u, user: {client-certificate-data: " + b64(kCert) + "}}\n",
       {"user 'u'", "client-certificate without client-key"}},
      {"bad base64",
       "current-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\nclusters:\n- {name: c, "
       "cluster: {server: 'https://k', certificate-authority-data: '!!!'}}\n",
       {"certificate-authority-data", "not valid base64"}},
      {"missing CA file",
       "current-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\nclusters:\n- {name: c, "
       "cluster: {server: 'https://k', certificate-authority: nope/ca.crt}}\n",
       {"certificate-authority", "cannot read", "nope/ca.crt"}},
      {"exec plugin",
       "current-context: x\ncontexts:\n- {name: x, context: {cluster: c, user: u}}\nclusters:\n- {name: c, "
       "cluster: {server: 'https://k'}}\nusers:\n- {name: u, user: {exec: {command: aws}}}\n",
       {"'exec'", "does not support"}},
      {"insecure not a bool",
       "current-context: x\ncontexts:\n- {name: x, context: {cluster: c}}\nclusters:\n- {name: c, "
       "cluster: {server: 'https://k', insecure-skip-tls-verify: maybe}}\n",
       {"insecure-skip-tls-verify", "not true or false"}},
      {"not YAML", "clusters: [\n", {"not valid YAML"}},
      {"not a map", "- a\n- b\n", {"not a YAML map"}},
  };
  for (const auto& c : cases) {
    const std::string path = dir.write(std::string("kc-") + std::to_string(&c - cases.data()), c.body);
    const std::string msg = expect_config_error([&] { load_kubeconfig(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << c.name << ": " << msg;  // names the file
    for (const auto& s : c.says) EXPECT_NE(msg.find(s), std::string::npos) << c.name << ": " << msg;
  }
  const std::string msg = expect_config_error([&] { load_kubeconfig(dir.path() + "/absent"); });
  EXPECT_NE(msg.find("cannot read " + dir.path() + "/absent"), std::string::npos) << msg;
}

void write_service_account(const TempDir& dir, const std::string& ns) {
  dir.write("sa/token", "sa-token\n");
  dir.write("sa/ca.crt", kCa);
  if (!ns.empty()) dir.write("sa/namespace", ns);
}

TEST(KubeConfig, InCluster) {
  TempDir dir;
  write_service_account(dir, "switchboard-system");
  EnvGuard env;
  env.set("KUBERNETES_SERVICE_HOST", "10.96.0.1");
  env.set("KUBERNETES_SERVICE_PORT", "443");
  Config cfg = in_cluster_config(dir.path() + "/sa");
  EXPECT_EQ(cfg.server, "https://10.96.0.1:443");
  EXPECT_EQ(cfg.token_file, dir.path() + "/sa/token");
  EXPECT_TRUE(cfg.token.empty());
  EXPECT_EQ(cfg.ca_pem, kCa);
  EXPECT_EQ(cfg.ns, "switchboard-system");

  env.set("KUBERNETES_SERVICE_HOST", "fd00::1");
  EXPECT_EQ(in_cluster_config(dir.path() + "/sa").server, "https://[fd00::1]:443");
}

TEST(KubeConfig, InClusterErrors) {
  TempDir dir;
  EnvGuard env;
  env.set("KUBERNETES_SERVICE_HOST", std::nullopt);
  env.set("KUBERNETES_SERVICE_PORT", std::nullopt);
  std::string msg = expect_config_error([&] { in_cluster_config(dir.path()); });
  EXPECT_NE(msg.find("not running in a cluster"), std::string::npos) << msg;

  env.set("KUBERNETES_SERVICE_HOST", "10.96.0.1");
  env.set("KUBERNETES_SERVICE_PORT", "443");
  msg = expect_config_error([&] { in_cluster_config(dir.path() + "/sa"); });
  EXPECT_NE(msg.find(dir.path() + "/sa/token"), std::string::npos) << msg;

  dir.write("sa/token", "t");
  msg = expect_config_error([&] { in_cluster_config(dir.path() + "/sa"); });
  EXPECT_NE(msg.find("ca.crt"), std::string::npos) << msg;

  // No namespace file: "default".
  dir.write("sa/ca.crt", kCa);
  EXPECT_EQ(in_cluster_config(dir.path() + "/sa").ns, "default");
}

std::string kubeconfig_for(const std::string& server, const std::string& ctx_ns = "") {
  return "clusters:\n- {name: c, cluster: {server: '" + server + "'}}\nusers:\n- {name: u, user: {token: t}}\n" +
         "contexts:\n- {name: x, context: {cluster: c, user: u" + (ctx_ns.empty() ? "" : ", namespace: " + ctx_ns) +
         "}}\ncurrent-context: x\n";
}

TEST(KubeConfig, LoadConfigOrder) {
  TempDir dir;
  write_service_account(dir, "pod-ns");
  const std::string explicit_path = dir.write("explicit", kubeconfig_for("https://explicit"));
  const std::string env_path = dir.write("env", kubeconfig_for("https://env"));
  dir.write("home/.kube/config", kubeconfig_for("https://home"));
  EnvGuard env;
  env.set("KUBECONFIG", env_path);
  env.set("KUBERNETES_SERVICE_HOST", "10.96.0.1");
  env.set("KUBERNETES_SERVICE_PORT", "443");
  env.set("HOME", dir.path() + "/home");

  EXPECT_EQ(load_config(explicit_path).server, "https://explicit");
  EXPECT_EQ(load_config().server, "https://env");
  env.set("KUBECONFIG", std::nullopt);
  // In cluster next: the default service account folder does not exist here, so the
  // error says it tried the service account.
  if (fs::exists("/var/run/secrets/kubernetes.io/serviceaccount/token")) {
    EXPECT_EQ(load_config().server, "https://10.96.0.1:443");  // this test runs in a pod
  } else {
    std::string msg = expect_config_error([] { load_config(); });
    EXPECT_NE(msg.find("in-cluster"), std::string::npos) << msg;
  }
  env.set("KUBERNETES_SERVICE_HOST", std::nullopt);
  EXPECT_EQ(load_config().server, "https://home");
  env.set("HOME", dir.path() + "/nowhere");
  const std::string msg = expect_config_error([] { load_config(); });
  EXPECT_NE(msg.find("no Kubernetes configuration found"), std::string::npos) << msg;
}

TEST(KubeConfig, KubeconfigListMergesFirstWins) {
  TempDir dir;
  // The first file sets current-context and a cluster; the second adds the user and a
  // cluster of the same name that must lose.
  const std::string a = dir.write("a", R"(clusters:
- {name: c, cluster: {server: "https://first"}}
contexts:
- {name: x, context: {cluster: c, user: u, namespace: from-a}}
current-context: x
)");
  const std::string b = dir.write("b", R"(clusters:
- {name: c, cluster: {server: "https://second"}}
users:
- {name: u, user: {token: from-b}}
current-context: other
)");
  EnvGuard env;
  env.set("KUBECONFIG", dir.path() + "/missing:" + a + ":" + b);
  Config cfg = load_config();
  EXPECT_EQ(cfg.server, "https://first");
  EXPECT_EQ(cfg.token, "from-b");
  EXPECT_EQ(cfg.ns, "from-a");

  env.set("KUBECONFIG", dir.path() + "/missing");
  const std::string msg = expect_config_error([] { load_config(); });
  EXPECT_NE(msg.find("no such file"), std::string::npos) << msg;
}

}  // namespace
}  // namespace switchboard::kube
