#!/usr/bin/env bash
# The files of the runtime image, in one place. The Dockerfile's build stage runs
# `stage` into /rootfs and its runtime stage copies that folder whole, so the image
# holds exactly what this script lists; tests/docker/ runs the same `stage` on a local
# build and starts the binaries from the result with no other library in reach.
#
# Usage:
#   scripts/runtime-rootfs.sh stage --bin-dir DIR --out DIR [--missing-ok NAME]...
#       Copies into the empty or new folder OUT, at their paths in the image:
#         usr/local/bin/NAME      each of the binaries below, from --bin-dir
#         the shared libraries    every one `ldd` lists for them, with the symbolic
#                                 links that lead to it (soname -> file), under the
#                                 real directory (usr/lib/..., never /lib: the base
#                                 image's /lib is a link to usr/lib and must stay one)
#         usr/share/zoneinfo/     CEL timestamp functions read time zones from here
#         etc/ssl/certs/ca-certificates.crt
#                                 NATS TLS without --nats-tls-ca verifies the server
#                                 against OpenSSL's default store (the Dockerfile sets
#                                 SSL_CERT_FILE to this file; slim has no CA bundle)
#       --missing-ok NAME lets a binary be absent (printed, not copied).
#   scripts/runtime-rootfs.sh binaries
#       Prints the binaries' names, one a line.
#   scripts/runtime-rootfs.sh check-dockerfile [FILE]
#       Checks that FILE (default: the Dockerfile beside scripts/) stages with this
#       script into /rootfs, that its last stage copies /rootfs and nothing else, and
#       that its ENTRYPOINT is one of the binaries.
set -euo pipefail

BINARIES=(switchboard-router switchboard-controller)
STAGED=/rootfs  # where the Dockerfile's build stage puts the folder
DATA_FILES=(/usr/share/zoneinfo /etc/ssl/certs/ca-certificates.crt)

die() { echo "runtime-rootfs: $*" >&2; exit 1; }

