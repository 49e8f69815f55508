#!/usr/bin/env bash
# The data-plane benchmark (`make bench` runs it after bench-core): how close Switchboard
# is to the limit and how far ahead of the alternatives, with numbers from one run on one
# machine. One nats-server (the Debian package) on loopback; the same JSON events (200 B and
# 1 KiB); each system in turn, each several times, interleaved (rep 1 of every system, then
# rep 2, ...) so that a change in the machine's load spreads over all of them.
#
#   limits       nats-bench     `nats bench pub` + `nats bench sub`, no relay
#                nats-bench-js  `nats bench js pub async` into a file-store stream, then
#                               `nats bench js fetch` out of it: the JetStream limit
#                direct         our load generator straight to its receiver, no relay
#                cnats-relay    a C relay on cnats that forwards bytes, no parsing, with
#                               the connection options Switchboard uses
#                cnats-relay-asap  the same, each publish written at once (SendAsap)
#   Switchboard  sb-pass, sb-filter, sb-transform           (core NATS source)
#                sb-100routes   100 routes on the subject: the transform route and 99 more
#                               that filter every event out (the memory goal)
#                sb-js-pass, sb-js-filter, sb-js-transform  (JetStream source, file store)
#   peers        go-relay       nats.go + encoding/json     (bench/peers/go-relay)
#                node-relay     the `nats` npm package      (bench/peers/node-relay)
#
# Usage:
#   scripts/bench-dataplane.sh [--bin DIR] [--out DIR] [--quick | --smoke]
#                              [--systems ID,...] [--sizes N,...] [--command TEXT]
#   --bin      where switchboard-router and the bench binaries are (default build/bin)
#   --out      where latest.json, latest.md and the charts go (default bench/results;
#              with --quick: DIR/../bench-results under --bin, so a quick run never
#              overwrites the recorded results)
#   --quick    a few seconds per system, one repetition (also BENCH_QUICK=1)
#   --smoke    the quickest mode, for the CTest smoke test: builds and installs nothing,
#              runs the systems that need no download (and those already cached), and
#              checks that the JSON is well formed and has every one of them
# Environment: BENCH_QUICK=1, BENCH_REPS, BENCH_SECONDS, BENCH_LATENCY_SECONDS,
#   BENCH_WARMUP, BENCH_SYSTEMS, BENCH_SIZES, BENCH_KEEP=1 (keep the work dir and logs),
#   BENCH_LADDER_RATES (1000,10000,50000: latency also at these fixed rates, first
#   repetition and size, for cnats-relay, sb-pass and sb-transform; empty: not at all),
#   BENCH_NICE (default -10: the server, relays and load generator run at that priority
#   where allowed, so that other work on a shared machine disturbs them less; 0 to leave
#   it), SWITCHBOARD_TOOLS_CACHE (see scripts/bench-tools.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/build/bin
OUT=""
MODE=full
[[ ${BENCH_QUICK:-0} == 1 ]] && MODE=quick
SYSTEMS=${BENCH_SYSTEMS:-}
SIZES=${BENCH_SIZES:-200,1024}
COMMAND="scripts/bench-dataplane.sh $*"
while [[ $# -gt 0 ]]; do
  case $1 in
    --bin) BIN=$(cd "$2" && pwd); shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --quick) MODE=quick; shift ;;
    --smoke) MODE=smoke; shift ;;
    --systems) SYSTEMS=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --command) COMMAND=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-dataplane: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

case $MODE in
  full) REPS=3 SECONDS_TP=3 SECONDS_LAT=3 WARMUP=1 NB_MSGS_PER_KB=600000 ;;
  quick) REPS=1 SECONDS_TP=1 SECONDS_LAT=1 WARMUP=0.5 NB_MSGS_PER_KB=150000 ;;
  smoke) REPS=1 SECONDS_TP=0.3 SECONDS_LAT=0.3 WARMUP=0.2 NB_MSGS_PER_KB=40000 ;;
