// The client's calls against a real kube-apiserver: get, paginated list, server-side
// apply (and who owns which field), status writes with conflicts, merge patches of
// finalizers, deletes with each propagation policy, and the errors a caller sees.
#include <algorithm>
#include <set>

#include "tests/kube/kube_test.h"

namespace switchboard::kube::testing {
namespace {

using ClientTest = KubeTest;

TEST_F(ClientTest, CreateThenGet) {
  Object created = client().create(resources::kConfigMaps, ns_, configmap(ns_, "a", {{"k", "v"}}));
  EXPECT_FALSE(resource_version_of(created).empty());
  Object got = client().get(resources::kConfigMaps, ns_, "a");
  EXPECT_EQ(got["data"]["k"].as_string(), "v");
  EXPECT_EQ(got["kind"].as_string(), "ConfigMap");
  EXPECT_EQ(key_of(got), ns_ + "/a");
  EXPECT_EQ(resource_version_of(got), resource_version_of(created));
}

TEST_F(ClientTest, ListFollowsContinueAcrossPages) {
  for (int i = 0; i < 25; ++i) {
    client().create(resources::kConfigMaps, ns_, configmap(ns_, "cm-" + std::to_string(i), {}, {{"batch", "one"}}));
  }
  client().create(resources::kConfigMaps, ns_, configmap(ns_, "other", {}, {{"batch", "two"}}));

  // The server does page: one request with limit=10 answers 10 and a continue token.
  std::string raw;
  ASSERT_EQ(cp().kubectl({"get", "--raw", "/api/v1/namespaces/" + ns_ + "/configmaps?limit=10&labelSelector=batch%3Done"},
                         &raw),
            0)
      << raw;
  Object page = Object::parse(raw);
  EXPECT_EQ(page["items"].size(), 10u);
  EXPECT_FALSE(page["metadata"]["continue"].as_string().empty());

  ListOptions opts;
  opts.limit = 10;
  opts.label_selector = "batch=one";
  ObjectList list = client().list(resources::kConfigMaps, ns_, opts);
  std::set<std::string> names;
  for (const auto& item : list.items) names.insert(name_of(item));
  EXPECT_EQ(list.items.size(), 25u);
  EXPECT_EQ(names.size(), 25u);
  EXPECT_EQ(names.count("cm-0") + names.count("cm-24"), 2u);
  EXPECT_EQ(names.count("other"), 0u);
  EXPECT_FALSE(list.resource_version.empty());
  EXPECT_EQ(list.items[0]["kind"].as_string(), "ConfigMap");

  // Without a selector: everything in the namespace (25 + 1 + kube-root-ca.crt if a
  // controller made one; there is none here).
  EXPECT_GE(client().list(resources::kConfigMaps, ns_, {"", "", 7}).items.size(), 26u);
}

TEST_F(ClientTest, ServerSideApplyCreatesUpdatesAndOwnsItsFields) {
  Object first = client().apply(resources::kConfigMaps, configmap(ns_, "applied", {{"a", "1"}}));
  EXPECT_EQ(first["data"]["a"].as_string(), "1");

  // Another manager (kubectl) sets a field of its own.
  std::string out;
  ASSERT_EQ(cp().kubectl({"-n", ns_, "patch", "configmap", "applied", "--type", "merge", "-p",
                          R"({"data":{"theirs":"x"}})"},
                         &out),
            0)
      << out;

  Object second = client().apply(resources::kConfigMaps, configmap(ns_, "applied", {{"a", "2"}, {"b", "3"}}));
  EXPECT_EQ(second["data"]["a"].as_string(), "2");
  EXPECT_EQ(second["data"]["b"].as_string(), "3");
  EXPECT_EQ(second["data"]["theirs"].as_string(), "x");

  // A field switchboard applied before and no longer applies is removed; the other
  // manager's field stays.
  Object third = client().apply(resources::kConfigMaps, configmap(ns_, "applied", {{"b", "3"}}));
  EXPECT_FALSE(third["data"].has_field("a"));
  EXPECT_EQ(third["data"]["theirs"].as_string(), "x");

  bool found = false;
  for (const auto& mf : third["metadata"]["managedFields"].as_array()) {
    if (mf.at("manager").as_string() == "switchboard") {
      EXPECT_FALSE(found) << "two entries for switchboard";
      found = true;
      EXPECT_EQ(mf.at("operation").as_string(), "Apply");
      const std::string fields = mf.at("fieldsV1").serialize();
      EXPECT_NE(fields.find("f:b"), std::string::npos) << fields;
      EXPECT_EQ(fields.find("f:theirs"), std::string::npos) << fields;
    }
  }
  EXPECT_TRUE(found) << third["metadata"]["managedFields"].serialize();
}

TEST_F(ClientTest, ApplyForcesOverAnotherManagersField) {
  client().create(resources::kConfigMaps, ns_, configmap(ns_, "contested", {{"k", "theirs"}}));
  // force=true: switchboard takes the field instead of failing with a conflict.
  Object applied = client().apply(resources::kConfigMaps, configmap(ns_, "contested", {{"k", "ours"}}));
  EXPECT_EQ(applied["data"]["k"].as_string(), "ours");
}

Object event_route(const std::string& ns, const std::string& name) {
  return Object::parse(R"({"apiVersion":"switchboard.dev/v1alpha1","kind":"EventRoute","metadata":{"name":")" + name +
                       R"(","namespace":")" + ns +
                       R"("},"spec":{"source":{"subject":"orders.created"},"destinations":[{"subject":"out"}]}})");
}

