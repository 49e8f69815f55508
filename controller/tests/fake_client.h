// An in-memory kube::Client that behaves as the API server does where the reconcilers
// can tell: resourceVersions and generations, 404 and 409, status kept apart from spec,
// server-side apply that writes nothing when nothing changed, finalizers that hold a
// deleted object, label selectors. Every call is recorded, so a test can say "this
// reconcile wrote nothing".
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "controller/fleet_nats.h"
#include "controller/reconciler.h"
#include "kube/client.h"

namespace switchboard::controller::testing {

class FakeClient : public kube::Client {
 public:
  struct Call {
    std::string verb;      // get list apply apply_status replace_status merge_patch create remove
    std::string resource;  // plural
    std::string key;       // namespace/name
  };

  // What `kubectl apply` does: creates, or replaces everything but status (generation
  // moves when spec changes). Returns the stored object.
  Json put(const kube::Resource& r, Json obj);
  std::optional<Json> object(const kube::Resource& r, const std::string& ns, const std::string& name) const;
  std::vector<Json> objects(const kube::Resource& r) const;
  // Deletes as a user would (finalizers hold the object, with a deletionTimestamp).
  void delete_object(const kube::Resource& r, const std::string& ns, const std::string& name);

  std::vector<Call> calls() const;
  void clear_calls();
  // Calls that change something: apply, replace_status, merge_patch, create, remove.
  std::vector<Call> writes() const;
  // Makes the next calls of this verb on this resource fail with this error.
  void fail(const std::string& verb, const std::string& plural, kube::ApiError error);
  void heal();  // no more failures
  // Writes that changed a stored object (a no-op apply is not one).
  int64_t changes() const;

  kube::Object get(const kube::Resource& r, const std::string& ns, const std::string& name) override;
  kube::ObjectList list(const kube::Resource& r, const std::string& ns, const kube::ListOptions& opts) override;
  std::string watch(const kube::Resource& r, const std::string& ns, const kube::ListOptions& opts,
                    const std::string& resource_version,
                    const std::function<kube::WatchControl(const kube::WatchEvent&)>& on_event,
                    const std::atomic<bool>& stop) override;
  kube::Object apply(const kube::Resource& r, const kube::Object& obj) override;
  kube::Object apply_status(const kube::Resource& r, const kube::Object& obj) override;
  kube::Object replace_status(const kube::Resource& r, const kube::Object& obj) override;
  kube::Object merge_patch(const kube::Resource& r, const std::string& ns, const std::string& name,
                           const kube::Object& patch) override;
  kube::Object create(const kube::Resource& r, const std::string& ns, const kube::Object& obj) override;
  bool remove(const kube::Resource& r, const std::string& ns, const std::string& name,
              kube::Propagation propagation) override;
  kube::Object create_subresource(const kube::Resource& r, const std::string& ns, const std::string& name,
                                  const std::string& subresource, const kube::Object& body) override;

 private:
  using Map = std::map<std::string, Json>;  // key → object
  void record(const std::string& verb, const kube::Resource& r, const std::string& key);
  void maybe_fail(const std::string& verb, const kube::Resource& r);
  Json& store_locked(const kube::Resource& r, const std::string& key, Json obj);

  mutable std::mutex mu_;
  std::map<std::string, Map> objects_;  // plural → objects
  std::vector<Call> calls_;
  std::map<std::pair<std::string, std::string>, kube::ApiError> failures_;
  int64_t next_rv_ = 1;
  int64_t changes_ = 0;
};

// A Store that reads the fake client directly: what an informer would hold once synced.
class ClientStore : public Store {
 public:
  ClientStore(FakeClient& client, kube::Resource r) : client_(client), r_(std::move(r)) {}
  std::optional<Json> get(const std::string& key) const override;
  std::vector<Json> list() const override { return client_.objects(r_); }

 private:
  FakeClient& client_;
  kube::Resource r_;
};

class FakeNats : public FleetNats {
 public:
  std::string watch(const std::string& router_key, const std::string& subject, const NatsSettings& settings) override;
  void forget(const std::string& router_key) override;
  bool watching(const std::string& router_key) const override { return watches.count(router_key) > 0; }
  std::string connection_problem(const std::string& router_key) const override {
    auto it = problems.find(router_key);
    return it == problems.end() ? "" : it->second;
  }
  std::string delete_consumer(const std::string& router_key, const std::string& stream,
                              const std::string& durable) override;

  std::map<std::string, std::pair<std::string, NatsSettings>> watches;  // router → subject, settings
  std::vector<std::string> deleted;                                     // "router stream/durable"
  std::string watch_error;
  std::string delete_error;
  std::map<std::string, std::string> problems;  // router → connection_problem()
};

// Deep merge of JSON objects (RFC 7386 merge patch): null removes a field.
Json merge(const Json& target, const Json& patch);

}  // namespace switchboard::controller::testing
