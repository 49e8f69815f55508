// Where collections live in the API, the resources Switchboard touches, and the fields
// every object has.
#include "kube/client.h"

namespace switchboard::kube {

std::string Resource::path(const std::string& ns, const std::string& name,
                           const std::string& subresource) const {
  std::string p = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  // A cluster-scoped resource ignores the namespace, so that callers can pass the
  // namespace they have at hand without checking the scope first.
  if (namespaced && !ns.empty()) p += "/namespaces/" + ns;
  p += "/" + plural;
  if (!name.empty()) {
    p += "/" + name;
    if (!subresource.empty()) p += "/" + subresource;
  }
  return p;
}

namespace resources {
const Resource kConfigMaps{"", "v1", "configmaps", "ConfigMap", true};
const Resource kSecrets{"", "v1", "secrets", "Secret", true};
const Resource kServices{"", "v1", "services", "Service", true};
const Resource kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount", true};
const Resource kNamespaces{"", "v1", "namespaces", "Namespace", false};
// core/v1 Events (involvedObject, reason, message): what `kubectl describe` shows and
// the simplest to write; events.k8s.io/v1 reads the same objects.
const Resource kEvents{"", "v1", "events", "Event", true};
const Resource kDeployments{"apps", "v1", "deployments", "Deployment", true};
const Resource kRoles{"rbac.authorization.k8s.io", "v1", "roles", "Role", true};
const Resource kRoleBindings{"rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true};
const Resource kPodDisruptionBudgets{"policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true};
const Resource kLeases{"coordination.k8s.io", "v1", "leases", "Lease", true};
const Resource kCustomResourceDefinitions{"apiextensions.k8s.io", "v1", "customresourcedefinitions",
                                          "CustomResourceDefinition", false};
const Resource kServiceMonitors{"monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor", true};
// A TokenRequest is not a collection of its own: it is POSTed to the `token` subresource
// of a ServiceAccount, create_subresource(kServiceAccounts, ns, sa, "token", body), with
// a body whose apiVersion and kind come from here.
const Resource kTokenRequests{"authentication.k8s.io", "v1", "tokenrequests", "TokenRequest", true};
const Resource kEventRouters{"switchboard.dev", "v1alpha1", "eventrouters", "EventRouter", true};
const Resource kEventRoutes{"switchboard.dev", "v1alpha1", "eventroutes", "EventRoute", true};
const Resource kEventTransforms{"switchboard.dev", "v1alpha1", "eventtransforms", "EventTransform", true};
}  // namespace resources

namespace {

const Object* metadata_field(const Object& obj, const char* field) {
  if (!obj.is_object() || !obj.has_object_field("metadata")) return nullptr;
  const auto& md = obj.at("metadata");
  if (!md.has_field(field)) return nullptr;
  return &md.at(field);
}

std::string metadata_string(const Object& obj, const char* field) {
  const Object* v = metadata_field(obj, field);
  return v && v->is_string() ? v->as_string() : std::string();
}

}  // namespace

std::string name_of(const Object& obj) { return metadata_string(obj, "name"); }
std::string namespace_of(const Object& obj) { return metadata_string(obj, "namespace"); }
std::string resource_version_of(const Object& obj) { return metadata_string(obj, "resourceVersion"); }

std::string key_of(const Object& obj) {
  std::string ns = namespace_of(obj);
  return ns.empty() ? name_of(obj) : ns + "/" + name_of(obj);
}

int64_t generation_of(const Object& obj) {
  const Object* v = metadata_field(obj, "generation");
  return v && v->is_integer() ? v->as_number().to_int64() : 0;
}

}  // namespace switchboard::kube
