// Rendering of every object an EventRouter owns, checked field by field where a mistake
// would break the router pods, their security or their RBAC; and the route table
// ConfigMaps, split and reassembled.
#include <gtest/gtest.h>

#include "controller/names.h"
#include "controller/render.h"
#include "controller/specs.h"
#include "controller/tests/objects.h"
#include "core/json/document.h"
#include "core/route/spec_yaml.h"
#include "core/route/table.h"

namespace switchboard::controller {
namespace {

using testing::parse;
using testing::router_object;

std::vector<std::string> strings(const Json& a) {
  std::vector<std::string> out;
  for (const auto& v : a.as_array()) out.push_back(v.as_string());
  return out;
}

const Json& container_of(const Json& deployment) {
  return deployment.at("spec").at("template").at("spec").at("containers").at(0);
}

void expect_owned(const Json& o, const std::string& router = "orders") {
  SCOPED_TRACE(string_at(o, {"kind"}) + " " + string_at(o, {"metadata", "name"}));
  EXPECT_EQ(string_at(o, {"metadata", "namespace"}), "shop");
  const Json& refs = o.at("metadata").at("ownerReferences");
  ASSERT_EQ(refs.size(), 1u);
  EXPECT_EQ(string_at(refs.at(0), {"apiVersion"}), "switchboard.dev/v1alpha1");
  EXPECT_EQ(string_at(refs.at(0), {"kind"}), "EventRouter");
  EXPECT_EQ(string_at(refs.at(0), {"name"}), router);
  EXPECT_EQ(string_at(refs.at(0), {"uid"}), "uid-" + router);
  EXPECT_TRUE(bool_at(refs.at(0), {"controller"}));
  EXPECT_EQ(string_at(o, {"metadata", "labels", "app.kubernetes.io/name"}), "switchboard-router");
  EXPECT_EQ(string_at(o, {"metadata", "labels", "app.kubernetes.io/instance"}), router);
  EXPECT_EQ(string_at(o, {"metadata", "labels", "app.kubernetes.io/managed-by"}), "switchboard");
  EXPECT_EQ(string_at(o, {"metadata", "labels", "switchboard.dev/router"}), router);
}

TEST(Render, DeploymentArgsProbesAndEnv) {
  Json d = render_deployment(router_object(), RenderOptions{"ghcr.io/switchboard-dev/switchboard:0.1.0"});
  expect_owned(d);
  EXPECT_EQ(string_at(d, {"apiVersion"}), "apps/v1");
  EXPECT_EQ(string_at(d, {"metadata", "name"}), "orders");
  EXPECT_EQ(int_at(d, {"spec", "replicas"}), 2);
  const Json& c = container_of(d);
  EXPECT_EQ(string_at(c, {"name"}), "router");
  EXPECT_EQ(string_at(c, {"image"}), "ghcr.io/switchboard-dev/switchboard:0.1.0");
  EXPECT_EQ(strings(c.at("args")),
            (std::vector<std::string>{"run", "--configmap", "$(POD_NAMESPACE)/orders-routes", "--nats",
                                      "nats://nats-1:4222,nats://nats-2:4222", "--name", "orders", "--namespace",
                                      "$(POD_NAMESPACE)", "--pod", "$(POD_NAME)", "--metrics-addr", "0.0.0.0:9090",
                                      "--heartbeat", "5s", "--grace", "20s", "--log-level", "info"}));
  ASSERT_EQ(c.at("env").size(), 2u);
  EXPECT_EQ(string_at(c.at("env").at(0), {"name"}), "POD_NAME");
  EXPECT_EQ(string_at(c.at("env").at(0), {"valueFrom", "fieldRef", "fieldPath"}), "metadata.name");
  EXPECT_EQ(string_at(c.at("env").at(1), {"name"}), "POD_NAMESPACE");
  EXPECT_EQ(string_at(c.at("env").at(1), {"valueFrom", "fieldRef", "fieldPath"}), "metadata.namespace");
  EXPECT_EQ(string_at(c, {"readinessProbe", "httpGet", "path"}), "/readyz");
  EXPECT_EQ(int_at(c, {"readinessProbe", "httpGet", "port"}), 9090);
  EXPECT_EQ(string_at(c, {"livenessProbe", "httpGet", "path"}), "/healthz");
  EXPECT_EQ(int_at(c, {"livenessProbe", "httpGet", "port"}), 9090);
  EXPECT_EQ(int_at(c.at("ports").at(0), {"containerPort"}), 9090);
  EXPECT_EQ(find(c, {"volumeMounts"}), nullptr);  // no Secrets named, none mounted
  const Json& pod = d.at("spec").at("template").at("spec");
  EXPECT_EQ(string_at(pod, {"serviceAccountName"}), "orders-router");
  EXPECT_EQ(int_at(pod, {"terminationGracePeriodSeconds"}), 25);
  EXPECT_TRUE(json_equal(d.at("spec").at("selector").at("matchLabels"),
                         parse(R"({"app.kubernetes.io/name":"switchboard-router","app.kubernetes.io/instance":"orders"})")));
  // The selector must select the template, or the API server refuses the Deployment.
  for (const auto& [k, v] : d.at("spec").at("selector").at("matchLabels").as_object()) {
    EXPECT_EQ(string_at(d, {"spec", "template", "metadata", "labels", k}), v.as_string());
  }
  const Json& spread = pod.at("topologySpreadConstraints").at(0);
  EXPECT_EQ(string_at(spread, {"topologyKey"}), "kubernetes.io/hostname");
  EXPECT_EQ(string_at(spread, {"labelSelector", "matchLabels", "app.kubernetes.io/instance"}), "orders");
}

TEST(Render, DeploymentIsRestricted) {
  Json d = render_deployment(router_object(), RenderOptions{"img"});
  const Json& sc = container_of(d).at("securityContext");
  EXPECT_TRUE(bool_at(sc, {"runAsNonRoot"}));
  EXPECT_EQ(int_at(sc, {"runAsUser"}), 65532);
  EXPECT_TRUE(bool_at(sc, {"readOnlyRootFilesystem"}));
  EXPECT_FALSE(bool_at(sc, {"allowPrivilegeEscalation"}, true));
  EXPECT_EQ(strings(sc.at("capabilities").at("drop")), std::vector<std::string>{"ALL"});
  EXPECT_EQ(string_at(sc, {"seccompProfile", "type"}), "RuntimeDefault");
  const Json& psc = d.at("spec").at("template").at("spec").at("securityContext");
  EXPECT_TRUE(bool_at(psc, {"runAsNonRoot"}));
  EXPECT_EQ(string_at(psc, {"seccompProfile", "type"}), "RuntimeDefault");
}

TEST(Render, DeploymentFollowsTheSpec) {
  Json r = router_object("billing", "shop",
                         R"(,"image":"registry.local/router:7","resources":{"requests":{"cpu":"100m","memory":"64Mi"},"limits":{"memory":"256Mi"}})");
  r["spec"]["replicas"] = num(5);
  r["spec"]["metricsPort"] = num(9999);
  r["spec"]["heartbeatInterval"] = str("1s");
  r["spec"]["shutdownGracePeriod"] = str("2500ms");
  r["spec"]["logLevel"] = str("debug");
  Json d = render_deployment(r, RenderOptions{"default-image"});
  const Json& c = container_of(d);
  EXPECT_EQ(string_at(c, {"image"}), "registry.local/router:7");
  EXPECT_EQ(int_at(d, {"spec", "replicas"}), 5);
  EXPECT_EQ(string_at(c, {"resources", "requests", "cpu"}), "100m");
  EXPECT_EQ(string_at(c, {"resources", "limits", "memory"}), "256Mi");
  auto args = strings(c.at("args"));
  auto after = [&](const std::string& flag) {
    auto it = std::find(args.begin(), args.end(), flag);
    return it == args.end() || it + 1 == args.end() ? std::string() : *(it + 1);
  };
  EXPECT_EQ(after("--metrics-addr"), "0.0.0.0:9999");
  EXPECT_EQ(after("--heartbeat"), "1s");
  EXPECT_EQ(after("--grace"), "2500ms");
  EXPECT_EQ(after("--log-level"), "debug");
  EXPECT_EQ(after("--configmap"), "$(POD_NAMESPACE)/billing-routes");
  EXPECT_EQ(int_at(c, {"readinessProbe", "httpGet", "port"}), 9999);
  // The pod gets the grace period (rounded up) plus 5 s before SIGKILL.
  EXPECT_EQ(int_at(d, {"spec", "template", "spec", "terminationGracePeriodSeconds"}), 8);
}

TEST(Render, NatsCredentialsAreFilesInReadOnlySecretVolumes) {
  Json r = router_object();
  r["spec"]["nats"] = parse(R"({"urls":["tls://nats:4222"],"auth":{"secretName":"nats-orders","credsKey":"orders.creds"},
                                "tls":{"secretName":"nats-tls","caKey":"ca.crt","certKey":"tls.crt","keyKey":"tls.key"}})");
  Json d = render_deployment(r, RenderOptions{"img"});
  const Json& c = container_of(d);
  auto args = strings(c.at("args"));
  std::vector<std::string> tail(args.begin() + 19, args.end());
  EXPECT_EQ(tail, (std::vector<std::string>{
                      "--nats-creds-file", "/var/run/secrets/switchboard/nats-auth/orders.creds",
                      "--nats-tls-ca", "/var/run/secrets/switchboard/nats-tls/ca.crt",
                      "--nats-tls-cert", "/var/run/secrets/switchboard/nats-tls/tls.crt",
                      "--nats-tls-key", "/var/run/secrets/switchboard/nats-tls/tls.key"}));
  const Json& mounts = c.at("volumeMounts");
  ASSERT_EQ(mounts.size(), 2u);
  for (const auto& m : mounts.as_array()) EXPECT_TRUE(bool_at(m, {"readOnly"}));
  EXPECT_EQ(string_at(mounts.at(0), {"mountPath"}), "/var/run/secrets/switchboard/nats-auth");
  EXPECT_EQ(string_at(mounts.at(1), {"mountPath"}), "/var/run/secrets/switchboard/nats-tls");
  const Json& volumes = d.at("spec").at("template").at("spec").at("volumes");
  EXPECT_EQ(string_at(volumes.at(0), {"secret", "secretName"}), "nats-orders");
  EXPECT_EQ(string_at(volumes.at(1), {"secret", "secretName"}), "nats-tls");
}

TEST(Render, EveryAuthKindHasItsFlag) {
  RouterSpec s = router_spec(router_object());
  s.auth_secret = "auth";
  s.user_key = "user";
  s.password_key = "password";
  auto args = router_args(s);
  std::vector<std::string> tail(args.begin() + 19, args.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"--nats-user-file", "/var/run/secrets/switchboard/nats-auth/user",
                                            "--nats-password-file", "/var/run/secrets/switchboard/nats-auth/password"}));
  s.user_key = s.password_key = "";
  s.token_key = "token";
  EXPECT_EQ(router_args(s)[19], "--nats-token-file");
  s.token_key = "";
  s.nkey_seed_key = "seed";
  EXPECT_EQ(router_args(s)[19], "--nats-nkey-seed-file");
  EXPECT_EQ(router_args(s)[20], "/var/run/secrets/switchboard/nats-auth/seed");
}

