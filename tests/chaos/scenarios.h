// The fault scenarios. Each fills a Report and returns whether every promise held.
#pragma once

#include "tests/chaos/harness.h"
#include "tests/chaos/report.h"

namespace switchboard::chaos {

// Steady load on a JetStream and a core route while routers are killed (-9, SIGTERM, the
// whole fleet) and nats-server is killed (-9, SIGTERM) and started again on its store.
bool run_soak(const Options& options, Report& report);
// The same load while the routers' connections to nats-server are cut: their packets
// dropped (blackhole) or rejected with a reset, both ways, for a few seconds at a time, by
// nftables in the private network namespace the process moved into (Options).
bool run_network_cut(const Options& options, Report& report);
// A destination whose publish acknowledgements are slow: the router's memory stays
// bounded and the backlog waits in the source stream.
bool run_slow_destination(const Options& options, Report& report);
// 100 route table changes per second under load, on two replicas.
bool run_reload_storm(const Options& options, Report& report);
// A real control plane and two controllers under data-plane load: the controller leader
// killed, kube-apiserver restarted, etcd compacted under watches; each followed by an edit
// that both router pods must run. Built only where the controller and the e2e pod runner are.
bool run_control_plane(const Options& options, Report& report);

// Default load duration of each scenario, in seconds.
double default_duration(const std::string& scenario, bool quick);

}  // namespace switchboard::chaos