esac
REPS=${BENCH_REPS:-$REPS}
# Latency again at fixed rates (first repetition, first size), for these systems: the
# "Latency at fixed rates" table. BENCH_LADDER_RATES= (empty) leaves it out.
LADDER_RATES=${BENCH_LADDER_RATES-1000,10000,50000}
LADDER_SYSTEMS="cnats-relay sb-pass sb-transform"
SECONDS_TP=${BENCH_SECONDS:-$SECONDS_TP}
SECONDS_LAT=${BENCH_LATENCY_SECONDS:-$SECONDS_LAT}
WARMUP=${BENCH_WARMUP:-$WARMUP}
if [[ -z $OUT ]]; then
  if [[ $MODE == full ]]; then OUT=$ROOT/bench/results; else OUT=$(dirname "$BIN")/bench-results; fi
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { echo "bench-dataplane: $*" >&2; }
die() { log "error: $*"; exit 1; }

for b in switchboard-router switchboard-nats switchboard-bench-loadgen switchboard-bench-cnats-relay switchboard-bench-report; do
  [[ -x $BIN/$b ]] || die "$BIN/$b is missing (make build, or --bin DIR)"
done
NATS_SERVER=$(command -v nats-server || echo /usr/sbin/nats-server)
[[ -x $NATS_SERVER ]] || die "nats-server is not installed (scripts/install-deps.sh)"
LOADGEN=$BIN/switchboard-bench-loadgen

# ---- bench-only dependencies: gnuplot for the charts; the peers and the nats CLI --------

CHARTS=1
if ! command -v gnuplot >/dev/null; then
  if [[ $MODE == smoke ]]; then
    CHARTS=0
  else
    log "installing gnuplot-nox for the charts (bench only)"
    SUDO=""
    [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    if ! { $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null 2>&1 ||
      { $SUDO apt-get update -qq >/dev/null 2>&1 &&
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null 2>&1; }; }; then
      log "warning: could not install gnuplot-nox; no charts this run"
      CHARTS=0
    fi
  fi
fi

if [[ $MODE == smoke ]]; then
  TOOLS=$("$ROOT/scripts/bench-tools.sh" paths)
else
  TOOLS=$("$ROOT/scripts/bench-tools.sh" build)
fi
NATS_CLI=$(sed -n 's/^NATS_CLI=//p' <<<"$TOOLS")
GO_RELAY=$(sed -n 's/^GO_RELAY=//p' <<<"$TOOLS")
NODE_MODULES=$(sed -n 's/^NODE_RELAY_MODULES=//p' <<<"$TOOLS")

# ---- systems -----------------------------------------------------------------------------

ALL_SYSTEMS=(nats-bench nats-bench-js direct cnats-relay cnats-relay-asap sb-pass sb-filter sb-transform sb-100routes sb-js-pass sb-js-filter sb-js-transform go-relay node-relay)
# Those that need nothing from the network: what the smoke test insists on.
LOCAL_SYSTEMS=(direct cnats-relay cnats-relay-asap sb-pass sb-filter sb-transform sb-js-pass sb-js-filter sb-js-transform)
label() {
  case $1 in
    nats-bench) echo "Limit: nats bench pub/sub (no relay)" ;;
    nats-bench-js) echo "Limit: nats bench js (async publish into a file-store stream; fetch out of it)" ;;
    direct) echo "Limit: NATS direct, our load generator (no relay)" ;;
    cnats-relay) echo "Limit: cnats pass-through relay (C)" ;;
    cnats-relay-asap) echo "Limit: cnats pass-through relay (C), SendAsap" ;;
    sb-pass) echo "Switchboard pass-through" ;;
    sb-filter) echo "Switchboard filter (half dropped)" ;;
    sb-transform) echo "Switchboard filter + transform + subject template" ;;
    sb-100routes) echo "Switchboard, 100 routes on the subject (the transform route and 99 that filter all out)" ;;
    sb-js-pass) echo "Switchboard JetStream pass-through" ;;
    sb-js-filter) echo "Switchboard JetStream filter (half dropped)" ;;
    sb-js-transform) echo "Switchboard JetStream filter + transform + subject template" ;;
    go-relay) echo "Peer: Go relay (nats.go, encoding/json), filter + transform" ;;
    node-relay) echo "Peer: Node.js relay (nats npm), filter + transform" ;;
  esac
}
chart_label() {
  case $1 in
    nats-bench) echo "nats bench" ;; nats-bench-js) echo "nats bench js" ;; direct) echo "NATS direct" ;; cnats-relay) echo "cnats relay" ;;
    cnats-relay-asap) echo "cnats relay, SendAsap" ;;
    sb-pass) echo "SB pass" ;; sb-filter) echo "SB filter" ;; sb-transform) echo "SB transform" ;;
    sb-100routes) echo "SB 100 routes" ;;
    sb-js-pass) echo "SB JS pass" ;; sb-js-filter) echo "SB JS filter" ;; sb-js-transform) echo "SB JS transform" ;;
    go-relay) echo "Go relay" ;; node-relay) echo "Node.js relay" ;;
  esac
}
group() {
  case $1 in nats-bench* | direct | cnats-relay*) echo limit ;; sb-*) echo switchboard ;; *) echo peer ;; esac
}
transport() { case $1 in sb-js-* | nats-bench-js) echo jetstream ;; *) echo core ;; esac; }
# Why a system cannot run here, or nothing.
unavailable() {
  case $1 in
    nats-bench | nats-bench-js) [[ -n $NATS_CLI ]] || echo "the nats CLI is not built (scripts/bench-tools.sh build nats-cli)" ;;
    go-relay) [[ -n $GO_RELAY ]] || echo "the Go relay is not built (scripts/bench-tools.sh build go-relay)" ;;
    node-relay)
      if ! command -v node >/dev/null; then echo "node is not installed"
      elif [[ -z $NODE_MODULES ]]; then echo "the Node.js relay's dependencies are not installed (scripts/bench-tools.sh build node-relay)"
      fi ;;
  esac
}