TEST(Render, RoleAllowsReadingTheTableConfigMapsAndNothingElse) {
  Json role = render_role(router_object(), {"orders-routes"});
  expect_owned(role);
  EXPECT_EQ(string_at(role, {"metadata", "name"}), "orders-router");
  const Json& rules = role.at("rules");
  ASSERT_EQ(rules.size(), 1u);
  const Json& rule = rules.at(0);
  EXPECT_EQ(strings(rule.at("apiGroups")), std::vector<std::string>{""});
  EXPECT_EQ(strings(rule.at("resources")), std::vector<std::string>{"configmaps"});
  EXPECT_EQ(strings(rule.at("resourceNames")), std::vector<std::string>{"orders-routes"});
  EXPECT_EQ(strings(rule.at("verbs")), (std::vector<std::string>{"get", "list", "watch"}));
  EXPECT_EQ(rule.size(), 4u);  // nothing else: no nonResourceURLs, no wildcard

  Json split = render_role(router_object(), {"orders-routes-1", "orders-routes-2", "orders-routes"});
  EXPECT_EQ(strings(split.at("rules").at(0).at("resourceNames")),
            (std::vector<std::string>{"orders-routes-1", "orders-routes-2", "orders-routes"}));
}

TEST(Render, ServiceAccountRoleBindingServicePdbServiceMonitor) {
  Json r = router_object();
  Json sa = render_service_account(r);
  expect_owned(sa);
  EXPECT_EQ(string_at(sa, {"metadata", "name"}), "orders-router");

  Json rb = render_role_binding(r);
  expect_owned(rb);
  EXPECT_EQ(string_at(rb, {"roleRef", "kind"}), "Role");
  EXPECT_EQ(string_at(rb, {"roleRef", "name"}), "orders-router");
  ASSERT_EQ(rb.at("subjects").size(), 1u);
  EXPECT_EQ(string_at(rb.at("subjects").at(0), {"kind"}), "ServiceAccount");
  EXPECT_EQ(string_at(rb.at("subjects").at(0), {"name"}), "orders-router");
  EXPECT_EQ(string_at(rb.at("subjects").at(0), {"namespace"}), "shop");

  Json svc = render_metrics_service(r);
  expect_owned(svc);
  EXPECT_EQ(string_at(svc, {"metadata", "name"}), "orders-metrics");
  EXPECT_EQ(int_at(svc.at("spec").at("ports").at(0), {"port"}), 9090);
  EXPECT_EQ(string_at(svc.at("spec").at("ports").at(0), {"name"}), "metrics");
  EXPECT_TRUE(json_equal(svc.at("spec").at("selector"), selector_labels("orders")));

  Json pdb = render_pdb(r);
  expect_owned(pdb);
  EXPECT_EQ(string_at(pdb, {"apiVersion"}), "policy/v1");
  EXPECT_EQ(int_at(pdb, {"spec", "maxUnavailable"}), 1);
  EXPECT_TRUE(json_equal(pdb.at("spec").at("selector").at("matchLabels"), selector_labels("orders")));

  Json sm = render_service_monitor(r);
  expect_owned(sm);
  EXPECT_EQ(string_at(sm, {"apiVersion"}), "monitoring.coreos.com/v1");
  EXPECT_EQ(string_at(sm.at("spec").at("endpoints").at(0), {"port"}), "metrics");
  // Series carry the EventRouter's name as `router`, which the dashboard and alerts use.
  const Json& relabel = sm.at("spec").at("endpoints").at(0).at("relabelings").at(0);
  EXPECT_EQ(string_at(relabel, {"targetLabel"}), "router");
  EXPECT_EQ(string_at(relabel, {"replacement"}), "orders");
  // The ServiceMonitor selects the metrics Service by its labels.
  for (const auto& [k, v] : sm.at("spec").at("selector").at("matchLabels").as_object()) {
    EXPECT_EQ(string_at(svc, {"metadata", "labels", k}), v.as_string()) << k;
  }
  EXPECT_EQ(selector_text("orders"), "app.kubernetes.io/name=switchboard-router,app.kubernetes.io/instance=orders");
}

