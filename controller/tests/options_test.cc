// The command line: defaults, flags, their environment variables, and refusals.
#include <gtest/gtest.h>

#include <map>

#include "controller/options.h"

namespace switchboard::controller {
namespace {

struct Parsed {
  bool ok;
  ControllerOptions options;
  std::string error;
};

Parsed parse(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  Parsed p;
  p.ok = parse_controller_options(
      args, [&](const char* name) { return env.count(name) ? env[name] : std::string(); }, p.options, p.error);
  return p;
}

TEST(Options, Defaults) {
  Parsed p = parse({});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.options.metrics_address, "0.0.0.0");
  EXPECT_EQ(p.options.metrics_port, 8080);
  EXPECT_TRUE(p.options.leader_elect);
  EXPECT_EQ(p.options.leader_election_id, "switchboard-controller");
  EXPECT_EQ(p.options.lease_duration_ms, 15000);
  EXPECT_EQ(p.options.renew_deadline_ms, 10000);
  EXPECT_EQ(p.options.retry_period_ms, 2000);
  EXPECT_EQ(p.options.resync_ms, 300000);
  EXPECT_EQ(p.options.status_stale_after_ms, 30000);
  EXPECT_EQ(p.options.applying_grace_ms, 2000);
  EXPECT_EQ(p.options.min_table_interval_ms, 500);
  EXPECT_EQ(p.options.router_image, std::string("ghcr.io/switchboard-dev/switchboard:") + controller_version());
  EXPECT_EQ(p.options.log_level, "info");
  EXPECT_FALSE(p.options.pod_name.empty());
}

TEST(Options, FlagsAndEnvironment) {
  Parsed p = parse({"--kubeconfig", "/k", "--context=ctx", "--namespace", "shop", "--metrics-addr", "127.0.0.1:9000",
                    "--leader-elect=false", "--leader-election-namespace", "ops", "--leader-election-id", "sb",
                    "--lease-duration", "30s", "--renew-deadline", "20s", "--retry-period", "1s", "--router-image",
                    "r:1", "--resync", "1m", "--pod-name", "ctrl-0", "--status-stale-after", "10s", "--log-level",
                    "debug", "--applying-grace", "500ms", "--min-table-interval", "1s"});
  ASSERT_TRUE(p.ok) << p.error;
  const auto& o = p.options;
  EXPECT_EQ(o.kubeconfig, "/k");
  EXPECT_EQ(o.context, "ctx");
  EXPECT_EQ(o.watch_namespace, "shop");
  EXPECT_EQ(o.metrics_address, "127.0.0.1");
  EXPECT_EQ(o.metrics_port, 9000);
  EXPECT_FALSE(o.leader_elect);
  EXPECT_EQ(o.leader_election_namespace, "ops");
  EXPECT_EQ(o.leader_election_id, "sb");
  EXPECT_EQ(o.lease_duration_ms, 30000);
  EXPECT_EQ(o.renew_deadline_ms, 20000);
  EXPECT_EQ(o.retry_period_ms, 1000);
  EXPECT_EQ(o.router_image, "r:1");
  EXPECT_EQ(o.resync_ms, 60000);
  EXPECT_EQ(o.pod_name, "ctrl-0");
  EXPECT_EQ(o.status_stale_after_ms, 10000);
  EXPECT_EQ(o.applying_grace_ms, 500);
  EXPECT_EQ(o.min_table_interval_ms, 1000);
  EXPECT_EQ(parse({"--min-table-interval", "0"}).options.min_table_interval_ms, 0);
  EXPECT_EQ(parse({"--applying-grace", "0"}).options.applying_grace_ms, 0) << "0: Applying at once";
  EXPECT_EQ(parse({}, {{"SWITCHBOARD_APPLYING_GRACE", "3s"}}).options.applying_grace_ms, 3000);
  EXPECT_EQ(o.log_level, "debug");

  p = parse({"--leader-elect", "false"}, {{"SWITCHBOARD_NAMESPACE", "env-ns"}, {"POD_NAME", "pod-x"},
                                          {"KUBECONFIG", "/env/k"}, {"SWITCHBOARD_METRICS_ADDR", "[::1]:8081"}});
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_FALSE(p.options.leader_elect);
  EXPECT_EQ(p.options.watch_namespace, "env-ns");
  EXPECT_EQ(p.options.pod_name, "pod-x");
  EXPECT_EQ(p.options.kubeconfig, "/env/k");
  EXPECT_EQ(p.options.metrics_address, "::1");
  EXPECT_EQ(p.options.metrics_port, 8081);
  // The command line wins over the environment.
  p = parse({"--namespace", "flag-ns"}, {{"SWITCHBOARD_NAMESPACE", "env-ns"}});
  EXPECT_EQ(p.options.watch_namespace, "flag-ns");
  EXPECT_TRUE(parse({"--leader-elect"}).options.leader_elect);
}

TEST(Options, Refusals) {
  EXPECT_FALSE(parse({"--bogus"}).ok);
  EXPECT_FALSE(parse({"--namespace"}).ok);
  EXPECT_FALSE(parse({"--leader-elect=maybe"}).ok);
  EXPECT_FALSE(parse({"--metrics-addr", "8080"}).ok);
  EXPECT_FALSE(parse({"--resync", "soon"}).ok);
  EXPECT_FALSE(parse({"--resync", "0"}).ok) << "only --applying-grace may be zero";
  EXPECT_FALSE(parse({"--applying-grace", "-1s"}).ok);
  EXPECT_FALSE(parse({"--log-level", "loud"}).ok);
  EXPECT_FALSE(parse({"--renew-deadline", "20s"}).ok) << "must be shorter than the lease";
  EXPECT_TRUE(parse({"--help"}).options.help);
}

TEST(Options, HelpListsEveryFlag) {
  for (const char* flag : {"--kubeconfig", "--context", "--namespace", "--metrics-addr", "--leader-elect",
                           "--leader-election-namespace", "--leader-election-id", "--lease-duration", "--renew-deadline",
                           "--retry-period", "--router-image", "--resync", "--pod-name", "--status-stale-after",
                           "--applying-grace", "--min-table-interval", "--log-level"}) {
    EXPECT_NE(std::string(kControllerUsage).find(flag), std::string::npos) << flag;
    EXPECT_TRUE(parse({flag + std::string("=x")}).error.find("unknown option") == std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace switchboard::controller
