// Where the API server is and how to authenticate to it: from a kubeconfig file or, in a
// pod, from the service account that Kubernetes mounts.
#pragma once

#include <string>

namespace switchboard::kube {

class ConfigError : public std::exception {
 public:
  explicit ConfigError(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

struct Config {
  std::string server;  // "https://127.0.0.1:6443"
  // Trust: a CA bundle as PEM text (from certificate-authority-data or the file named by
  // certificate-authority, read at load time), or skip verification.
  std::string ca_pem;
  bool insecure_skip_tls_verify = false;
  // Client certificate authentication (PEM text).
  std::string client_cert_pem;
  std::string client_key_pem;
  // Bearer token: either fixed, or read from token_file before each request when the
  // file changed (service account tokens rotate).
  std::string token;
  std::string token_file;
  // The namespace of the context (kubeconfig) or of the pod (in cluster); "default"
  // when none is given.
  std::string ns = "default";
  // Per-request timeout in milliseconds for everything but watches.
  int64_t timeout_ms = 30000;
};

// Loads a kubeconfig file; context empty means its current-context. Supports
// certificate-authority(-data), insecure-skip-tls-verify, client-certificate(-data),
// client-key(-data), token and tokenFile. Relative file paths are relative to the
// kubeconfig's folder. Throws ConfigError naming the file and what is missing.
Config load_kubeconfig(const std::string& path, const std::string& context = "");

// In a pod: KUBERNETES_SERVICE_HOST/PORT, and the service account's token (as
// token_file, so rotation is picked up), CA and namespace under
// /var/run/secrets/kubernetes.io/serviceaccount (root overridable for tests).
// Throws ConfigError when not in a cluster.
Config in_cluster_config(const std::string& sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount");

// The usual order: an explicit kubeconfig path, else $KUBECONFIG, else in cluster, else
// ~/.kube/config.
Config load_config(const std::string& kubeconfig = "", const std::string& context = "");

}  // namespace switchboard::kube
