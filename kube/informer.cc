// The informer's state machine: list, then watch from the list's resourceVersion; when a
// watch ends, watch again from the last resourceVersion seen; on 410 Gone, or when asked
// (request_relist), list again; on any other error, wait (jittered, growing to 30 s) and
// watch again.
#include "kube/informer.h"

#include <vector>

#include "kube/backoff.h"

namespace switchboard::kube {

Informer::Informer(Client& client, Resource resource, std::string ns, ListOptions opts, OnChange on_change)
    : client_(client),
      resource_(std::move(resource)),
      ns_(std::move(ns)),
      opts_(std::move(opts)),
      on_change_(std::move(on_change)) {}

Informer::~Informer() { stop(); }

void Informer::start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { run(); });
}

void Informer::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    interrupt_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t Informer::request_relist() {
  uint64_t target;
  {
    std::lock_guard lock(mu_);
    relist_requested_ = true;
    interrupt_ = true;
    // A list under way began before this call: the one after it is the one to wait for.
    target = lists_started_ + 1;
  }
  stop_cv_.notify_all();
  return target;
}

bool Informer::synced() const {
  std::lock_guard lock(mu_);
  return synced_;
}

bool Informer::wait_synced(int64_t timeout_ms) const {
  std::unique_lock lock(mu_);
  return synced_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return synced_; });
}

std::optional<Object> Informer::get(const std::string& key) const {
  std::shared_ptr<const Object> found;
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(key);
    if (it == cache_.end()) return std::nullopt;
    found = it->second;
  }
  return *found;
}

std::vector<Object> Informer::list() const {
  std::vector<std::shared_ptr<const Object>> snapshot;
  {
    std::lock_guard lock(mu_);
    snapshot.reserve(cache_.size());
    for (const auto& [key, obj] : cache_) snapshot.push_back(obj);
  }
  std::vector<Object> out;
  out.reserve(snapshot.size());
  for (const auto& obj : snapshot) out.push_back(*obj);
  return out;
}

bool Informer::sleep_for(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  // A requested relist cuts the wait short too.
  stop_cv_.wait_for(lock, d, [&] { return stop_.load() || relist_requested_.load(); });
  return !stop_.load();
}

std::string Informer::relist() {
  uint64_t number;
  {
    std::lock_guard lock(mu_);
    number = ++lists_started_;
  }
  ObjectList listed = client_.list(resource_, ns_, opts_);
  std::map<std::string, std::shared_ptr<const Object>> fresh;
  for (auto& item : listed.items) {
    std::string key = key_of(item);
    fresh.emplace(std::move(key), std::make_shared<const Object>(std::move(item)));
  }
  std::vector<std::string> changed;
  changed.reserve(fresh.size());
  for (const auto& [key, obj] : fresh) changed.push_back(key);
  bool first = false;
  {
    std::lock_guard lock(mu_);
    // What the watch missed while it was away: keys gone without a DELETED event.
    for (const auto& [key, obj] : cache_) {
      if (!fresh.count(key)) changed.push_back(key);
    }
    cache_.swap(fresh);
    first = !lists_done_;
    lists_done_ = true;
  }
  if (!first) ++relists_;
  for (const auto& key : changed) on_change_(key);
  lists_ = number;
  // Synced only once on_change has heard of every listed key: a controller that waits
  // for the sync then finds all of them in its queue.
  {
    std::lock_guard lock(mu_);
    synced_ = true;
  }
  synced_cv_.notify_all();
  return listed.resource_version;
}

void Informer::run() {
  internal::Backoff backoff(std::chrono::milliseconds(500), std::chrono::seconds(30));
  std::string rv;
  bool need_list = true;
  int gone_in_a_row = 0;
  while (!stop_) {
    uint64_t events = 0;
    try {
      {
        // Cleared before the flag is read: a request made after this point interrupts the
        // watch below, one made before it is taken here.
        std::lock_guard lock(mu_);
        interrupt_ = stop_.load();
        if (relist_requested_.exchange(false)) need_list = true;
      }
      if (need_list) {
        rv = relist();
        need_list = false;
      }
      const auto started = std::chrono::steady_clock::now();
      rv = client_.watch(
          resource_, ns_, opts_, rv,
          [&](const WatchEvent& ev) {
            ++events;
            // Kept as we go, so that a watch that fails part way resumes after the last
            // event it delivered.
            if (std::string ev_rv = resource_version_of(ev.object); !ev_rv.empty()) rv = ev_rv;
            if (ev.type == WatchEvent::Type::Bookmark) return interrupt_ ? WatchControl::Stop : WatchControl::Continue;
            const std::string key = key_of(ev.object);
            {
              std::lock_guard lock(mu_);
              if (ev.type == WatchEvent::Type::Deleted) {
                cache_.erase(key);
              } else {
                cache_[key] = std::make_shared<const Object>(ev.object);
              }
            }
            on_change_(key);
            return interrupt_ ? WatchControl::Stop : WatchControl::Continue;
          },
          interrupt_);
      if (stop_) break;
      if (relist_requested_) continue;
      ++watch_restarts_;
      gone_in_a_row = 0;
      // A server that ends every watch at once would otherwise be asked again and again
      // in a tight loop.
      if (events == 0 && std::chrono::steady_clock::now() - started < std::chrono::seconds(1)) {
        sleep_for(backoff.next());
      } else {
        backoff.reset();
      }
    } catch (const ApiError& e) {
      if (stop_) break;
      if (e.gone()) {
        // Our resourceVersion was compacted away: only a new list can tell what changed.
        need_list = true;
        if (events > 0) gone_in_a_row = 0;
        if (++gone_in_a_row > 1) sleep_for(backoff.next());
        continue;
      }
      if (!need_list) ++watch_restarts_;
      sleep_for(backoff.next());
    } catch (const std::exception&) {
      // on_change threw, or the answer was not what an API server sends: start over from
      // a list after a pause rather than end the informer.
      if (stop_) break;
      need_list = true;
      sleep_for(backoff.next());
    }
  }
}

}  // namespace switchboard::kube
