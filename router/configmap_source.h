// Route tables from a ConfigMap, watched through the Kubernetes API (`run --configmap
// NAMESPACE/NAME`). The controller writes the ConfigMap `<router>-routes`:
//
//   metadata.annotations: switchboard.dev/generation: "<N>"
//                         switchboard.dev/hash: "sha256:<hex>"
//   data: routes.json     the canonical JSON of the route set, or, when that is large,
//         index.json      {"generation":N,"hash":"sha256:…","parts":[{"name":…,"sha256":…},…]}
//                         naming part ConfigMaps whose data key `part`, concatenated in
//                         order, is the canonical JSON. Parts are written before the index.
//
// Only that one ConfigMap is listed and watched (fieldSelector metadata.name=NAME), and
// parts are read by name, so a Role that grants get/list/watch on those names alone is
// enough. Every change is assembled, read with the JSON loader (spec_json.h), compiled
// (routes unchanged since the last table are taken over from it, not compiled again) and
// checked against the hash in the annotation; the result goes to the same apply/reject
// callbacks as a file's. A deleted ConfigMap leaves the running table in place and is
// reported as a source error.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>

#include "core/route/table.h"
#include "router/table_source.h"

namespace switchboard::kube {
class Client;
struct Config;
}  // namespace switchboard::kube

namespace switchboard::router {

class Logger;

inline constexpr const char* kGenerationAnnotation = "switchboard.dev/generation";
inline constexpr const char* kHashAnnotation = "switchboard.dev/hash";

// What the router reads of a routes ConfigMap (or of one part).
struct RoutesConfigMap {
  std::string name;
  std::string resource_version;
  std::map<std::string, std::string> annotations;
  std::map<std::string, std::string> data;
};

// The canonical JSON of a route set, put together from a ConfigMap, with what the
// annotations say it is.
struct AssembledRoutes {
  uint64_t generation = 0;
  std::string hash;  // "sha256:<hex>", from the annotation
  std::string text;
  size_t parts = 0;  // 0: from routes.json
};

enum class AssembleResult {
  Ok,
  Invalid,  // this version of the ConfigMap can never yield a table
  Retry,    // a part is missing or does not match its digest yet: the controller is
            // still writing; look again shortly (or at a newer ConfigMap)
};

// Fetches the part ConfigMap with this name; nullopt when it does not exist (yet).
using PartFetcher = std::function<std::optional<RoutesConfigMap>(const std::string& name)>;

// Reads routes.json, or index.json and its parts, checking each part's sha256. The
// generation comes from the annotation. On failure `error` says why.
AssembleResult assemble_routes(const RoutesConfigMap& cm, const PartFetcher& fetch, AssembledRoutes& out,
                               std::string& error);

// Loads the assembled text with the JSON loader (the controller wrote it as JSON; file
// names in errors are `origin`), compiles it, taking over from `previous` the routes and
// transforms that did not change (RouteTable::compile), and checks that the table's hash
// is the one the annotation promised.
std::variant<std::shared_ptr<const route::RouteTable>, std::string> compile_routes(
    const AssembledRoutes& routes, const std::string& origin, const route::RouteTable* previous = nullptr);

struct ConfigMapSourceOptions {
  std::string ns;
  std::string name;
  // Outside a cluster: a kubeconfig. Empty: the service account folder `sa_dir` (when
  // set), else kube::load_config's usual order ($KUBECONFIG, in cluster, ~/.kube/config).
  std::string kubeconfig;
  std::string sa_dir;
  // How long a missing or stale part is waited for before the table is refused.
  int64_t part_wait_ms = 10000;
  int64_t part_retry_ms = 200;
  // Reconnection backoff for list and watch failures: doubles from min to max, jittered,
  // and starts again from min after a watch that ran for a while.
  int64_t backoff_min_ms = 200;
  int64_t backoff_max_ms = 10000;
};

// Parses "NAMESPACE/NAME"; false with a message when it is not that.
bool parse_configmap_ref(const std::string& text, std::string& ns, std::string& name, std::string& error);

class ConfigMapSource : public TableSource {
 public:
  // A problem with the source itself rather than with a table (the ConfigMap was
  // deleted, the API refuses the watch); empty once it is resolved. The running table
  // stays either way.
  using SourceError = std::function<void(const std::string& problem)>;

  // Loads the Kubernetes configuration and makes the client; null with `error` when
  // there is no usable configuration (not in a cluster, unreadable kubeconfig).
  static std::unique_ptr<ConfigMapSource> create(ConfigMapSourceOptions options, Apply apply, Reject reject,
                                                 SourceError source_error, Logger& log, std::string& error);
  // With a client made elsewhere (tests).
  ConfigMapSource(std::shared_ptr<kube::Client> client, ConfigMapSourceOptions options, Apply apply, Reject reject,
                  SourceError source_error, Logger& log);
  ~ConfigMapSource() override;

  void start() override;
  void stop() override;
  // Processes the latest version seen again, if it was not fully processed.
  bool poll() override;
  std::string describe() const override { return "configmap " + options_.ns + "/" + options_.name; }

 private:
  void watch_loop();
  void work_loop();
  // Assembles, compiles and delivers `cm` (the watch's change number `seq`); true when a
  // table or a refusal was delivered. Gives up when a newer version arrives while parts
  // are awaited, or the source stops.
  bool process(const RoutesConfigMap& cm, uint64_t seq);
  void deleted();
  void set_source_error(const std::string& problem);
  bool newer_pending(uint64_t seq);
  bool sleep_ms(int64_t ms);  // false when stopping

  std::shared_ptr<kube::Client> client_;
  ConfigMapSourceOptions options_;
  Apply apply_;
  Reject reject_;
  SourceError source_error_;
  Logger& log_;

  std::mutex mu_;
  std::condition_variable cv_;
  // The latest state seen by the watch: an object, or nullopt for "does not exist".
  std::optional<std::optional<RoutesConfigMap>> latest_;
  uint64_t latest_seq_ = 0;     // bumped on every change the watch sees
  std::string done_version_;    // resourceVersion last applied or refused for good
  bool exists_ = false;         // the ConfigMap was there when last seen
  std::string source_problem_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  std::mutex process_mu_;  // process() runs on the worker and, on SIGHUP, the main thread
  std::string delivered_key_;  // generation/hash/content of the last table applied or refused
  // The last table this source compiled: the next one reuses its unchanged routes.
  std::shared_ptr<const route::RouteTable> last_table_;
  std::thread watcher_;
  std::thread worker_;
};

}  // namespace switchboard::router
