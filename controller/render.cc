#include "controller/render.h"

#include <algorithm>

#include "controller/names.h"
#include "core/json/document.h"
#include "core/route/spec_yaml.h"
#include "core/route/table.h"

namespace switchboard::controller {

namespace {

constexpr int64_t kNonRootUser = 65532;  // "nonroot" in distroless images

Json metadata(const Json& router, const std::string& name, Json labels) {
  return obj({{"name", str(name)},
              {"namespace", str(string_at(router, {"metadata", "namespace"}))},
              {"labels", std::move(labels)},
              {"ownerReferences", arr({owner_reference(router)})}});
}

Json typed(std::string_view api_version, std::string_view kind, Json meta) {
  return obj({{"apiVersion", str(api_version)}, {"kind", str(kind)}, {"metadata", std::move(meta)}});
}

Json labels_with_component(const std::string& router, std::string_view component) {
  Json l = owned_labels(router);
  l[std::string(kLabelComponent)] = str(component);
  return l;
}

std::string table_index_json(uint64_t generation, const std::string& hash,
                             const std::vector<std::pair<std::string, std::string>>& parts) {
  // Written by hand so that the key order is the documented one.
  std::string out = "{\"generation\":" + std::to_string(generation) + ",\"hash\":";
  json::append_quoted(out, hash);
  out += ",\"parts\":[";
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += ',';
    out += "{\"name\":";
    json::append_quoted(out, parts[i].first);
    out += ",\"sha256\":";
    json::append_quoted(out, parts[i].second);
    out += '}';
  }
  return out + "]}";
}

}  // namespace

RouterSpec router_spec(const Json& router) {
  RouterSpec s;
  s.name = string_at(router, {"metadata", "name"});
  s.ns = string_at(router, {"metadata", "namespace"});
  s.uid = string_at(router, {"metadata", "uid"});
  s.replicas = int_at(router, {"spec", "replicas"}, 2);
  if (const Json* urls = find(router, {"spec", "nats", "urls"}); urls != nullptr && urls->is_array()) {
    for (const auto& u : urls->as_array()) {
      if (u.is_string()) s.urls.push_back(u.as_string());
    }
  }
  s.image = string_at(router, {"spec", "image"});
  s.log_level = string_at(router, {"spec", "logLevel"}, "info");
  s.heartbeat = string_at(router, {"spec", "heartbeatInterval"}, "5s");
  s.grace = string_at(router, {"spec", "shutdownGracePeriod"}, "20s");
  int64_t ms = 0;
  if (route::parse_duration_ms(s.grace, ms)) s.grace_ms = ms;
  s.metrics_port = int_at(router, {"spec", "metricsPort"}, 9090);
  if (const Json* r = find(router, {"spec", "resources"}); r != nullptr && r->is_object()) s.resources = *r;
  s.auth_secret = string_at(router, {"spec", "nats", "auth", "secretName"});
  s.user_key = string_at(router, {"spec", "nats", "auth", "userKey"});
  s.password_key = string_at(router, {"spec", "nats", "auth", "passwordKey"});
  s.token_key = string_at(router, {"spec", "nats", "auth", "tokenKey"});
  s.nkey_seed_key = string_at(router, {"spec", "nats", "auth", "nkeySeedKey"});
  s.creds_key = string_at(router, {"spec", "nats", "auth", "credsKey"});
  s.tls_secret = string_at(router, {"spec", "nats", "tls", "secretName"});
  s.ca_key = string_at(router, {"spec", "nats", "tls", "caKey"}, "ca.crt");
  s.cert_key = string_at(router, {"spec", "nats", "tls", "certKey"});
  s.key_key = string_at(router, {"spec", "nats", "tls", "keyKey"});
  return s;
}

Json owned_labels(const std::string& router) {
  return obj({{std::string(kLabelName), str(kAppName)},
              {std::string(kLabelInstance), str(router)},
              {std::string(kLabelManagedBy), str(kManagedBy)},
              {std::string(kLabelRouter), str(router)}});
}

Json selector_labels(const std::string& router) {
  return obj({{std::string(kLabelName), str(kAppName)}, {std::string(kLabelInstance), str(router)}});
}

std::string selector_text(const std::string& router) {
  return std::string(kLabelName) + "=" + std::string(kAppName) + "," + std::string(kLabelInstance) + "=" + router;
}

