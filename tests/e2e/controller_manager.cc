#include "tests/e2e/controller_manager.h"

#include <filesystem>
#include <stdexcept>

namespace switchboard::e2e {

ControllerManager::ControllerManager(const ClusterInfo& cluster) {
  std::string binary = tool_path("KUBE_CONTROLLER_MANAGER");
  dir_ = make_temp_dir("switchboard-kcm");
  log_ = dir_ + "/kube-controller-manager.log";
  int port = testing::free_port();
  process_ = testing::Process(
      {binary, "--kubeconfig=" + cluster.kubeconfig, "--authentication-kubeconfig=" + cluster.kubeconfig,
       "--authorization-kubeconfig=" + cluster.kubeconfig,
       // Garbage collection is what the tests need; the namespace controller lets a deleted
       // namespace go. No Deployment controller: no pod would ever run here anyway.
       "--controllers=garbagecollector,namespace", "--leader-elect=false", "--bind-address=127.0.0.1",
       "--secure-port=" + std::to_string(port), "--cert-dir=" + dir_ + "/certs",
       "--use-service-account-credentials=false", "--concurrent-gc-syncs=5"},
      {}, log_);
  std::string status;
  bool healthy = eventually(
      [&] {
        if (!process_.running()) return true;
        CommandResult r = run_command({"curl", "-sk", "--max-time", "2",
                                       "https://127.0.0.1:" + std::to_string(port) + "/healthz"});
        status = r.out;
        return r.status == 0 && r.out == "ok";
      },
      std::chrono::seconds(60));
  if (!healthy || !process_.running()) {
    std::string log = read_file(log_);
    process_.stop();
    throw std::runtime_error("kube-controller-manager did not become healthy (" + status + "); its log:\n" +
                             log.substr(log.size() > 4000 ? log.size() - 4000 : 0));
  }
}

ControllerManager::~ControllerManager() {
  process_.stop();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace switchboard::e2e
