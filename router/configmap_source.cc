#include "router/configmap_source.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "core/json/document.h"
#include "core/route/spec_json.h"
#include "kube/client.h"
#include "kube/config.h"
#include "router/log.h"

namespace switchboard::router {

namespace {

using Clock = std::chrono::steady_clock;

bool parse_u64(const std::string& text, uint64_t& out) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    uint64_t next = v * 10 + static_cast<uint64_t>(c - '0');
    if (next / 10 != v) return false;
    v = next;
  }
  out = v;
  return true;
}

bool valid_hash(const std::string& h) {
  if (h.size() != 7 + 64 || h.compare(0, 7, "sha256:") != 0) return false;
  for (size_t i = 7; i < h.size(); ++i) {
    char c = h[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string annotation(const RoutesConfigMap& cm, const char* key) {
  auto it = cm.annotations.find(key);
  return it == cm.annotations.end() ? std::string() : it->second;
}

// The fields of a ConfigMap object that matter here; binaryData is not read: the
// controller writes text.
RoutesConfigMap from_object(const kube::Object& obj) {
  RoutesConfigMap cm;
  if (!obj.is_object()) return cm;
  if (obj.has_object_field("metadata")) {
    const auto& md = obj.at("metadata");
    if (md.has_string_field("name")) cm.name = md.at("name").as_string();
    if (md.has_string_field("resourceVersion")) cm.resource_version = md.at("resourceVersion").as_string();
    if (md.has_object_field("annotations")) {
      for (const auto& [k, v] : md.at("annotations").as_object()) {
        if (v.is_string()) cm.annotations[k] = v.as_string();
      }
    }
  }
  if (obj.has_object_field("data")) {
    for (const auto& [k, v] : obj.at("data").as_object()) {
      if (v.is_string()) cm.data[k] = v.as_string();
    }
  }
  return cm;
}

std::string describe_error(const std::exception& e) {
  if (const auto* api = dynamic_cast<const kube::ApiError*>(&e)) {
    std::string out = api->status() ? "HTTP " + std::to_string(api->status()) : std::string("no answer");
    if (!api->reason().empty()) out += " " + api->reason();
    if (!api->message().empty()) out += ": " + api->message();
    return out;
  }
  return e.what();
}

}  // namespace

bool parse_configmap_ref(const std::string& text, std::string& ns, std::string& name, std::string& error) {
  size_t slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= text.size() ||
      text.find('/', slash + 1) != std::string::npos) {
    error = "--configmap: expected NAMESPACE/NAME, got '" + text + "'";
    return false;
  }
  ns = text.substr(0, slash);
  name = text.substr(slash + 1);
  return true;
}

AssembleResult assemble_routes(const RoutesConfigMap& cm, const PartFetcher& fetch, AssembledRoutes& out,
                               std::string& error) {
  out = AssembledRoutes{};
  std::string generation = annotation(cm, kGenerationAnnotation);
  if (!parse_u64(generation, out.generation) || out.generation == 0) {
    error = generation.empty() ? std::string("no ") + kGenerationAnnotation + " annotation"
                               : std::string(kGenerationAnnotation) + " is not a positive integer: '" +
                                     generation + "'";
    return AssembleResult::Invalid;
  }
  out.hash = annotation(cm, kHashAnnotation);
  if (!valid_hash(out.hash)) {
    error = out.hash.empty() ? std::string("no ") + kHashAnnotation + " annotation"
                             : std::string(kHashAnnotation) + " is not sha256:<64 hex digits>: '" + out.hash + "'";
    return AssembleResult::Invalid;
  }
  auto routes = cm.data.find("routes.json");
  auto index = cm.data.find("index.json");
  if (routes != cm.data.end() && index != cm.data.end()) {
    error = "both routes.json and index.json are present";
    return AssembleResult::Invalid;
  }
  if (routes != cm.data.end()) {
    out.text = routes->second;
    return AssembleResult::Ok;
  }
  if (index == cm.data.end()) {
    error = "neither routes.json nor index.json is present";
    return AssembleResult::Invalid;
  }

  json::Document d;
  if (!d.parse(index->second)) {
    error = "index.json: " + d.error();
    return AssembleResult::Invalid;
  }
  if (d.node(0).type != json::Type::Object) {
    error = "index.json: not an object";
    return AssembleResult::Invalid;
  }
  uint64_t index_generation = 0;
  uint32_t g = d.find_member(0, "generation");
  if (!g || !d.uint64_value(g, index_generation) || index_generation != out.generation) {
    error = "index.json: generation does not match the annotation (" + generation + ")";
    return AssembleResult::Invalid;
  }
  uint32_t h = d.find_member(0, "hash");
  if (!h || d.node(h).type != json::Type::String || d.string_value(h) != out.hash) {
    error = "index.json: hash does not match the annotation (" + out.hash + ")";
    return AssembleResult::Invalid;
  }
  uint32_t parts = d.find_member(0, "parts");
  if (!parts || d.node(parts).type != json::Type::Array || d.node(parts).count == 0) {
    error = "index.json: parts must be a non-empty list";
    return AssembleResult::Invalid;
  }
  uint32_t item = json::Document::first_child(parts);
  for (uint32_t i = 0; i < d.node(parts).count; ++i, item = d.node(item).next) {
    std::string where = "index.json: parts[" + std::to_string(i) + "]";
    uint32_t n = d.node(item).type == json::Type::Object ? d.find_member(item, "name") : 0;
    uint32_t s = d.node(item).type == json::Type::Object ? d.find_member(item, "sha256") : 0;
    if (!n || !s || d.node(n).type != json::Type::String || d.node(s).type != json::Type::String) {
      error = where + " needs a name and a sha256";
      return AssembleResult::Invalid;
    }
    std::string name(d.string_value(n));
    std::string digest(d.string_value(s));
    // Tolerate the digest written with its algorithm, as the annotation is.
    if (digest.rfind("sha256:", 0) == 0) digest.erase(0, 7);
    std::optional<RoutesConfigMap> part = fetch(name);
    if (!part) {
      error = "part " + name + " not found";
      return AssembleResult::Retry;
    }
    auto text = part->data.find("part");
    if (text == part->data.end()) {
      error = "part " + name + " has no data key 'part'";
      return AssembleResult::Retry;
    }
    std::string actual = route::sha256_hex(text->second);
    if (actual != digest) {
      error = "part " + name + " has sha256 " + actual + ", the index expects " + digest;
      return AssembleResult::Retry;
    }
    out.text += text->second;
    ++out.parts;
  }
  return AssembleResult::Ok;
}

std::variant<std::shared_ptr<const route::RouteTable>, std::string> compile_routes(
    const AssembledRoutes& routes, const std::string& origin, const route::RouteTable* previous) {
  route::RouteSet set;
  std::vector<route::SpecError> errors;
  if (route::load_json(routes.text, origin, set, errors)) {
    auto compiled = route::RouteTable::compile(std::move(set), routes.generation, {}, previous);
    if (auto* table = std::get_if<std::shared_ptr<const route::RouteTable>>(&compiled)) {
      if ((*table)->hash() != routes.hash) {
        return "hash mismatch: the annotation says " + routes.hash + ", the table compiles to " + (*table)->hash();
      }
      return *table;
    }
    errors = std::get<std::vector<route::SpecError>>(compiled);
  }
  std::string message;
  for (size_t i = 0; i < errors.size(); ++i) message += (i ? "; " : "") + errors[i].render();
  return message;
}

std::unique_ptr<ConfigMapSource> ConfigMapSource::create(ConfigMapSourceOptions options, Apply apply, Reject reject,
                                                         SourceError source_error, Logger& log, std::string& error) {
  kube::Config config;
  try {
    if (!options.kubeconfig.empty()) {
      config = kube::load_kubeconfig(options.kubeconfig);
    } else if (!options.sa_dir.empty()) {
      config = kube::in_cluster_config(options.sa_dir);
    } else {
      config = kube::load_config();
    }
  } catch (const std::exception& e) {
    error = std::string("no Kubernetes configuration for --configmap: ") + e.what();
    return nullptr;
  }
  // A request that hangs must not hold up shutdown for long.
  config.timeout_ms = std::min<int64_t>(config.timeout_ms, 10000);
  std::shared_ptr<kube::Client> client;
  try {
    client = kube::make_client(config);
  } catch (const std::exception& e) {
    error = std::string("cannot make a Kubernetes client for ") + config.server + ": " + e.what();
    return nullptr;
  }
  return std::make_unique<ConfigMapSource>(std::move(client), std::move(options), std::move(apply), std::move(reject),
                                           std::move(source_error), log);
}

ConfigMapSource::ConfigMapSource(std::shared_ptr<kube::Client> client, ConfigMapSourceOptions options, Apply apply,
                                 Reject reject, SourceError source_error, Logger& log)
    : client_(std::move(client)),
      options_(std::move(options)),
      apply_(std::move(apply)),
      reject_(std::move(reject)),
      source_error_(std::move(source_error)),
      log_(log) {}

ConfigMapSource::~ConfigMapSource() { stop(); }

void ConfigMapSource::start() {
  std::lock_guard lock(mu_);
  if (started_) return;
  started_ = true;
  worker_ = std::thread([this] { work_loop(); });
  watcher_ = std::thread([this] { watch_loop(); });
}

void ConfigMapSource::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
  if (worker_.joinable()) worker_.join();
}

