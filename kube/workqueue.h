// A rate-limited work queue of keys, in the manner of the Kubernetes controllers: a key
// is queued at most once at a time, is never handed to two workers at once, and a key
// that failed comes back after a per-key exponential backoff. An overall token bucket
// bounds how fast keys are handed out when many fail together.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace switchboard::kube {

struct WorkQueueOptions {
  std::chrono::milliseconds base_delay{5};       // first retry
  std::chrono::milliseconds max_delay{300000};   // cap of the per-key backoff
  double qps = 10;                               // overall token bucket for rate-limited adds
                                                 // (qps <= 0: no overall limit)
  int burst = 100;
};

class WorkQueue {
 public:
  using Clock = std::chrono::steady_clock;
  explicit WorkQueue(WorkQueueOptions opts = {});

  void add(const std::string& key);                     // now (dedupes)
  void add_after(const std::string& key, std::chrono::milliseconds delay);
  void add_rate_limited(const std::string& key);        // after the key's next backoff
  void forget(const std::string& key);                  // reset the key's backoff
  int failures(const std::string& key) const;
  // The per-key part of add_rate_limited's delay after `failures` earlier failures:
  // base_delay * 2^failures, capped at max_delay.
  std::chrono::milliseconds backoff_delay(int failures) const;

  // Blocks until a key is ready or the queue shuts down (then nullopt). The key is
  // processing until done(key); adds meanwhile are queued again after done().
  std::optional<std::string> get();
  void done(const std::string& key);
  // Wakes every get(), which returns nullopt from then on even if keys are still queued
  // (a stopping controller leaves them to the next leader); later adds are ignored.
  void shut_down();

  size_t depth() const;  // keys ready now
  // Time the key handed out by the last get() waited in the queue, for a latency metric.
  std::chrono::duration<double> last_wait() const;

 private:
  void add_locked(const std::string& key, Clock::time_point now);
  void promote_due_locked(Clock::time_point now);
  std::chrono::duration<double> bucket_delay_locked(Clock::time_point now);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  WorkQueueOptions opts_;
  std::deque<std::string> ready_;      // handed out in this order
  std::set<std::string> dirty_;        // wants processing: in ready_, or re-added while processing
  std::set<std::string> processing_;   // handed out, done() not yet called
  std::multimap<Clock::time_point, std::string> delayed_;
  std::map<std::string, std::multimap<Clock::time_point, std::string>::iterator> waiting_;  // key -> delayed_
  std::map<std::string, Clock::time_point> added_at_;
  std::map<std::string, int> failures_;
  double tokens_;
  Clock::time_point last_refill_;
  std::chrono::duration<double> last_wait_{0};
  bool shutting_down_ = false;
};

}  // namespace switchboard::kube