// Writes through to a real client, but before the first replace_status lets someone
// else change the object, so that the write carries a stale resourceVersion.
class InterferingClient : public Client {
 public:
  InterferingClient(Client& real, std::function<void()> interfere) : real_(real), interfere_(std::move(interfere)) {}
  int replace_status_calls = 0;

  Object get(const Resource& r, const std::string& ns, const std::string& name) override {
    return real_.get(r, ns, name);
  }
  ObjectList list(const Resource& r, const std::string& ns, const ListOptions& o) override { return real_.list(r, ns, o); }
  std::string watch(const Resource& r, const std::string& ns, const ListOptions& o, const std::string& rv,
                    const std::function<WatchControl(const WatchEvent&)>& f, const std::atomic<bool>& s) override {
    return real_.watch(r, ns, o, rv, f, s);
  }
  Object apply(const Resource& r, const Object& o) override { return real_.apply(r, o); }
  Object apply_status(const Resource& r, const Object& o) override { return real_.apply_status(r, o); }
  Object replace_status(const Resource& r, const Object& o) override {
    if (replace_status_calls++ == 0) interfere_();
    return real_.replace_status(r, o);
  }
  Object merge_patch(const Resource& r, const std::string& ns, const std::string& n, const Object& p) override {
    return real_.merge_patch(r, ns, n, p);
  }
  Object create(const Resource& r, const std::string& ns, const Object& o) override { return real_.create(r, ns, o); }
  bool remove(const Resource& r, const std::string& ns, const std::string& n, Propagation p) override {
    return real_.remove(r, ns, n, p);
  }
  Object create_subresource(const Resource& r, const std::string& ns, const std::string& n, const std::string& s,
                            const Object& b) override {
    return real_.create_subresource(r, ns, n, s, b);
  }

 private:
  Client& real_;
  std::function<void()> interfere_;
};

TEST_F(ClientTest, StatusReplaceConflictsAndUpdateStatusWithRetryRecovers) {
  ensure_crds();
  Object created = client().create(resources::kEventRoutes, ns_, event_route(ns_, "r1"));

  // A stale resourceVersion: conflict.
  client().merge_patch(resources::kEventRoutes, ns_, "r1", Object::parse(R"({"metadata":{"labels":{"v":"2"}}})"));
  created["status"]["applied"] = Object::string("0/1");
  try {
    client().replace_status(resources::kEventRoutes, created);
    ADD_FAILURE() << "a stale status write succeeded";
  } catch (const ApiError& e) {
    EXPECT_TRUE(e.conflict()) << e.what();
    EXPECT_EQ(e.reason(), "Conflict");
  }

  InterferingClient interfering(client(), [&] {
    client().merge_patch(resources::kEventRoutes, ns_, "r1", Object::parse(R"({"metadata":{"labels":{"v":"3"}}})"));
  });
  int mutations = 0;
  auto stored = update_status_with_retry(interfering, resources::kEventRoutes, ns_, "r1", [&](Object& obj) {
    ++mutations;
    obj["status"]["applied"] = Object::string("1/1");
    obj["status"]["observedGeneration"] = Object::number(generation_of(obj));
    return true;
  });
  ASSERT_TRUE(stored);
  EXPECT_EQ(mutations, 2);  // read again after the conflict
  EXPECT_EQ(interfering.replace_status_calls, 2);
  Object now = client().get(resources::kEventRoutes, ns_, "r1");
  EXPECT_EQ(now["status"]["applied"].as_string(), "1/1");
  EXPECT_EQ(now["metadata"]["labels"]["v"].as_string(), "3");  // the other write survived

  // Nothing to do: no write; a missing object: nullopt.
  EXPECT_FALSE(update_status_with_retry(client(), resources::kEventRoutes, ns_, "r1", [](Object&) { return false; }));
  EXPECT_FALSE(update_status_with_retry(client(), resources::kEventRoutes, ns_, "absent", [](Object&) { return true; }));
}