Json owner_reference(const Json& router) {
  return obj({{"apiVersion", str(kGroupVersion)},
              {"kind", str("EventRouter")},
              {"name", str(string_at(router, {"metadata", "name"}))},
              {"uid", str(string_at(router, {"metadata", "uid"}))},
              {"controller", boolean(true)},
              {"blockOwnerDeletion", boolean(true)}});
}

std::vector<std::string> split_text(const std::string& text, size_t max_bytes) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = std::min(text.size(), pos + max_bytes);
    // Back off from the middle of a UTF-8 sequence (continuation bytes are 10xxxxxx).
    while (end < text.size() && end > pos + 1 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
    parts.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return parts;
}

std::vector<Json> render_table_configmaps(const Json& router, uint64_t generation, const std::string& hash,
                                          const std::string& canonical, size_t max_bytes) {
  const std::string name = string_at(router, {"metadata", "name"});
  Json annotations = obj({{std::string(kAnnotationGeneration), str(std::to_string(generation))},
                          {std::string(kAnnotationHash), str(hash)}});
  auto configmap = [&](const std::string& cm_name, std::string_view key, const std::string& value) {
    Json meta = metadata(router, cm_name, owned_labels(name));
    meta["annotations"] = annotations;
    Json cm = typed("v1", "ConfigMap", std::move(meta));
    cm["data"] = obj({{std::string(key), str(value)}});
    return cm;
  };
  std::vector<Json> out;
  if (canonical.size() <= max_bytes) {
    out.push_back(configmap(routes_configmap_name(name), kRoutesKey, canonical));
    return out;
  }
  std::vector<std::pair<std::string, std::string>> index;
  std::vector<std::string> pieces = split_text(canonical, max_bytes);
  for (size_t i = 0; i < pieces.size(); ++i) {
    std::string part_name = part_configmap_name(name, i + 1);
    index.emplace_back(part_name, route::sha256_hex(pieces[i]));
    out.push_back(configmap(part_name, kPartKey, pieces[i]));
  }
  out.push_back(configmap(routes_configmap_name(name), kIndexKey, table_index_json(generation, hash, index)));
  return out;
}

std::vector<std::string> configmap_names(const std::vector<Json>& configmaps) {
  std::vector<std::string> names;
  for (const auto& cm : configmaps) names.push_back(string_at(cm, {"metadata", "name"}));
  return names;
}

std::optional<std::string> assemble_table(const Json& main, const std::map<std::string, Json>& parts_by_name,
                                          std::string& error) {
  std::string routes = string_at(main, {"data", std::string(kRoutesKey)});
  if (find(main, {"data", std::string(kRoutesKey)}) != nullptr) return routes;
  const Json* index_text = find(main, {"data", std::string(kIndexKey)});
  if (index_text == nullptr || !index_text->is_string()) {
    error = "neither routes.json nor index.json";
    return std::nullopt;
  }
  Json index;
  try {
    index = Json::parse(index_text->as_string());
  } catch (const std::exception& e) {
    error = std::string("index.json is not JSON: ") + e.what();
    return std::nullopt;
  }
  const Json* parts = find(index, {"parts"});
  if (parts == nullptr || !parts->is_array()) {
    error = "index.json has no parts";
    return std::nullopt;
  }
  std::string text;
  for (const auto& p : parts->as_array()) {
    std::string part_name = string_at(p, {"name"});
    auto it = parts_by_name.find(part_name);
    if (it == parts_by_name.end()) {
      error = "part " + part_name + " is missing";
      return std::nullopt;
    }
    std::string piece = string_at(it->second, {"data", std::string(kPartKey)});
    if (route::sha256_hex(piece) != string_at(p, {"sha256"})) {
      error = "part " + part_name + " does not match its sha256";
      return std::nullopt;
    }
    text += piece;
  }
  return text;
}

Json render_service_account(const Json& router) {
  const std::string name = string_at(router, {"metadata", "name"});
  return typed("v1", "ServiceAccount", metadata(router, service_account_name(name), owned_labels(name)));
}

Json render_role(const Json& router, const std::vector<std::string>& configmaps) {
  const std::string name = string_at(router, {"metadata", "name"});
  Json role = typed("rbac.authorization.k8s.io/v1", "Role", metadata(router, role_name(name), owned_labels(name)));
  // list and watch with resourceNames work with a fieldSelector on metadata.name, which
  // is how the router watches its ConfigMap; parts are read with get.
  role["rules"] = arr({obj({{"apiGroups", arr({str("")})},
                            {"resources", arr({str("configmaps")})},
                            {"resourceNames", string_array(configmaps)},
                            {"verbs", arr({str("get"), str("list"), str("watch")})}})});
  return role;
}