if [[ -n $SYSTEMS ]]; then
  IFS=, read -r -a RUN_SYSTEMS <<<"$SYSTEMS"
  for s in "${RUN_SYSTEMS[@]}"; do [[ -n $(label "$s") ]] || die "unknown system '$s' (one of: ${ALL_SYSTEMS[*]})"; done
else
  RUN_SYSTEMS=("${ALL_SYSTEMS[@]}")
  # sb-100routes moves a few thousand events a second at best (each event is delivered
  # once per route: docs/benchmarks.md): too slow to measure in the smoke test's fractions
  # of a second on a busy machine.
  if [[ $MODE == smoke ]]; then
    RUN_SYSTEMS=("${RUN_SYSTEMS[@]/sb-100routes}")
    RUN_SYSTEMS=(${RUN_SYSTEMS[@]})
  fi
fi
IFS=, read -r -a RUN_SIZES <<<"$SIZES"

# ---- the server and the work dir ----------------------------------------------------------

# Everything started from here on inherits this priority.
NICE=${BENCH_NICE:--10}
if [[ $NICE != 0 ]] && ! renice -n "$NICE" -p $$ >/dev/null 2>&1; then
  log "note: cannot set priority $NICE (not allowed here); running at the default"
  NICE=0
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK/logs" "$WORK/js"

