#!/usr/bin/env bash
# `make chaos`: the fault suite (tests/chaos/, docs/guarantees.md "Fault tests"). Builds the
# router and switchboard-chaos in BUILD and runs every scenario in full, on loopback only:
#
#   soak              10 min of load on a JetStream and a core route; routers killed (-9,
#                     SIGTERM, the whole fleet) and nats-server killed (-9, SIGTERM) and
#                     restarted on its store, at seeded random moments
#   network-cut       3 min of the same load; the routers' packets to and from nats-server
#                     dropped (blackhole) or rejected with a reset by nftables, in a private
#                     network namespace (needs root and nft: scripts/install-deps.sh)
#   slow-destination  2 min of a destination whose acks are slow, then slower than the
#                     publish timeout: bounded router memory, backlog left in the stream
#   reload-storm      1 min of 100 table changes per second on two replicas under load
#   control-plane     10 min of the whole system: a real etcd and kube-apiserver, two
#                     controllers, the router Deployment run by the e2e pod runner, load on a
#                     JetStream EventRoute; the controller leader killed or frozen past its
#                     lease, kube-apiserver restarted (etcd compacted while it is down), etcd
#                     compacted, router pods killed (-9, SIGTERM) and nats-server killed and
#                     restarted; after each fault an edit both pods must run
#
# About 30 minutes in all; the control plane's tools come from scripts/test-tools.sh
# (`make chaos` builds them first). Figures of the run: BUILD/chaos/last-run.json, and a table on
# stdout. Exit 0 when every promise held.
#
# Knobs (environment):
#   SWITCHBOARD_CHAOS_SEED=N          replay the faults of a run (the seed is printed)
#   SWITCHBOARD_CHAOS_DURATION=S      seconds of soak, or of the one scenario asked for
#   SWITCHBOARD_CHAOS_SCENARIOS=a,b   a subset, e.g. soak,reload-storm (default all)
#   SWITCHBOARD_CHAOS_RATE=N          JetStream events per second (default per scenario)
#   SWITCHBOARD_CHAOS_QUICK=1         the short versions that `make test` runs
#   SWITCHBOARD_CHAOS_KEEP=1          keep every work folder (logs, JetStream stores)
#
#   bash scripts/chaos.sh [BUILD]      (or: make chaos)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
JOBS="${JOBS:-$(nproc)}"

if [[ ! -f "$BUILD/build.ninja" && ! -f "$BUILD/Makefile" ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja >/dev/null
fi
# Only what the suite runs (switchboard-chaos brings the controller where it is built).
cmake --build "$BUILD" -j "$JOBS" --target switchboard-router switchboard-chaos

args=(--report "$BUILD/chaos/last-run.json")
[[ -n "${SWITCHBOARD_CHAOS_DURATION:-}" ]] && args+=(--duration "$SWITCHBOARD_CHAOS_DURATION")
[[ -n "${SWITCHBOARD_CHAOS_RATE:-}" ]] && args+=(--rate "$SWITCHBOARD_CHAOS_RATE")
[[ "${SWITCHBOARD_CHAOS_QUICK:-}" == 1 ]] && args+=(--quick)
[[ "${SWITCHBOARD_CHAOS_KEEP:-}" == 1 ]] && args+=(--keep)
# switchboard-chaos reads SWITCHBOARD_CHAOS_SEED itself.
exec "$BUILD/bin/switchboard-chaos" "${SWITCHBOARD_CHAOS_SCENARIOS:-all}" "${args[@]}"