Json render_role_binding(const Json& router) {
  const std::string name = string_at(router, {"metadata", "name"});
  Json rb = typed("rbac.authorization.k8s.io/v1", "RoleBinding",
                  metadata(router, role_name(name), owned_labels(name)));
  rb["roleRef"] = obj({{"apiGroup", str("rbac.authorization.k8s.io")}, {"kind", str("Role")}, {"name", str(role_name(name))}});
  rb["subjects"] = arr({obj({{"kind", str("ServiceAccount")},
                             {"name", str(service_account_name(name))},
                             {"namespace", str(string_at(router, {"metadata", "namespace"}))}})});
  return rb;
}

Json render_metrics_service(const Json& router) {
  RouterSpec s = router_spec(router);
  Json svc = typed("v1", "Service", metadata(router, metrics_service_name(s.name), labels_with_component(s.name, "metrics")));
  svc["spec"] = obj({{"type", str("ClusterIP")},
                     {"selector", selector_labels(s.name)},
                     {"ports", arr({obj({{"name", str("metrics")},
                                         {"port", num(s.metrics_port)},
                                         {"targetPort", num(s.metrics_port)},
                                         {"protocol", str("TCP")}})})}});
  return svc;
}

Json render_pdb(const Json& router) {
  const std::string name = string_at(router, {"metadata", "name"});
  Json pdb = typed("policy/v1", "PodDisruptionBudget", metadata(router, pdb_name(name), owned_labels(name)));
  pdb["spec"] = obj({{"maxUnavailable", num(1)}, {"selector", obj({{"matchLabels", selector_labels(name)}})}});
  return pdb;
}

Json render_service_monitor(const Json& router) {
  const std::string name = string_at(router, {"metadata", "name"});
  Json sm = typed("monitoring.coreos.com/v1", "ServiceMonitor", metadata(router, name, owned_labels(name)));
  Json match = selector_labels(name);
  match[std::string(kLabelComponent)] = str("metrics");
  sm["spec"] = obj({{"selector", obj({{"matchLabels", match}})},
                    // The dashboard and the alerts group router series by EventRouter
                    // (docs/observability.md, "Labels"); the router does not export it.
                    {"endpoints", arr({obj({{"port", str("metrics")},
                                            {"path", str("/metrics")},
                                            {"relabelings", arr({obj({{"targetLabel", str("router")},
                                                                      {"replacement", str(name)}})})}})})}});
  return sm;
}

std::vector<std::string> router_args(const RouterSpec& s) {
  std::string urls;
  for (size_t i = 0; i < s.urls.size(); ++i) urls += (i ? "," : "") + s.urls[i];
  std::vector<std::string> args = {"run",
                                   "--configmap", "$(POD_NAMESPACE)/" + routes_configmap_name(s.name),
                                   "--nats", urls,
                                   "--name", s.name,
                                   "--namespace", "$(POD_NAMESPACE)",
                                   "--pod", "$(POD_NAME)",
                                   "--metrics-addr", "0.0.0.0:" + std::to_string(s.metrics_port),
                                   "--heartbeat", s.heartbeat,
                                   "--grace", s.grace,
                                   "--log-level", s.log_level};
  auto file = [&](const char* flag, std::string_view dir, const std::string& key) {
    if (key.empty()) return;
    args.push_back(flag);
    args.push_back(std::string(dir) + "/" + key);
  };
  if (!s.auth_secret.empty()) {
    file("--nats-user-file", kNatsAuthDir, s.user_key);
    file("--nats-password-file", kNatsAuthDir, s.password_key);
    file("--nats-token-file", kNatsAuthDir, s.token_key);
    file("--nats-nkey-seed-file", kNatsAuthDir, s.nkey_seed_key);
    file("--nats-creds-file", kNatsAuthDir, s.creds_key);
  }
  if (!s.tls_secret.empty()) {
    file("--nats-tls-ca", kNatsTlsDir, s.ca_key);
    file("--nats-tls-cert", kNatsTlsDir, s.cert_key);
    file("--nats-tls-key", kNatsTlsDir, s.key_key);
  }
  return args;
}

