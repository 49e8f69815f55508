// Jittered exponential backoff for retry loops inside the Kubernetes client (not part of
// its public interface).
#pragma once

#include <algorithm>
#include <chrono>
#include <random>

namespace switchboard::kube::internal {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max) : initial_(initial), max_(max) {}

  // The next delay: initial, then doubling up to max, each spread over [d/2, d] so that
  // many clients failing together do not retry together.
  std::chrono::milliseconds next() {
    const auto d = current_;
    current_ = std::min(max_, current_ * 2);
    std::uniform_int_distribution<int64_t> spread(d.count() / 2, d.count());
    return std::chrono::milliseconds(spread(rng_));
  }
  void reset() { current_ = initial_; }

 private:
  std::chrono::milliseconds initial_, max_;
  std::chrono::milliseconds current_ = initial_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace switchboard::kube::internal
