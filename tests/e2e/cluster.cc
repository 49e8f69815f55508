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

}  // namespace

void add_cluster_environment() { ::testing::AddGlobalTestEnvironment(new ControlPlaneEnvironment); }

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
  static std::unique_ptr<kube::Client> client;
  static std::string server;
  const ClusterInfo& c = cluster();
  if (!client || server != c.server) {
    client = kube::make_client(kube::load_kubeconfig(c.kubeconfig));
    server = c.server;
  }
  return *client;
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