Json render_deployment(const Json& router, const RenderOptions& options) {
  RouterSpec s = router_spec(router);
  const std::string image = s.image.empty() ? options.default_image : s.image;
  const int64_t port = s.metrics_port;
  auto field_env = [](const char* name, const char* path) {
    return obj({{"name", str(name)}, {"valueFrom", obj({{"fieldRef", obj({{"fieldPath", str(path)}})}})}});
  };
  auto probe = [&](const char* path, int64_t period) {
    return obj({{"httpGet", obj({{"path", str(path)}, {"port", num(port)}})},
                {"periodSeconds", num(period)},
                {"timeoutSeconds", num(2)},
                {"failureThreshold", num(3)}});
  };
  Json seccomp = obj({{"type", str("RuntimeDefault")}});
  Json container = obj({
      {"name", str("router")},
      {"image", str(image)},
      {"imagePullPolicy", str("IfNotPresent")},
      {"args", string_array(router_args(s))},
      {"env", arr({field_env("POD_NAME", "metadata.name"), field_env("POD_NAMESPACE", "metadata.namespace")})},
      {"ports", arr({obj({{"name", str("metrics")}, {"containerPort", num(port)}, {"protocol", str("TCP")}})})},
      {"readinessProbe", probe("/readyz", 5)},
      {"livenessProbe", probe("/healthz", 10)},
      {"securityContext", obj({{"runAsNonRoot", boolean(true)},
                               {"runAsUser", num(kNonRootUser)},
                               {"runAsGroup", num(kNonRootUser)},
                               {"readOnlyRootFilesystem", boolean(true)},
                               {"allowPrivilegeEscalation", boolean(false)},
                               {"capabilities", obj({{"drop", arr({str("ALL")})}})},
                               {"seccompProfile", seccomp}})},
  });
  if (!s.resources.is_null()) container["resources"] = s.resources;
  std::vector<Json> mounts, volumes;
  auto secret_volume = [&](const char* volume, const std::string& secret, std::string_view dir) {
    if (secret.empty()) return;
    mounts.push_back(obj({{"name", str(volume)}, {"mountPath", str(dir)}, {"readOnly", boolean(true)}}));
    // 0440: readable by the pod's group (fsGroup), not by other users.
    volumes.push_back(obj({{"name", str(volume)}, {"secret", obj({{"secretName", str(secret)}, {"defaultMode", num(0440)}})}}));
  };
  secret_volume("nats-auth", s.auth_secret, kNatsAuthDir);
  secret_volume("nats-tls", s.tls_secret, kNatsTlsDir);
  if (!mounts.empty()) container["volumeMounts"] = arr(mounts);

  Json pod_spec = obj({
      {"serviceAccountName", str(service_account_name(s.name))},
      {"terminationGracePeriodSeconds", num((s.grace_ms + 999) / 1000 + 5)},
      {"securityContext", obj({{"runAsNonRoot", boolean(true)},
                               {"runAsUser", num(kNonRootUser)},
                               {"runAsGroup", num(kNonRootUser)},
                               {"fsGroup", num(kNonRootUser)},
                               {"seccompProfile", seccomp}})},
      {"topologySpreadConstraints", arr({obj({{"maxSkew", num(1)},
                                              {"topologyKey", str("kubernetes.io/hostname")},
                                              {"whenUnsatisfiable", str("ScheduleAnyway")},
                                              {"labelSelector", obj({{"matchLabels", selector_labels(s.name)}})}})})},
      {"containers", arr({container})},
  });
  if (!volumes.empty()) pod_spec["volumes"] = arr(volumes);

  Json d = typed("apps/v1", "Deployment", metadata(router, deployment_name(s.name), owned_labels(s.name)));
  d["spec"] = obj({
      {"replicas", num(s.replicas)},
      {"revisionHistoryLimit", num(3)},
      {"selector", obj({{"matchLabels", selector_labels(s.name)}})},
      // A new pod is ready before an old one goes: the fleet never runs short.
      {"strategy", obj({{"type", str("RollingUpdate")},
                        {"rollingUpdate", obj({{"maxSurge", num(1)}, {"maxUnavailable", num(0)}})}})},
      {"template", obj({{"metadata", obj({{"labels", owned_labels(s.name)}})}, {"spec", pod_spec}})},
  });
  return d;
}

uint64_t next_table_generation(uint64_t status_generation, const std::string& status_hash,
                               uint64_t configmap_generation, const std::string& configmap_hash,
                               const std::string& new_hash) {
  if (configmap_generation > 0 && configmap_hash == new_hash) return configmap_generation;
  if (status_generation > 0 && status_hash == new_hash && status_generation >= configmap_generation) {
    return status_generation;
  }
  return std::max(status_generation, configmap_generation) + 1;
}

}  // namespace switchboard::controller
