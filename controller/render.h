// Desired state, rendered: pure functions from an EventRouter (and its route table) to the
// objects the controller applies with server-side apply. No I/O, no clock: the same input
// always gives the same objects, which is what makes drift repair a plain re-apply and
// what the golden tests check.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "controller/json_util.h"

namespace switchboard::controller {

// routes.json above this many bytes is split into parts: a ConfigMap holds at most 1 MiB
// (data and metadata together), and the index, labels and annotations need room too.
inline constexpr size_t kMaxTableBytes = 900 * 1024;

struct RenderOptions {
  std::string default_image;  // --router-image, when spec.image is empty
};

// The fields of an EventRouter spec the renderers use, with the CRD's defaults for what
// is missing (the API server fills them in; a test object may not have them).
struct RouterSpec {
  std::string name;
  std::string ns;
  std::string uid;
  int64_t replicas = 2;
  std::vector<std::string> urls;
  std::string image;
  std::string log_level = "info";
  std::string heartbeat = "5s";
  std::string grace = "20s";
  int64_t grace_ms = 20000;
  int64_t metrics_port = 9090;
  Json resources;  // null when not given
  // NATS auth: the Secret and the keys that hold each credential (empty when unused).
  std::string auth_secret, user_key, password_key, token_key, nkey_seed_key, creds_key;
  // NATS TLS.
  std::string tls_secret, ca_key = "ca.crt", cert_key, key_key;
};
RouterSpec router_spec(const Json& router);

// The labels of every object owned by the router, and the subset that selects its pods.
Json owned_labels(const std::string& router);
Json selector_labels(const std::string& router);
// The pod selector as text, for status.selector (the scale subresource).
std::string selector_text(const std::string& router);
Json owner_reference(const Json& router);

// Splits text into pieces of at most max_bytes, never inside a UTF-8 character.
std::vector<std::string> split_text(const std::string& text, size_t max_bytes);

// The route table ConfigMaps, in the order they must be written: the parts first (none
// when the table fits), the main ConfigMap `<router>-routes` last.
std::vector<Json> render_table_configmaps(const Json& router, uint64_t generation, const std::string& hash,
                                          const std::string& canonical, size_t max_bytes = kMaxTableBytes);
// Names of the ConfigMaps that render_table_configmaps returned, main one included.
std::vector<std::string> configmap_names(const std::vector<Json>& configmaps);

// Reads a table back the way a router must: routes.json, or index.json and the parts
// (each checked against its digest). nullopt with `error` when something is missing or
// does not match.
std::optional<std::string> assemble_table(const Json& main, const std::map<std::string, Json>& parts_by_name,
                                          std::string& error);

Json render_service_account(const Json& router);
// get/list/watch on exactly these ConfigMaps, by name, and nothing else.
Json render_role(const Json& router, const std::vector<std::string>& configmaps);
Json render_role_binding(const Json& router);
Json render_metrics_service(const Json& router);
Json render_pdb(const Json& router);
Json render_service_monitor(const Json& router);
Json render_deployment(const Json& router, const RenderOptions& options);

// The router's command line, as the Deployment gives it.
std::vector<std::string> router_args(const RouterSpec& spec);

// The table generation to write: unchanged while the hash is unchanged, else one more
// than any generation already used (in the status or in the ConfigMap, whichever is
// ahead: a status write can fail after the ConfigMap write).
uint64_t next_table_generation(uint64_t status_generation, const std::string& status_hash,
                               uint64_t configmap_generation, const std::string& configmap_hash,
                               const std::string& new_hash);

}  // namespace switchboard::controller
