// `switchboard-router run --configmap NAMESPACE/NAME` against a real kube-apiserver and a
// real nats-server: the router process watches its ConfigMap, applies what the controller
// would write (routes.json, or an index and parts), refuses what does not compile or does
// not match its hash, and keeps running its table when the ConfigMap goes away. The
// ConfigMaps are written with kubectl, as an operator (or the controller) would.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "core/route/spec_yaml.h"
#include "core/route/table.h"
#include "router/configmap_source.h"
#include "router/nats_client.h"
#include "tests/e2e/cluster.h"
#include "tests/e2e/e2e_support.h"
#include "tests/support/inbox.h"
#include "tests/support/process.h"

namespace switchboard::e2e {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::Inbox;

std::string router_binary() { return std::string(SWITCHBOARD_BIN_DIR) + "/switchboard-router"; }

const char* kRoutesV1 = R"(routes:
  - name: large
    source: {subject: orders.*}
    filter: 'event.amount >= 100.0'
    destinations:
      - subject: 'out.v1.{{ event.region }}'
)";
const char* kRoutesV2 = R"(routes:
  - name: large
    source: {subject: orders.*}
    filter: 'event.amount >= 1.0'
    destinations:
      - subject: 'out.v2.{{ event.region }}'
)";
const char* kRoutesInvalid = R"(routes:
  - name: large
    source: {subject: orders.*}
    filter: 'evnt.amount >= 1.0'
    destinations:
      - subject: 'out.v3.{{ event.region }}'
)";

// The canonical JSON of a routes file and its hash, as the controller computes them
// (also for a set that loads but does not compile).
std::pair<std::string, std::string> canonical(const std::string& yaml) {
  route::RouteSet set;
  std::vector<route::SpecError> errors;
  EXPECT_TRUE(route::load_yaml(yaml, "test.yaml", set, errors));
  std::string text = route::canonical_json(set);
  return {text, "sha256:" + route::sha256_hex(text)};
}

kube::Object configmap(const std::string& ns, const std::string& name, std::map<std::string, std::string> annotations,
                       std::map<std::string, std::string> data) {
  kube::Object cm = kube::Object::object();
  cm["apiVersion"] = kube::Object::string("v1");
  cm["kind"] = kube::Object::string("ConfigMap");
  cm["metadata"]["name"] = kube::Object::string(name);
  cm["metadata"]["namespace"] = kube::Object::string(ns);
  for (const auto& [k, v] : annotations) cm["metadata"]["annotations"][k] = kube::Object::string(v);
  cm["data"] = kube::Object::object();
  for (const auto& [k, v] : data) cm["data"][k] = kube::Object::string(v);
  return cm;
}

// Server-side apply: no last-applied annotation, so a large part fits.
void apply(const kube::Object& obj) {
  CommandResult r = kubectl({"apply", "--server-side", "--force-conflicts", "--field-manager", "e2e-test", "-f", "-"},
                            obj.serialize());
  ASSERT_EQ(r.status, 0) << r.text();
}

// ---------------------------------------------------------------------------------------
// The router process against the API server.

class ConfigMapSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(nats_.ok()) << "nats-server did not start";
    ns_ = new_namespace("cm-source");
    dir_ = make_temp_dir("switchboard-cm-test");
    log_ = dir_ + "/router.log";
    metrics_port_ = testing::free_port();
    router::NatsConfig cfg;
    cfg.urls = {nats_.url()};
    cfg.name = "configmap-source-test";
    std::string error;
    ASSERT_TRUE(client_.connect(cfg, error)) << error;
  }
  void TearDown() override {
    router_.stop();
    if (HasFailure()) std::cerr << "--- router log ---\n" << read_file(log_) << "--- end ---\n";
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void start_router(const std::vector<std::string>& env = {}, bool use_kubeconfig = true) {
    std::vector<std::string> argv = {router_binary(), "run", "--configmap", ns_ + "/orders-routes", "--nats",
                                     nats_.url(), "--name", "orders", "--namespace", ns_, "--pod", "orders-0",
                                     "--metrics-addr", "127.0.0.1:" + std::to_string(metrics_port_),
                                     "--heartbeat", "200ms", "--grace", "3s", "--log-level", "debug"};
    if (use_kubeconfig) argv.insert(argv.end(), {"--kubeconfig", cluster().kubeconfig});
    router_ = testing::Process(argv, env, log_);
  }

  // Writes <name> with routes.json for `yaml` at `generation`; hash_override replaces the
  // true hash in the annotation. Returns when kubectl has returned.
  void write_routes(uint64_t generation, const std::string& yaml, const std::string& hash_override = "") {
    auto [text, hash] = canonical(yaml);
    apply(configmap(ns_, "orders-routes",
                    {{router::kGenerationAnnotation, std::to_string(generation)},
                     {router::kHashAnnotation, hash_override.empty() ? hash : hash_override}},
                    {{"routes.json", text}}));
  }

  bool wait_heartbeat(Inbox& beats, const std::function<bool(const Heartbeat&)>& match, Heartbeat* out = nullptr,
                      std::chrono::milliseconds timeout = 15s) {
    auto deadline = Clock::now() + timeout;
    Inbox::Received r;
    while (Clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (!beats.next(r, std::max(left, 1ms))) return false;
      Heartbeat h = parse_heartbeat(r.data);
      if (match(h)) {
        if (out) *out = h;
        return true;
      }
    }
    return false;
  }
  std::optional<double> metric_now(const std::string& series) const {
    HttpReply r = http_get(metrics_port_, "/metrics");
    return r.status == 200 ? metric(r.body, series) : std::nullopt;
  }
  void publish(const std::string& subject, const std::string& data) {
    std::string error;
    ASSERT_TRUE(client_.publish(subject, {}, data, error)) << error;
    ASSERT_TRUE(client_.flush(5000));
  }
  std::string heartbeat_subject() const { return "switchboard.status." + ns_ + ".orders"; }

  testing::NatsServer nats_;
  router::NatsClient client_;
  std::string ns_, dir_, log_;
  int metrics_port_ = 0;
  testing::Process router_;
};

TEST_F(ConfigMapSourceTest, AppliesTheConfigMapAndEveryUpdate) {
  Inbox beats(client_, heartbeat_subject());
  Inbox out(client_, "out.>");
  write_routes(1, kRoutesV1);
  start_router();
  ASSERT_TRUE(eventually([&] { return !router_.running() || http_get(metrics_port_, "/readyz").status == 200; }))
      << http_get(metrics_port_, "/readyz").body;
  ASSERT_TRUE(router_.running());
  Heartbeat h;
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.state == "applied"; }, &h));
  EXPECT_EQ(h.generation, 1.0);
  EXPECT_EQ(h.hash, canonical(kRoutesV1).second);
  EXPECT_EQ(h.pod, "orders-0");
  EXPECT_EQ(h.source_error, "");
  publish("orders.new", R"({"amount":250,"region":"eu"})");
  Inbox::Received r;
  ASSERT_TRUE(out.next(r));
  EXPECT_EQ(r.subject, "out.v1.eu");

  // An update reaches the router through the watch; measured from kubectl's return.
  auto t0 = Clock::now();
  write_routes(2, kRoutesV2);
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.generation == 2; }, &h));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  std::cout << "[ measured ] configmap update to heartbeat: " << took.count() << " ms\n";
  EXPECT_LT(took, 2s);
  EXPECT_EQ(h.state, "applied");
  EXPECT_TRUE(eventually([&] { return metric_now("switchboard_router_route_table_generation") == 2.0; }));
  publish("orders.new", R"({"amount":5,"region":"eu"})");
  ASSERT_TRUE(out.next(r));
  EXPECT_EQ(r.subject, "out.v2.eu");

  // The same version again (a relist, an unrelated label) is not a new table.
  CommandResult label = kubectl({"label", "configmap", "-n", ns_, "orders-routes", "touched=yes"});
  ASSERT_EQ(label.status, 0) << label.text();
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(metric_now("switchboard_router_reloads_total{result=\"applied\"}"), 2.0)
      << "a label change is a new resourceVersion with the same table: not a reload";
  EXPECT_EQ(metric_now("switchboard_router_route_table_generation"), 2.0);
  router_.signal(SIGTERM);
  EXPECT_EQ(router_.wait(10000), 0);
}