# copy_with_links PATH OUT: copies PATH into OUT at its canonical directory; a symbolic
# link is copied as a link and its target is copied the same way, to the real file.
copy_with_links() {
  local path=$1 out=$2 dir name target hops=0
  dir=$(readlink -f "$(dirname "$path")") || die "no directory for $path"
  name=$(basename "$path")
  while :; do
    [[ -e $dir/$name ]] || die "missing: $dir/$name"
    mkdir -p "$out$dir"
    if [[ -L $dir/$name ]]; then
      cp -P "$dir/$name" "$out$dir/$name"
      target=$(readlink "$dir/$name")
      [[ $target == /* ]] || target=$dir/$target
      dir=$(readlink -f "$(dirname "$target")")
      name=$(basename "$target")
      hops=$((hops + 1))
      [[ $hops -lt 16 ]] || die "too many symbolic links from $path"
    else
      cp -p "$dir/$name" "$out$dir/$name"
      return
    fi
  done
}

# shared_libraries BINARY: the paths ldd resolves, the loader included; fails on any
# library ldd cannot find.
shared_libraries() {
  local bin=$1 out
  out=$(ldd "$bin") || die "ldd failed on $bin"
  if grep -q 'not found' <<<"$out"; then
    die "$bin needs libraries that are not installed:"$'\n'"$(grep 'not found' <<<"$out")"
  fi
  # "libx.so.1 => /path (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"; the vDSO has
  # no file.
  awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out"
}

stage() {
  local bin_dir="" out="" missing_ok=()
  while [[ $# -gt 0 ]]; do
    case $1 in
      --bin-dir) bin_dir=${2:?}; shift 2 ;;
      --out) out=${2:?}; shift 2 ;;
      --missing-ok) missing_ok+=("${2:?}"); shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [[ -n $bin_dir && -n $out ]] || die "stage needs --bin-dir and --out"
  [[ -d $bin_dir ]] || die "no such folder: $bin_dir"
  if [[ -e $out ]] && [[ -n $(ls -A "$out") ]]; then die "$out is not empty"; fi
  mkdir -p "$out/usr/local/bin"
  out=$(readlink -f "$out")

  local name libs=() allowed m found
  for name in "${BINARIES[@]}"; do
    if [[ ! -x $bin_dir/$name ]]; then
      allowed=no
      for m in "${missing_ok[@]}"; do [[ $m == "$name" ]] && allowed=yes; done
      [[ $allowed == yes ]] || die "no $name in $bin_dir"
      echo "runtime-rootfs: $name is not built; left out (--missing-ok)" >&2
      continue
    fi
    cp -p "$bin_dir/$name" "$out/usr/local/bin/$name"
    found=$(shared_libraries "$bin_dir/$name")
    mapfile -t -O "${#libs[@]}" libs <<<"$found"
  done
  [[ ${#libs[@]} -gt 0 ]] || die "no binary was staged"
  local lib
  for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do copy_with_links "$lib" "$out"; done

  local data
  for data in "${DATA_FILES[@]}"; do
    [[ -e $data ]] || die "missing $data (scripts/install-deps.sh installs it)"
    mkdir -p "$out$(dirname "$data")"
    cp -a "$data" "$out$(dirname "$data")/"
  done
  # The image's paths, for the build log.
  (cd "$out" && find . \( -type f -o -type l \) ! -path './usr/share/zoneinfo/*' | sort | sed 's|^\.||')
  echo "/usr/share/zoneinfo/ ($(find "$out/usr/share/zoneinfo" -type f | wc -l) files)"
}

# The Dockerfile as instructions: comments dropped, continued lines joined.
instructions() {
  sed -e 's/^[[:space:]]*#.*$//' "$1" | awk '
    /\\[[:space:]]*$/ { sub(/\\[[:space:]]*$/, " "); buf = buf $0; next }
    { line = buf $0; buf = ""; if (line ~ /[^[:space:]]/) print line }'
}

check_dockerfile() {
  local file=${1:-$(dirname "$0")/../Dockerfile} errors=0
  [[ -f $file ]] || die "no such file: $file"
  local all last
  all=$(instructions "$file")
  # The last stage: from its FROM to the end.
  last=$(awk 'toupper($1) == "FROM" { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' <<<"$all")
  fail() { echo "check-dockerfile: $*" >&2; errors=$((errors + 1)); }

  grep -Eq "^RUN .*scripts/runtime-rootfs\.sh stage .*--out $STAGED( |$)" <<<"$all" ||
    fail "the build stage must run 'scripts/runtime-rootfs.sh stage ... --out $STAGED'"
  if grep -E '^RUN .*runtime-rootfs\.sh' <<<"$all" | grep -q -- '--missing-ok'; then
    fail "the image must hold every binary: no --missing-ok in the Dockerfile"
  fi
  local copies
  copies=$(grep -Ei '^(COPY|ADD)[[:space:]]' <<<"$last" || true)
  if [[ $(grep -c . <<<"$copies") -ne 1 ]] ||
    ! grep -Eq "^COPY --from=[A-Za-z0-9_-]+ $STAGED/ /$" <<<"$copies"; then
    fail "the runtime stage must copy exactly 'COPY --from=<build stage> $STAGED/ /', found:"$'\n'"$copies"
  fi
  local entry bin found=no
  entry=$(grep -E '^ENTRYPOINT ' <<<"$last" | tail -1 || true)
  for bin in "${BINARIES[@]}"; do
    [[ $entry == "ENTRYPOINT [\"/usr/local/bin/$bin\""* ]] && found=yes
  done
  [[ $found == yes ]] || fail "ENTRYPOINT must be one of /usr/local/bin/{${BINARIES[*]}} in exec form, found: $entry"
  [[ $errors -eq 0 ]] || exit 1
  echo "check-dockerfile: $file stages and copies the runtime files with scripts/runtime-rootfs.sh"
}

case ${1:-} in
  stage) shift; stage "$@" ;;
  binaries) printf '%s\n' "${BINARIES[@]}" ;;
  check-dockerfile) shift; check_dockerfile "$@" ;;
  -h | --help | help | "") sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (try --help)" ;;
esac
