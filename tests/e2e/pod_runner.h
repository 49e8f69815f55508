// The pod runner: what a kubelet would do with a router Deployment, done with processes on
// this machine, which has no kubelet and no container engine. It reads the Deployment the
// controller wrote and, for each replica, starts the router binary with the container's
// args and env exactly as Kubernetes would resolve them:
//
//  - env: value, with $(VAR) references to earlier variables; valueFrom fieldRef
//    (metadata.name is "<deployment>-<i>", metadata.namespace, labels, ...),
//    secretKeyRef and configMapKeyRef read from the API; envFrom; the variables a pod
//    gets from the cluster (KUBERNETES_SERVICE_HOST/PORT, here the test API server).
//  - args and command: $(VAR) expanded from that env, $$ kept as $.
//  - every volumeMount is materialized in the pod's folder (Secret and ConfigMap keys as
//    files, projected sources, downwardAPI, emptyDir) and its mountPath is replaced by
//    that folder wherever an arg or env value starts with it;
//  - the service account: unless automounting is off, a folder with a real token from
//    the TokenRequest API for spec.serviceAccountName, ca.crt and namespace, as a kubelet
//    mounts it at /var/run/secrets/kubernetes.io/serviceaccount; SWITCHBOARD_SA_DIR
//    points the router at it.
//
//  - the securityContext (the container's over the pod's): runAsUser, runAsGroup and
//    fsGroup as the process's user, group and supplementary group (volume files get
//    fsGroup as their group, as a kubelet's ownership management does);
//    readOnlyRootFilesystem as a private mount namespace in which every filesystem but
//    /proc, /sys, /dev and the emptyDir folders is remounted read-only;
//    allowPrivilegeEscalation false as no_new_privs; capabilities drop ALL. The binary is
//    run from a copy in the runner's folder, as an image would hold it. Applying these
//    needs root; a pod that asks for them under a runner that is not root is refused
//    (PodError) rather than run as something it is not.
//
// What cannot be the same: pods have their own network namespace, these processes share
// the host's. So the port of --metrics-addr (and of the probes that name it) is replaced
// by a free loopback port per replica, and its host by 127.0.0.1. The process gets only
// the environment the container would (env -i), runs in its pod folder, and is stopped by
// the runner. Readiness is the readinessProbe's HTTP GET, polled.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kube/client.h"
#include "tests/support/process.h"

namespace switchboard::e2e {

// What a kubelet fetches from the API for a pod. Missing objects throw.
class PodInputs {
 public:
  virtual ~PodInputs() = default;
  virtual kube::Object secret(const std::string& ns, const std::string& name) = 0;
  virtual kube::Object config_map(const std::string& ns, const std::string& name) = 0;
  virtual kube::Object service_account(const std::string& ns, const std::string& name) = 0;
  // A token for the ServiceAccount from the TokenRequest API.
  virtual std::string token(const std::string& ns, const std::string& service_account,
                            const std::vector<std::string>& audiences, int64_t expiration_seconds) = 0;
};

// PodInputs over the real API.
class ApiPodInputs : public PodInputs {
 public:
  explicit ApiPodInputs(kube::Client& client) : client_(client) {}
  kube::Object secret(const std::string& ns, const std::string& name) override;
  kube::Object config_map(const std::string& ns, const std::string& name) override;
  kube::Object service_account(const std::string& ns, const std::string& name) override;
  std::string token(const std::string& ns, const std::string& service_account,
                    const std::vector<std::string>& audiences, int64_t expiration_seconds) override;