TEST(Render, SmallTableIsOneConfigMap) {
  auto cms = render_table_configmaps(router_object(), 7, "sha256:abc", R"({"routes":[],"transforms":[]})");
  ASSERT_EQ(cms.size(), 1u);
  expect_owned(cms[0]);
  EXPECT_EQ(string_at(cms[0], {"metadata", "name"}), "orders-routes");
  EXPECT_EQ(string_at(cms[0], {"metadata", "annotations", "switchboard.dev/generation"}), "7");
  EXPECT_EQ(string_at(cms[0], {"metadata", "annotations", "switchboard.dev/hash"}), "sha256:abc");
  EXPECT_EQ(string_at(cms[0], {"data", "routes.json"}), R"({"routes":[],"transforms":[]})");
  EXPECT_EQ(cms[0].at("data").size(), 1u);
}

// A table of `n` routes whose filters make it large.
void many_routes_table(int n, route::RouteSet& set) {
  std::string padding(2000, 'x');
  for (int i = 0; i < n; ++i) {
    std::string yaml = "routes:\n  - name: r" + std::to_string(i) +
                       "\n    router: orders\n    source: {subject: in." + std::to_string(i) +
                       "}\n    filter: 'event.note != \"" + padding + "é" + std::to_string(i) +
                       "\"'\n    destinations: [{subject: out}]\n";
    std::vector<route::SpecError> errors;
    EXPECT_TRUE(route::load_yaml(yaml, "t.yaml", set, errors));
  }
}

