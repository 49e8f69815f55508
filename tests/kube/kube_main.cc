// main() of the Kubernetes integration tests: one control plane for the executable
// (ControlPlaneEnvironment), and a second role for the same binary: with
// SWITCHBOARD_KUBE_TEST_ELECTOR set it runs one leader elector until it is killed, which
// is how kube_leader_test.cc gets a leader that dies without releasing its lease.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "kube/leader.h"
#include "tests/support/control_plane.h"

namespace {

// "KUBECONFIG\nNAMESPACE\nLEASE\nIDENTITY"; prints "leading" when it leads.
int run_elector(const std::string& spec) {
  std::istringstream in(spec);
  std::string kubeconfig, ns, lease, identity;
  std::getline(in, kubeconfig);
  std::getline(in, ns);
  std::getline(in, lease);
  std::getline(in, identity);
  using namespace switchboard::kube;
  auto client = make_client(load_kubeconfig(kubeconfig));
  LeaderElectionConfig cfg{ns, lease, identity, std::chrono::milliseconds(2000), std::chrono::milliseconds(1500),
                           std::chrono::milliseconds(300)};
  LeaderElector elector(*client, cfg, [] { std::printf("leading\n"); std::fflush(stdout); }, [] {});
  elector.start();
  for (;;) ::pause();
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* spec = std::getenv("SWITCHBOARD_KUBE_TEST_ELECTOR")) return run_elector(spec);
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new switchboard::testing::ControlPlaneEnvironment);
  return RUN_ALL_TESTS();
}
