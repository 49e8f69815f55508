#!/bin/sh
# Routes the example events with the real binary and compares the output, line for line,
# with a reviewed expectation: a change in matching, filtering, transforms, encoding or
# error text shows up as a diff. Run from the source folder (CTest does).
# usage: dry_run_examples.sh PATH/TO/switchboard-router
set -u
router=$1
expected=$(dirname "$0")/dry_run_examples.expected
actual=$(mktemp) || exit 1
trap 'rm -f "$actual"' EXIT

"$router" test --routes examples/routes.yaml --events examples/events.jsonl >"$actual"
status=$?
if [ "$status" -ne 0 ]; then
  echo "switchboard-router test exited with status $status" >&2
  exit 1
fi
diff -u "$expected" "$actual"
