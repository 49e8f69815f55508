#!/usr/bin/env bash
# The runtime image's files are enough to run the binaries: stages them with
# scripts/runtime-rootfs.sh (what the Dockerfile does) into a temp folder, then runs
# `switchboard-router check` and `run --help` from it
#   1. through the folder's own loader with --library-path into the folder, an empty
#      environment and LD_DEBUG, and fails if any library was loaded from outside it;
#   2. when the machine allows it (root, or an unprivileged user namespace), chrooted
#      into the folder, where nothing else exists: this also proves the time-zone
#      database the routes need is there.
#
# Usage: runtime_rootfs_test.sh --bin-dir DIR [--missing-ok NAME]...
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
bin_dir=""
stage_args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --bin-dir) bin_dir=${2:?}; shift 2 ;;
    --missing-ok) stage_args+=(--missing-ok "${2:?}"); shift 2 ;;
    *) echo "usage: $0 --bin-dir DIR [--missing-ok NAME]..." >&2; exit 2 ;;
  esac
done
[[ -n $bin_dir ]] || { echo "usage: $0 --bin-dir DIR [--missing-ok NAME]..." >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

echo "== scripts/runtime-rootfs.sh stage --bin-dir $bin_dir ${stage_args[*]}"
bash "$src/scripts/runtime-rootfs.sh" stage --bin-dir "$bin_dir" --out "$rootfs" "${stage_args[@]}" |
  sed 's/^/   /'

# A routes file whose transform test reads the time-zone database: `check` fails when
# /usr/share/zoneinfo/Europe/Berlin cannot be read.
mkdir -p "$rootfs/switchboard-test"
cp "$src/examples/routes.yaml" "$rootfs/switchboard-test/routes.yaml"
cat >"$rootfs/switchboard-test/zones.yaml" <<'EOF'
routes:
  - name: local-hour
    source: {subject: clock.>}
    transform:
      - use: berlin-hour
    destinations:
      - subject: clock.out
transforms:
  - name: berlin-hour
    steps:
      - set: {hour: 'timestamp(event.at).getHours("Europe/Berlin")'}
    tests:
      - name: reads the time-zone database
        input: {data: {at: "2026-07-01T12:00:00Z"}}
        expect: {data: {at: "2026-07-01T12:00:00Z", hour: 14}}
EOF

# What the Dockerfile points OpenSSL at must be in the folder.
cert_file=$(sed -n 's/^ENV SSL_CERT_FILE=\([^ ]*\).*/\1/p' "$src/Dockerfile" || true)
if [[ -z $cert_file ]]; then
  fail "the Dockerfile sets no SSL_CERT_FILE"
elif [[ ! -s $rootfs$cert_file ]]; then
  fail "SSL_CERT_FILE=$cert_file is not in the staged files"
fi

loader=$rootfs/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
[[ -x $loader ]] || { fail "no loader in the staged files ($loader)"; exit 1; }
libpath=$rootfs/usr/lib/x86_64-linux-gnu

# run_isolated NAME ARGS...: runs /usr/local/bin/NAME from the folder with its loader.
# The loader still falls back to the system's default directories for a library the
# folder lacks, so LD_DEBUG=libs shows where each one came from and any outside path
# fails the test.
run_isolated() {
  local name=$1 out=$work/$1.out debug=$work/$1.debug status=0
  shift
  env -i LD_DEBUG=libs LD_DEBUG_OUTPUT="$debug" "$loader" --inhibit-cache --library-path "$libpath" \
    "$rootfs/usr/local/bin/$name" "$@" >"$out" 2>&1 || status=$?
  local loaded outside
  loaded=$(cat "$debug".* 2>/dev/null | sed -n 's/.*calling init: //p' | sort -u)
  rm -f "$debug".*
  outside=$(grep -v "^$rootfs/" <<<"$loaded" || true)
  if [[ -z $loaded ]]; then
    fail "$name $*: the loader reported no libraries (LD_DEBUG ignored?)"
  elif [[ -n $outside ]]; then
    fail "$name $*: libraries loaded from outside the staged files:"$'\n'"$outside"
  fi
  if grep -q 'error while loading shared libraries' "$out"; then
    fail "$name $*: $(cat "$out")"
  fi
  echo "$status"
}

echo "== with the folder's loader, --library-path into the folder and env -i"
status=$(run_isolated switchboard-router check --routes "$rootfs/switchboard-test/routes.yaml")
[[ $status -eq 0 ]] || fail "switchboard-router check examples/routes.yaml exited $status: $(cat "$work/switchboard-router.out")"
echo "   switchboard-router check --routes examples/routes.yaml: exit $status"
status=$(run_isolated switchboard-router run --help)
[[ $status -eq 0 ]] || fail "switchboard-router run --help exited $status: $(cat "$work/switchboard-router.out")"
grep -q -- '--metrics-addr' "$work/switchboard-router.out" || fail "run --help did not print the flags"
echo "   switchboard-router run --help: exit $status"
if [[ -x $rootfs/usr/local/bin/switchboard-controller ]]; then
  status=$(run_isolated switchboard-controller --help)
  # Only the libraries are under test here; the controller's own exit code for --help
  # is its business, as long as it started.
  [[ $status -ne 127 ]] || fail "switchboard-controller did not start: $(cat "$work/switchboard-controller.out")"
  echo "   switchboard-controller --help: exit $status"
fi

# chroot: the paths debian:bookworm-slim has and the script does not copy (merged /usr).
ln -s usr/lib "$rootfs/lib"
ln -s usr/lib64 "$rootfs/lib64"
chroot_cmd=()
if [[ $(id -u) -eq 0 ]]; then
  chroot_cmd=("$(command -v chroot)")
elif unshare --map-root-user true 2>/dev/null; then
  chroot_cmd=("$(command -v unshare)" --map-root-user "$(command -v chroot)")
fi
if [[ ${#chroot_cmd[@]} -gt 0 ]]; then
  echo "== chrooted into the folder, env -i"
  for routes in routes.yaml zones.yaml; do
    if out=$(env -i "${chroot_cmd[@]}" "$rootfs" /usr/local/bin/switchboard-router check \
      --routes "/switchboard-test/$routes" 2>&1); then
      echo "   switchboard-router check --routes $routes: $out"
    else
      fail "chrooted switchboard-router check --routes $routes: $out"
    fi
  done
  if out=$(env -i "${chroot_cmd[@]}" "$rootfs" /usr/local/bin/switchboard-router run --help 2>&1); then
    echo "   switchboard-router run --help: exit 0"
  else
    fail "chrooted switchboard-router run --help: $out"
  fi
  if [[ -x $rootfs/usr/local/bin/switchboard-controller ]]; then
    status=0
    out=$(env -i "${chroot_cmd[@]}" "$rootfs" /usr/local/bin/switchboard-controller --help 2>&1) || status=$?
    [[ $status -ne 127 ]] || fail "chrooted switchboard-controller did not start: $out"
    echo "   switchboard-controller --help: exit $status"
  fi
else
  echo "== chroot: not possible here (not root, no user namespaces); the loader check above stands alone"
fi

if [[ $failures -gt 0 ]]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "ok: the staged runtime files run the binaries on their own"