bool ConfigMapSource::sleep_ms(int64_t ms) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_.load(); });
  return !stopping_.load();
}

bool ConfigMapSource::newer_pending(uint64_t seq) {
  std::lock_guard lock(mu_);
  return stopping_.load() || latest_seq_ != seq;
}

void ConfigMapSource::set_source_error(const std::string& problem) {
  {
    std::lock_guard lock(mu_);
    if (problem == source_problem_) return;
    source_problem_ = problem;
  }
  if (source_error_) source_error_(problem);
}

void ConfigMapSource::watch_loop() {
  const kube::Resource& configmaps = kube::resources::kConfigMaps;
  kube::ListOptions opts;
  opts.field_selector = "metadata.name=" + options_.name;
  std::mt19937_64 rng(std::random_device{}());
  int64_t backoff = options_.backoff_min_ms;
  std::atomic<bool>& stop = stopping_;
  auto see = [&](std::optional<RoutesConfigMap> cm) {
    {
      std::lock_guard lock(mu_);
      latest_ = std::move(cm);
      ++latest_seq_;
    }
    cv_.notify_all();
  };
  while (!stop.load()) {
    auto began = Clock::now();
    try {
      kube::ObjectList list = client_->list(configmaps, options_.ns, opts);
      std::optional<RoutesConfigMap> found;
      for (const auto& item : list.items) {
        RoutesConfigMap cm = from_object(item);
        if (cm.name == options_.name) found = std::move(cm);
      }
      see(std::move(found));
      std::string rv = list.resource_version;
      while (!stop.load()) {
        auto watch_began = Clock::now();
        rv = client_->watch(
            configmaps, options_.ns, opts, rv,
            [&](const kube::WatchEvent& ev) {
              if (ev.type == kube::WatchEvent::Type::Bookmark) return kube::WatchControl::Continue;
              RoutesConfigMap cm = from_object(ev.object);
              if (cm.name != options_.name) return kube::WatchControl::Continue;
              if (ev.type == kube::WatchEvent::Type::Deleted) {
                see(std::nullopt);
              } else {
                see(std::move(cm));
              }
              return kube::WatchControl::Continue;
            },
            stop);
        // A watch the server ended normally (its timeout) resumes where it stopped; one
        // that ends at once, again and again, must not spin.
        if (Clock::now() - began > std::chrono::seconds(30)) backoff = options_.backoff_min_ms;
        if (Clock::now() - watch_began < std::chrono::seconds(1) && !sleep_ms(options_.backoff_min_ms)) break;
      }
    } catch (const std::exception& e) {
      if (stop.load()) break;
      auto* api = dynamic_cast<const kube::ApiError*>(&e);
      if (api && api->gone()) {
        log_.debug("configmap watch expired; listing again", {{"configmap", describe()}});
        continue;
      }
      if (Clock::now() - began > std::chrono::seconds(30)) backoff = options_.backoff_min_ms;
      std::string why = describe_error(e);
      log_.log_limited("configmap-watch", LogLevel::Warn, "cannot watch the route table's configmap; retrying",
                       {{"configmap", describe()}, {"error", why}, {"retry_ms", backoff}});
      // A failure that persists (Forbidden, a server that does not answer) is reported;
      // one blip before a successful retry is not worth a heartbeat field.
      if (!api || !api->transient() || Clock::now() - began < std::chrono::seconds(1)) {
        set_source_error("cannot watch " + describe() + ": " + why);
      }
      std::uniform_int_distribution<int64_t> jitter(0, backoff / 2);
      if (!sleep_ms(backoff + jitter(rng))) break;
      backoff = std::min(backoff * 2, options_.backoff_max_ms);
    }
  }
}

