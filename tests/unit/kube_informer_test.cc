// The informer's state machine against a scripted client: resume after a clean end of
// stream, relist on 410 Gone (telling about keys that vanished), back off and watch again
// on transient errors, and update_status_with_retry's conflict loop.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>

#include "kube/informer.h"
#include "tests/kube/fake_client.h"

namespace switchboard::kube {
namespace {

using testing::eventually;
using testing::FakeClient;
using testing::make_object;
using testing::wait_for_stop;

// What on_change was told, safe to read from the test thread.
struct Changes {
  std::mutex mu;
  std::vector<std::string> keys;
  void add(const std::string& k) {
    std::lock_guard lock(mu);
    keys.push_back(k);
  }
  std::vector<std::string> get() {
    std::lock_guard lock(mu);
    return keys;
  }
  size_t size() {
    std::lock_guard lock(mu);
    return keys.size();
  }
};

struct Script {
  std::mutex mu;
  std::vector<std::string> watch_rvs;
  int lists = 0;
  int watches() {
    std::lock_guard lock(mu);
    return static_cast<int>(watch_rvs.size());
  }
};

TEST(KubeInformer, ListsThenWatchesAndResumesWhereTheStreamEnded) {
  FakeClient client;
  Script script;
  Changes changes;
  client.on_list = [&] {
    std::lock_guard lock(script.mu);
    ++script.lists;
    return ObjectList{{make_object("ns", "a", "5", "one")}, "10"};
  };
  client.on_watch = [&](const std::string& rv, const auto& on_event, const std::atomic<bool>& stop) {
    int n;
    {
      std::lock_guard lock(script.mu);
      script.watch_rvs.push_back(rv);
      n = static_cast<int>(script.watch_rvs.size());
    }
    if (n == 1) {
      on_event(WatchEvent{WatchEvent::Type::Added, make_object("ns", "b", "11")});
      on_event(WatchEvent{WatchEvent::Type::Modified, make_object("ns", "a", "12", "two")});
      on_event(WatchEvent{WatchEvent::Type::Bookmark, make_object("", "", "15")});
      return std::string("15");  // the server ended the stream (its timeout)
    }
    return wait_for_stop(rv, stop);
  };
  Informer inf(client, resources::kConfigMaps, "ns", {}, [&](const std::string& k) { changes.add(k); });
  inf.start();
  ASSERT_TRUE(inf.wait_synced(10000));
  ASSERT_TRUE(eventually([&] { return script.watches() == 2; }));
  inf.stop();

  EXPECT_EQ(script.watch_rvs, (std::vector<std::string>{"10", "15"}));
  EXPECT_EQ(script.lists, 1);
  EXPECT_EQ(inf.relists(), 0u);
  EXPECT_EQ(inf.watch_restarts(), 1u);
  EXPECT_EQ(changes.get(), (std::vector<std::string>{"ns/a", "ns/b", "ns/a"}));
  auto a = inf.get("ns/a");
  ASSERT_TRUE(a);
  EXPECT_EQ((*a)["data"]["v"].as_string(), "two");
  auto all = inf.list();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(key_of(all[0]), "ns/a");  // sorted by key
  EXPECT_EQ(key_of(all[1]), "ns/b");
}

TEST(KubeInformer, RelistsOnGoneAndReportsKeysThatVanished) {
  FakeClient client;
  Script script;
  Changes changes;
  client.on_list = [&] {
    std::lock_guard lock(script.mu);
    if (++script.lists == 1) return ObjectList{{make_object("ns", "a", "1"), make_object("ns", "b", "2")}, "2"};
    return ObjectList{{make_object("ns", "b", "7", "new"), make_object("ns", "c", "8")}, "9"};
  };
  client.on_watch = [&](const std::string& rv, const auto& on_event, const std::atomic<bool>& stop) {
    int n;
    {
      std::lock_guard lock(script.mu);
      script.watch_rvs.push_back(rv);
      n = static_cast<int>(script.watch_rvs.size());
    }
    if (n == 1) {
      on_event(WatchEvent{WatchEvent::Type::Modified, make_object("ns", "a", "3")});
      throw ApiError(410, "Expired", "too old resource version");
    }
    return wait_for_stop(rv, stop);
  };
  Informer inf(client, resources::kConfigMaps, "ns", {}, [&](const std::string& k) { changes.add(k); });
  inf.start();
  ASSERT_TRUE(eventually([&] { return script.watches() == 2; }));
  inf.stop();

  EXPECT_EQ(inf.relists(), 1u);
  EXPECT_EQ(script.watch_rvs, (std::vector<std::string>{"2", "9"}));  // the new list's version
  // First list (a, b), the watch event (a), then after the relist every key present
  // (b, c) and the one that disappeared without a DELETED event (a).
  auto got = changes.get();
  ASSERT_EQ(got.size(), 6u);
  EXPECT_EQ(std::set<std::string>(got.begin() + 3, got.end()), (std::set<std::string>{"ns/a", "ns/b", "ns/c"}));
  EXPECT_FALSE(inf.get("ns/a"));
  ASSERT_TRUE(inf.get("ns/b"));
  EXPECT_EQ((*inf.get("ns/b"))["data"]["v"].as_string(), "new");
  EXPECT_TRUE(inf.get("ns/c"));
}

TEST(KubeInformer, TransientErrorsBackOffThenWatchAgainWithoutRelisting) {
  FakeClient client;
  Script script;
  client.on_list = [&] {
    std::lock_guard lock(script.mu);
    ++script.lists;
    return ObjectList{{}, "100"};
  };
  client.on_watch = [&](const std::string& rv, const auto& on_event, const std::atomic<bool>& stop) {
    int n;
    {
      std::lock_guard lock(script.mu);
      script.watch_rvs.push_back(rv);
      n = static_cast<int>(script.watch_rvs.size());
    }
    if (n == 1) {
      on_event(WatchEvent{WatchEvent::Type::Added, make_object("ns", "a", "101")});
      throw ApiError(0, "", "connection reset");
    }
    if (n == 2) throw ApiError(503, "ServiceUnavailable", "etcd is down");
    return wait_for_stop(rv, stop);
  };
  Informer inf(client, resources::kConfigMaps, "ns", {}, [](const std::string&) {});
  inf.start();
  ASSERT_TRUE(eventually([&] { return script.watches() == 3; }));
  inf.stop();
  EXPECT_EQ(script.lists, 1);
  EXPECT_EQ(inf.relists(), 0u);
  EXPECT_EQ(inf.watch_restarts(), 2u);
  // Resumed after the last event delivered before the failure.
  EXPECT_EQ(script.watch_rvs, (std::vector<std::string>{"100", "101", "101"}));
}

TEST(KubeInformer, FailedListIsRetriedAndSyncsLater) {
  FakeClient client;
  Script script;
  client.on_list = [&] {
    std::lock_guard lock(script.mu);
    if (++script.lists == 1) throw ApiError(0, "", "connection refused");
    return ObjectList{{make_object("ns", "a", "1")}, "1"};
  };
  client.on_watch = [&](const std::string& rv, const auto&, const std::atomic<bool>& stop) {
    return wait_for_stop(rv, stop);
  };
  Informer inf(client, resources::kConfigMaps, "ns", {}, [](const std::string&) {});
  EXPECT_FALSE(inf.synced());
  inf.start();
  ASSERT_TRUE(inf.wait_synced(30000));
  EXPECT_EQ(script.lists, 2);
  EXPECT_TRUE(inf.get("ns/a"));
  // Lists are numbered as they begin, the failed one too: a relist asked for now is the 3rd.
  EXPECT_EQ(inf.lists(), 2u);
  const uint64_t target = inf.request_relist();
  EXPECT_EQ(target, 3u);
  EXPECT_TRUE(eventually([&] { return inf.lists() >= target; }));
  inf.stop();
}

TEST(KubeInformer, StopEndsAWatchThatNeverReturnsOnItsOwn) {
  FakeClient client;
  client.on_list = [] { return ObjectList{{}, "1"}; };
  std::atomic<bool> watching{false};
  client.on_watch = [&](const std::string& rv, const auto&, const std::atomic<bool>& stop) {
    watching = true;
    return wait_for_stop(rv, stop);
  };
  Informer inf(client, resources::kConfigMaps, "", {}, [](const std::string&) {});
  inf.start();
  ASSERT_TRUE(eventually([&] { return watching.load(); }));
  inf.stop();  // returns: the test would time out otherwise
  EXPECT_TRUE(inf.synced());
}

// A replica that becomes leader asks for a relist: the watch that never returns on its own
// ends, the informer lists again (the new content replaces the cache), and lists() says so.
// Also while it waits to retry after errors: the request cuts the wait short.
TEST(KubeInformer, ARequestedRelistEndsTheWatchAndListsAgain) {
  FakeClient client;
  std::atomic<int> lists{0};
  std::atomic<bool> failing{false};
  client.on_list = [&] {
    int n = ++lists;
    return ObjectList{{make_object("ns", "a", std::to_string(n), "v" + std::to_string(n))}, std::to_string(10 * n)};
  };
  std::atomic<int> watches{0};
  client.on_watch = [&](const std::string& rv, const auto&, const std::atomic<bool>& stop) -> std::string {
    ++watches;
    if (failing) throw ApiError(503, "ServiceUnavailable", "down");
    return wait_for_stop(rv, stop);
  };
  Informer inf(client, resources::kConfigMaps, "", {}, [](const std::string&) {});
  inf.start();
  ASSERT_TRUE(eventually([&] { return watches.load() == 1; }));
  EXPECT_EQ(inf.lists(), 1u);
  EXPECT_EQ(inf.request_relist(), 2u);
  ASSERT_TRUE(eventually([&] { return inf.lists() == 2; }));
  EXPECT_EQ(inf.get("ns/a")->at("data").at("v").as_string(), "v2");
  EXPECT_EQ(inf.relists(), 1u);

  // Watches fail and the informer backs off (250-500 ms, doubling): after the fifth
  // failure it waits 4 to 8 s, and a request made then is served at once, not after it.
  failing = true;
  inf.request_relist();  // ends the running watch (the 2nd); the 3rd to 7th fail
  ASSERT_TRUE(eventually([&] { return watches.load() >= 7; }));
  const auto asked = std::chrono::steady_clock::now();
  const uint64_t target = inf.request_relist();
  ASSERT_TRUE(eventually([&] { return inf.lists() >= target; }));
  // A bound well below the 4 s the wait would at least have lasted, not a speed goal.
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::milliseconds(3500));
  inf.stop();
}

TEST(KubeUpdateStatusWithRetry, RetriesConflictsWithAFreshRead) {
  FakeClient client;
  int gets = 0, writes = 0;
  client.on_get = [&](const std::string& ns, const std::string& name) {
    ++gets;
    return make_object(ns, name, std::to_string(gets));
  };
  client.on_replace_status = [&](const Object& obj) {
    ++writes;
    if (resource_version_of(obj) != "3") throw ApiError(409, "Conflict", "the object has been modified");
    return obj;
  };
  auto stored = update_status_with_retry(client, resources::kEventRoutes, "ns", "r", [](Object& o) {
    o["status"]["ready"] = Object::boolean(true);
    return true;
  });
  ASSERT_TRUE(stored);
  EXPECT_EQ(gets, 3);
  EXPECT_EQ(writes, 3);
  EXPECT_TRUE((*stored)["status"]["ready"].as_bool());
}

TEST(KubeUpdateStatusWithRetry, GivesUpAfterAttemptsAndKnowsWhenThereIsNothingToDo) {
  FakeClient client;
  int writes = 0;
  client.on_get = [](const std::string& ns, const std::string& name) { return make_object(ns, name, "1"); };
  client.on_replace_status = [&](const Object&) -> Object {
    ++writes;
    throw ApiError(409, "Conflict", "modified");
  };
  auto mutate = [](Object&) { return true; };
  try {
    update_status_with_retry(client, resources::kEventRoutes, "ns", "r", mutate, 3);
    ADD_FAILURE() << "no conflict thrown";
  } catch (const ApiError& e) {
    EXPECT_TRUE(e.conflict());
  }
  EXPECT_EQ(writes, 3);

  // mutate says nothing changed: no write.
  writes = 0;
  EXPECT_FALSE(update_status_with_retry(client, resources::kEventRoutes, "ns", "r", [](Object&) { return false; }));
  EXPECT_EQ(writes, 0);

  // The object is gone.
  client.on_get = [](const std::string&, const std::string&) -> Object { throw ApiError(404, "NotFound", "gone"); };
  EXPECT_FALSE(update_status_with_retry(client, resources::kEventRoutes, "ns", "r", mutate));

  // Other errors are the caller's.
  client.on_get = [](const std::string&, const std::string&) -> Object { throw ApiError(403, "Forbidden", "no"); };
  EXPECT_THROW(update_status_with_retry(client, resources::kEventRoutes, "ns", "r", mutate), ApiError);
}

}  // namespace
}  // namespace switchboard::kube
