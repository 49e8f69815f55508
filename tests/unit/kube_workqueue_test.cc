// The work queue's guarantees: one entry per key, never two workers on one key, a key
// added while in flight comes back after done(), delayed and rate-limited adds, and
// shut_down() waking every waiting worker. Delays that must not pass during a test are
// hours long, so that no check depends on how fast the machine is.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <set>
#include <thread>

#include "kube/backoff.h"
#include "kube/workqueue.h"

namespace switchboard::kube {
namespace {

using namespace std::chrono_literals;

TEST(KubeWorkQueue, DedupesKeysWaitingToBeProcessed) {
  WorkQueue q;
  q.add("a");
  q.add("b");
  q.add("a");
  EXPECT_EQ(q.depth(), 2u);
  EXPECT_EQ(q.get(), "a");
  EXPECT_EQ(q.get(), "b");
  EXPECT_EQ(q.depth(), 0u);
}

TEST(KubeWorkQueue, KeyAddedWhileProcessingComesBackAfterDone) {
  WorkQueue q;
  q.add("a");
  ASSERT_EQ(q.get(), "a");
  q.add("a");  // changed again while a worker holds it
  q.add("a");
  EXPECT_EQ(q.depth(), 0u);  // not handed to a second worker
  q.add("b");
  EXPECT_EQ(q.get(), "b");
  q.done("b");
  q.done("a");
  EXPECT_EQ(q.depth(), 1u);  // once, however many adds
  EXPECT_EQ(q.get(), "a");
  q.done("a");
  EXPECT_EQ(q.depth(), 0u);
}

TEST(KubeWorkQueue, NeverTwoWorkersOnOneKey) {
  WorkQueue q;
  constexpr int kKeys = 5;
  std::atomic<int> in_flight[kKeys] = {};
  std::atomic<bool> overlap{false};
  std::atomic<int> processed{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (auto key = q.get()) {
        const int k = std::stoi(*key);
        if (in_flight[k].fetch_add(1) != 0) overlap = true;
        std::this_thread::yield();
        in_flight[k].fetch_sub(1);
        ++processed;
        q.done(*key);
      }
    });
  }
  for (int i = 0; i < 2000; ++i) q.add(std::to_string(i % kKeys));
  // Wait until everything added has been handed out and finished.
  while (q.depth() > 0) std::this_thread::sleep_for(1ms);
  q.shut_down();
  for (auto& t : workers) t.join();
  EXPECT_FALSE(overlap);
  EXPECT_GE(processed.load(), kKeys);
}

TEST(KubeWorkQueue, AddAfterWaitsThenDelivers) {
  WorkQueue q;
  q.add_after("later", std::chrono::hours(1));
  q.add_after("soon", 20ms);
  EXPECT_EQ(q.depth(), 0u);
  EXPECT_EQ(q.get(), "soon");  // get() wakes up for it
  EXPECT_EQ(q.depth(), 0u);    // "later" is still an hour away
  // The earlier of two delays for one key wins.
  q.add_after("later", 1ms);
  EXPECT_EQ(q.get(), "later");
}

TEST(KubeWorkQueue, AddAfterZeroIsAdd) {
  WorkQueue q;
  q.add_after("a", 0ms);
  EXPECT_EQ(q.depth(), 1u);
}

TEST(KubeWorkQueue, BackoffGrowsPerKeyAndForgetResetsIt) {
  WorkQueue q(WorkQueueOptions{.base_delay = 5ms, .max_delay = 300s, .qps = 0, .burst = 1});
  EXPECT_EQ(q.backoff_delay(0), 5ms);
  EXPECT_EQ(q.backoff_delay(1), 10ms);
  EXPECT_EQ(q.backoff_delay(2), 20ms);
  EXPECT_EQ(q.backoff_delay(10), 5120ms);
  EXPECT_EQ(q.backoff_delay(16), 300s);  // 327.68 s capped
  EXPECT_EQ(q.backoff_delay(1000), 300s);

  EXPECT_EQ(q.failures("a"), 0);
  q.add_rate_limited("a");
  q.add_rate_limited("a");
  q.add_rate_limited("a");
  EXPECT_EQ(q.failures("a"), 3);
  EXPECT_EQ(q.failures("b"), 0);  // per key
  q.forget("a");
  EXPECT_EQ(q.failures("a"), 0);
}