 private:
  kube::Client& client_;
};

// A pod that cannot be started the way Kubernetes would start it (a missing Secret, an
// unsupported field): the message says which and why.
class PodError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PodPlan;

struct PodRunnerOptions {
  std::string binary;              // the local switchboard-router, for the container's image
  std::string container = "router";
  std::string api_host = "127.0.0.1";  // KUBERNETES_SERVICE_HOST
  int api_port = 0;                    // KUBERNETES_SERVICE_PORT
  std::string ca_pem;                  // the cluster's CA: ca.crt of the service account folder
  std::string work_dir;                // parent of the pods' folders; empty: a new temp folder
  bool keep_work_dir = false;          // keep logs and files after the runner goes
  // Called with each replica's plan before its process starts, for what a test must
  // substitute beyond the above (a program that reads its service account only from the
  // in-cluster path gets a kubeconfig instead, say). Empty: the plan as resolved.
  std::function<void(PodPlan&)> adjust;
};

// How one replica is started: the result of resolving the pod template.
struct PodPlan {
  std::string name;        // <deployment>-<index>
  std::string ns;
  std::string dir;         // the pod's folder: volumes, log
  std::vector<std::string> argv;  // the binary, then the resolved args
  std::vector<std::string> env;   // "K=V", all the process gets
  std::map<std::string, std::string> mounts;  // mountPath -> folder (or file, for subPath)
  std::map<int, int> ports;                   // container port -> local port
  std::string sa_dir;                         // the service account folder, if mounted
  // The resolved securityContext; -1: not set (the runner's own).
  struct Security {
    int64_t run_as_user = -1, run_as_group = -1, fs_group = -1;
    bool run_as_non_root = false;
    bool read_only_root = false;
    bool no_new_privs = false;
    bool drop_all_capabilities = false;
    std::vector<std::string> writable;  // emptyDir folders, writable on a read-only root
    // Whether the process must be started differently from the runner itself.
    bool applies() const {
      return run_as_user >= 0 || run_as_group >= 0 || fs_group >= 0 || read_only_root || no_new_privs ||
             drop_all_capabilities;
    }
  } security;
  // HTTP probes, on the local port.
  std::string readiness_path, liveness_path;
  int readiness_port = 0, liveness_port = 0;
  std::string log_path;
};

// Kubernetes' $(VAR) expansion: $(NAME) becomes the value when NAME is defined and stays
// as written otherwise; $$ becomes $; anything else is kept.
std::string expand_vars(const std::string& text, const std::map<std::string, std::string>& vars);

// Resolves replica `index` of `deployment` into a plan, writing its volumes under
// `pod_dir` (which must exist). `free_port` hands out local ports. Throws PodError.
PodPlan plan_pod(const kube::Object& deployment, int index, PodInputs& inputs, const PodRunnerOptions& options,
                 const std::string& pod_dir, const std::function<int()>& free_port);

class PodRunner {
 public:
  struct Pod {
    PodPlan plan;
    testing::Process process;
  };

  PodRunner(kube::Client& client, PodRunnerOptions options);
  ~PodRunner();  // stops every process it started
  PodRunner(const PodRunner&) = delete;
  PodRunner& operator=(const PodRunner&) = delete;

  // Reads the Deployment and starts spec.replicas pods (replacing any started before).
  // Throws PodError or kube::ApiError.
  void start(const std::string& ns, const std::string& deployment);
  // Polls every pod's readiness probe until all answer 200; false (with what the first
  // unready pod said) at the timeout or when a process exits.
  bool wait_ready(std::chrono::milliseconds timeout, std::string* why = nullptr);
  // SIGTERM to every pod, SIGKILL after the grace; returns the exit statuses.
  std::vector<int> stop(int grace_ms = 10000);
  // A container restart, as a kubelet does one: `sig` to pod i's process (SIGKILL once
  // grace_ms pass), `down` of nothing, then the same command again in the same folder, on
  // the same ports, its log appended to. Returns how the process ended (128+n when
  // killed by signal n).
  int restart(size_t i, int sig, int grace_ms = 10000, std::chrono::milliseconds down = std::chrono::milliseconds(0));

  size_t size() const { return pods_.size(); }
  Pod& pod(size_t i) { return *pods_.at(i); }
  const std::string& work_dir() const { return work_dir_; }
  // Every pod's log, headed by its name and command line: for a failing test's output.
  std::string logs() const;

 private:
  kube::Client& client_;
  PodRunnerOptions options_;
  std::string work_dir_;
  bool own_work_dir_ = false;
  std::vector<std::unique_ptr<Pod>> pods_;
  std::string image_binary_;  // the copy of options_.binary that sandboxed pods run

  void launch(Pod& pod);
};

}  // namespace switchboard::e2e