TEST_F(ConfigMapSourceTest, RefusesABadTableOrAHashMismatchAndKeepsTheOldOne) {
  Inbox beats(client_, heartbeat_subject());
  Inbox out(client_, "out.>");
  write_routes(2, kRoutesV2);
  start_router();
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.generation == 2 && b.state == "applied"; }));

  write_routes(3, kRoutesInvalid);
  Heartbeat h;
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.state == "rejected"; }, &h));
  EXPECT_EQ(h.generation, 2.0) << "what still runs";
  EXPECT_NE(h.error.find("generation 3"), std::string::npos) << h.error;
  EXPECT_NE(h.error.find("undeclared reference to 'evnt'"), std::string::npos) << h.error;
  EXPECT_NE(h.error.find("configmap " + ns_ + "/orders-routes"), std::string::npos) << h.error;
  EXPECT_EQ(http_get(metrics_port_, "/readyz").status, 200);
  publish("orders.new", R"({"amount":5,"region":"still"})");
  Inbox::Received r;
  ASSERT_TRUE(out.next(r));
  EXPECT_EQ(r.subject, "out.v2.still");

  // A table that compiles but is not the one the annotation promises.
  write_routes(4, kRoutesV1, canonical(kRoutesV2).second);
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) {
    return b.state == "rejected" && b.error.find("generation 4") != std::string::npos;
  }, &h));
  EXPECT_NE(h.error.find("hash mismatch"), std::string::npos) << h.error;
  EXPECT_EQ(h.generation, 2.0);
  EXPECT_TRUE(eventually([&] { return metric_now("switchboard_router_reloads_total{result=\"rejected\"}") == 2.0; }));
  EXPECT_EQ(metric_now("switchboard_router_route_table_generation"), 2.0);
  publish("orders.new", R"({"amount":5,"region":"again"})");
  ASSERT_TRUE(out.next(r));
  EXPECT_EQ(r.subject, "out.v2.again");

  // A good table after refusals applies.
  write_routes(5, kRoutesV1);
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.generation == 5 && b.state == "applied"; }, &h));
  EXPECT_EQ(h.error, "");
}

TEST_F(ConfigMapSourceTest, AssemblesSplitPartsAndWaitsForALatePart) {
  Inbox beats(client_, heartbeat_subject());
  Inbox out(client_, "out.>");
  auto [text, hash] = canonical(kRoutesV2);
  std::vector<std::string> pieces = {text.substr(0, text.size() / 3), text.substr(text.size() / 3, text.size() / 3),
                                     text.substr(2 * (text.size() / 3))};
  std::string index = "{\"generation\":6,\"hash\":\"" + hash + "\",\"parts\":[";
  for (size_t i = 0; i < pieces.size(); ++i) {
    index += (i ? "," : "") + std::string("{\"name\":\"orders-routes-") + std::to_string(i + 1) +
             "\",\"sha256\":\"" + route::sha256_hex(pieces[i]) + "\"}";
  }
  index += "]}";
  // Parts 1 and 2 first, the index, and part 3 only a second later: the router must wait
  // for it rather than refuse the table.
  for (size_t i = 0; i < 2; ++i) {
    apply(configmap(ns_, "orders-routes-" + std::to_string(i + 1), {}, {{"part", pieces[i]}}));
  }
  apply(configmap(ns_, "orders-routes", {{router::kGenerationAnnotation, "6"}, {router::kHashAnnotation, hash}},
                  {{"index.json", index}}));
  start_router();
  std::this_thread::sleep_for(1s);
  EXPECT_NE(http_get(metrics_port_, "/readyz").status, 200) << "applied without part 3";
  apply(configmap(ns_, "orders-routes-3", {}, {{"part", pieces[2]}}));
  Heartbeat h;
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.state != "pending"; }, &h));
  EXPECT_EQ(h.state, "applied") << h.error;
  EXPECT_EQ(h.generation, 6.0);
  EXPECT_EQ(h.hash, hash);
  publish("orders.new", R"({"amount":5,"region":"parts"})");
  Inbox::Received r;
  ASSERT_TRUE(out.next(r));
  EXPECT_EQ(r.subject, "out.v2.parts");
  EXPECT_NE(read_file(log_).find("route table part not ready"), std::string::npos);

  // An index whose part does not match its digest, and never will, is refused in the end
  // (after the router's wait for parts), and generation 6 keeps running.
  std::string bad_index = index;
  bad_index.replace(bad_index.find("\"generation\":6"), 14, "\"generation\":7");
  bad_index.replace(bad_index.find(route::sha256_hex(pieces[0])), 64, std::string(64, '0'));
  apply(configmap(ns_, "orders-routes", {{router::kGenerationAnnotation, "7"}, {router::kHashAnnotation, hash}},
                  {{"index.json", bad_index}}));
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.state == "rejected"; }, &h, 30s));
  EXPECT_NE(h.error.find("orders-routes-1 has sha256"), std::string::npos) << h.error;
  EXPECT_EQ(h.generation, 6.0);
}

