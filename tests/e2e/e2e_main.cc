// The e2e test executable: one control plane (etcd and kube-apiserver on loopback) for
// every test in it, started before the first and stopped after the last.
#include <gtest/gtest.h>

#include "tests/e2e/cluster.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  switchboard::e2e::add_cluster_environment();
  return RUN_ALL_TESTS();
}
