// Names, labels and annotations that the controller writes and that the router, the Helm
// chart, the dashboards and the e2e tests read. Changing one is changing a contract.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace switchboard::controller {

inline constexpr std::string_view kGroupVersion = "switchboard.dev/v1alpha1";

// Labels on every object the controller owns.
inline constexpr std::string_view kLabelName = "app.kubernetes.io/name";
inline constexpr std::string_view kLabelInstance = "app.kubernetes.io/instance";
inline constexpr std::string_view kLabelManagedBy = "app.kubernetes.io/managed-by";
inline constexpr std::string_view kLabelComponent = "app.kubernetes.io/component";
inline constexpr std::string_view kLabelRouter = "switchboard.dev/router";
inline constexpr std::string_view kAppName = "switchboard-router";
inline constexpr std::string_view kManagedBy = "switchboard";
// What the controller's watches of owned kinds select.
inline constexpr std::string_view kManagedSelector = "app.kubernetes.io/managed-by=switchboard";

// Annotations of the route table ConfigMap.
inline constexpr std::string_view kAnnotationGeneration = "switchboard.dev/generation";
inline constexpr std::string_view kAnnotationHash = "switchboard.dev/hash";

// ConfigMap data keys.
inline constexpr std::string_view kRoutesKey = "routes.json";
inline constexpr std::string_view kIndexKey = "index.json";
inline constexpr std::string_view kPartKey = "part";

inline constexpr std::string_view kJetStreamFinalizer = "switchboard.dev/jetstream-consumer";

// Where the router pods find their NATS credentials.
inline constexpr std::string_view kNatsAuthDir = "/var/run/secrets/switchboard/nats-auth";
inline constexpr std::string_view kNatsTlsDir = "/var/run/secrets/switchboard/nats-tls";

inline std::string routes_configmap_name(const std::string& router) { return router + "-routes"; }
inline std::string part_configmap_name(const std::string& router, size_t index) {
  return router + "-routes-" + std::to_string(index);  // 1-based
}
inline std::string service_account_name(const std::string& router) { return router + "-router"; }
inline std::string role_name(const std::string& router) { return router + "-router"; }
inline std::string metrics_service_name(const std::string& router) { return router + "-metrics"; }
inline std::string deployment_name(const std::string& router) { return router; }
inline std::string pdb_name(const std::string& router) { return router; }
inline std::string heartbeat_subject(const std::string& ns, const std::string& router) {
  return "switchboard.status." + ns + "." + router;
}

// The router an owned object belongs to, from its kind and name alone (so that it also
// works for an object that was just deleted and is no longer in any cache).
std::optional<std::string> router_of_owned(std::string_view kind, const std::string& name);

// "namespace/name".
inline std::string make_key(const std::string& ns, const std::string& name) { return ns + "/" + name; }
inline std::pair<std::string, std::string> split_key(const std::string& key) {
  size_t slash = key.find('/');
  if (slash == std::string::npos) return {"", key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

}  // namespace switchboard::controller