TEST_F(ClientTest, ApplyStatusWritesOnlyTheStatus) {
  ensure_crds();
  client().apply(resources::kEventRoutes, event_route(ns_, "r2"));
  Object status = Object::parse(R"({"apiVersion":"switchboard.dev/v1alpha1","kind":"EventRoute","metadata":{"name":"r2","namespace":")" +
                                ns_ + R"("},"status":{"applied":"2/3","observedGeneration":1}})");
  Object stored = client().apply_status(resources::kEventRoutes, status);
  EXPECT_EQ(stored["status"]["applied"].as_string(), "2/3");
  EXPECT_EQ(stored["spec"]["source"]["subject"].as_string(), "orders.created");  // spec untouched
}

TEST_F(ClientTest, MergePatchAddsAndClearsFinalizers) {
  client().create(resources::kConfigMaps, ns_, configmap(ns_, "guarded"));
  Object patched = client().merge_patch(resources::kConfigMaps, ns_, "guarded",
                                        Object::parse(R"({"metadata":{"finalizers":["switchboard.dev/cleanup"]}})"));
  ASSERT_EQ(patched["metadata"]["finalizers"].size(), 1u);

  // Deleting only marks it while the finalizer is there.
  EXPECT_TRUE(client().remove(resources::kConfigMaps, ns_, "guarded"));
  Object marked = client().get(resources::kConfigMaps, ns_, "guarded");
  EXPECT_TRUE(marked["metadata"].has_field("deletionTimestamp"));

  client().merge_patch(resources::kConfigMaps, ns_, "guarded", Object::parse(R"({"metadata":{"finalizers":null}})"));
  try {
    client().get(resources::kConfigMaps, ns_, "guarded");
    ADD_FAILURE() << "still there";
  } catch (const ApiError& e) {
    EXPECT_TRUE(e.not_found());
  }
}

TEST_F(ClientTest, DeleteSendsThePropagationPolicy) {
  for (const char* n : {"bg", "fg", "orphan"}) client().create(resources::kConfigMaps, ns_, configmap(ns_, n));
  EXPECT_TRUE(client().remove(resources::kConfigMaps, ns_, "bg", Propagation::Background));
  EXPECT_THROW(client().get(resources::kConfigMaps, ns_, "bg"), ApiError);

  // Foreground and Orphan leave a finalizer for the garbage collector to act on; with no
  // kube-controller-manager here the object stays, marked, showing the policy arrived.
  EXPECT_TRUE(client().remove(resources::kConfigMaps, ns_, "fg", Propagation::Foreground));
  Object fg = client().get(resources::kConfigMaps, ns_, "fg");
  EXPECT_EQ(fg["metadata"]["finalizers"].serialize(), R"(["foregroundDeletion"])");
  EXPECT_TRUE(fg["metadata"].has_field("deletionTimestamp"));

  EXPECT_TRUE(client().remove(resources::kConfigMaps, ns_, "orphan", Propagation::Orphan));
  Object orphan = client().get(resources::kConfigMaps, ns_, "orphan");
  EXPECT_EQ(orphan["metadata"]["finalizers"].serialize(), R"(["orphan"])");

  // A missing object is not an error.
  EXPECT_FALSE(client().remove(resources::kConfigMaps, ns_, "never-was"));
}

TEST_F(ClientTest, ErrorsCarryStatusReasonAndMessage) {
  try {
    client().get(resources::kConfigMaps, ns_, "missing");
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 404);
    EXPECT_TRUE(e.not_found());
    EXPECT_EQ(e.reason(), "NotFound");
    EXPECT_EQ(e.message(), R"(configmaps "missing" not found)");
  }
  try {
    client().create(resources::kConfigMaps, ns_, configmap(ns_, "Not_A_Name"));
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 422);
    EXPECT_EQ(e.reason(), "Invalid");
    EXPECT_NE(e.message().find("metadata.name"), std::string::npos) << e.message();
    EXPECT_FALSE(e.transient());
  }
  client().create(resources::kConfigMaps, ns_, configmap(ns_, "twice"));
  try {
    client().create(resources::kConfigMaps, ns_, configmap(ns_, "twice"));
    ADD_FAILURE();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 409);
    EXPECT_EQ(e.reason(), "AlreadyExists");
  }
}

}  // namespace
}  // namespace switchboard::kube::testing
