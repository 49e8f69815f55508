// List, then watch, a collection into a local cache; relist on 410 Gone; reconnect with
// jittered backoff. The cache is swapped whole after each relist, so readers never see
// a half-filled cache. Handlers get the key ("namespace/name") of each object that
// changed, was added or removed (and every key again after a relist), which is what a
// work queue wants.
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
#include <vector>

#include "kube/client.h"

namespace switchboard::kube {

class Informer {
 public:
  using OnChange = std::function<void(const std::string& key)>;

  Informer(Client& client, Resource resource, std::string ns, ListOptions opts, OnChange on_change);
  ~Informer();  // stops
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // start() runs list-and-watch on a thread of its own; on_change is called on that
  // thread, after the cache holds the change. stop() returns once the thread has ended
  // (within about a second: watches look at the stop flag at least that often).
  void start();
  void stop();
  // True once the first list is in the cache and on_change has been called for each of
  // its keys.
  bool synced() const;
  // Blocks until synced or the timeout passes; returns synced().
  bool wait_synced(int64_t timeout_ms) const;

  std::optional<Object> get(const std::string& key) const;
  std::vector<Object> list() const;  // a snapshot, sorted by key
  // Counters for metrics and tests: lists after the first one (after a 410 Gone), and
  // watches started again after one ended (server timeout, broken connection, error).
  uint64_t relists() const { return relists_.load(); }
  uint64_t watch_restarts() const { return watch_restarts_.load(); }

  // The number of the last list done, once on_change has heard of its keys; lists are
  // numbered as they begin, from 1, failed ones included.
  uint64_t lists() const { return lists_.load(); }
  // Ends the running watch (or the wait before the next attempt) and lists again, as
  // after a 410 Gone. Returns at once, with the value lists() reaches when a list that
  // began after this call is done: what a caller waits for that needs the cache at least
  // as new as the server is now (a replica that has just become leader, whose caches may
  // be as old as its last working watch, from before an outage).
  uint64_t request_relist();

 private:
  void run();
  // Lists, swaps the cache whole, tells on_change about every key present or gone;
  // returns the list's resourceVersion.
  std::string relist();
  // Sleeps unless stopped first; false when stopped.
  bool sleep_for(std::chrono::milliseconds d);

  Client& client_;
  Resource resource_;
  std::string ns_;
  ListOptions opts_;
  OnChange on_change_;
  mutable std::mutex mu_;
  mutable std::condition_variable synced_cv_;
  std::condition_variable stop_cv_;
  // Objects are shared so that list() copies pointers under the lock, not JSON.
  std::map<std::string, std::shared_ptr<const Object>> cache_;
  bool synced_ = false;
  bool lists_done_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<bool> relist_requested_{false};
  // What the running watch looks at: stop_, or a relist requested.
  std::atomic<bool> interrupt_{false};
  std::atomic<uint64_t> lists_{0};
  uint64_t lists_started_ = 0;  // under mu_
  std::atomic<uint64_t> relists_{0};
  std::atomic<uint64_t> watch_restarts_{0};
  std::thread thread_;
};

}  // namespace switchboard::kube