TEST(KubeWorkQueue, RateLimitedAddWaitsForItsBackoff) {
  // A base of an hour: the key must not be ready during the test.
  WorkQueue slow(WorkQueueOptions{.base_delay = std::chrono::hours(1), .max_delay = std::chrono::hours(2), .qps = 0});
  slow.add_rate_limited("a");
  EXPECT_EQ(slow.depth(), 0u);
  // A base of a millisecond: it comes back.
  WorkQueue fast(WorkQueueOptions{.base_delay = 1ms, .max_delay = 1s, .qps = 0});
  fast.add_rate_limited("a");
  EXPECT_EQ(fast.get(), "a");
}

TEST(KubeWorkQueue, TokenBucketBoundsRateLimitedAdds) {
  // Per-key backoff out of the way (0 ms); a bucket of 3 that refills every 100 s.
  WorkQueue q(WorkQueueOptions{.base_delay = 0ms, .max_delay = 0ms, .qps = 0.01, .burst = 3});
  for (const char* k : {"a", "b", "c", "d", "e"}) q.add_rate_limited(k);
  EXPECT_EQ(q.depth(), 3u);  // the burst goes at once, the rest waits for tokens
  // Plain adds are not rate limited.
  q.add("f");
  EXPECT_EQ(q.depth(), 4u);
}

TEST(KubeWorkQueue, ShutDownWakesEveryWaitingWorker) {
  WorkQueue q;
  auto w1 = std::async(std::launch::async, [&] { return q.get(); });
  auto w2 = std::async(std::launch::async, [&] { return q.get(); });
  // Whether or not the workers are waiting yet, shut_down must end both.
  q.shut_down();
  EXPECT_EQ(w1.get(), std::nullopt);
  EXPECT_EQ(w2.get(), std::nullopt);
  q.add("a");  // ignored
  EXPECT_EQ(q.depth(), 0u);
  EXPECT_EQ(q.get(), std::nullopt);
}

TEST(KubeWorkQueue, ShutDownWakesAWorkerWaitingForADelayedKey) {
  WorkQueue q;
  q.add_after("a", std::chrono::hours(1));
  auto w = std::async(std::launch::async, [&] { return q.get(); });
  q.shut_down();
  EXPECT_EQ(w.get(), std::nullopt);
}

TEST(KubeWorkQueue, LastWaitMeasuresTimeInTheQueue) {
  WorkQueue q;
  q.add("a");
  std::this_thread::sleep_for(5ms);
  ASSERT_EQ(q.get(), "a");
  EXPECT_GE(q.last_wait(), 5ms);
}

// The informers' and the client's retry delay: doubling from the first up to the most,
// each spread over [d/2, d] so that clients failing together do not retry together, and
// back to the first after reset().
TEST(KubeBackoff, DoublesUpToTheMostWithJitterAndResets) {
  internal::Backoff b(500ms, 30s);
  std::chrono::milliseconds d = 500ms;
  for (int i = 0; i < 10; ++i) {
    const auto got = b.next();
    EXPECT_GE(got, d / 2) << "step " << i;
    EXPECT_LE(got, d) << "step " << i;
    d = std::min<std::chrono::milliseconds>(d * 2, 30s);
  }
  EXPECT_EQ(d, 30s) << "ten steps reach the most";
  b.reset();
  const auto first = b.next();
  EXPECT_GE(first, 250ms);
  EXPECT_LE(first, 500ms);
  // Jitter: the first delays of many clients are spread over the range, not one value.
  std::set<int64_t> firsts;
  int64_t lowest = 500, highest = 0;
  for (int i = 0; i < 200; ++i) {
    internal::Backoff client(500ms, 30s);
    const int64_t ms = client.next().count();
    firsts.insert(ms);
    lowest = std::min(lowest, ms);
    highest = std::max(highest, ms);
  }
  EXPECT_GT(firsts.size(), 50u) << "200 clients would retry at " << firsts.size() << " moments";
  EXPECT_LT(lowest, 300) << "the low end of [250, 500] ms is used";
  EXPECT_GT(highest, 450) << "the high end of [250, 500] ms is used";
}

}  // namespace
}  // namespace switchboard::kube
