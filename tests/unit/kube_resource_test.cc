// Resource paths, the object helpers and ApiError's predicates.
#include <gtest/gtest.h>

#include "kube/client.h"

namespace switchboard::kube {
namespace {

TEST(KubeResource, CoreNamespacedPaths) {
  const Resource& cm = resources::kConfigMaps;
  EXPECT_EQ(cm.path("ns1"), "/api/v1/namespaces/ns1/configmaps");
  EXPECT_EQ(cm.path("ns1", "a"), "/api/v1/namespaces/ns1/configmaps/a");
  EXPECT_EQ(cm.path("ns1", "a", "status"), "/api/v1/namespaces/ns1/configmaps/a/status");
  // All namespaces, for list and watch.
  EXPECT_EQ(cm.path(""), "/api/v1/configmaps");
  EXPECT_EQ(cm.api_version(), "v1");
}

TEST(KubeResource, GroupPaths) {
  EXPECT_EQ(resources::kDeployments.path("prod", "web"), "/apis/apps/v1/namespaces/prod/deployments/web");
  EXPECT_EQ(resources::kEventRoutes.path("t", "r", "status"),
            "/apis/switchboard.dev/v1alpha1/namespaces/t/eventroutes/r/status");
  EXPECT_EQ(resources::kEventRoutes.api_version(), "switchboard.dev/v1alpha1");
  EXPECT_EQ(resources::kLeases.api_version(), "coordination.k8s.io/v1");
  EXPECT_EQ(resources::kServiceAccounts.path("ns", "robot", "token"), "/api/v1/namespaces/ns/serviceaccounts/robot/token");
}

TEST(KubeResource, ClusterScopedIgnoresNamespace) {
  EXPECT_EQ(resources::kNamespaces.path("ignored", "team-a"), "/api/v1/namespaces/team-a");
  EXPECT_EQ(resources::kNamespaces.path(""), "/api/v1/namespaces");
  EXPECT_EQ(resources::kCustomResourceDefinitions.path("x", "eventroutes.switchboard.dev"),
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/eventroutes.switchboard.dev");
}

TEST(KubeResource, ObjectHelpers) {
  Object obj = Object::parse(R"({"metadata":{"name":"a","namespace":"n","generation":7,"resourceVersion":"42"}})");
  EXPECT_EQ(name_of(obj), "a");
  EXPECT_EQ(namespace_of(obj), "n");
  EXPECT_EQ(key_of(obj), "n/a");
  EXPECT_EQ(generation_of(obj), 7);
  EXPECT_EQ(resource_version_of(obj), "42");

  Object cluster = Object::parse(R"({"metadata":{"name":"team-a"}})");
  EXPECT_EQ(key_of(cluster), "team-a");
  EXPECT_EQ(generation_of(cluster), 0);

  // Missing or mistyped fields read as empty, never throw.
  for (const char* text : {"{}", "null", "[]", R"({"metadata":5})", R"({"metadata":{"name":5}})"}) {
    Object odd = Object::parse(text);
    EXPECT_EQ(name_of(odd), "") << text;
    EXPECT_EQ(key_of(odd), "") << text;
    EXPECT_EQ(resource_version_of(odd), "") << text;
  }
}

TEST(KubeApiError, Predicates) {
  EXPECT_TRUE(ApiError(404, "NotFound", "x").not_found());
  EXPECT_TRUE(ApiError(409, "Conflict", "x").conflict());
  EXPECT_TRUE(ApiError(410, "Expired", "x").gone());
  EXPECT_TRUE(ApiError(0, "", "connection refused").transient());
  EXPECT_TRUE(ApiError(429, "TooManyRequests", "x").transient());
  EXPECT_TRUE(ApiError(503, "ServiceUnavailable", "x").transient());
  EXPECT_FALSE(ApiError(422, "Invalid", "x").transient());
  ApiError e(422, "Invalid", "ConfigMap \"A\" is invalid");
  EXPECT_EQ(e.status(), 422);
  EXPECT_EQ(e.reason(), "Invalid");
  EXPECT_EQ(e.message(), "ConfigMap \"A\" is invalid");
  EXPECT_NE(std::string(e.what()).find("422"), std::string::npos);
  EXPECT_NE(std::string(e.what()).find("is invalid"), std::string::npos);
}

}  // namespace
}  // namespace switchboard::kube
