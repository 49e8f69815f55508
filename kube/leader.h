// Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: acquire when
// the lease is free or expired, renew every retry period, step down when renewal has not
// succeeded within the renew deadline, and release (holderIdentity cleared) on stop.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "kube/client.h"

namespace switchboard::kube {

struct LeaderElectionConfig {
  std::string ns;
  std::string name;      // the Lease
  std::string identity;  // this replica, e.g. the pod name
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
};

// The callbacks run on the elector's thread: they should start or stop work and return,
// not do the work, or renewals wait for them. A replica that lost the lease (renewal
// failed for renew_deadline, or another holder was seen) calls on_stopped_leading and
// becomes a candidate again.
//
// Expiry is judged as client-go judges it: by when this replica last saw the Lease record
// change, plus the holder's leaseDurationSeconds, on this replica's monotonic clock; the
// times written in the Lease are for people, never compared across clocks.
class LeaderElector {
 public:
  LeaderElector(Client& client, LeaderElectionConfig config, std::function<void()> on_started_leading,
                std::function<void()> on_stopped_leading);
  ~LeaderElector();  // stop()

  void start();
  // Stops trying; if leading, releases the lease and calls on_stopped_leading.
  void stop();
  bool leading() const { return leading_.load(); }
  // Leading, and the last renewal is younger than the renew deadline: what a writer checks
  // before it writes. A replica that was frozen (SIGSTOP, a VM paused) past its deadline
  // may resume while the elector's thread has not noticed yet; this notices at once, on the
  // monotonic clock, so no write goes out on the strength of a lease another replica may
  // hold by now.
  bool holds_lease() const;
  std::string holder() const;  // the current holder as last seen

 private:
  // The Lease's spec, as leader election reads and writes it.
  struct Record {
    std::string holder;
    int64_t lease_duration_s = 0;
    std::string acquire_time, renew_time;  // MicroTime text
    int64_t transitions = 0;
    bool operator==(const Record&) const = default;
  };
  void run();
  // One attempt: create the Lease, take it over when free or expired, or renew it when
  // ours. True when this replica holds it afterwards.
  bool try_acquire_or_renew();
  void release();
  // Waits unless stopped first; false when stopped.
  bool wait(std::chrono::milliseconds d);
  void set_holder(const std::string& holder);

  Client& client_;
  LeaderElectionConfig config_;
  std::function<void()> on_started_;
  std::function<void()> on_stopped_;
  std::atomic<bool> leading_{false};
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string holder_;
  std::thread thread_;
  // When the current term's last renewal began (steady clock, nanoseconds since its
  // epoch); read by holds_lease() from any thread.
  std::atomic<int64_t> last_renew_ns_{0};
  // Touched only by the elector's thread (and the renewal it waits for).
  std::optional<Record> observed_;
  std::chrono::steady_clock::time_point observed_at_{};  // when we saw observed_ change
};

}  // namespace switchboard::kube
