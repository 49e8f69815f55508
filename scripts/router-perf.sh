#!/usr/bin/env bash
# Where the router's CPU time goes while a route runs at full speed: the cycles by library
# and by function (perf), and the CPU of each thread of the router, the nats-server and
# the load generator. The counterpart of router-callgrind.sh, which counts instructions:
# this sees what instructions do not (thread hand-offs, lock waits, the kernel).
# Starts a nats-server on a free loopback port and the router with ROUTES, drives them
# with the data-plane load generator as fast as the router takes events, samples the
# threads over two seconds and records the router with `perf record -g` for PERF_SECONDS.
#
#   scripts/router-perf.sh [--bin DIR] [--router BINARY] [--seconds N] [--expect all|half]
#                          [--out FILE] ROUTES
#
#   --bin      where switchboard-router and switchboard-bench-loadgen are (default build/bin)
#   --router   the router binary to measure (default: the one in --bin)
#   --seconds  how long the load runs (default 8; perf records 3 s of it)
#   --expect   half for routes that filter out every other bench event (default all)
#   --out FILE keep perf's data there, for `perf report -i FILE`
#
# Example: scripts/router-perf.sh --expect half bench/dataplane/routes/transform.yaml
# Needs perf (linux-perf) and permission to record another process (root, or
# kernel.perf_event_paranoid <= 1).
set -euo pipefail

# shellcheck source=scripts/router-load.sh
source "$(dirname "$0")/router-load.sh"
SECONDS_LOAD=8
router_load_args router-perf "$@"
command -v perf >/dev/null || { echo "router-perf: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
(( SECONDS_LOAD >= 6 )) || { echo "router-perf: --seconds must be at least 6" >&2; exit 2; }
KEEP=perf.data
router_load_nats

"$ROUTER" run --routes "$ROUTES" --nats "nats://127.0.0.1:$NATS_PORT" --name bench \
  --metrics-addr "127.0.0.1:$(free_port)" --log-level warn 2>"$WORK/router.log" &
ROUTER_PID=$!
PIDS+=("$ROUTER_PID")
"$BIN/switchboard-bench-loadgen" run --nats "nats://127.0.0.1:$NATS_PORT" --publish bench.in --receive 'bench.out.>' \
  --size 200 --system perf --seconds "$SECONDS_LOAD" --warmup 1 --no-latency --expect "$EXPECT" \
  --pid "$ROUTER_PID" --server-pid "$NATS_PID" >"$WORK/loadgen.json" 2>"$WORK/loadgen.log" &
LOADGEN_PID=$!
PIDS+=("$LOADGEN_PID")

# Two seconds into the load: each thread's CPU (utime + stime, /proc) over two seconds,
# then perf over three.
sleep 2
threads() {
  for pid in "$ROUTER_PID" "$NATS_PID" "$LOADGEN_PID"; do
    for task in /proc/"$pid"/task/*; do
      [[ -r $task/stat ]] || continue
      # comm may hold spaces: the fields after its closing parenthesis are fixed.
      local stat rest
      stat=$(cat "$task/stat" 2>/dev/null) || continue
      rest=${stat##*) }
      read -r -a f <<<"$rest"
      echo "$pid $(basename "$task") $(cat "$task/comm" 2>/dev/null | tr ' ' '_') $((f[11] + f[12]))"
    done
  done
}
threads >"$WORK/t1"
sleep 2
threads >"$WORK/t2"
perf record -g -o "$WORK/perf.data" -p "$ROUTER_PID" -- sleep 3 >"$WORK/perf.log" 2>&1 || {
  cat "$WORK/perf.log" >&2
  exit 1
}
wait "$LOADGEN_PID" || { cat "$WORK/loadgen.log" >&2; exit 1; }
kill -INT "$ROUTER_PID"
wait "$ROUTER_PID" 2>/dev/null || true

TICKS=$(getconf CLK_TCK)
python3 - "$WORK/t1" "$WORK/t2" "$TICKS" "$ROUTER_PID" "$NATS_PID" "$WORK/loadgen.json" <<'PY'
import json, sys
t1, t2, ticks, router, nats, loadgen = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
def read(path):
    out = {}
    for line in open(path):
        pid, tid, comm, t = line.split()
        out[(pid, tid, comm)] = int(t)
    return out
a, b = read(t1), read(t2)
names = {router: "router", nats: "nats-server"}
total = 0.0
print("CPU by thread over 2 s (% of one core; the router's own threads are named sb-*,")
print("cnats' reader and flusher and the HTTP server's keep the process's name):")
for key in sorted(b, key=lambda k: -(b[k] - a.get(k, b[k]))):
    pct = (b[key] - a.get(key, b[key])) * 100.0 / ticks / 2
    total += pct
    if pct >= 1:
        print(f"  {names.get(key[0], 'load generator'):<15} {key[2]:<16} tid {key[1]:<8} {pct:5.1f} %")
print(f"  all of them: {total:.0f} % (the machine has {__import__('os').cpu_count() * 100} %)")
d = json.load(open(loadgen))
print(f"events in: {d['in_per_s']:.0f}/s; router CPU {d.get('cpu_s_per_million')} s per million events")
PY
echo "cycles of the router by library:"
perf report -i "$WORK/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep '%' | head -8 | sed 's/^/  /'
echo "cycles of the router by function (the 25 largest):"
perf report -i "$WORK/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep '%' | head -25 |
  sed 's/^/  /' | cut -c1-150
