#include "controller/tests/fake_client.h"

#include "controller/names.h"

namespace switchboard::controller::testing {

namespace {

std::string key_for(const kube::Resource& r, const std::string& ns, const std::string& name) {
  return r.namespaced ? ns + "/" + name : name;
}

std::string key_of_object(const kube::Resource& r, const Json& o) {
  return key_for(r, string_at(o, {"metadata", "namespace"}), string_at(o, {"metadata", "name"}));
}

kube::ApiError not_found(const kube::Resource& r, const std::string& key) {
  return kube::ApiError(404, "NotFound", r.plural + " \"" + key + "\" not found");
}

Json without(const Json& o, std::initializer_list<const char*> fields) {
  Json out = o;
  if (!out.is_object()) return out;
  for (const char* f : fields) {
    if (out.has_field(f)) out.erase(f);
  }
  return out;
}

bool selector_ok(const Json& o, const std::string& selector) {
  size_t start = 0;
  while (start < selector.size()) {
    size_t end = selector.find(',', start);
    if (end == std::string::npos) end = selector.size();
    std::string term = selector.substr(start, end - start);
    size_t eq = term.find('=');
    std::string k = term.substr(0, eq);
    std::string v = eq == std::string::npos ? "" : term.substr(eq + 1);
    const Json* have = find(o, {"metadata", "labels", k});
    if (have == nullptr || !have->is_string() || (eq != std::string::npos && have->as_string() != v)) return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

Json merge(const Json& target, const Json& patch) {
  if (!patch.is_object()) return patch;
  Json out = target.is_object() ? target : Json::object();
  for (const auto& [k, v] : patch.as_object()) {
    if (v.is_null()) {
      if (out.has_field(k)) out.erase(k);
    } else {
      out[k] = merge(out.has_field(k) ? out.at(k) : Json::null(), v);
    }
  }
  return out;
}

void FakeClient::record(const std::string& verb, const kube::Resource& r, const std::string& key) {
  calls_.push_back(Call{verb, r.plural, key});
}

void FakeClient::maybe_fail(const std::string& verb, const kube::Resource& r) {
  auto it = failures_.find({verb, r.plural});
  if (it != failures_.end()) throw it->second;
}

void FakeClient::fail(const std::string& verb, const std::string& plural, kube::ApiError error) {
  std::lock_guard lock(mu_);
  failures_.insert_or_assign({verb, plural}, std::move(error));
}

void FakeClient::heal() {
  std::lock_guard lock(mu_);
  failures_.clear();
}

int64_t FakeClient::changes() const {
  std::lock_guard lock(mu_);
  return changes_;
}

Json& FakeClient::store_locked(const kube::Resource& r, const std::string& key, Json obj) {
  ++changes_;
  obj["metadata"]["resourceVersion"] = str(std::to_string(next_rv_++));
  Json& slot = objects_[r.plural][key];
  slot = std::move(obj);
  return slot;
}

Json FakeClient::put(const kube::Resource& r, Json obj) {
  std::lock_guard lock(mu_);
  const std::string key = key_of_object(r, obj);
  auto& map = objects_[r.plural];
  auto it = map.find(key);
  if (!obj.has_field("apiVersion")) obj["apiVersion"] = str(r.api_version());
  if (!obj.has_field("kind")) obj["kind"] = str(r.kind);
  if (it == map.end()) {
    obj["metadata"]["uid"] = str("uid-" + string_at(obj, {"metadata", "name"}));
    obj["metadata"]["generation"] = num(1);
    obj["metadata"]["creationTimestamp"] = str("2026-01-01T00:00:00Z");
  } else {
    const Json& old = it->second;
    for (const char* f : {"uid", "creationTimestamp", "finalizers", "deletionTimestamp"}) {
      if (const Json* v = find(old, {"metadata", f}); v != nullptr && !obj["metadata"].has_field(f)) {
        obj["metadata"][f] = *v;
      }
    }
    int64_t generation = int_at(old, {"metadata", "generation"}, 1);
    const Json* old_spec = find(old, {"spec"});
    const Json* new_spec = find(obj, {"spec"});
    bool spec_changed = (old_spec == nullptr) != (new_spec == nullptr) ||
                        (old_spec != nullptr && !json_equal(*old_spec, *new_spec));
    obj["metadata"]["generation"] = num(spec_changed ? generation + 1 : generation);
    if (const Json* status = find(old, {"status"})) obj["status"] = *status;
  }
  return store_locked(r, key, std::move(obj));
}

std::optional<Json> FakeClient::object(const kube::Resource& r, const std::string& ns, const std::string& name) const {
  std::lock_guard lock(mu_);
  auto m = objects_.find(r.plural);
  if (m == objects_.end()) return std::nullopt;
  auto it = m->second.find(key_for(r, ns, name));
  if (it == m->second.end()) return std::nullopt;
  return it->second;
}

std::vector<Json> FakeClient::objects(const kube::Resource& r) const {
  std::lock_guard lock(mu_);
  std::vector<Json> out;
  auto m = objects_.find(r.plural);
  if (m == objects_.end()) return out;
  for (const auto& [k, v] : m->second) out.push_back(v);
  return out;
}

void FakeClient::delete_object(const kube::Resource& r, const std::string& ns, const std::string& name) {
  remove(r, ns, name, kube::Propagation::Background);
}

std::vector<FakeClient::Call> FakeClient::calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

void FakeClient::clear_calls() {
  std::lock_guard lock(mu_);
  calls_.clear();
}

std::vector<FakeClient::Call> FakeClient::writes() const {
  std::vector<Call> out;
  for (const auto& c : calls()) {
    if (c.verb != "get" && c.verb != "list") out.push_back(c);
  }
  return out;
}

kube::Object FakeClient::get(const kube::Resource& r, const std::string& ns, const std::string& name) {
  std::lock_guard lock(mu_);
  const std::string key = key_for(r, ns, name);
  record("get", r, key);
  maybe_fail("get", r);
  auto& map = objects_[r.plural];
  auto it = map.find(key);
  if (it == map.end()) throw not_found(r, key);
  return it->second;
}

kube::ObjectList FakeClient::list(const kube::Resource& r, const std::string& ns, const kube::ListOptions& opts) {
  std::lock_guard lock(mu_);
  record("list", r, ns);
  maybe_fail("list", r);
  kube::ObjectList out;
  for (const auto& [k, v] : objects_[r.plural]) {
    if (!ns.empty() && string_at(v, {"metadata", "namespace"}) != ns) continue;
    if (!opts.label_selector.empty() && !selector_ok(v, opts.label_selector)) continue;
    out.items.push_back(v);
  }
  out.resource_version = std::to_string(next_rv_);
  return out;
}

std::string FakeClient::watch(const kube::Resource&, const std::string&, const kube::ListOptions&,
                              const std::string& resource_version,
                              const std::function<kube::WatchControl(const kube::WatchEvent&)>&,
                              const std::atomic<bool>&) {
  return resource_version;
}

kube::Object FakeClient::apply(const kube::Resource& r, const kube::Object& obj) {
  std::lock_guard lock(mu_);
  const std::string key = key_of_object(r, obj);
  record("apply", r, key);
  maybe_fail("apply", r);
  auto& map = objects_[r.plural];
  auto it = map.find(key);
  Json next = obj;
  if (it == map.end()) {
    next["metadata"]["uid"] = str("uid-" + string_at(obj, {"metadata", "name"}));
    next["metadata"]["generation"] = num(1);
    return store_locked(r, key, std::move(next));
  }
  // The fields this manager sets are replaced whole; what the server keeps stays.
  const Json& old = it->second;
  for (const char* f : {"uid", "generation", "creationTimestamp", "resourceVersion"}) {
    if (const Json* v = find(old, {"metadata", f})) next["metadata"][f] = *v;
  }
  if (const Json* status = find(old, {"status"})) next["status"] = *status;
  if (json_equal(next, old)) return old;  // a no-op apply writes nothing
  const Json* old_spec = find(old, {"spec"});
  const Json* new_spec = find(next, {"spec"});
  if ((old_spec == nullptr) != (new_spec == nullptr) || (old_spec != nullptr && !json_equal(*old_spec, *new_spec))) {
    next["metadata"]["generation"] = num(int_at(old, {"metadata", "generation"}, 1) + 1);
  }
  return store_locked(r, key, std::move(next));
}

kube::Object FakeClient::apply_status(const kube::Resource& r, const kube::Object& obj) {
  std::lock_guard lock(mu_);
  const std::string key = key_of_object(r, obj);
  record("apply_status", r, key);
  maybe_fail("apply_status", r);
  auto& map = objects_[r.plural];
  auto it = map.find(key);
  if (it == map.end()) throw not_found(r, key);
  Json next = it->second;
  next["status"] = merge(find(next, {"status"}) ? next.at("status") : Json::object(), obj.at("status"));
  return store_locked(r, key, std::move(next));
}

kube::Object FakeClient::replace_status(const kube::Resource& r, const kube::Object& obj) {
  std::lock_guard lock(mu_);
  const std::string key = key_of_object(r, obj);
  record("replace_status", r, key);
  maybe_fail("replace_status", r);
  auto& map = objects_[r.plural];
  auto it = map.find(key);
  if (it == map.end()) throw not_found(r, key);
  if (string_at(obj, {"metadata", "resourceVersion"}) != string_at(it->second, {"metadata", "resourceVersion"})) {
    throw kube::ApiError(409, "Conflict", "the object has been modified");
  }
  // The status subresource ignores everything but status.
  Json next = it->second;
  if (const Json* s = find(obj, {"status"})) {
    next["status"] = *s;
  } else if (next.has_field("status")) {
    next.erase("status");
  }
  return store_locked(r, key, std::move(next));
}

kube::Object FakeClient::merge_patch(const kube::Resource& r, const std::string& ns, const std::string& name,
                                     const kube::Object& patch) {
  std::lock_guard lock(mu_);
  const std::string key = key_for(r, ns, name);
  record("merge_patch", r, key);
  maybe_fail("merge_patch", r);
  auto& map = objects_[r.plural];
  auto it = map.find(key);
  if (it == map.end()) throw not_found(r, key);
  const std::string want_rv = string_at(patch, {"metadata", "resourceVersion"});
  if (!want_rv.empty() && want_rv != string_at(it->second, {"metadata", "resourceVersion"})) {
    throw kube::ApiError(409, "Conflict", "the object has been modified");
  }
  Json next = merge(it->second, without(patch, {"status"}));
  const Json* finalizers = find(next, {"metadata", "finalizers"});
  if (find(next, {"metadata", "deletionTimestamp"}) != nullptr &&
      (finalizers == nullptr || !finalizers->is_array() || finalizers->size() == 0)) {
    Json gone = it->second;
    map.erase(it);
    ++changes_;
    return gone;
  }
  return store_locked(r, key, std::move(next));
}

kube::Object FakeClient::create(const kube::Resource& r, const std::string& ns, const kube::Object& obj) {
  {
    std::lock_guard lock(mu_);
    const std::string key = key_for(r, ns, string_at(obj, {"metadata", "name"}));
    record("create", r, key);
    maybe_fail("create", r);
    if (objects_[r.plural].count(key) > 0) throw kube::ApiError(409, "AlreadyExists", key + " already exists");
  }
  Json o = obj;
  o["metadata"]["namespace"] = str(ns);
  return put(r, o);
}

bool FakeClient::remove(const kube::Resource& r, const std::string& ns, const std::string& name, kube::Propagation) {
  std::lock_guard lock(mu_);
  const std::string key = key_for(r, ns, name);
  record("remove", r, key);
  maybe_fail("remove", r);
  auto& map = objects_[r.plural];
  auto it = map.find(key);
  if (it == map.end()) return false;
  const Json* finalizers = find(it->second, {"metadata", "finalizers"});
  if (finalizers != nullptr && finalizers->is_array() && finalizers->size() > 0) {
    Json next = it->second;
    if (!find(next, {"metadata", "deletionTimestamp"})) next["metadata"]["deletionTimestamp"] = str("2026-01-01T00:00:00Z");
    store_locked(r, key, std::move(next));
    return true;
  }
  map.erase(it);
  ++changes_;
  return true;
}

kube::Object FakeClient::create_subresource(const kube::Resource& r, const std::string& ns, const std::string& name,
                                            const std::string&, const kube::Object&) {
  throw not_found(r, key_for(r, ns, name));
}

std::optional<Json> ClientStore::get(const std::string& key) const {
  auto [ns, name] = split_key(key);
  return client_.object(r_, ns, name);
}

std::string FakeNats::watch(const std::string& router_key, const std::string& subject, const NatsSettings& settings) {
  if (!watch_error.empty()) return watch_error;
  watches[router_key] = {subject, settings};
  return "";
}

void FakeNats::forget(const std::string& router_key) { watches.erase(router_key); }

std::string FakeNats::delete_consumer(const std::string& router_key, const std::string& stream,
                                      const std::string& durable) {
  if (!delete_error.empty()) return delete_error;
  deleted.push_back(router_key + " " + stream + "/" + durable);
  return "";
}

}  // namespace switchboard::controller::testing