void ConfigMapSource::work_loop() {
  uint64_t done = 0;
  while (true) {
    std::optional<RoutesConfigMap> item;
    uint64_t seq = 0;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_.load() || latest_seq_ != done; });
      if (stopping_.load()) return;
      item = *latest_;
      seq = latest_seq_;
    }
    // When a newer version arrives while this one waits for its parts, process() gives
    // up on this one and the loop takes the newer.
    if (item) {
      process(*item, seq);
    } else {
      deleted();
    }
    done = seq;
  }
}

void ConfigMapSource::deleted() {
  bool was;
  {
    std::lock_guard lock(mu_);
    was = exists_;
    exists_ = false;
    done_version_.clear();
  }
  if (was) {
    log_.warn("route table configmap deleted; the running table stays", {{"configmap", describe()}});
    set_source_error(describe() + " was deleted; the running table stays");
  } else {
    log_.log_limited("configmap-missing", LogLevel::Warn, "route table configmap not found; waiting for it",
                     {{"configmap", describe()}});
    set_source_error(describe() + " not found");
  }
}

bool ConfigMapSource::process(const RoutesConfigMap& cm, uint64_t seq) {
  std::lock_guard serial(process_mu_);
  set_source_error("");
  {
    std::lock_guard lock(mu_);
    exists_ = true;
    // Already applied or refused for good: a relist hands back the same version.
    if (!cm.resource_version.empty() && cm.resource_version == done_version_) return false;
  }
  std::string origin = "configmap " + options_.ns + "/" + options_.name;
  PartFetcher fetch = [&](const std::string& part) -> std::optional<RoutesConfigMap> {
    try {
      return from_object(client_->get(kube::resources::kConfigMaps, options_.ns, part));
    } catch (const kube::ApiError& e) {
      if (e.not_found()) return std::nullopt;
      throw;
    }
  };
  AssembledRoutes routes;
  std::string error;
  AssembleResult result = AssembleResult::Retry;
  auto deadline = Clock::now() + std::chrono::milliseconds(options_.part_wait_ms);
  while (true) {
    try {
      result = assemble_routes(cm, fetch, routes, error);
    } catch (const std::exception& e) {
      result = AssembleResult::Retry;
      error = "cannot read a part: " + describe_error(e);
    }
    if (result != AssembleResult::Retry) break;
    // The controller writes parts before the index; a part that is missing or stale
    // means it is still writing, or that a newer index is already on its way.
    if (newer_pending(seq)) return false;
    if (Clock::now() >= deadline) break;
    log_.debug("route table part not ready; retrying", {{"configmap", origin}, {"error", error}});
    if (!sleep_ms(options_.part_retry_ms)) return false;
  }
  if (result == AssembleResult::Retry) {
    // Not recorded as done: a relist or SIGHUP tries this version again.
    log_.warn("route table parts did not arrive in time", {{"configmap", origin}, {"error", error}});
    reject_(routes.generation, origin + ": " + error);
    return true;
  }
  {
    std::lock_guard lock(mu_);
    done_version_ = cm.resource_version;
  }
  // A new resourceVersion with the same content (a label changed) is not a new table.
  std::string key = std::to_string(routes.generation) + "/" + routes.hash + "/" +
                    (result == AssembleResult::Ok ? route::sha256_hex(routes.text) : error);
  if (key == delivered_key_) return false;
  delivered_key_ = key;
  if (result == AssembleResult::Invalid) {
    reject_(routes.generation, origin + ": " + error);
    return true;
  }
  auto compiled = compile_routes(routes, origin + " (generation " + std::to_string(routes.generation) + ")",
                                 last_table_.get());
  if (auto* message = std::get_if<std::string>(&compiled)) {
    reject_(routes.generation, *message);
    return true;
  }
  last_table_ = std::get<std::shared_ptr<const route::RouteTable>>(std::move(compiled));
  const route::CompileStats& stats = last_table_->stats();
  log_.debug("route table read from configmap",
             {{"configmap", origin}, {"generation", routes.generation}, {"parts", routes.parts},
              {"bytes", routes.text.size()}, {"routes_compiled", stats.routes_compiled},
              {"routes_reused", stats.routes_reused}});
  apply_(last_table_);
  return true;
}

bool ConfigMapSource::poll() {
  std::optional<RoutesConfigMap> cm;
  uint64_t seq = 0;
  {
    std::lock_guard lock(mu_);
    if (!latest_ || !*latest_) return false;
    cm = **latest_;
    seq = latest_seq_;
  }
  return process(*cm, seq);
}

}  // namespace switchboard::router
