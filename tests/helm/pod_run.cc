// switchboard-pod-run: the pod runner (tests/e2e/pod_runner.h) as a command, for scripts.
// It reads a Deployment from the API server, starts each replica's container as a local
// process with the args and env Kubernetes would give it and a real ServiceAccount token
// (TokenRequest API), waits until every readiness probe answers 200, prints where each
// pod listens, and keeps the pods running until it gets SIGTERM or SIGINT. Then it stops
// them (SIGTERM, SIGKILL after the grace) and exits 0 only when each exited 0.
//
// --sa-kubeconfig: for programs that read their in-cluster configuration only from
// /var/run/secrets/kubernetes.io/serviceaccount (which a process here cannot have), a
// kubeconfig in the pod's folder with the same server, CA and service account token, and
// KUBECONFIG pointing at it. Nothing else of the pod changes.
//
// Output (stdout, one line each, flushed): "pod NAME metrics PORT log FILE" per replica,
// then "ready". A pod that exits while the pods should run ends the command with status
// 1 and its log on stderr (a kubelet would restart it; a test wants to know).
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "kube/client.h"
#include "kube/config.h"
#include "tests/e2e/e2e_support.h"
#include "tests/e2e/pod_runner.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

int usage() {
  std::cerr << "usage: switchboard-pod-run --kubeconfig FILE --namespace NS --deployment NAME --container NAME\n"
               "                           --binary PATH [--work-dir DIR] [--sa-kubeconfig] [--ready-timeout SECONDS]\n";
  return 2;
}

std::string kubeconfig_for(const switchboard::e2e::PodPlan& plan, const std::string& server) {
  return "apiVersion: v1\n"
         "kind: Config\n"
         "clusters:\n"
         "- name: in-cluster\n"
         "  cluster:\n"
         "    server: " + server + "\n"
         "    certificate-authority: " + plan.sa_dir + "/ca.crt\n"
         "users:\n"
         "- name: service-account\n"
         "  user:\n"
         "    tokenFile: " + plan.sa_dir + "/token\n"
         "contexts:\n"
         "- name: in-cluster\n"
         "  context:\n"
         "    cluster: in-cluster\n"
         "    user: service-account\n"
         "    namespace: " + plan.ns + "\n"
         "current-context: in-cluster\n";
}

}  // namespace

int main(int argc, char** argv) {
  namespace e2e = switchboard::e2e;
  std::string kubeconfig, ns, deployment, container, binary, work_dir;
  bool sa_kubeconfig = false;
  int ready_timeout_s = 60;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--kubeconfig") kubeconfig = value();
    else if (a == "--namespace") ns = value();
    else if (a == "--deployment") deployment = value();
    else if (a == "--container") container = value();
    else if (a == "--binary") binary = value();
    else if (a == "--work-dir") work_dir = value();
    else if (a == "--sa-kubeconfig") sa_kubeconfig = true;
    else if (a == "--ready-timeout") ready_timeout_s = std::atoi(value().c_str());
    else return usage();
  }
  if (kubeconfig.empty() || ns.empty() || deployment.empty() || container.empty() || binary.empty() ||
      ready_timeout_s <= 0) {
    return usage();
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);

  try {
    switchboard::kube::Config config = switchboard::kube::load_kubeconfig(kubeconfig);
    // https://HOST:PORT: what KUBERNETES_SERVICE_HOST and _PORT say in a pod.
    std::string server = config.server;
    size_t scheme = server.find("://");
    std::string hostport = scheme == std::string::npos ? server : server.substr(scheme + 3);
    hostport = hostport.substr(0, hostport.find('/'));
    size_t colon = hostport.rfind(':');
    if (colon == std::string::npos) throw std::runtime_error("no port in the server address " + server);
    auto client = switchboard::kube::make_client(config);

    e2e::PodRunnerOptions options;
    options.binary = std::filesystem::absolute(binary).string();
    options.container = container;
    options.api_host = hostport.substr(0, colon);
    options.api_port = std::atoi(hostport.c_str() + colon + 1);
    options.ca_pem = config.ca_pem;
    options.work_dir = work_dir;
    options.keep_work_dir = !work_dir.empty();
    if (sa_kubeconfig) {
      options.adjust = [server](e2e::PodPlan& plan) {
        if (plan.sa_dir.empty()) {
          throw e2e::PodError(plan.name + ": --sa-kubeconfig, but the pod mounts no service account token");
        }
        std::string path = plan.dir + "/kubeconfig";
        e2e::write_file(path, kubeconfig_for(plan, server));
        plan.env.push_back("KUBECONFIG=" + path);
      };
    }
    e2e::PodRunner runner(*client, options);
    runner.start(ns, deployment);
    std::string why;
    if (!runner.wait_ready(std::chrono::seconds(ready_timeout_s), &why)) {
      std::cerr << "switchboard-pod-run: " << ns << "/" << deployment << ": " << why << "\n" << runner.logs();
      return 1;
    }
    for (size_t i = 0; i < runner.size(); ++i) {
      const e2e::PodPlan& plan = runner.pod(i).plan;
      int port = plan.ports.empty() ? 0 : plan.ports.begin()->second;
      std::cout << "pod " << plan.name << " metrics " << port << " log " << plan.log_path << "\n";
    }
    std::cout << "ready" << std::endl;

    while (!g_stop) {
      for (size_t i = 0; i < runner.size(); ++i) {
        if (!runner.pod(i).process.running()) {
          std::cerr << "switchboard-pod-run: pod " << runner.pod(i).plan.name << " exited; its log:\n"
                    << e2e::read_file(runner.pod(i).plan.log_path);
          return 1;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    std::vector<int> statuses = runner.stop(10000);
    int bad = 0;
    for (size_t i = 0; i < statuses.size(); ++i) {
      if (statuses[i] != 0) {
        std::cerr << "switchboard-pod-run: pod " << runner.pod(i).plan.name << " exited with status " << statuses[i]
                  << " on SIGTERM; its log:\n"
                  << e2e::read_file(runner.pod(i).plan.log_path);
        ++bad;
      }
    }
    return bad == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "switchboard-pod-run: " << e.what() << "\n";
    return 1;
  }
}
