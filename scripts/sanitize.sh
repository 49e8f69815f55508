#!/usr/bin/env bash
# Builds the unit tests, the integration tests, the router, the CEL conformance runner and
# the fuzz-input replays with AddressSanitizer and UBSan, in a build directory of their
# own, and runs those tests. Any sanitizer report fails the run: one from a test process,
# and one from a router or tool process a test started, whose exit status a test may not
# look at. The reports are printed at the end.
#
#   bash scripts/sanitize.sh [BUILD_DIR]     (or: make test-sanitize; default build-sanitize)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build-sanitize}"
# Absolute: tests run in other folders and write their reports under it.
mkdir -p "$BUILD" && BUILD="$(cd "$BUILD" && pwd)"
JOBS="${JOBS:-$(nproc)}"
# What runs under the sanitizers: test labels set in tests/CMakeLists.txt,
# tests/kube/CMakeLists.txt, controller/CMakeLists.txt and tests/fuzz/CMakeLists.txt.
# Tests against a Kubernetes control plane (label e2e) are not in it: they spend their
# time in Go programs the sanitizers cannot see into. Every executable that holds tests
# with these labels is in TARGETS: a test whose executable is not built here would only
# be a placeholder without a label, left out without a word.
LABELS='^(unit|integration|controller|conformance|cli|fuzz)$'
TARGETS=(switchboard_unit_tests switchboard_kube_tests switchboard_integration_tests
         switchboard_controller_tests switchboard-router switchboard-cel-conformance)

start=$(date +%s)
echo "sanitize: configuring $BUILD (ASan + UBSan)"
# Warnings are the normal build's business: GCC's sanitizer instrumentation produces
# false -Wmaybe-uninitialized and -Wstringop-overflow, so -Werror stays off here.
if ! cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSWITCHBOARD_SANITIZE=ON -DSWITCHBOARD_BENCH=OFF -DSWITCHBOARD_WERROR=OFF \
    >"$BUILD/configure.log" 2>&1; then
  cat "$BUILD/configure.log" >&2
  echo "sanitize: configure failed" >&2
  exit 2
fi

# The fuzz-input replays exist in every build that is not a fuzzing build; ask the
# generator rather than guess.
available="$(cmake --build "$BUILD" --target help 2>/dev/null)"
while read -r t; do TARGETS+=("$t"); done < <(grep -o '^switchboard-fuzz-replay-[a-z]*' <<<"$available")

echo "sanitize: building ${TARGETS[*]}"
if ! cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}"; then
  echo "sanitize: build failed" >&2
  exit 2
fi
built=$(date +%s)

REPORTS="$BUILD/sanitizer-reports"
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
# halt_on_error: the first report ends the process, so a test cannot pass after one.
# log_path: every process writes its reports to REPORTS/<kind>.<pid>, whoever started it.
# fast_unwind_on_malloc=0: libcpprest.so is built without frame pointers, so the fast
# unwinder stops at its first frame and a leak's stack would not reach the function that
# scripts/lsan.supp names; the full unwinder costs the unit tests about 4 times their time.
export ASAN_OPTIONS="detect_leaks=1:fast_unwind_on_malloc=0:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:log_path=$REPORTS/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$ROOT/scripts/ubsan.supp:log_path=$REPORTS/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$ROOT/scripts/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

echo "sanitize: running tests labelled $LABELS"
(cd "$BUILD" && ctest -L "$LABELS" --output-on-failure -j "$JOBS")
rc=$?
done_at=$(date +%s)

mapfile -t reports < <(find "$REPORTS" -type f | sort)
if [ ${#reports[@]} -gt 0 ]; then
  for f in "${reports[@]}"; do
    echo "sanitize: ---- $f" >&2
    cat "$f" >&2
  done
  echo "sanitize: ${#reports[@]} sanitizer report(s), listed above" >&2
  rc=1
fi
echo "sanitize: configure+build $((built - start))s, tests $((done_at - built))s"
if [ "$rc" -ne 0 ]; then
  echo "sanitize: FAILED" >&2
  exit 1
fi
echo "sanitize: no sanitizer findings"