TEST(Render, LargeTableIsSplitAndReassemblesToTheCanonicalJson) {
  route::RouteSet set;
  many_routes_table(1000, set);
  auto compiled = route::RouteTable::compile(set, 3);
  ASSERT_TRUE(std::holds_alternative<std::shared_ptr<const route::RouteTable>>(compiled));
  auto table = std::get<std::shared_ptr<const route::RouteTable>>(compiled);
  const std::string& canonical = table->canonical_json();
  ASSERT_GT(canonical.size(), 2 * kMaxTableBytes);

  auto cms = render_table_configmaps(router_object(), 3, table->hash(), canonical);
  ASSERT_GE(cms.size(), 4u);  // at least 3 parts, then the index
  std::map<std::string, Json> parts;
  for (size_t i = 0; i + 1 < cms.size(); ++i) {
    expect_owned(cms[i]);
    EXPECT_EQ(string_at(cms[i], {"metadata", "name"}), "orders-routes-" + std::to_string(i + 1));
    const std::string piece = string_at(cms[i], {"data", "part"});
    EXPECT_LE(piece.size(), kMaxTableBytes);
    EXPECT_TRUE(json::valid_utf8(piece)) << "a part must be valid UTF-8 on its own";
    parts[string_at(cms[i], {"metadata", "name"})] = cms[i];
  }
  const Json& main = cms.back();
  EXPECT_EQ(string_at(main, {"metadata", "name"}), "orders-routes");
  EXPECT_EQ(find(main, {"data", "routes.json"}), nullptr);
  Json index = Json::parse(string_at(main, {"data", "index.json"}));
  EXPECT_EQ(int_at(index, {"generation"}), 3);
  EXPECT_EQ(string_at(index, {"hash"}), table->hash());
  ASSERT_EQ(index.at("parts").size(), cms.size() - 1);
  EXPECT_EQ(string_at(index.at("parts").at(0), {"name"}), "orders-routes-1");
  EXPECT_EQ(string_at(index.at("parts").at(0), {"sha256"}), route::sha256_hex(string_at(cms[0], {"data", "part"})));
  // The documented key order.
  EXPECT_EQ(string_at(main, {"data", "index.json"}).rfind("{\"generation\":3,\"hash\":\"sha256:", 0), 0u);

  std::string error;
  auto text = assemble_table(main, parts, error);
  ASSERT_TRUE(text) << error;
  EXPECT_EQ(*text, canonical);
  // What a router does with it: load it as a routes file, and get the same hash.
  route::RouteSet back;
  std::vector<route::SpecError> errors;
  ASSERT_TRUE(route::load_yaml(*text, "routes.json", back, errors));
  auto again = route::RouteTable::compile(back, 3);
  ASSERT_TRUE(std::holds_alternative<std::shared_ptr<const route::RouteTable>>(again));
  EXPECT_EQ(std::get<std::shared_ptr<const route::RouteTable>>(again)->hash(), table->hash());

  // A part that does not match its digest is refused.
  parts["orders-routes-2"]["data"]["part"] = str("tampered");
  EXPECT_FALSE(assemble_table(main, parts, error));
  EXPECT_NE(error.find("orders-routes-2"), std::string::npos);
  parts.erase("orders-routes-2");
  EXPECT_FALSE(assemble_table(main, parts, error));
}

