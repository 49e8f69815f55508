#!/usr/bin/env bash
# `make demo`: a local nats-server, switchboard-router running examples/routes.yaml, the
# example events published, each input shown beside what came out, then metrics, a hot
# reload and a clean shutdown. Everything listens on 127.0.0.1 and is stopped at the end.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
case $build in /*) bin="$build/bin" ;; *) bin="$PWD/$build/bin" ;; esac  # BUILD absolute or from the repo root
work=$(mktemp -d /tmp/switchboard-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

nats_server=$(command -v nats-server || echo /usr/sbin/nats-server)
nats_port=$("$bin/switchboard-nats" free-port)
metrics_port=$("$bin/switchboard-nats" free-port)
nats="nats://127.0.0.1:$nats_port"
cp examples/routes.yaml "$work/routes.yaml"

echo "== nats-server on $nats"
"$nats_server" -a 127.0.0.1 -p "$nats_port" >"$work/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$nats_port") 2>/dev/null && break; sleep 0.1; done

echo "== switchboard-router run --routes routes.yaml (metrics on 127.0.0.1:$metrics_port)"
"$bin/switchboard-router" run --routes "$work/routes.yaml" --nats "$nats" --name demo \
  --metrics-addr "127.0.0.1:$metrics_port" --heartbeat 1s --reload-interval 250ms \
  2>"$work/router.log" &
router_pid=$!
pids+=($router_pid)
for _ in $(seq 100); do
  [ "$(curl -s "127.0.0.1:$metrics_port/readyz" || true)" = "ready" ] && break
  sleep 0.1
done
echo "   /readyz: $(curl -s "127.0.0.1:$metrics_port/readyz")"

"$bin/switchboard-nats" sub --nats "$nats" --timeout 60s --subject 'orders.*.large' \
  --subject audit.orders --subject 'payments.summary.>' --subject 'dlq.>' \
  >"$work/out.jsonl" 2>"$work/sub.log" &
pids+=($!)
for _ in $(seq 50); do grep -q subscribed "$work/sub.log" 2>/dev/null && break; sleep 0.1; done

echo
seen=0
n=0
while IFS= read -r line; do
  [ -z "$line" ] && continue
  n=$((n + 1))
  echo "== event $n in:  $line"
  printf '%s\n' "$line" | "$bin/switchboard-nats" pub --nats "$nats"
  sleep 0.4
  total=$(wc -l <"$work/out.jsonl")
  if [ "$total" -gt "$seen" ]; then
    tail -n +"$((seen + 1))" "$work/out.jsonl" | sed 's/^/   out: /'
  else
    echo "   out: (nothing: filtered, or failed without a dead letter)"
  fi
  seen=$total
done < examples/events.jsonl

echo
echo "== metrics (non-zero event counters)"
curl -s "127.0.0.1:$metrics_port/metrics" |
  grep -E '^switchboard_router_(events_[a-z_]+_total|route_table_generation|nats_connected)' |
  grep -v ' 0$' | sed 's/^/   /'

echo
echo "== hot reload: lower the large-orders threshold to 10 and replay event 2"
sed -i 's/event.amount >= 100.0/event.amount >= 10.0/' "$work/routes.yaml"
for _ in $(seq 50); do
  curl -s "127.0.0.1:$metrics_port/metrics" | grep -q '^switchboard_router_route_table_generation 2' && break
  sleep 0.1
done
echo "   $(curl -s "127.0.0.1:$metrics_port/metrics" | grep '^switchboard_router_route_table_generation')"
sed -n 2p examples/events.jsonl | "$bin/switchboard-nats" pub --nats "$nats"
sleep 0.4
tail -n +"$((seen + 1))" "$work/out.jsonl" | sed 's/^/   out: /'

echo
echo "== SIGTERM: drain and exit"
kill -TERM "$router_pid"
wait "$router_pid" && echo "   router exited 0"
grep -E '"msg":"(route table applied|stopped)"' "$work/router.log" | sed 's/^/   log: /'