free_port() { "$BIN/switchboard-nats" free-port; }
wait_port() {
  local port=$1
  for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

NATS_PORT=$(free_port)
NATS_URL=nats://127.0.0.1:$NATS_PORT
"$NATS_SERVER" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$WORK/js" >"$WORK/logs/nats-server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
wait_port "$NATS_PORT" || die "nats-server did not start (see $WORK/logs/nats-server.log)"

# Stops a relay: SIGTERM, then SIGKILL if it has not exited within 10 s.
stop_pid() {
  local pid=$1 p keep=()
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

TRIALS=$WORK/trials.jsonl
: >"$TRIALS"

# Prints a trial line in a short human form.
show() {
  local line=$1 sys=$2 size=$3 rep=$4 v
  field() { sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p" <<<"$2" | head -1; }
  if grep -q '"ok":true' <<<"$line"; then
    v="in $(printf '%.0f' "$(field in_per_s "$line")")/s out $(printf '%.0f' "$(field out_per_s "$line")")/s"
    if grep -q '"latency"' <<<"$line"; then
      v+="  p99 $(sed -n 's/.*"latency":{[^}]*"p99_us":\([-0-9.e+]*\).*/\1/p' <<<"$line") µs"
    fi
  else
    v="FAILED: $(sed -n 's/.*"error":"\([^"]*\)".*/\1/p' <<<"$line")"
  fi
  printf '  rep %s  %5s B  %-16s %s\n' "$rep" "$size" "$sys" "$v" >&2
}

record() {  # line system size rep
  echo "$1" >>"$TRIALS"
  show "$@"
}

run_nats_bench() {
  local size=$1 rep=$2 msgs sub_pid csv_pub=$WORK/nb-pub.csv csv_sub=$WORK/nb-sub.csv
  msgs=$((NB_MSGS_PER_KB * 1024 / size))
  [[ $msgs -gt 3000000 ]] && msgs=3000000
  "$LOADGEN" event --size "$size" >"$WORK/event-$size.json"
  rm -f "$csv_pub" "$csv_sub"
  local common=(--msgs "$msgs" --size "${size}B" --no-progress -s "$NATS_URL")
  "$NATS_CLI" bench sub bench.nb "${common[@]}" --csv "$csv_sub" >"$WORK/logs/nb-sub.log" 2>&1 &
  sub_pid=$!
  PIDS+=("$sub_pid")
  for _ in $(seq 100); do grep -q "Starting Core NATS subscriber" "$WORK/logs/nb-sub.log" 2>/dev/null && break; sleep 0.05; done
  sleep 0.3
  local ok=1
  # The publisher sends our event's bytes; the subscriber only counts.
  timeout 120 "$NATS_CLI" bench pub bench.nb "${common[@]}" --payload "$WORK/event-$size.json" --csv "$csv_pub" \
    >"$WORK/logs/nb-pub.log" 2>&1 || ok=0
  # A subscriber that was cut off as a slow consumer waits forever for the rest.
  for _ in $(seq 100); do kill -0 "$sub_pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$sub_pid" 2>/dev/null && ok=0
  stop_pid "$sub_pid"
  # CSV: #RunID,ClientID,MsgCount,MsgBytes,MsgsPerSec,BytesPerSec,DurationSecs,...
  local pub_rate sub_rate secs
  pub_rate=$(awk -F, '!/^#/ && NF > 5 {print $5; exit}' "$csv_pub" 2>/dev/null || true)
  sub_rate=$(awk -F, '!/^#/ && NF > 5 {print $5; exit}' "$csv_sub" 2>/dev/null || true)
  secs=$(awk -F, '!/^#/ && NF > 5 {print $7; exit}' "$csv_sub" 2>/dev/null || true)
  if [[ $ok == 1 && -n $pub_rate && -n $sub_rate ]]; then
    record "{\"system\":\"nats-bench\",\"size\":$size,\"rep\":$rep,\"ok\":true,\"in_per_s\":$pub_rate,\"out_per_s\":$sub_rate,\"seconds\":${secs:-0},\"events_in\":$msgs,\"events_out\":$msgs}" nats-bench "$size" "$rep"
  else
    record "{\"system\":\"nats-bench\",\"size\":$size,\"rep\":$rep,\"ok\":false,\"error\":\"nats bench did not finish (a slow subscriber misses messages; see nb-sub.log)\"}" nats-bench "$size" "$rep"
  fi
}

# Starts the relay of a system in the background; sets RELAY_PID (empty for none).
start_relay() {
  local sys=$1 log=$WORK/logs/$1.log
  RELAY_PID=""
  case $sys in
    direct) return 0 ;;
    cnats-relay)
      "$BIN/switchboard-bench-cnats-relay" --nats "$NATS_URL" --in bench.in --out bench.out.all 2>"$log" & ;;
    cnats-relay-asap)
      "$BIN/switchboard-bench-cnats-relay" --nats "$NATS_URL" --in bench.in --out bench.out.all --send-asap 2>"$log" & ;;
    sb-*)
      local routes=${sys#sb-}
      if [[ $sys == sb-js-* ]]; then
        "$LOADGEN" stream --nats "$NATS_URL" --name BENCH --subject bench.js.in 2>>"$log" || return 1
      fi
      "$BIN/switchboard-router" run --routes "$ROOT/bench/dataplane/routes/$routes.yaml" --nats "$NATS_URL" \
        --name bench --metrics-addr "127.0.0.1:$(free_port)" --grace 5s --log-level warn 2>"$log" & ;;
    go-relay)
      "$GO_RELAY" --nats "$NATS_URL" --in bench.in --out-prefix bench.out 2>"$log" & ;;
    node-relay)
      NODE_PATH=$NODE_MODULES node "$ROOT/bench/peers/node-relay/relay.js" --nats "$NATS_URL" --in bench.in \
        --out-prefix bench.out 2>"$log" & ;;
  esac
  RELAY_PID=$!
  PIDS+=("$RELAY_PID")
}