TEST(Render, SplitNeverCutsACharacter) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "aé€😀";  // 1, 2, 3 and 4 byte characters
  for (size_t max = 4; max < 20; ++max) {
    auto parts = split_text(text, max);
    std::string joined;
    for (const auto& p : parts) {
      EXPECT_LE(p.size(), max);
      EXPECT_TRUE(json::valid_utf8(p)) << max;
      joined += p;
    }
    EXPECT_EQ(joined, text);
  }
}

TEST(Render, TableGenerationMovesOnlyWithTheHash) {
  EXPECT_EQ(next_table_generation(0, "", 0, "", "sha256:a"), 1u);          // first table
  EXPECT_EQ(next_table_generation(1, "sha256:a", 1, "sha256:a", "sha256:a"), 1u);  // unchanged
  EXPECT_EQ(next_table_generation(1, "sha256:a", 1, "sha256:a", "sha256:b"), 2u);  // changed
  // The ConfigMap was written but the status write failed: the ConfigMap's generation.
  EXPECT_EQ(next_table_generation(1, "sha256:a", 2, "sha256:b", "sha256:b"), 2u);
  // ... and a change after that goes past both.
  EXPECT_EQ(next_table_generation(1, "sha256:a", 2, "sha256:b", "sha256:c"), 3u);
  // Back to the status's hash while the ConfigMap is ahead: a new generation, never a step back.
  EXPECT_EQ(next_table_generation(1, "sha256:a", 2, "sha256:b", "sha256:a"), 3u);
  // The ConfigMap was deleted: the status remembers.
  EXPECT_EQ(next_table_generation(4, "sha256:a", 0, "", "sha256:a"), 4u);
}

TEST(Names, OwnedObjectsLeadBackToTheirRouter) {
  EXPECT_EQ(router_of_owned("Deployment", "orders"), "orders");
  EXPECT_EQ(router_of_owned("ConfigMap", "orders-routes"), "orders");
  EXPECT_EQ(router_of_owned("ConfigMap", "orders-routes-12"), "orders");
  EXPECT_EQ(router_of_owned("ConfigMap", "my-routes-routes"), "my-routes");
  EXPECT_EQ(router_of_owned("ConfigMap", "orders-routes-x"), std::nullopt);
  EXPECT_EQ(router_of_owned("ConfigMap", "something"), std::nullopt);
  EXPECT_EQ(router_of_owned("ServiceAccount", "orders-router"), "orders");
  EXPECT_EQ(router_of_owned("Role", "orders-router"), "orders");
  EXPECT_EQ(router_of_owned("RoleBinding", "orders-router"), "orders");
  EXPECT_EQ(router_of_owned("Service", "orders-metrics"), "orders");
  EXPECT_EQ(router_of_owned("PodDisruptionBudget", "orders"), "orders");
  EXPECT_EQ(router_of_owned("Service", "orders"), std::nullopt);
}

}  // namespace
}  // namespace switchboard::controller
