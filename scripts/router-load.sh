# Sourced by router-callgrind.sh and router-perf.sh (not run on its own): their common
# flags, a nats-server on a free loopback port, and stopping what they started.
#
#   router_load_args TOOL "$@"  reads --bin, --router, --seconds, --expect, --out and ROUTES
#                               into BIN, ROUTER, SECONDS_LOAD, EXPECT, OUT_FILE and ROUTES;
#                               set SECONDS_LOAD to the tool's default first
#   router_load_nats            makes WORK, starts nats-server (NATS_PORT, NATS_PID) and
#                               arranges for everything in PIDS to be stopped at exit, and
#                               for WORK/$KEEP to be copied to --out's file
#   free_port                   a free TCP port on loopback

router_load_args() {
  local tool=$1
  shift
  ROOT=$(cd "$(dirname "$0")/.." && pwd)
  BIN=$ROOT/build/bin
  ROUTER=""
  EXPECT=all
  OUT_FILE=""
  while [[ $# -gt 1 ]]; do
    case $1 in
      --bin) BIN=$(cd "$2" && pwd); shift 2 ;;
      --router) ROUTER=$2; shift 2 ;;
      --seconds) SECONDS_LOAD=$2; shift 2 ;;
      --expect) EXPECT=$2; shift 2 ;;
      --out) OUT_FILE=$2; shift 2 ;;
      *) echo "$tool: unknown argument '$1'" >&2; exit 2 ;;
    esac
  done
  [[ $# -eq 1 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
  ROUTES=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
  ROUTER=${ROUTER:-$BIN/switchboard-router}
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

router_load_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ -n $OUT_FILE && -f $WORK/$KEEP ]]; then cp "$WORK/$KEEP" "$OUT_FILE"; fi
  rm -rf "$WORK"
}

router_load_nats() {
  WORK=$(mktemp -d /tmp/switchboard-router-load.XXXXXX)
  PIDS=()
  trap router_load_cleanup EXIT
  NATS_PORT=$(free_port)
  nats-server -a 127.0.0.1 -p "$NATS_PORT" >"$WORK/nats.log" 2>&1 &
  NATS_PID=$!
  PIDS+=("$NATS_PID")
  for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null && break; sleep 0.05; done
}
