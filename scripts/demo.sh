#!/usr/bin/env bash
# `make demo`: the example routes on the example events, each input beside what came out.
# It runs the same compiled route table and event path the router runs, without NATS.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
router="$build/bin/switchboard-router"
routes=examples/routes.yaml
events=examples/events.jsonl

echo "== switchboard-router check --routes $routes"
"$router" check --routes "$routes"
echo
n=0
while IFS= read -r line; do
  [ -z "$line" ] && continue
  n=$((n + 1))
  echo "== event $n in:  $line"
  printf '%s\n' "$line" | "$router" test --routes "$routes" | sed 's/^/   out: /'
done < "$events"
echo
echo "== why each route matched or not, for event 1 (--explain)"
head -n 1 "$events" | "$router" test --routes "$routes" --explain | sed 's/^/   /'