# The JetStream limit: as many messages as the core run, published asynchronously into a
# file-store stream of their own (in: the publish rate), then fetched by a durable consumer
# with explicit acks (out: the fetch rate). A relay on JetStream does both at once.
run_nats_bench_js() {
  local size=$1 rep=$2 msgs stream="NBJS_${1}_${2}" csv_pub=$WORK/nbjs-pub.csv csv_fetch=$WORK/nbjs-fetch.csv
  msgs=$((NB_MSGS_PER_KB * 1024 / size / 4))
  [[ $msgs -gt 500000 ]] && msgs=500000
  rm -f "$csv_pub" "$csv_fetch"
  local common=(--stream "$stream" --msgs "$msgs" --size "${size}B" --no-progress -s "$NATS_URL")
  local ok=1
  timeout 300 "$NATS_CLI" bench js pub async "bench.nbjs.$size.$rep" "${common[@]}" --create --storage file \
    --csv "$csv_pub" >"$WORK/logs/nbjs-pub.log" 2>&1 || ok=0
  [[ $ok == 1 ]] && { timeout 300 "$NATS_CLI" bench js fetch "${common[@]}" --csv "$csv_fetch" \
    >"$WORK/logs/nbjs-fetch.log" 2>&1 || ok=0; }
  "$LOADGEN" stream --nats "$NATS_URL" --name "$stream" --delete 2>/dev/null || true
  # CSV: #RunID,ClientID,MsgCount,MsgBytes,MsgsPerSec,BytesPerSec,DurationSecs,...
  local pub_rate fetch_rate secs
  pub_rate=$(awk -F, '!/^#/ && NF > 5 {print $5; exit}' "$csv_pub" 2>/dev/null || true)
  fetch_rate=$(awk -F, '!/^#/ && NF > 5 {print $5; exit}' "$csv_fetch" 2>/dev/null || true)
  secs=$(awk -F, '!/^#/ && NF > 5 {print $7; exit}' "$csv_fetch" 2>/dev/null || true)
  if [[ $ok == 1 && -n $pub_rate && -n $fetch_rate ]]; then
    record "{\"system\":\"nats-bench-js\",\"size\":$size,\"rep\":$rep,\"ok\":true,\"in_per_s\":$pub_rate,\"out_per_s\":$fetch_rate,\"seconds\":${secs:-0},\"events_in\":$msgs,\"events_out\":$msgs}" nats-bench-js "$size" "$rep"
  else
    record "{\"system\":\"nats-bench-js\",\"size\":$size,\"rep\":$rep,\"ok\":false,\"error\":\"nats bench js did not finish (see nbjs-pub.log, nbjs-fetch.log)\"}" nats-bench-js "$size" "$rep"
  fi
}

run_system() {
  local sys=$1 size=$2 rep=$3 line
  if [[ $sys == nats-bench ]]; then
    run_nats_bench "$size" "$rep"
    return
  fi
  if [[ $sys == nats-bench-js ]]; then
    run_nats_bench_js "$size" "$rep"
    return
  fi
  if ! start_relay "$sys"; then
    record "{\"system\":\"$sys\",\"size\":$size,\"rep\":$rep,\"ok\":false,\"error\":\"could not start (see logs/$sys.log)\"}" "$sys" "$size" "$rep"
    return
  fi
  local args=(run --nats "$NATS_URL" --receive 'bench.out.>' --size "$size" --system "$sys" --rep "$rep"
    --server-pid "$SERVER_PID" --seconds "$SECONDS_TP" --latency-seconds "$SECONDS_LAT" --warmup "$WARMUP")
  case $sys in
    direct) args+=(--publish bench.out.direct) ;;
    sb-js-*) args+=(--publish bench.js.in --baseline-subject bench.out.direct) ;;
    *) args+=(--publish bench.in --baseline-subject bench.out.direct) ;;
  esac
  case $sys in *filter | *transform | *100routes | go-relay | node-relay) args+=(--expect half) ;; esac
  [[ -n $RELAY_PID ]] && args+=(--pid "$RELAY_PID")
  if [[ -n $LADDER_RATES && $rep == 1 && $size == "${RUN_SIZES[0]}" && " $LADDER_SYSTEMS " == *" $sys "* ]]; then
    args+=(--rates "$LADDER_RATES")
  fi
  line=$("$LOADGEN" "${args[@]}" 2>>"$WORK/logs/loadgen.log") || true
  [[ -n $line ]] || line="{\"system\":\"$sys\",\"size\":$size,\"rep\":$rep,\"ok\":false,\"error\":\"the load generator printed nothing (see loadgen.log)\"}"
  if [[ -n $RELAY_PID ]]; then
    if ! kill -0 "$RELAY_PID" 2>/dev/null; then
      log "$sys exited early; its log:"
      tail -5 "$WORK/logs/$sys.log" >&2 || true
    fi
    stop_pid "$RELAY_PID"
  fi
  [[ $sys == sb-js-* ]] && { "$LOADGEN" stream --nats "$NATS_URL" --name BENCH --delete 2>/dev/null || true; }
  record "$line" "$sys" "$size" "$rep"
}

