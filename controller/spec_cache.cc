#include "controller/spec_cache.h"

#include <algorithm>

namespace switchboard::controller {

std::string transform_dependencies(const std::vector<std::string>& uses, const TransformIndex& transforms) {
  std::string out;
  bool missing = false;
  for (const auto& use : uses) {
    auto it = transforms.find(use);
    out += use;
    if (it == transforms.end()) {
      out += "=-\n";
      missing = true;
    } else {
      out += "=" + it->second.fingerprint + "\n";
    }
  }
  if (missing) {
    // The "did you mean" of a missing name comes from every transform of the namespace.
    out += "*";
    for (const auto& [name, t] : transforms) out += name + "=" + t.fingerprint + "\n";
  }
  return out;
}

std::shared_ptr<const TransformIndex> SpecCache::transforms(const std::string& ns, const std::vector<Json>& objects) {
  std::vector<std::pair<std::string, std::string>> seen;  // name, fingerprint
  seen.reserve(objects.size());
  std::string combined;
  for (const auto& o : objects) {
    seen.emplace_back(string_at(o, {"metadata", "name"}), object_fingerprint(o));
    combined += seen.back().first + "=" + seen.back().second + "\n";
  }
  std::map<std::string, std::shared_ptr<const LoadedTransform>> previous;
  {
    std::lock_guard lock(mu_);
    auto& n = transforms_[ns];
    if (n.index && n.combined == combined) {
      stats_.transform_hits += objects.size();
      return n.index;
    }
    previous = n.by_key;
  }
  std::map<std::string, std::shared_ptr<const LoadedTransform>> by_key;
  auto index = std::make_shared<TransformIndex>();
  uint64_t loads = 0, hits = 0;
  for (size_t i = 0; i < objects.size(); ++i) {
    const auto& [name, fingerprint] = seen[i];
    std::shared_ptr<const LoadedTransform> t;
    if (auto it = previous.find(name); it != previous.end() && it->second->fingerprint == fingerprint) {
      t = it->second;
      ++hits;
    } else {
      t = std::make_shared<const LoadedTransform>(load_transform(objects[i]));
      ++loads;
    }
    by_key[name] = t;
    index->emplace(name, *t);
  }
  std::lock_guard lock(mu_);
  auto& n = transforms_[ns];
  n.by_key = std::move(by_key);
  n.combined = std::move(combined);
  n.index = index;
  stats_.transform_loads += loads;
  stats_.transform_hits += hits;
  return index;
}

std::pair<std::shared_ptr<const RouteCheck>, uint64_t> SpecCache::check_entry(const Json& route,
                                                                              const TransformIndex& transforms) {
  const std::string key = string_at(route, {"metadata", "namespace"}) + "/" + string_at(route, {"metadata", "name"});
  const std::string fingerprint = object_fingerprint(route);
  {
    std::lock_guard lock(mu_);
    if (auto it = routes_.find(key); it != routes_.end() && it->second.fingerprint == fingerprint &&
                                     it->second.depends == transform_dependencies(it->second.check->uses, transforms)) {
      ++stats_.route_hits;
      return {it->second.check, it->second.id};
    }
  }
  auto check = std::make_shared<const RouteCheck>(check_route(route, transforms));
  std::string depends = transform_dependencies(check->uses, transforms);
  std::lock_guard lock(mu_);
  ++stats_.route_checks;
  RouteEntry& e = routes_[key];
  e.fingerprint = fingerprint;
  e.depends = std::move(depends);
  e.id = next_id_++;
  e.check = check;
  return {check, e.id};
}

std::shared_ptr<const RouteCheck> SpecCache::check(const Json& route, const TransformIndex& transforms) {
  return check_entry(route, transforms).first;
}

std::shared_ptr<const RouterTable> SpecCache::table(const Json& router, const std::vector<Json>& routes,
                                                    const TransformIndex& transforms) {
  const std::string router_key =
      string_at(router, {"metadata", "namespace"}) + "/" + string_at(router, {"metadata", "name"});
  std::vector<const Json*> selected = selected_routes(router, routes);
  std::vector<std::shared_ptr<const RouteCheck>> checks;
  checks.reserve(selected.size());
  // The table key: each selected route's name, generation and check (an entry id is
  // never reused, so an equal key means the same inputs).
  std::string key;
  for (const Json* r : selected) {
    auto [check, id] = check_entry(*r, transforms);
    key += string_at(*r, {"metadata", "name"}) + "/" + route_identity(*r) + "/" + std::to_string(id) + "\n";
    checks.push_back(std::move(check));
  }
  std::shared_ptr<const route::RouteTable> previous;  // its unchanged routes are taken over
  {
    std::lock_guard lock(mu_);
    if (auto it = tables_.find(router_key); it != tables_.end()) {
      if (it->second.key == key) {
        ++stats_.table_hits;
        return it->second.table;
      }
      previous = it->second.table->compiled;
    }
  }
  std::vector<std::pair<const Json*, const RouteCheck*>> checked;
  checked.reserve(selected.size());
  for (size_t i = 0; i < selected.size(); ++i) checked.emplace_back(selected[i], checks[i].get());
  auto table = std::make_shared<const RouterTable>(table_of_checked(checked, transforms, previous.get()));
  std::lock_guard lock(mu_);
  ++stats_.table_compiles;
  tables_[router_key] = TableEntry{std::move(key), table};
  return table;
}

void SpecCache::forget_route(const std::string& key) {
  std::lock_guard lock(mu_);
  routes_.erase(key);
}

void SpecCache::forget_router(const std::string& key) {
  std::lock_guard lock(mu_);
  tables_.erase(key);
}

SpecCache::Stats SpecCache::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

size_t SpecCache::cached_routes() const {
  std::lock_guard lock(mu_);
  return routes_.size();
}

bool SpecCache::has_route(const std::string& key) const {
  std::lock_guard lock(mu_);
  return routes_.count(key) > 0;
}

}  // namespace switchboard::controller
