// Watches against a real kube-apiserver: events in order, bookmarks, resuming from the
// resourceVersion a watch returns, stopping a quiet watch, and 410 Gone after etcd
// compacted the history a watch asks for.
#include <future>
#include <mutex>

#include "tests/kube/kube_test.h"

namespace switchboard::kube::testing {
namespace {

using WatchTest = KubeTest;
using namespace std::chrono_literals;

// Events a watch delivered, readable while it runs.
struct Recorder {
  std::mutex mu;
  std::vector<std::pair<WatchEvent::Type, std::string>> events;  // type, name
  std::vector<std::string> bookmark_rvs;
  void add(const WatchEvent& ev) {
    std::lock_guard lock(mu);
    if (ev.type == WatchEvent::Type::Bookmark) {
      bookmark_rvs.push_back(resource_version_of(ev.object));
    } else {
      events.emplace_back(ev.type, name_of(ev.object));
    }
  }
  bool has(WatchEvent::Type t, const std::string& name) {
    std::lock_guard lock(mu);
    return std::find(events.begin(), events.end(), std::make_pair(t, name)) != events.end();
  }
  std::vector<std::pair<WatchEvent::Type, std::string>> get() {
    std::lock_guard lock(mu);
    return events;
  }
};

TEST_F(WatchTest, SeesAddedModifiedDeletedInOrder) {
  const std::string rv = client().list(resources::kConfigMaps, ns_).resource_version;
  Recorder rec;
  std::atomic<bool> stop{false};
  auto watch = std::async(std::launch::async, [&] {
    return client().watch(resources::kConfigMaps, ns_, {}, rv,
                          [&](const WatchEvent& ev) {
                            rec.add(ev);
                            return WatchControl::Continue;
                          },
                          stop);
  });
  client().create(resources::kConfigMaps, ns_, configmap(ns_, "w", {{"k", "1"}}));
  client().merge_patch(resources::kConfigMaps, ns_, "w", Object::parse(R"({"data":{"k":"2"}})"));
  client().remove(resources::kConfigMaps, ns_, "w");
  EXPECT_TRUE(eventually([&] { return rec.has(WatchEvent::Type::Deleted, "w"); }));
  stop = true;
  ASSERT_EQ(watch.wait_for(30s), std::future_status::ready) << "the watch did not stop";
  const std::string last = watch.get();
  EXPECT_FALSE(last.empty());
  EXPECT_NE(last, rv);
  using T = WatchEvent::Type;
  EXPECT_EQ(rec.get(), (std::vector<std::pair<T, std::string>>{{T::Added, "w"}, {T::Modified, "w"}, {T::Deleted, "w"}}));
}

TEST_F(WatchTest, ReceivesBookmarks) {
  // A bookmark tells a watcher that the collection is unchanged up to a newer
  // resourceVersion: the server sends one (before it ends a short watch) when writes
  // elsewhere moved the version on while nothing happened to what is watched.
  auto short_client = make_client(config_, ClientOptions{.watch_timeout = 4s});
  const std::string start = client().list(resources::kConfigMaps, ns_).resource_version;
  Recorder rec;
  std::atomic<bool> stop{false};
  std::atomic<bool> bookmarked{false};
  auto watching = std::async(std::launch::async, [&] {
    std::string rv = start;
    while (!bookmarked && !stop) {
      rv = short_client->watch(resources::kConfigMaps, ns_, {}, rv,
                               [&](const WatchEvent& ev) {
                                 rec.add(ev);
                                 if (ev.type != WatchEvent::Type::Bookmark) return WatchControl::Continue;
                                 bookmarked = true;
                                 return WatchControl::Stop;
                               },
                               stop);
    }
    return rv;
  });
  // Writes the watch does not see: ConfigMaps of another namespace (the same kind, so
  // that the server's cache of ConfigMaps moves on).
  const std::string elsewhere = ns_ + "-elsewhere";
  Object other = Object::object();
  other["metadata"]["name"] = Object::string(elsewhere);
  client().create(resources::kNamespaces, "", other);
  client().create(resources::kConfigMaps, elsewhere, configmap(elsewhere, "tick"));
  int n = 0;
  EXPECT_TRUE(eventually([&] {
    client().merge_patch(resources::kConfigMaps, elsewhere, "tick",
                         Object::parse(R"({"data":{"n":")" + std::to_string(++n) + "\"}}"));
    std::this_thread::sleep_for(200ms);
    return bookmarked.load();
  }));
  stop = true;
  ASSERT_EQ(watching.wait_for(30s), std::future_status::ready);
  const std::string rv = watching.get();
  ASSERT_FALSE(rec.bookmark_rvs.empty());
  EXPECT_NE(rec.bookmark_rvs[0], start);
  EXPECT_EQ(rv, rec.bookmark_rvs.back());  // a bookmark moves the resume point
  EXPECT_TRUE(rec.get().empty());          // and nothing else happened here
}

TEST_F(WatchTest, ResumesFromTheVersionItReturned) {
  std::atomic<bool> stop{false};
  const std::string start = client().list(resources::kConfigMaps, ns_).resource_version;
  auto first = std::async(std::launch::async, [&] {
    return client().watch(resources::kConfigMaps, ns_, {}, start,
                          [&](const WatchEvent& ev) {
                            return ev.type == WatchEvent::Type::Added ? WatchControl::Stop : WatchControl::Continue;
                          },
                          stop);
  });
  client().create(resources::kConfigMaps, ns_, configmap(ns_, "one"));
  ASSERT_EQ(first.wait_for(60s), std::future_status::ready);
  const std::string resume = first.get();
  EXPECT_EQ(resume, resource_version_of(client().get(resources::kConfigMaps, ns_, "one")));

  // Changes while nobody watches...
  client().create(resources::kConfigMaps, ns_, configmap(ns_, "two"));
  client().create(resources::kConfigMaps, ns_, configmap(ns_, "three"));
  // ...arrive when the watch resumes, and nothing from before.
  Recorder rec;
  client().watch(resources::kConfigMaps, ns_, {}, resume,
                 [&](const WatchEvent& ev) {
                   rec.add(ev);
                   return rec.has(WatchEvent::Type::Added, "three") ? WatchControl::Stop : WatchControl::Continue;
                 },
                 stop);
  using T = WatchEvent::Type;
  EXPECT_EQ(rec.get(), (std::vector<std::pair<T, std::string>>{{T::Added, "two"}, {T::Added, "three"}}));
}

TEST_F(WatchTest, StopEndsAQuietWatch) {
  std::atomic<bool> stop{false};
  std::atomic<bool> started{false};
  auto watch = std::async(std::launch::async, [&] {
    started = true;
    return client().watch(resources::kConfigMaps, ns_, {}, client().list(resources::kConfigMaps, ns_).resource_version,
                          [](const WatchEvent&) { return WatchControl::Continue; }, stop);
  });
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  std::this_thread::sleep_for(300ms);  // most likely connected and waiting by now
  stop = true;
  // The server would keep this stream open for minutes; stop must not wait for it.
  ASSERT_EQ(watch.wait_for(30s), std::future_status::ready);
  EXPECT_FALSE(watch.get().empty());
}

TEST_F(WatchTest, CompactedVersionIsGone) {
  Object pt = client().create(kPodTemplates, ns_, podtemplate(ns_, "pt"));
  const std::string old_rv = resource_version_of(pt);
  std::string latest;
  for (int i = 0; i < 3; ++i) {
    Object patched = client().merge_patch(kPodTemplates, ns_, "pt",
                                          Object::parse(R"({"metadata":{"labels":{"n":")" + std::to_string(i) + "\"}}}"));
    latest = resource_version_of(patched);
  }
  compact_etcd(cp().etcd_url(), latest);
  std::atomic<bool> stop{false};
  try {
    client().watch(kPodTemplates, ns_, {}, old_rv, [](const WatchEvent&) { return WatchControl::Continue; }, stop);
    ADD_FAILURE() << "a watch from a compacted resourceVersion did not fail";
  } catch (const ApiError& e) {
    EXPECT_TRUE(e.gone()) << e.what();
    EXPECT_EQ(e.status(), 410);
    EXPECT_EQ(e.reason(), "Expired");
    EXPECT_FALSE(e.message().empty());
  }
}

}  // namespace
}  // namespace switchboard::kube::testing