# ---- the run -------------------------------------------------------------------------------

json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
LOAD_START=$(loadavg)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
T0=$(date +%s)
ENV_TEXT=""
for v in BENCH_QUICK BENCH_REPS BENCH_SECONDS BENCH_LATENCY_SECONDS BENCH_WARMUP BENCH_SYSTEMS BENCH_SIZES BENCH_LADDER_RATES; do
  [[ -n ${!v:-} ]] && ENV_TEXT+="$v=${!v} "
done
log "$MODE run: ${#RUN_SYSTEMS[@]} systems × sizes ${RUN_SIZES[*]} × $REPS reps; ${SECONDS_TP}s throughput, ${SECONDS_LAT}s latency each; load average $LOAD_START"
log "nats-server $("$NATS_SERVER" --version 2>&1 | sed 's/.*v//') on $NATS_URL (JetStream in $WORK/js)"

SKIPPED=()
for s in "${RUN_SYSTEMS[@]}"; do
  why=$(unavailable "$s")
  if [[ -n $why ]]; then
    log "skipping $s: $why"
    SKIPPED+=("$s=$why")
  fi
done
skipped_reason() {
  local e
  for e in "${SKIPPED[@]}"; do [[ ${e%%=*} == "$1" ]] && { echo "${e#*=}"; return; }; done
  return 0
}

for rep in $(seq "$REPS"); do
  for size in "${RUN_SIZES[@]}"; do
    for sys in "${RUN_SYSTEMS[@]}"; do
      [[ -z $(skipped_reason "$sys") ]] || continue
      run_system "$sys" "$size" "$rep"
    done
  done
done

LOAD_END=$(loadavg)
SECONDS_TOTAL=$(($(date +%s) - T0))

# ---- results ------------------------------------------------------------------------------

