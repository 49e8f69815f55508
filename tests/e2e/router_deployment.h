// A router Deployment written by hand after the controller's contract (container
// `router`, args for the ConfigMap watch, POD_NAME and POD_NAMESPACE from fieldRefs, the
// NATS credential mounted from a Secret, probes on the metrics port), for a router named
// `orders`. NS and NATS_URL are placeholders.
#pragma once

#include <string>

namespace switchboard::e2e {

inline std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// The router Deployment of the controller's contract, for a router named `orders`.
inline const char* const kDeployment = R"json({
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "orders", "namespace": "NS"},
  "spec": {
    "replicas": 2,
    "selector": {"matchLabels": {"switchboard.dev/router": "orders"}},
    "template": {
      "metadata": {"labels": {"switchboard.dev/router": "orders", "tier": "data"}},
      "spec": {
        "serviceAccountName": "orders-router",
        "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
          "name": "router",
          "image": "switchboard/router:dev",
          "args": ["run", "--configmap", "$(POD_NAMESPACE)/orders-routes", "--nats", "NATS_URL",
                   "--name", "orders", "--namespace", "$(POD_NAMESPACE)", "--pod", "$(POD_NAME)",
                   "--metrics-addr", "0.0.0.0:9090", "--heartbeat", "200ms", "--grace", "5s",
                   "--log-level", "$(LOG_LEVEL)",
                   "--nats-token-file", "/var/run/secrets/switchboard/nats-auth/token"],
          "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "LOG_LEVEL", "valueFrom": {"configMapKeyRef": {"name": "orders-settings", "key": "level"}}},
            {"name": "TIER", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['tier']"}}},
            {"name": "GREETING", "value": "pod $(POD_NAME) in $(TIER), $$(POD_NAME) kept, $(NOPE) kept"}
          ],
          "ports": [{"name": "metrics", "containerPort": 9090}],
          "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}},
          "livenessProbe": {"httpGet": {"path": "/healthz", "port": 9090}},
          "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                              "capabilities": {"drop": ["ALL"]}},
          "volumeMounts": [{"name": "nats-auth", "mountPath": "/var/run/secrets/switchboard/nats-auth",
                            "readOnly": true}]
        }],
        "volumes": [{"name": "nats-auth", "secret": {"secretName": "orders-nats"}}]
      }
    }
  }
})json";

}  // namespace switchboard::e2e
