#!/usr/bin/env bash
# The Dockerfile's invariants, checked without a container engine:
#   - every base image is pinned by digest (no bare tag, no `latest`), and the build and
#     runtime stages are the same Debian bookworm snapshot (bookworm-DATE, -slim);
#   - the build stage runs the same scripts as CI: scripts/install-deps.sh, `make build`
#     (so the configure and build commands are the Makefile's), and stages the runtime
#     files with scripts/runtime-rootfs.sh, which also checks the runtime COPY;
#   - the runtime stage runs nothing (no RUN, no shell form), runs as a numeric non-root
#     user, and carries the OCI labels source, version (the CMake project's) and licenses;
#   - no secrets: no ENV/ARG/LABEL named like a password, token or key, no ADD of URLs,
#     no copied key or credential files; .dockerignore keeps local builds and .git out.
#
# Usage: dockerfile_test.sh [DOCKERFILE]
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
dockerfile=${1:-$src/Dockerfile}
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

[[ -f $dockerfile ]] || { echo "FAIL: no Dockerfile at $dockerfile" >&2; exit 1; }

# Instructions one a line: comments dropped, continuation lines joined.
all=$(sed -e 's/^[[:space:]]*#.*$//' "$dockerfile" | awk '
  /\\[[:space:]]*$/ { sub(/\\[[:space:]]*$/, " "); buf = buf $0; next }
  { line = buf $0; buf = ""; if (line ~ /[^[:space:]]/) print line }')
# The last stage, from its FROM on.
runtime=$(awk 'toupper($1) == "FROM" { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' <<<"$all")
build=$(awk 'toupper($1) == "FROM" { n++ } n == 1' <<<"$all")

# --- base images -------------------------------------------------------------------------
froms=$(grep -Ei '^FROM[[:space:]]' <<<"$all" || true)
[[ $(grep -c . <<<"$froms") -ge 2 ]] || fail "expected a build and a runtime stage, found: $froms"
stages=$(sed -nE 's/^FROM .* [Aa][Ss] ([A-Za-z0-9_-]+)$/\1/p' <<<"$froms")
while read -r _ image _; do
  [[ $image == --platform=* ]] && { fail "FROM with --platform is not expected: $image"; continue; }
  if grep -qx -- "$image" <<<"$stages"; then continue; fi  # an earlier stage
  if ! [[ $image =~ ^[a-z0-9./_-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$ ]]; then
    fail "base image not pinned as name:tag@sha256:<digest>: $image"
  fi
  [[ $image == *:latest* ]] && fail "base image uses latest: $image"
done <<<"$froms"
build_image=$(awk 'toupper($1) == "FROM" { print $2; exit }' <<<"$all")
runtime_image=$(awk 'toupper($1) == "FROM" { last = $2 } END { print last }' <<<"$all")
build_date=$(sed -nE 's/^debian:bookworm-([0-9]{8})@.*/\1/p' <<<"$build_image")
runtime_date=$(sed -nE 's/^debian:bookworm-([0-9]{8})-slim@.*/\1/p' <<<"$runtime_image")
if [[ -z $build_date ]]; then
  fail "the build stage is not debian:bookworm-<date>@sha256:...: $build_image"
elif [[ -z $runtime_date ]]; then
  fail "the runtime stage is not debian:bookworm-<date>-slim@sha256:...: $runtime_image"
elif [[ $build_date != "$runtime_date" ]]; then
  fail "build ($build_date) and runtime ($runtime_date) stages are different snapshots"
else
  ok "bases pinned by digest, one bookworm snapshot ($build_date)"
fi
grep -qiw latest <<<"$froms" && fail "a FROM line mentions latest"

# --- the build runs what CI runs ---------------------------------------------------------
before=$failures
grep -Eq '^RUN (bash )?(\./)?scripts/install-deps\.sh( |$)' <<<"$build" ||
  fail "the build stage does not run scripts/install-deps.sh"
grep -Eq '^RUN make build( |$)' <<<"$build" ||
  fail "the build stage does not run 'make build' (the Makefile's configure and build)"
grep -Eq '^build:' "$src/Makefile" || fail "the Makefile has no build target"
# CI (.ci/run) exports CI=...; the Makefile turns it into -DSWITCHBOARD_WERROR=ON.
ci_value=$(sed -nE 's/^export CI=([A-Za-z0-9]+)$/\1/p' "$src/.ci/run" 2>/dev/null || true)
if [[ -n $ci_value ]] && ! grep -Eq "^RUN make build( .*)? CI=$ci_value( |$)" <<<"$build"; then
  fail "the build stage's make build does not set CI=$ci_value as .ci/run does"
fi
grep -Eqi '^RUN .*(cmake|ninja|apt-get|apt |pip|curl|wget)' <<<"$build" &&
  fail "the build stage runs its own build or install commands beside the shared scripts: $(grep -Ei '^RUN .*(cmake|ninja|apt-get|apt |pip|curl|wget)' <<<"$build")"
if out=$(bash "$src/scripts/runtime-rootfs.sh" check-dockerfile "$dockerfile" 2>&1); then
  ok "$out"
else
  fail "$out"
fi
[[ $failures -eq $before ]] && ok "build stage: scripts/install-deps.sh, make build, scripts/runtime-rootfs.sh"

# --- the runtime stage ---------------------------------------------------------------------
before=$failures
grep -Eqi '^RUN[[:space:]]' <<<"$runtime" && fail "the runtime stage runs commands (it needs no shell): $(grep -Ei '^RUN' <<<"$runtime")"
for inst in ENTRYPOINT CMD HEALTHCHECK; do
  line=$(grep -Ei "^${inst}[[:space:]]" <<<"$runtime" | tail -1 || true)
  [[ -z $line ]] && continue
  [[ $inst == HEALTHCHECK && $line =~ ^HEALTHCHECK[[:space:]]+NONE ]] && continue
  args=${line#* }
  [[ $inst == HEALTHCHECK ]] && args=${args#*CMD }
  [[ $args == \[* ]] || fail "$inst in shell form needs a shell at run time: $line"
done
user=$(grep -Ei '^USER[[:space:]]' <<<"$runtime" | tail -1 | awk '{ print $2 }' || true)
if [[ -z $user ]]; then
  fail "the runtime stage sets no USER (it would run as root)"
elif ! [[ $user =~ ^[0-9]+(:[0-9]+)?$ ]]; then
  fail "USER must be numeric (uid[:gid]), so that runAsNonRoot can verify it: $user"
elif [[ ${user%%:*} -eq 0 || ${user#*:} == 0 ]]; then
  fail "USER is root: $user"
fi
# Nothing after USER may switch back.
tail_after_user=$(awk -v u="USER $user" 'found { print } $0 == u { found = 1 }' <<<"$runtime")
grep -Eqi '^USER[[:space:]]' <<<"$tail_after_user" && fail "USER is changed again after $user"
[[ $failures -eq $before ]] && ok "runs as $user, no RUN and exec-form ENTRYPOINT/CMD in the runtime stage"
before=$failures

project_version=$(sed -nE 's/^project\(switchboard VERSION ([0-9.]+).*/\1/p' "$src/CMakeLists.txt")
for label in source version licenses; do
  grep -Eq "org\.opencontainers\.image\.$label=" <<<"$runtime" || fail "no OCI label org.opencontainers.image.$label"
done
grep -Eq "^ARG VERSION=$project_version$" <<<"$runtime" ||
  fail "ARG VERSION does not default to the CMake project version $project_version"
[[ $failures -eq $before ]] && ok "OCI labels source, version ($project_version), licenses"

# --- secrets ----------------------------------------------------------------------------
before=$failures
secretish='(PASS(WORD)?|PASSWD|SECRET|TOKEN|CREDENTIAL|CREDS|API_?KEY|PRIVATE_?KEY|NKEY|SEED)'
grep -Ei "^(ENV|ARG|LABEL)[[:space:]].*$secretish" <<<"$all" &&
  fail "ENV, ARG or LABEL named like a secret (build arguments and ENV are readable in the image)"
grep -Ei '^ADD[[:space:]].*(https?|ftp|git)(://|@)' <<<"$all" && fail "ADD of a URL (unverified download)"
grep -Ei '^ADD[[:space:]]' <<<"$all" >/dev/null && fail "ADD is not needed (COPY copies; ADD unpacks and downloads)"
grep -Ei '^(COPY|ADD)[[:space:]].*\.(pem|key|creds|nk|p12|pfx)([[:space:]]|$)|(^|[[:space:]])\.env([[:space:]]|$)|id_rsa|\.netrc|\.npmrc' <<<"$all" &&
  fail "a key or credential file is copied into the image"
[[ $failures -eq $before ]] && ok "no secrets in ENV/ARG/LABEL, no ADD of URLs, no key files"

# --- the build context ------------------------------------------------------------------
if [[ -f $src/.dockerignore ]]; then
  for pattern in .git build 'build-\*'; do
    grep -Eqx "/?$pattern/?" "$src/.dockerignore" || fail ".dockerignore does not leave out $pattern"
  done
else
  fail "no .dockerignore: local build folders would enter the context"
fi

if [[ $failures -gt 0 ]]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "ok: the Dockerfile keeps its invariants"

# Checking the project's Dockerfile (no argument): also show that each check catches what
# it is for, on copies of the Dockerfile with one thing broken.
[[ $# -eq 0 ]] || exit 0
echo "== each check catches its mistake"
work=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-dockerfile.XXXXXX")
trap 'rm -rf "$work"' EXIT
n=0
# must_fail WHAT EXPECTED-MESSAGE SED-SCRIPT
must_fail() {
  local what=$1 expected=$2 script=$3 copy out
  n=$((n + 1))
  copy=$work/Dockerfile.$n
  sed -E "$script" "$dockerfile" >"$copy"
  if cmp -s "$copy" "$dockerfile"; then
    fail "mutation '$what' changed nothing"
    return
  fi
  if out=$(bash "$0" "$copy" 2>&1); then
    fail "not caught: $what"
  elif ! grep -q -- "$expected" <<<"$out"; then
    fail "$what: caught, but not by the expected check ('$expected'):"$'\n'"$out"
  else
    echo "   caught: $what"
  fi
}
must_fail "a tag without digest" "not pinned" '0,/^FROM /s/@sha256:[0-9a-f]{64}//'
must_fail "latest" "latest" 's/bookworm-[0-9]{8}-slim@/latest@/'
must_fail "two snapshots" "different snapshots" 's/bookworm-[0-9]{8}-slim/bookworm-20000101-slim/'
must_fail "USER by name" "numeric" 's/^USER .*/USER nonroot/'
must_fail "USER root" "root" 's/^USER .*/USER 0:0/'
must_fail "no USER" "sets no USER" '/^USER /d'
must_fail "a password in ENV" "named like a secret" 's/^ENV SSL_CERT_FILE=.*/ENV NATS_PASSWORD=changeme/'
must_fail "ADD of a URL" "ADD of a URL" '$a ADD https://example.com/tool.tar.gz /opt/'
must_fail "a key file copied" "key or credential" '/^COPY --from=/a COPY nats.creds /etc/nats.creds'
must_fail "RUN in the runtime stage" "runs commands" '$a RUN rm -rf /tmp/cache'
must_fail "shell-form ENTRYPOINT" "shell form" 's|^ENTRYPOINT .*|ENTRYPOINT /usr/local/bin/switchboard-router|'
must_fail "its own package install" "install-deps" 's|^RUN bash scripts/install-deps.sh.*|RUN apt-get update \&\& apt-get install -y cmake|'
must_fail "a build unlike CI's" "as .ci/run does" 's/ CI=true//'
must_fail "its own cmake commands" "make build" 's|^RUN make build.*|RUN cmake -S . -B build -G Ninja \&\& cmake --build build|'
must_fail "a runtime file copied by hand" "exactly" '/^COPY --from=/a COPY --from=build /src/build/bin/switchboard-router /usr/local/bin/'
must_fail "a binary left out" "missing-ok" 's|--out /rootfs|--out /rootfs --missing-ok switchboard-controller|'
must_fail "a version not the project's" "project version" 's/^ARG VERSION=.*/ARG VERSION=9.9.9/'
must_fail "no licenses label" "licenses" 's/org\.opencontainers\.image\.licenses=/org.opencontainers.image.license=/'
if [[ $failures -gt 0 ]]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "ok: $n broken copies, each refused by the check meant for it"