TEST_F(ConfigMapSourceTest, ADeletedConfigMapLeavesTheTableRunning) {
  Inbox beats(client_, heartbeat_subject());
  Inbox out(client_, "out.>");
  // Started before its ConfigMap exists: serves probes, not ready, says why.
  start_router();
  ASSERT_TRUE(eventually([&] { return http_get(metrics_port_, "/readyz").status == 503; }));
  EXPECT_EQ(http_get(metrics_port_, "/readyz").body, "no route table applied yet");
  Heartbeat h;
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return !b.source_error.empty(); }, &h));
  EXPECT_NE(h.source_error.find("not found"), std::string::npos) << h.source_error;

  write_routes(1, kRoutesV1);
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.state == "applied"; }, &h));
  EXPECT_EQ(h.source_error, "");
  EXPECT_TRUE(eventually([&] { return http_get(metrics_port_, "/readyz").status == 200; }));

  CommandResult del = kubectl({"delete", "configmap", "-n", ns_, "orders-routes"});
  ASSERT_EQ(del.status, 0) << del.text();
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return !b.source_error.empty(); }, &h));
  EXPECT_NE(h.source_error.find("was deleted"), std::string::npos) << h.source_error;
  EXPECT_EQ(h.state, "applied");
  EXPECT_EQ(h.generation, 1.0);
  EXPECT_EQ(http_get(metrics_port_, "/readyz").status, 200);
  publish("orders.new", R"({"amount":500,"region":"orphan"})");
  Inbox::Received r;
  ASSERT_TRUE(out.next(r));
  EXPECT_EQ(r.subject, "out.v1.orphan");
  EXPECT_NE(read_file(log_).find("route table configmap deleted"), std::string::npos);

  write_routes(2, kRoutesV2);
  ASSERT_TRUE(wait_heartbeat(beats, [](const Heartbeat& b) { return b.generation == 2; }, &h));
  EXPECT_EQ(h.source_error, "");
}

TEST_F(ConfigMapSourceTest, NoKubernetesConfigurationExitsWithOne) {
  // Neither a kubeconfig nor a service account: the router says so and exits 1.
  start_router({"KUBECONFIG=" + dir_ + "/none", "SWITCHBOARD_SA_DIR=" + dir_ + "/no-sa", "HOME=" + dir_}, false);
  EXPECT_EQ(router_.wait(20000), 1);
  EXPECT_NE(read_file(log_).find("no Kubernetes configuration for --configmap"), std::string::npos)
      << read_file(log_);
}

// Flag errors exit 2 before anything connects.
TEST(ConfigMapFlags, ExactlyOneSourceAndAWellFormedReference) {
  CommandResult r = run_command({router_binary(), "run", "--routes", "r.yaml", "--configmap", "shop/orders-routes"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("give one of --routes and --configmap"), std::string::npos) << r.err;
  r = run_command({router_binary(), "run", "--configmap", "orders-routes"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--configmap: expected NAMESPACE/NAME"), std::string::npos) << r.err;
  r = run_command({"env", "-u", "SWITCHBOARD_ROUTES", router_binary(), "run"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("unless --configmap NAMESPACE/NAME is given"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace switchboard::e2e
