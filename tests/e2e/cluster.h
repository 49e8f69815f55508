// The control plane the e2e tests share (one per test executable, started by
// tests/support/control_plane.h's ControlPlaneEnvironment before the first test), and what
// the tests do with it: kubectl, an admin client, fresh namespaces.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kube/client.h"
#include "tests/e2e/e2e_support.h"

namespace switchboard::e2e {

struct ClusterInfo {
  std::string kubeconfig;  // admin (system:masters)
  std::string server;      // https://127.0.0.1:PORT
  std::string host = "127.0.0.1";
  int port = 0;
  std::string ca_file;     // the cluster CA
  std::string dir;         // the control plane's folder (logs)
  std::string kubectl;     // the kubectl that scripts/test-tools.sh built
};

// The running control plane; fails the calling test (and throws, which ends it) when it
// did not start, with the reason.
const ClusterInfo& cluster();
// A client with the admin kubeconfig.
kube::Client& admin();

// kubectl against the cluster, as the admin; `input` goes to stdin.
CommandResult kubectl(const std::vector<std::string>& args, const std::string& input = "");

// Creates a namespace with a fresh name starting with `prefix` and returns the name.
// Namespaces are not deleted: nothing in this control plane would finalize them, and the
// control plane goes away with the test executable.
std::string new_namespace(const std::string& prefix, const std::vector<std::string>& labels = {});

// Registers the environment that starts and stops the control plane; call from main().
void add_cluster_environment();

}  // namespace switchboard::e2e
