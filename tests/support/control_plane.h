// Test support: a real Kubernetes control plane (etcd + kube-apiserver on 127.0.0.1),
// started by tests/support/control_plane.sh from the tools scripts/test-tools.sh builds.
//
// One control plane serves a whole test executable (ControlPlaneEnvironment). Under CTest,
// where every test is its own process, SWITCHBOARD_CONTROL_PLANE_DIR names a folder that
// the processes share: the first one starts the control plane there (under a lock), the
// others attach to it, and a CTest cleanup test stops it at the end.
#pragma once

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace switchboard::testing {

// The tools scripts/test-tools.sh builds, by name ("KUBE_APISERVER", "ETCD", "KUBECTL",
// ...), as its `paths` command prints them; empty when the script is missing.
std::vector<std::pair<std::string, std::string>> kube_tool_paths();

class ControlPlane {
 public:
  ControlPlane() = default;
  ~ControlPlane() { stop(); }
  ControlPlane(const ControlPlane&) = delete;
  ControlPlane& operator=(const ControlPlane&) = delete;

  // Starts a control plane in a new temporary folder, stopped by stop(); or, with
  // shared_dir, attaches to the one running there or starts it there (then stop() leaves
  // it running for the other processes). False with the reason in *error when the tools
  // are missing or the control plane does not come up.
  bool start(std::string* error, const std::string& shared_dir = "");
  void stop();
  bool started() const { return !server_url_.empty(); }

  const std::string& dir() const { return dir_; }
  const std::string& kubeconfig() const { return kubeconfig_; }
  const std::string& server_url() const { return server_url_; }  // https://127.0.0.1:PORT
  int server_port() const;
  const std::string& etcd_url() const { return etcd_url_; }  // http://127.0.0.1:PORT
  std::string ca_path() const { return dir_ + "/pki/ca.crt"; }
  std::string ca_key_path() const { return dir_ + "/pki/ca.key"; }
  std::string admin_cert_path() const { return dir_ + "/pki/admin.crt"; }  // O=system:masters
  std::string admin_key_path() const { return dir_ + "/pki/admin.key"; }
  const std::string& kubectl_path() const { return kubectl_; }

  // Runs kubectl with this control plane's kubeconfig; returns the exit status and puts
  // stdout and stderr in *output.
  int kubectl(const std::vector<std::string>& args, std::string* output = nullptr) const;

 private:
  bool read_env_file(const std::string& path, std::string* error);

  std::string dir_, kubeconfig_, server_url_, etcd_url_, kubectl_;
  bool owned_ = false;
};

// The control plane of the test executable: started once before the first test.
// Startup failures are not fatal here (GoogleTest would mark every test skipped); each
// test calls RequireControlPlane(), which fails the test with the reason.
class ControlPlaneEnvironment : public ::testing::Environment {
 public:
  void SetUp() override;
  void TearDown() override;
  static ControlPlane& control_plane();
  static const std::string& error();
};

// In a test (or its fixture's SetUp): fails the test unless the control plane runs.
#define REQUIRE_CONTROL_PLANE()                                                            \
  do {                                                                                     \
    if (!::switchboard::testing::ControlPlaneEnvironment::control_plane().started()) {     \
      GTEST_FAIL() << ::switchboard::testing::ControlPlaneEnvironment::error();            \
    }                                                                                      \
  } while (0)

// Runs argv (no shell), returns its exit status, puts stdout and stderr in *output.
int run_command(const std::vector<std::string>& argv, std::string* output = nullptr,
                const std::vector<std::string>& env = {});

}  // namespace switchboard::testing
