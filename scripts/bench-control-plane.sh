#!/usr/bin/env bash
# The control-plane benchmark (`make bench-control-plane`; `make bench` runs it after the
# data-plane suite). On a real control plane (etcd + kube-apiserver on loopback, from
# tests/support/control_plane.sh), with the real switchboard-controller, router pods that
# the pod runner starts from the Deployment the controller writes, and a real nats-server:
#
#   bulk   1,000 EventRoutes created at once: time until every route is Ready and every
#          router pod runs the table the EventRouter's status names; peak memory
#   edits  one route edited, 50 times: time from `kubectl apply` until every pod runs it
#          (p50/p99), until the route is Ready, until the controller is quiet again
#   burst  5,000 spec changes over the 1,000 routes: peak work-queue depth, time to drain,
#          reconciles per second, reconcile errors
#
# The goals (1,000 routes Ready and applied within 5 s; one edit applied everywhere within
# 1 s p99) are reported, never asserted. bench/controlplane/main.cc has the details.
#
# Usage:
#   scripts/bench-control-plane.sh [--bin DIR] [--out DIR] [--quick | --smoke]
#                                  [--routes N] [--edits N] [--burst N] [--replicas N]
#                                  [--edit-via kubectl|api] [--command TEXT] [--keep]
#   --bin      where switchboard-controller, switchboard-router and
#              switchboard-bench-controlplane are (default build/bin)
#   --out      where controlplane.json and controlplane.md go (default bench/results; with
#              --quick or --smoke: bench-results next to --bin, so that a short run never
#              overwrites the recorded results)
#   --quick    200 routes, 10 edits, 1,000 changes
#   --smoke    20 routes, 3 edits, 100 changes: for the CTest smoke test, which checks only
#              that the run completes and that the JSON holds every metric
#   --keep     keep the work folder: control plane, controller and pod logs
# The Kubernetes tools come from scripts/test-tools.sh's cache (`make tools` builds them).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/build/bin
OUT=""
MODE=full
ROUTES="" EDITS="" BURST="" REPLICAS=2 EDIT_VIA=kubectl KEEP=0
COMMAND="scripts/bench-control-plane.sh $*"
while [[ $# -gt 0 ]]; do
  case $1 in
    --bin) BIN=$(cd "$2" && pwd); shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --quick) MODE=quick; shift ;;
    --smoke) MODE=smoke; shift ;;
    --routes) ROUTES=$2; shift 2 ;;
    --edits) EDITS=$2; shift 2 ;;
    --burst) BURST=$2; shift 2 ;;
    --replicas) REPLICAS=$2; shift 2 ;;
    --edit-via) EDIT_VIA=$2; shift 2 ;;
    --command) COMMAND=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-control-plane: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
case $MODE in
  full) : "${ROUTES:=1000}" "${EDITS:=50}" "${BURST:=5000}" ;;
  quick) : "${ROUTES:=200}" "${EDITS:=10}" "${BURST:=1000}" ;;
  smoke) : "${ROUTES:=20}" "${EDITS:=3}" "${BURST:=100}" ;;
esac
if [[ -z $OUT ]]; then
  if [[ $MODE == full ]]; then OUT=$ROOT/bench/results; else OUT=$(dirname "$BIN")/bench-results; fi
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { echo "bench-control-plane: $*" >&2; }
die() { log "error: $*"; exit 1; }

for b in switchboard-controller switchboard-router switchboard-bench-controlplane; do
  [[ -x $BIN/$b ]] || die "$BIN/$b is missing (make build, or --bin DIR)"
done
command -v nats-server >/dev/null || [[ -x /usr/sbin/nats-server ]] || die "nats-server is not installed (scripts/install-deps.sh)"
TOOLS=$("$ROOT/scripts/test-tools.sh" paths) || die "the Kubernetes tools are not built: run make tools (scripts/test-tools.sh)"
KUBECTL=$(sed -n 's/^KUBECTL=//p' <<<"$TOOLS")
[[ -x $KUBECTL ]] || die "kubectl is not built: run make tools"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench-cp.XXXXXX")
# Searchable, not readable, by others: the pod runner runs pods as their securityContext's user.
chmod 0711 "$WORK"
CP_DIR=""
cleanup() {
  local rc=$?
  if [[ -n $CP_DIR ]]; then
    if [[ $KEEP == 1 ]]; then
      "$ROOT/tests/support/control_plane.sh" stop "$CP_DIR" --keep >/dev/null 2>&1 || true
    else
      "$ROOT/tests/support/control_plane.sh" stop "$CP_DIR" >/dev/null 2>&1 || true
    fi
  fi
  if [[ $KEEP == 1 || $rc != 0 ]]; then
    log "logs in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "$MODE run: $ROUTES routes, $EDITS edits, $BURST changes, $REPLICAS router pods; load average $(cut -d' ' -f1-3 /proc/loadavg)"
CP_DIR=$WORK/control-plane
"$ROOT/tests/support/control_plane.sh" start "$CP_DIR" >"$WORK/control-plane.env" 2>"$WORK/control-plane.err" ||
  { cat "$WORK/control-plane.err" >&2; die "the control plane did not start"; }
KUBECONFIG_FILE=$(sed -n 's/^KUBECONFIG=//p' "$WORK/control-plane.env")
"$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" apply -f "$ROOT/crds/" >/dev/null
"$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" wait --for condition=established --timeout=60s \
  crd/eventrouters.switchboard.dev crd/eventroutes.switchboard.dev crd/eventtransforms.switchboard.dev >/dev/null

RESULT=$OUT/controlplane.json
args=(--kubeconfig "$KUBECONFIG_FILE" --kubectl "$KUBECTL" --bin "$BIN" --out "$WORK/controlplane.json" --work "$WORK/run"
  --routes "$ROUTES" --edits "$EDITS" --burst "$BURST" --replicas "$REPLICAS" --edit-via "$EDIT_VIA"
  --mode "$MODE" --command "$COMMAND")
[[ $KEEP == 1 ]] && args+=(--keep)
"$BIN/switchboard-bench-controlplane" "${args[@]}"
"$BIN/switchboard-bench-controlplane" --verify "$WORK/controlplane.json" >/dev/null
cp "$WORK/controlplane.json" "$RESULT"
"$BIN/switchboard-bench-controlplane" --summary "$RESULT" >"$OUT/controlplane.md"
cat "$OUT/controlplane.md"
log "wrote $RESULT and $OUT/controlplane.md"
