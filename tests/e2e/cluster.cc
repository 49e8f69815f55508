#include "tests/e2e/cluster.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>

#include "kube/config.h"
#include "tests/support/control_plane.h"

namespace switchboard::e2e {

namespace {

using testing::ControlPlaneEnvironment;

ClusterInfo& info() {
  static ClusterInfo i;
  return i;
}

struct AdminClient {
  std::unique_ptr<kube::Client> client;
  std::string server;
};

AdminClient& admin_client() {
  static AdminClient a;
  return a;
}

// Closes the admin client when the tests end, inside RUN_ALL_TESTS. Left to its static
// destructor, it would close its TLS connections after OpenSSL's own exit handler had
// already cleaned up, and that corrupted the heap now and then (a crash after "PASSED").
class AdminClientEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { admin_client() = AdminClient{}; }
};

}  // namespace

void add_cluster_environment() {
  ::testing::AddGlobalTestEnvironment(new ControlPlaneEnvironment);
  // Environments are torn down in reverse order: the client closes before the cluster stops.
  ::testing::AddGlobalTestEnvironment(new AdminClientEnvironment);
}

const ClusterInfo& cluster() {
  const testing::ControlPlane& cp = ControlPlaneEnvironment::control_plane();
  if (!cp.started()) {
    // A test that needs the cluster fails with the reason (missing tools, a start that
    // failed), never skips.
    ADD_FAILURE() << ControlPlaneEnvironment::error();
    throw std::runtime_error("no control plane: " + ControlPlaneEnvironment::error());
  }
  ClusterInfo& i = info();
  if (i.server != cp.server_url()) {
    i.kubeconfig = cp.kubeconfig();
    i.server = cp.server_url();
    i.port = cp.server_port();
    i.ca_file = cp.ca_path();
    i.dir = cp.dir();
    i.kubectl = cp.kubectl_path();
  }
  return i;
}

kube::Client& admin() {
  AdminClient& a = admin_client();
  const ClusterInfo& c = cluster();
  if (!a.client || a.server != c.server) {
    a.client = kube::make_client(kube::load_kubeconfig(c.kubeconfig));
    a.server = c.server;
  }
  return *a.client;
}

CommandResult kubectl(const std::vector<std::string>& args, const std::string& input) {
  std::vector<std::string> argv = {cluster().kubectl, "--kubeconfig", cluster().kubeconfig};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, input);
}

std::string new_namespace(const std::string& prefix, const std::vector<std::string>& labels) {
  static std::atomic<int> counter{0};
  static const std::string salt = [] {
    std::mt19937 rng(std::random_device{}());
    return std::to_string(rng() % 100000);
  }();
  std::string name = prefix + "-" + salt + "-" + std::to_string(++counter);
  CommandResult r = kubectl({"create", "namespace", name});
  if (r.status != 0) throw std::runtime_error("kubectl create namespace " + name + ": " + r.text());
  if (!labels.empty()) {
    std::vector<std::string> args = {"label", "namespace", name};
    args.insert(args.end(), labels.begin(), labels.end());
    r = kubectl(args);
    if (r.status != 0) throw std::runtime_error("kubectl label namespace " + name + ": " + r.text());
  }
  return name;
}

}  // namespace switchboard::e2e
