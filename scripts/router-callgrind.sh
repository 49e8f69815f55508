#!/usr/bin/env bash
# Instructions per event in the router, counted by callgrind: a measure of the hot path
# that a busy or shared machine does not disturb (unlike events per second). Starts a
# nats-server on a free loopback port, runs `switchboard-router run` under callgrind with
# ROUTES, drives it with the data-plane load generator for SECONDS, and prints the
# instructions per event of the delivery callback (NatsClient::on_message: everything the
# router does with an event on its own thread, publish included) and of the whole process
# (the cnats reader thread too, and start-up spread over the events).
#
#   scripts/router-callgrind.sh [--bin DIR] [--router BINARY] [--seconds N] [--expect all|half] ROUTES
#
#   --bin      where switchboard-bench-loadgen is (default build/bin)
#   --router   the router binary to measure (default: the one in --bin), e.g. an older build
#   --seconds  how long the load runs (default 5; under callgrind the router takes about
#              10,000 events/s)
#   --expect   half for routes that filter out every other bench event (default all)
#   --out FILE keep callgrind's output there, for `callgrind_annotate --inclusive=yes FILE`
#              (where the instructions go, function by function)
#
# Example: scripts/router-callgrind.sh bench/dataplane/routes/pass.yaml
# Needs valgrind (scripts/install-deps.sh does not install it: apt-get install valgrind).
set -euo pipefail

# shellcheck source=scripts/router-load.sh
source "$(dirname "$0")/router-load.sh"
SECONDS_LOAD=5
router_load_args router-callgrind "$@"
command -v valgrind >/dev/null || { echo "router-callgrind: valgrind is not installed" >&2; exit 1; }
command -v callgrind_annotate >/dev/null || { echo "router-callgrind: callgrind_annotate is missing" >&2; exit 1; }
KEEP=callgrind.out
router_load_nats

valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" "$ROUTER" run --routes "$ROUTES" \
  --nats "nats://127.0.0.1:$NATS_PORT" --name bench --metrics-addr "127.0.0.1:$(free_port)" --log-level warn \
  2>"$WORK/router.log" &
ROUTER_PID=$!
PIDS+=("$ROUTER_PID")
"$BIN/switchboard-bench-loadgen" run --nats "nats://127.0.0.1:$NATS_PORT" --publish bench.in --receive 'bench.out.>' \
  --size 200 --system callgrind --seconds "$SECONDS_LOAD" --warmup 1 --no-latency --expect "$EXPECT" \
  >"$WORK/loadgen.json" 2>"$WORK/loadgen.log" || { cat "$WORK/loadgen.log" >&2; exit 1; }
kill -INT "$ROUTER_PID"
wait "$ROUTER_PID" 2>/dev/null || true

# Events: the calls of the delivery callback. Instructions: its inclusive cost, and the
# whole program's.
python3 - "$WORK/callgrind.out" <<'PY'
import re, subprocess, sys
path = sys.argv[1]
names, calls, pending, total = {}, {}, None, 0
for line in open(path):
    m = re.match(r'cfn=\((\d+)\)(?: (.*))?', line)
    if m:
        if m.group(2):
            names[m.group(1)] = m.group(2).strip()
        pending = m.group(1)
        continue
    m = re.match(r'calls=(\d+)', line)
    if m and pending:
        calls[pending] = calls.get(pending, 0) + int(m.group(1))
        pending = None
    if line.startswith(('summary:', 'totals:')):
        total = int(line.split()[1])
events = sum(c for i, c in calls.items() if 'NatsClient::on_message(' in names.get(i, ''))
annotated = subprocess.run(['callgrind_annotate', '--inclusive=yes', path], capture_output=True, text=True).stdout
callback = 0
for line in annotated.splitlines():
    if 'NatsClient::on_message(__natsConnection' in line:
        callback = int(line.split()[0].replace(',', ''))
        break
if events == 0:
    sys.exit('router-callgrind: no event reached the router')
print(f'events {events}; instructions per event: delivery callback {callback / events:.0f}, '
      f'whole process {total / events:.0f}')
PY
