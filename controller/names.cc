#include "controller/names.h"

namespace switchboard::controller {

namespace {

bool strip_suffix(std::string_view s, std::string_view suffix, std::string& out) {
  if (s.size() <= suffix.size() || s.substr(s.size() - suffix.size()) != suffix) return false;
  out = std::string(s.substr(0, s.size() - suffix.size()));
  return true;
}

}  // namespace

std::optional<std::string> router_of_owned(std::string_view kind, const std::string& name) {
  std::string router;
  if (kind == "Deployment" || kind == "PodDisruptionBudget" || kind == "ServiceMonitor") return name;
  if (kind == "ServiceAccount" || kind == "Role" || kind == "RoleBinding") {
    if (strip_suffix(name, "-router", router)) return router;
    return std::nullopt;
  }
  if (kind == "Service") {
    if (strip_suffix(name, "-metrics", router)) return router;
    return std::nullopt;
  }
  if (kind == "ConfigMap") {
    if (strip_suffix(name, "-routes", router)) return router;
    // A part: <router>-routes-<digits>.
    size_t dash = name.rfind('-');
    if (dash == std::string::npos || dash + 1 == name.size()) return std::nullopt;
    for (size_t i = dash + 1; i < name.size(); ++i) {
      if (name[i] < '0' || name[i] > '9') return std::nullopt;
    }
    if (strip_suffix(std::string_view(name).substr(0, dash), "-routes", router)) return router;
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace switchboard::controller
