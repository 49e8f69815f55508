#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and ASan/UBSan in their own build directory and
# runs each one for SECONDS seconds (default 30). Exits non-zero when any target found a
# crash, leak, timeout or out-of-memory, and says where the reproducer is and how to keep
# it as a regression test (tests/fuzz/regressions/<target>/, replayed by `make test`).
#
#   bash scripts/fuzz.sh [SECONDS]        (or: make fuzz FUZZ_SECONDS=..., make fuzz-long)
set -uo pipefail

SECONDS_PER_TARGET="${1:-30}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS]  (a positive whole number of seconds per target)" >&2
  exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# FUZZ_BUILD chooses another build directory (two fuzzing runs must not share one).
BUILD="${FUZZ_BUILD:-$ROOT/build-fuzz}"
CORPORA="$ROOT/tests/fuzz/corpus"
# Inputs that once failed: read as seeds, never written to.
REGRESSIONS="$ROOT/tests/fuzz/regressions"
# Kept outside the repository corpus so a run never adds files to it; a reproducer must
# survive the run so it can be replayed.
ARTIFACTS="$BUILD/artifacts"
LOGS="$BUILD/logs"

# Target name suffix and corpus directory name.
TARGETS=(json cel route)

mkdir -p "$BUILD"
echo "fuzz: configuring $BUILD with clang-14"
# A sanitized, instrumented build must never mix with the normal one, hence its own dir;
# benchmarks are pointless under sanitizers.
if ! CC=clang-14 CXX=clang++-14 cmake -S "$ROOT" -B "$BUILD" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSWITCHBOARD_FUZZ=ON -DSWITCHBOARD_BENCH=OFF >"$BUILD/configure.log" 2>&1; then
  cat "$BUILD/configure.log" >&2
  echo "fuzz: configure failed" >&2
  exit 2
fi

# Every target of tests/fuzz must run: a target that went missing from the build is a
# failure, not something to skip quietly. Ask the generator rather than guess.
available="$(cmake --build "$BUILD" --target help 2>/dev/null)"
present=()
for t in "${TARGETS[@]}"; do
  if ! grep -q "^switchboard-fuzz-$t:" <<<"$available"; then
    echo "fuzz: no target switchboard-fuzz-$t in this build; is tests/fuzz/CMakeLists.txt complete?" >&2
    exit 2
  fi
  present+=("$t")
done

build_targets=()
for t in "${present[@]}"; do build_targets+=("switchboard-fuzz-$t"); done
echo "fuzz: building ${build_targets[*]}"
if ! cmake --build "$BUILD" --target "${build_targets[@]}"; then
  echo "fuzz: build failed" >&2
  exit 2
fi

# UBSan only reports and carries on unless told to stop, and a report that does not stop
# the run leaves no reproducer. Leak detection is on by default; state it anyway.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-fuzz.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$LOGS"

failed=()
for t in "${present[@]}"; do
  corpus="$WORK/$t"
  mkdir -p "$corpus"
  if [ -d "$CORPORA/$t" ]; then
    cp -R "$CORPORA/$t/." "$corpus/"
  else
    echo "fuzz: warning: no seed corpus at $CORPORA/$t, starting empty"
  fi
  artifacts="$ARTIFACTS/$t"
  rm -rf "$artifacts"
  mkdir -p "$artifacts"
  log="$LOGS/$t.log"

  echo "fuzz: running switchboard-fuzz-$t for ${SECONDS_PER_TARGET}s (log: $log)"
  seeds=()
  [ -d "$REGRESSIONS/$t" ] && seeds+=("$REGRESSIONS/$t")
  started=$(date +%s)
  "$BUILD/bin/switchboard-fuzz-$t" \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 \
    "$corpus" "${seeds[@]}" >"$log" 2>&1
  rc=$?
  ran=$(( $(date +%s) - started ))

  # slow-unit-* files are only informational; these four mean the target failed.
  mapfile -t found < <(find "$artifacts" -maxdepth 1 -type f \
    \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
  if [ "$rc" -ne 0 ] || [ ${#found[@]} -gt 0 ]; then
    failed+=("$t")
    echo "fuzz: switchboard-fuzz-$t FAILED (exit code $rc)" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|.*check failed|.*Test unit written)' "$log" \
      | head -20 >&2
    for f in "${found[@]}"; do
      echo "fuzz:   reproducer: $f" >&2
      echo "fuzz:   replay with: $BUILD/bin/switchboard-fuzz-$t $f" >&2
      echo "fuzz:   once fixed, keep it: cp $f $REGRESSIONS/$t/<what-it-caught>" >&2
    done
    [ ${#found[@]} -eq 0 ] && echo "fuzz:   no reproducer written; see $log" >&2
  else
    stats="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')"
    cov="$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')"
    echo "fuzz: switchboard-fuzz-$t ok (${stats:-?} inputs in ${ran}s, ${cov:-?} coverage points)"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failures in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#present[@]} targets ran ${SECONDS_PER_TARGET}s without a crash, leak or timeout"
