// The work queue: a ready list, a set of keys in flight, a timed list for delayed adds,
// and two rate limiters (per-key exponential backoff, one overall token bucket) of which
// add_rate_limited takes the longer delay.
#include "kube/workqueue.h"

#include <algorithm>
#include <cmath>

namespace switchboard::kube {

WorkQueue::WorkQueue(WorkQueueOptions opts)
    : opts_(opts), tokens_(static_cast<double>(opts.burst)), last_refill_(Clock::now()) {}

void WorkQueue::add_locked(const std::string& key, Clock::time_point now) {
  if (shutting_down_) return;
  if (!dirty_.insert(key).second) return;  // already waiting to be processed
  added_at_.emplace(key, now);
  // A key in flight is queued again by done(), so that no two workers hold it at once.
  if (processing_.count(key)) return;
  ready_.push_back(key);
  cv_.notify_one();
}

void WorkQueue::promote_due_locked(Clock::time_point now) {
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    std::string key = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    waiting_.erase(key);
    add_locked(key, now);
  }
}

void WorkQueue::add(const std::string& key) {
  std::lock_guard lock(mu_);
  add_locked(key, Clock::now());
}

void WorkQueue::add_after(const std::string& key, std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  if (shutting_down_) return;
  const auto now = Clock::now();
  if (delay <= std::chrono::milliseconds::zero()) {
    add_locked(key, now);
    return;
  }
  const auto when = now + delay;
  // One timer per key: the earliest wins.
  if (auto it = waiting_.find(key); it != waiting_.end()) {
    if (it->second->first <= when) return;
    delayed_.erase(it->second);
    waiting_.erase(it);
  }
  waiting_.emplace(key, delayed_.emplace(when, key));
  // A get() waiting for a later time (or for nothing) must wake up for this one.
  cv_.notify_all();
}

std::chrono::duration<double> WorkQueue::bucket_delay_locked(Clock::time_point now) {
  if (opts_.qps <= 0) return std::chrono::duration<double>(0);
  const double elapsed = std::chrono::duration<double>(now - last_refill_).count();
  last_refill_ = now;
  tokens_ = std::min(static_cast<double>(opts_.burst), tokens_ + elapsed * opts_.qps);
  // Take a token now even if it is only there in the future: the delay is the time until
  // the bucket holds it.
  tokens_ -= 1;
  return std::chrono::duration<double>(tokens_ >= 0 ? 0 : -tokens_ / opts_.qps);
}

void WorkQueue::add_rate_limited(const std::string& key) {
  std::chrono::milliseconds delay;
  {
    std::lock_guard lock(mu_);
    if (shutting_down_) return;
    const auto now = Clock::now();
    const auto backoff = backoff_delay(failures_[key]++);
    const double bucket_ms = std::ceil(bucket_delay_locked(now).count() * 1000.0);
    delay = std::max(backoff, std::chrono::milliseconds(static_cast<int64_t>(bucket_ms)));
  }
  add_after(key, delay);
}

std::chrono::milliseconds WorkQueue::backoff_delay(int failures) const {
  const double base_ms = static_cast<double>(opts_.base_delay.count());
  const double max_ms = static_cast<double>(opts_.max_delay.count());
  // pow overflows to inf for large exponents, which min() then caps.
  const double ms = std::min(max_ms, base_ms * std::pow(2.0, std::max(0, failures)));
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

void WorkQueue::forget(const std::string& key) {
  std::lock_guard lock(mu_);
  failures_.erase(key);
}

int WorkQueue::failures(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

std::optional<std::string> WorkQueue::get() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (shutting_down_) return std::nullopt;
    const auto now = Clock::now();
    promote_due_locked(now);
    if (!ready_.empty()) {
      std::string key = std::move(ready_.front());
      ready_.pop_front();
      dirty_.erase(key);
      processing_.insert(key);
      if (auto it = added_at_.find(key); it != added_at_.end()) {
        last_wait_ = now - it->second;
        added_at_.erase(it);
      }
      return key;
    }
    if (delayed_.empty()) {
      cv_.wait(lock);
    } else {
      cv_.wait_until(lock, delayed_.begin()->first);
    }
  }
}

void WorkQueue::done(const std::string& key) {
  std::lock_guard lock(mu_);
  processing_.erase(key);
  if (dirty_.count(key) && !shutting_down_) {
    ready_.push_back(key);
    cv_.notify_one();
  }
}

void WorkQueue::shut_down() {
  std::lock_guard lock(mu_);
  shutting_down_ = true;
  cv_.notify_all();
}

size_t WorkQueue::depth() const {
  std::lock_guard lock(mu_);
  size_t n = ready_.size();
  // Delayed keys that are due count as ready even if no get() has moved them yet.
  const auto now = Clock::now();
  for (auto it = delayed_.begin(); it != delayed_.end() && it->first <= now; ++it) {
    if (!dirty_.count(it->second) && !processing_.count(it->second)) ++n;
  }
  return n;
}

std::chrono::duration<double> WorkQueue::last_wait() const {
  std::lock_guard lock(mu_);
  return last_wait_;
}

}  // namespace switchboard::kube
