// The fixture of the Kubernetes client's integration tests: the control plane of the
// test executable, an admin client (client certificate, from the control plane's
// kubeconfig), and a namespace of the test's own, so that tests running side by side
// on one API server never see each other's objects.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>

#include <cpprest/http_client.h>

#include "kube/client.h"
#include "kube/config.h"
#include "tests/kube/fake_client.h"
#include "tests/support/control_plane.h"

namespace switchboard::kube::testing {

using switchboard::testing::ControlPlane;
using switchboard::testing::ControlPlaneEnvironment;

inline std::string random_suffix() {
  static thread_local std::mt19937 rng{std::random_device{}()};
  const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 6; ++i) s += hex[rng() % 16];
  return s;
}

inline Object configmap(const std::string& ns, const std::string& name,
                        const std::map<std::string, std::string>& data = {},
                        const std::map<std::string, std::string>& labels = {}) {
  Object o = Object::object();
  o["apiVersion"] = Object::string("v1");
  o["kind"] = Object::string("ConfigMap");
  o["metadata"]["name"] = Object::string(name);
  o["metadata"]["namespace"] = Object::string(ns);
  for (const auto& [k, v] : labels) o["metadata"]["labels"][k] = Object::string(v);
  if (!data.empty()) {
    o["data"] = Object::object();
    for (const auto& [k, v] : data) o["data"][k] = Object::string(v);
  }
  return o;
}

// A PodTemplate: the one kind this control plane keeps out of the watch cache, so that
// a watch from a compacted resourceVersion gets 410 Gone.
inline Object podtemplate(const std::string& ns, const std::string& name, const std::string& label = "x") {
  return Object::parse(R"({"apiVersion":"v1","kind":"PodTemplate","metadata":{"name":")" + name +
                       R"(","namespace":")" + ns + R"(","labels":{"l":")" + label +
                       R"("}},"template":{"spec":{"containers":[{"name":"c","image":"busybox"}]}}})");
}

inline const Resource kPodTemplates{"", "v1", "podtemplates", "PodTemplate", true};
inline const Resource kSelfSubjectReviews{"authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview",
                                          false};

// Who the API server thinks the client is.
inline std::string whoami(Client& client) {
  Object review = Object::parse(R"({"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"})");
  Object answer = client.create(kSelfSubjectReviews, "", review);
  return answer["status"]["userInfo"]["username"].as_string();
}

// Compacts etcd's history up to `revision` (a resourceVersion), as kube-apiserver does
// every five minutes, through etcd's HTTP gateway. Already compacted further (by another
// test) counts as done.
inline void compact_etcd(const std::string& etcd_url, const std::string& revision) {
  web::http::client::http_client etcd(etcd_url);
  const std::string body = R"({"revision":")" + revision + R"(","physical":true})";
  auto resp = etcd.request(web::http::methods::POST, "/v3/kv/compaction", body, "application/json").get();
  const std::string answer = resp.extract_utf8string(true).get();
  if (resp.status_code() != 200 && answer.find("compacted") == std::string::npos) {
    ADD_FAILURE() << "etcd compaction at " << revision << ": " << resp.status_code() << " " << answer;
  }
}

class KubeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_CONTROL_PLANE();
    config_ = load_kubeconfig(cp().kubeconfig());
    client_ = make_client(config_);
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::string ns;
    for (char c : name) {
      if (std::isalnum(static_cast<unsigned char>(c))) {
        ns += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      } else if (!ns.empty() && ns.back() != '-') {
        ns += '-';
      }
    }
    ns_ = ns.substr(0, 50) + "-" + random_suffix();
    Object nsobj = Object::object();
    nsobj["metadata"]["name"] = Object::string(ns_);
    client_->create(resources::kNamespaces, "", nsobj);
  }

  static ControlPlane& cp() { return ControlPlaneEnvironment::control_plane(); }
  Client& client() { return *client_; }

  // Applies the CRDs in crds/ (idempotent) and waits until they are served.
  void ensure_crds() {
    std::string out;
    // Server-side: tests in other processes may apply the same CRDs at the same moment.
    ASSERT_EQ(cp().kubectl({"apply", "--server-side", "--force-conflicts", "--field-manager=switchboard-tests", "-f",
                            std::string(SWITCHBOARD_SOURCE_DIR) + "/crds/"},
                           &out),
              0)
        << out;
    ASSERT_EQ(cp().kubectl({"wait", "--for", "condition=established", "--timeout=60s",
                            "crd/eventroutes.switchboard.dev", "crd/eventrouters.switchboard.dev",
                            "crd/eventtransforms.switchboard.dev"},
                           &out),
              0)
        << out;
    ASSERT_TRUE(eventually([&] {
      try {
        client().list(resources::kEventRoutes, ns_);
        return true;
      } catch (const ApiError&) {
        return false;
      }
    }));
  }

  Config config_;
  std::unique_ptr<Client> client_;
  std::string ns_;
};

}  // namespace switchboard::kube::testing