version_of() { "$@" 2>/dev/null | head -1 || true; }
{
  echo "{"
  echo "  \"mode\": \"$MODE\", \"command\": $(json_str "${ENV_TEXT}${COMMAND}"),"
  echo "  \"started\": \"$STARTED\", \"seconds\": $SECONDS_TOTAL,"
  echo "  \"machine\": {\"cpu\": $(json_str "$(lscpu | sed -n 's/^Model name: *//p' | head -1)"),"
  echo "    \"cores\": $(nproc), \"memory\": $(json_str "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"),"
  echo "    \"hypervisor\": $(json_str "$(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -1)"),"
  echo "    \"kernel\": $(json_str "$(uname -r)"), \"os\": $(json_str "$(. /etc/os-release && echo "$PRETTY_NAME")"),"
  echo "    \"load_average_start\": $(json_str "$LOAD_START"), \"load_average_end\": $(json_str "$LOAD_END")},"
  echo "  \"versions\": {\"nats_server\": $(json_str "$("$NATS_SERVER" --version 2>&1 | sed 's/.*v//')"),"
  echo "    \"cnats\": $(json_str "$(dpkg-query -W -f='${Version}' libnats-dev 2>/dev/null || true)"),"
  echo "    \"switchboard\": $(json_str "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || true)$(cd "$ROOT" && git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"),"
  echo "    \"compiler\": $(json_str "$(version_of c++ --version)"),"
  echo "    \"nats_cli\": $(json_str "$([[ -n $NATS_CLI ]] && "$NATS_CLI" --version 2>&1 | head -1)"),"
  echo "    \"go\": $(json_str "$(version_of go version)"),"
  echo "    \"nats_go\": $(json_str "$(awk '$1 == "require" && $2 == "github.com/nats-io/nats.go" {print $3}' "$ROOT/bench/peers/go-relay/go.mod")"),"
  echo "    \"node\": $(json_str "$(version_of node --version)"),"
  echo "    \"nats_npm\": $(json_str "$(sed -n 's/^ *"nats": *"\([^"]*\)".*/\1/p' "$ROOT/bench/peers/node-relay/package.json" | head -1)")},"
  echo "  \"settings\": {\"repetitions\": $REPS, \"throughput_seconds\": $SECONDS_TP, \"latency_seconds\": $SECONDS_LAT,"
  echo "    \"warmup_seconds\": $WARMUP, \"window_events\": 16384, \"nice\": $NICE, \"latency_rate\": \"half of the same repetition's events in per second\","
  echo "    \"ladder_rates\": $(json_str "$LADDER_RATES"), \"ladder_systems\": $(json_str "$LADDER_SYSTEMS")},"
  echo "  \"sizes\": [$(IFS=,; echo "${RUN_SIZES[*]}")],"
  echo "  \"systems\": ["
  first=1
  for s in "${RUN_SYSTEMS[@]}"; do
    [[ $first == 1 ]] || echo ","
    first=0
    printf '    {"id": "%s", "label": %s, "chart": %s, "group": "%s", "transport": "%s"' "$s" "$(json_str "$(label "$s")")" \
      "$(json_str "$(chart_label "$s")")" "$(group "$s")" "$(transport "$s")"
    why=$(skipped_reason "$s")
    [[ -z $why ]] || printf ', "skipped": %s' "$(json_str "$why")"
    printf '}'
  done
  echo
  echo "  ]"
  echo "}"
} >"$WORK/meta.json"

"$BIN/switchboard-bench-report" write --meta "$WORK/meta.json" --trials "$TRIALS" --out "$WORK" ||
  die "the report could not be written"
cp "$WORK/latest.json" "$WORK/latest.md" "$OUT/"

if [[ $CHARTS == 1 ]]; then
  if gnuplot -e "datadir='$WORK'; outdir='$WORK'; sizes='${RUN_SIZES[*]}'" "$ROOT/bench/dataplane/charts.gp" 2>"$WORK/logs/gnuplot.log"; then
    cp "$WORK"/*.png "$OUT/"
  else
    log "warning: gnuplot failed:"
    cat "$WORK/logs/gnuplot.log" >&2
  fi
fi
log "done in ${SECONDS_TOTAL}s; load average at start $LOAD_START, at end $LOAD_END"
log "results: $OUT/latest.json, $OUT/latest.md$([[ $CHARTS == 1 ]] && echo ", $OUT/throughput.png, $OUT/latency.png")"

if [[ $MODE == smoke ]]; then
  want=()
  for s in "${RUN_SYSTEMS[@]}"; do
    [[ -z $(skipped_reason "$s") ]] && want+=("$s")
  done
  for s in "${LOCAL_SYSTEMS[@]}"; do
    [[ " ${RUN_SYSTEMS[*]} " == *" $s "* ]] || die "the smoke test must run $s"
  done
  "$BIN/switchboard-bench-report" check --results "$OUT/latest.json" --systems "$(IFS=,; echo "${want[*]}")" \
    --sizes "$(IFS=,; echo "${RUN_SIZES[*]}")"
  if [[ -n $LADDER_RATES ]]; then
    for s in $LADDER_SYSTEMS; do
      [[ " ${want[*]} " == *" $s "* ]] || continue
      for r in ${LADDER_RATES//,/ }; do
        grep -q "\"system\": \"$s\", \"size\": ${RUN_SIZES[0]}, \"rate\": $r, .*\"lat.p99_us\"" "$OUT/latest.json" ||
          die "latest.json has no latency of $s at $r events/s"
      done
    done
  fi
fi
