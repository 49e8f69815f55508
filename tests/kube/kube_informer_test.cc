// Informers against a real kube-apiserver: the cache and on_change for every change,
// resuming after the server ends a watch, and relisting after 410 Gone (etcd compacted
// the informer's resourceVersion) until the cache matches the server again.
#include <mutex>
#include <set>

#include "kube/informer.h"
#include "tests/kube/kube_test.h"

namespace switchboard::kube::testing {
namespace {

using InformerTest = KubeTest;
using namespace std::chrono_literals;

struct Keys {
  std::mutex mu;
  std::multiset<std::string> seen;
  void add(const std::string& k) {
    std::lock_guard lock(mu);
    seen.insert(k);
  }
  size_t count(const std::string& k) {
    std::lock_guard lock(mu);
    return seen.count(k);
  }
};

TEST_F(InformerTest, CachesTheCollectionAndReportsEveryChange) {
  for (const char* n : {"c", "a", "b"}) client().create(resources::kConfigMaps, ns_, configmap(ns_, n, {{"v", "1"}}));
  Keys keys;
  Informer inf(client(), resources::kConfigMaps, ns_, {}, [&](const std::string& k) { keys.add(k); });
  EXPECT_FALSE(inf.synced());
  inf.start();
  ASSERT_TRUE(inf.wait_synced(30000));
  auto all = inf.list();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(name_of(all[0]), "a");
  EXPECT_EQ(name_of(all[2]), "c");
  for (const char* n : {"a", "b", "c"}) EXPECT_EQ(keys.count(ns_ + "/" + n), 1u) << n;

  client().create(resources::kConfigMaps, ns_, configmap(ns_, "d"));
  client().merge_patch(resources::kConfigMaps, ns_, "a", Object::parse(R"({"data":{"v":"2"}})"));
  client().remove(resources::kConfigMaps, ns_, "b");
  EXPECT_TRUE(eventually([&] {
    auto a = inf.get(ns_ + "/a");
    return inf.get(ns_ + "/d") && !inf.get(ns_ + "/b") && a && (*a)["data"]["v"].as_string() == "2";
  }));
  // on_change follows the cache update, on the informer's thread.
  EXPECT_TRUE(eventually([&] { return keys.count(ns_ + "/b") == 2; }));  // listed, then deleted
  EXPECT_EQ(keys.count(ns_ + "/d"), 1u);
  EXPECT_EQ(keys.count(ns_ + "/a"), 2u);
  EXPECT_EQ(inf.list().size(), 3u);
  EXPECT_EQ(inf.relists(), 0u);
  inf.stop();
}

TEST_F(InformerTest, LabelSelectorNarrowsTheCache) {
  client().create(resources::kConfigMaps, ns_, configmap(ns_, "mine", {}, {{"app", "switchboard"}}));
  client().create(resources::kConfigMaps, ns_, configmap(ns_, "theirs", {}, {{"app", "other"}}));
  ListOptions opts;
  opts.label_selector = "app=switchboard";
  Informer inf(client(), resources::kConfigMaps, ns_, opts, [](const std::string&) {});
  inf.start();
  ASSERT_TRUE(inf.wait_synced(30000));
  client().create(resources::kConfigMaps, ns_, configmap(ns_, "mine-too", {}, {{"app", "switchboard"}}));
  client().create(resources::kConfigMaps, ns_, configmap(ns_, "theirs-too", {}, {{"app", "other"}}));
  EXPECT_TRUE(eventually([&] { return inf.get(ns_ + "/mine-too").has_value(); }));
  EXPECT_FALSE(inf.get(ns_ + "/theirs"));
  EXPECT_FALSE(inf.get(ns_ + "/theirs-too"));
  EXPECT_EQ(inf.list().size(), 2u);
}

TEST_F(InformerTest, WatchesAgainWhenTheServerEndsTheStream) {
  auto short_watches = make_client(config_, ClientOptions{.watch_timeout = 2s});
  Informer inf(*short_watches, resources::kConfigMaps, ns_, {}, [](const std::string&) {});
  inf.start();
  ASSERT_TRUE(inf.wait_synced(30000));
  // The server ends each watch after two seconds; the informer resumes each time.
  ASSERT_TRUE(eventually([&] { return inf.watch_restarts() >= 2; }));
  client().create(resources::kConfigMaps, ns_, configmap(ns_, "after-restarts"));
  EXPECT_TRUE(eventually([&] { return inf.get(ns_ + "/after-restarts").has_value(); }));
  EXPECT_EQ(inf.relists(), 0u);  // resumed from the last resourceVersion, never listed again
}

TEST_F(InformerTest, RelistsAfterGoneAndConverges) {
  // PodTemplates bypass the watch cache: a watch resumed from a compacted
  // resourceVersion reaches etcd and fails with 410.
  auto short_watches = make_client(config_, ClientOptions{.watch_timeout = 2s});
  client().create(kPodTemplates, ns_, podtemplate(ns_, "first"));
  Keys keys;
  Informer inf(*short_watches, kPodTemplates, ns_, {}, [&](const std::string& k) { keys.add(k); });
  inf.start();
  ASSERT_TRUE(inf.wait_synced(30000));
  ASSERT_EQ(keys.count(ns_ + "/first"), 1u);

  // Move etcd on (writes elsewhere) and compact the history the informer's next watch
  // would start from.
  std::string latest;
  for (int i = 0; i < 3; ++i) {
    latest = resource_version_of(client().create(resources::kConfigMaps, ns_, configmap(ns_, "tick-" + std::to_string(i))));
  }
  compact_etcd(cp().etcd_url(), latest);

  ASSERT_TRUE(eventually([&] { return inf.relists() >= 1; }))
      << "no relist: restarts " << inf.watch_restarts();
  // After the relist every key present is reported again.
  EXPECT_TRUE(eventually([&] { return keys.count(ns_ + "/first") >= 2; }));
  // And the informer watches on from the new list.
  client().create(kPodTemplates, ns_, podtemplate(ns_, "second"));
  client().remove(kPodTemplates, ns_, "first");
  EXPECT_TRUE(eventually([&] { return inf.get(ns_ + "/second") && !inf.get(ns_ + "/first"); }));
  ObjectList server = client().list(kPodTemplates, ns_);
  ASSERT_EQ(server.items.size(), 1u);
  EXPECT_EQ(inf.list().size(), 1u);
}

}  // namespace
}  // namespace switchboard::kube::testing
