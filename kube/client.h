// A small Kubernetes API client on cpprestsdk: just what Switchboard's controller and
// router need (get, list, watch, server-side apply, status, delete, merge patch).
//
// Objects are web::json::value: the API server speaks JSON, and the controller builds
// and reads objects field by field. Every failure is an ApiError carrying the HTTP status
// and the API server's Status reason and message, so a caller can tell NotFound from
// Conflict from Gone without parsing text.
//
// Client is an interface so that reconcilers can be unit-tested against a small fake;
// make_client() returns the real one. Every call is synchronous and thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <cpprest/json.h>

#include "kube/config.h"

namespace switchboard::kube {

using Object = web::json::value;

// A failed API call. status is the HTTP status (0 when the request never got an answer:
// connection refused, TLS failure, timeout); reason is the Status object's reason
// ("NotFound", "Conflict", "AlreadyExists", "Expired", "Gone", "Invalid", "Forbidden",
// ...) and message its message, or a transport description when status is 0.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string reason, std::string message);
  int status() const { return status_; }
  const std::string& reason() const { return reason_; }
  const std::string& message() const { return message_; }

  bool not_found() const { return status_ == 404; }
  bool conflict() const { return status_ == 409; }
  bool gone() const { return status_ == 410; }  // a watch's resourceVersion is too old
  bool transient() const { return status_ == 0 || status_ == 429 || status_ >= 500; }

 private:
  int status_;
  std::string reason_;
  std::string message_;
};

// A collection of the API: where it lives and what its objects are called.
struct Resource {
  std::string group;    // "" for the core group
  std::string version;  // "v1", "v1alpha1"
  std::string plural;   // "configmaps"
  std::string kind;     // "ConfigMap"
  bool namespaced = true;

  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
  // "/api/v1/namespaces/NS/configmaps[/NAME[/SUB]]" or "/apis/GROUP/VERSION/...";
  // ns empty means all namespaces (for list and watch).
  std::string path(const std::string& ns, const std::string& name = "",
                   const std::string& subresource = "") const;
};

// The resources Switchboard touches.
namespace resources {
extern const Resource kConfigMaps, kSecrets, kServices, kServiceAccounts, kNamespaces, kEvents;
extern const Resource kDeployments, kRoles, kRoleBindings, kPodDisruptionBudgets, kLeases;
extern const Resource kCustomResourceDefinitions, kServiceMonitors, kTokenRequests;
extern const Resource kEventRouters, kEventRoutes, kEventTransforms;  // switchboard.dev/v1alpha1
}  // namespace resources

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  int64_t limit = 500;  // page size; list() follows `continue` until the end
};

struct ObjectList {
  std::vector<Object> items;
  std::string resource_version;  // of the list, to start a watch from
};

struct WatchEvent {
  enum class Type { Added, Modified, Deleted, Bookmark };
  Type type;
  Object object;
};

// What a watch callback tells the watch: keep going or stop now.
enum class WatchControl { Continue, Stop };

enum class Propagation { Background, Foreground, Orphan };

class Client {
 public:
  virtual ~Client() = default;

  virtual Object get(const Resource& r, const std::string& ns, const std::string& name) = 0;
  // Every page, following `continue` tokens.
  virtual ObjectList list(const Resource& r, const std::string& ns, const ListOptions& opts = {}) = 0;
  // One watch request from resource_version, with allowWatchBookmarks. Calls on_event for
  // every event (bookmarks included) until on_event returns Stop, `stop` becomes true
  // (checked at least every second), or the server ends the stream; returns the last
  // resourceVersion seen, to resume from. A 410 (Gone/Expired), whether as an HTTP status
  // or as an ERROR event in the stream, throws ApiError with gone() true: relist then.
  virtual std::string watch(const Resource& r, const std::string& ns, const ListOptions& opts,
                            const std::string& resource_version,
                            const std::function<WatchControl(const WatchEvent&)>& on_event,
                            const std::atomic<bool>& stop) = 0;
  // Server-side apply (PATCH application/apply-patch+yaml, fieldManager "switchboard",
  // force=true). obj must carry apiVersion, kind, metadata.name (and namespace when the
  // resource is namespaced). Returns the object as stored.
  virtual Object apply(const Resource& r, const Object& obj) = 0;
  // Server-side apply on the status subresource (same field manager).
  virtual Object apply_status(const Resource& r, const Object& obj) = 0;
  // PUT on the status subresource; obj carries metadata.resourceVersion, so a stale write
  // fails with conflict(). See update_status_with_retry().
  virtual Object replace_status(const Resource& r, const Object& obj) = 0;
  // PUT of the whole object; obj carries metadata.resourceVersion, so a stale write fails
  // with conflict() (optimistic concurrency, as leader election needs). Not pure, so that
  // clients written before it (test fakes) still compile: the default sends the whole
  // object as a merge patch, resourceVersion included, which the server checks the same
  // way (but fields missing from obj are kept rather than cleared).
  virtual Object replace(const Resource& r, const Object& obj);
  // JSON merge patch (application/merge-patch+json), e.g. for finalizers.
  virtual Object merge_patch(const Resource& r, const std::string& ns, const std::string& name,
                             const Object& patch) = 0;
  virtual Object create(const Resource& r, const std::string& ns, const Object& obj) = 0;
  // DELETE; a missing object is not an error (returns false).
  virtual bool remove(const Resource& r, const std::string& ns, const std::string& name,
                      Propagation propagation = Propagation::Background) = 0;
  // POST to a subresource (e.g. serviceaccounts/NAME/token for a TokenRequest).
  virtual Object create_subresource(const Resource& r, const std::string& ns, const std::string& name,
                                    const std::string& subresource, const Object& body) = 0;
};

// The real client, over HTTPS (or HTTP) as the configuration says. Throws ConfigError
// when the configuration cannot be used (a server that is not a URL, PEM that does not
// parse).
std::unique_ptr<Client> make_client(const Config& config);

// Knobs of the real client that only tests and tools need.
struct ClientOptions {
  // timeoutSeconds of each watch request: the server ends the stream after it, and the
  // caller watches again from the resourceVersion it got back. Zero picks a random time
  // between 5 and 10 minutes, as client-go does, so that watches of many replicas do not
  // all restart together.
  std::chrono::seconds watch_timeout{0};
};
std::unique_ptr<Client> make_client(const Config& config, const ClientOptions& options);

// Reads the object, applies mutate to it (which returns false when nothing needs
// writing), writes the status with replace_status, and on a conflict reads again and
// retries, up to `attempts` times. Returns the stored object, or nullopt when the object
// is gone or mutate had nothing to do.
std::optional<Object> update_status_with_retry(Client& client, const Resource& r, const std::string& ns,
                                               const std::string& name,
                                               const std::function<bool(Object&)>& mutate,
                                               int attempts = 5);

// Small helpers for the fields every object has.
std::string name_of(const Object& obj);
std::string namespace_of(const Object& obj);
std::string key_of(const Object& obj);  // "namespace/name", or "name" when cluster-scoped
int64_t generation_of(const Object& obj);
std::string resource_version_of(const Object& obj);

}  // namespace switchboard::kube
