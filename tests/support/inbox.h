// Test support: what arrives on a NATS subject, in order, for assertions with a timeout.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>

#include "router/nats_client.h"

namespace switchboard::testing {

class Inbox {
 public:
  struct Received {
    std::string subject, data;
    router::NatsHeaders headers;
  };

  Inbox(router::NatsClient& nc, const std::string& subject) : nc_(nc) {
    std::string error;
    id_ = nc.subscribe(subject, "", [this](const router::NatsMessage& m) {
      std::lock_guard lock(mu_);
      items_.push_back({std::string(m.subject), std::string(m.data), *m.headers});
      cv_.notify_all();
    }, error);
    EXPECT_NE(id_, 0u) << error;
    nc.flush(2000);
  }
  // Messages keep arriving (heartbeats): stop delivery before the inbox goes away.
  ~Inbox() { nc_.unsubscribe(id_); }
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  // Waits for the next message; false after `timeout`.
  bool next(Received& out, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [this] { return !items_.empty(); })) return false;
    out = std::move(items_.front());
    items_.pop_front();
    return true;
  }
  void clear() {
    std::lock_guard lock(mu_);
    items_.clear();
  }
  size_t size() {
    std::lock_guard lock(mu_);
    return items_.size();
  }
  // Waits until `n` messages are waiting; false once `quiet` passed with none arriving.
  // The wait is on progress, not on a total: a router slowed down (by the sanitizers, by
  // a loaded machine) that is still working through a backlog is given the time it needs,
  // and one that lost messages is given up on after `quiet`.
  bool wait_for_size(size_t n, std::chrono::milliseconds quiet = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    size_t seen = items_.size();
    while (items_.size() < n) {
      if (!cv_.wait_for(lock, quiet, [&] { return items_.size() != seen; })) return false;
      seen = items_.size();
    }
    return true;
  }

 private:
  router::NatsClient& nc_;
  uint64_t id_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Received> items_;
};

}  // namespace switchboard::testing
