#!/usr/bin/env bash
# Builds the real Kubernetes tools the e2e tests run against (kube-apiserver,
# kube-controller-manager for garbage collection, etcd, kubectl, helm) from the Go module proxy at pinned versions, and caches
# them outside the checkout, keyed by tool and version.
#
# Usage:
#   scripts/test-tools.sh [build]   build what is missing, print KEY=path lines
#   scripts/test-tools.sh env       same, but print `export KEY=path` lines, for
#                                   eval "$(scripts/test-tools.sh env)"
#   scripts/test-tools.sh paths     print KEY=path lines without building;
#                                   exit 1 if any tool is not cached yet
#
# Progress goes to stderr so that stdout stays machine-readable.
#
# Environment:
#   SWITCHBOARD_TOOLS_CACHE   cache root (default ~/.cache/switchboard-tools)
#   SWITCHBOARD_K8S_VERSION, SWITCHBOARD_ETCD_VERSION, SWITCHBOARD_HELM_VERSION
#                             override the pins (each version gets its own
#                             cache directory, so switching back is free)
set -euo pipefail

# Pins. 1.37.2 is the newest Kubernetes the proxy serves that builds with Go
# 1.26; etcd must be >= 3.5.13 because kube-apiserver relies on watch progress
# requests.
K8S_VERSION=${SWITCHBOARD_K8S_VERSION:-v1.37.2}
ETCD_VERSION=${SWITCHBOARD_ETCD_VERSION:-v3.6.16}
HELM_VERSION=${SWITCHBOARD_HELM_VERSION:-v3.22.0}
# The Prometheus Operator's CRDs (ServiceMonitor, PodMonitor, PrometheusRule), so that
# the chart's monitoring objects are validated by their real schemas. Its Go module
# carries them as YAML files; nothing is compiled.
PROM_OPERATOR_VERSION=${SWITCHBOARD_PROM_OPERATOR_VERSION:-v0.85.0}

CACHE=${SWITCHBOARD_TOOLS_CACHE:-$HOME/.cache/switchboard-tools}

log() { echo "test-tools: $*" >&2; }
die() { log "error: $*"; exit 1; }

bin_path() { echo "$CACHE/$1-$2/bin/$1"; }

KUBE_APISERVER=$(bin_path kube-apiserver "$K8S_VERSION")
ETCD=$(bin_path etcd "$ETCD_VERSION")
KUBECTL=$(bin_path kubectl "$K8S_VERSION")
KUBE_CONTROLLER_MANAGER=$(bin_path kube-controller-manager "$K8S_VERSION")
MONITORING_CRDS=$CACHE/prometheus-operator-crds-$PROM_OPERATOR_VERSION/crds
# The "-k8s" suffix marks builds that carry the Kubernetes version helm's own Makefile
# stamps in (without it `helm template` assumes Kubernetes v1.20).
HELM=$(bin_path helm "$HELM_VERSION-k8s")

print_paths() {
  local prefix=$1
  echo "${prefix}KUBE_APISERVER=$KUBE_APISERVER"
  echo "${prefix}ETCD=$ETCD"
  echo "${prefix}KUBECTL=$KUBECTL"
  echo "${prefix}KUBE_CONTROLLER_MANAGER=$KUBE_CONTROLLER_MANAGER"
  echo "${prefix}MONITORING_CRDS=$MONITORING_CRDS"
  echo "${prefix}HELM=$HELM"
}

all_cached() {
  [[ -x $KUBE_APISERVER && -x $ETCD && -x $KUBECTL && -x $HELM && -x $KUBE_CONTROLLER_MANAGER
     && -f $MONITORING_CRDS/monitoring.coreos.com_servicemonitors.yaml ]]
}

# The checkout must stay clean and other engineers build in it concurrently,
# so wrapper modules live in a private temp dir.
WORK=""
cleanup() { if [[ -n $WORK ]]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT

go_env() {
  # GOTOOLCHAIN=local: dependencies declare newer toolchain lines (etcd says
  # go1.26.10) and fetching a toolchain would silently swap compilers.
  # GOMAXPROCS=2 keeps the link step of kube-apiserver from starving the
  # machine when other builds run next to it.
  # GOPROXY without ",direct": modules come from the Go module proxy and nowhere
  # else (Go's default falls back to the source repositories); a mirror of the
  # proxy can be named with SWITCHBOARD_GOPROXY.
  env GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local GOMAXPROCS=2 \
    GOWORK=off GOPROXY="${SWITCHBOARD_GOPROXY:-https://proxy.golang.org}" "$@"
}

# install_binary TOOL VERSION BUILT_FILE SECONDS: moves a finished build into
# place with a rename, so an interrupted build never looks cached.
install_binary() {
  local tool=$1 version=$2 built=$3 secs=$4
  local dir="$CACHE/$tool-$version"
  [[ -f $built && -x $built ]] || die "$tool build produced no executable at $built"
  mkdir -p "$dir/bin"
  mv -f "$built" "$dir/bin/$tool.tmp.$$"
  mv -f "$dir/bin/$tool.tmp.$$" "$dir/bin/$tool"
  {
    echo "tool=$tool"
    echo "version=$version"
    echo "build_seconds=$secs"
    echo "go=$(go env GOVERSION)"
    echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host=$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  } >"$dir/build-info.txt"
  log "$tool $version built in ${secs}s -> $dir/bin/$tool"
}

# k8s.io/kubernetes pins every staging module at v0.0.0 and resolves them with
# replace lines that only work inside its own tree; a consumer has to map each
# of them to the published v0.<minor>.<patch>. The list is taken from the
# downloaded go.mod so it follows whatever the pinned release contains.
k8s_wrapper() {
  local dir="$WORK/k8s"
  [[ -f $dir/go.mod ]] && { echo "$dir"; return; }
  mkdir -p "$dir"
  local gomod staging_version
  gomod=$(cd "$dir" && go_env go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  [[ -f $gomod ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION"
  staging_version="v0.${K8S_VERSION#v1.}"
  {
    echo "module switchboard.test/k8s-tools"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    awk -v v="$staging_version" '
      $2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, v }
    ' "$gomod"
    echo ")"
  } >"$dir/go.mod"
  local n
  n=$(grep -c ' => ' "$dir/go.mod" || true)
  [[ $n -gt 0 ]] || die "no staging replace lines found in $gomod"
  log "k8s wrapper module: $n staging modules at $staging_version"
  echo "$dir"
}

k8s_ldflags() {
  local minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  local flags="-s -w" pkg
  # client-go carries its own copy of the version variables; kubectl reports
  # the client version from it.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1"
    flags+=" -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  echo "$flags"
}

build_k8s_tool() {
  local tool=$1 dest=$2
  if [[ -x $dest ]]; then log "$tool $K8S_VERSION cached"; return; fi
  local dir start
  dir=$(k8s_wrapper)
  log "building $tool $K8S_VERSION (this takes a while on 2 cores)"
  start=$(date +%s)
  (cd "$dir" && go_env go build -trimpath -ldflags "$(k8s_ldflags)" \
    -o "$WORK/out/$tool" "k8s.io/kubernetes/cmd/$tool") ||
    die "build of $tool $K8S_VERSION failed"
  install_binary "$tool" "$K8S_VERSION" "$WORK/out/$tool" $(($(date +%s) - start))
}

# etcd's server module has relative replace lines, so `go install ...@version`
# refuses it; as a dependency of a wrapper those lines are ignored and the
# published sibling modules at the same version are used.
build_etcd() {
  if [[ -x $ETCD ]]; then log "etcd $ETCD_VERSION cached"; return; fi
  local dir="$WORK/etcd" start
  mkdir -p "$dir"
  printf 'module switchboard.test/etcd\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$ETCD_VERSION" >"$dir/go.mod"
  log "building etcd $ETCD_VERSION"
  start=$(date +%s)
  (cd "$dir" && go_env go build -trimpath -ldflags "-s -w" \
    -o "$WORK/out/etcd" go.etcd.io/etcd/server/v3) ||
    die "build of etcd $ETCD_VERSION failed"
  install_binary etcd "$ETCD_VERSION" "$WORK/out/etcd" $(($(date +%s) - start))
}

build_helm() {
  if [[ -x $HELM ]]; then log "helm $HELM_VERSION cached"; return; fi
  local dir="$WORK/helm" start gomod k8s_minor flags
  mkdir -p "$dir"
  printf 'module switchboard.test/helm\n\ngo 1.26.0\n\nrequire helm.sh/helm/v3 %s\n' \
    "$HELM_VERSION" >"$dir/go.mod"
  # helm's Makefile stamps the Kubernetes minor version of its client-go into the
  # default capabilities that `helm template` and `helm lint` check kubeVersion against.
  gomod=$(cd "$dir" && go_env go mod download -json "helm.sh/helm/v3@$HELM_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  k8s_minor=$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod" | head -n1)
  [[ -n $k8s_minor ]] || die "no k8s.io/client-go requirement in helm's go.mod ($gomod)"
  flags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  local pkg
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    flags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
  done
  log "building helm $HELM_VERSION (Kubernetes 1.$k8s_minor capabilities)"
  start=$(date +%s)
  (cd "$dir" && go_env go build -trimpath -ldflags "$flags" \
    -o "$WORK/out/helm" helm.sh/helm/v3/cmd/helm) ||
    die "build of helm $HELM_VERSION failed"
  install_binary helm "$HELM_VERSION-k8s" "$WORK/out/helm" $(($(date +%s) - start))
}

fetch_monitoring_crds() {
  if [[ -f $MONITORING_CRDS/monitoring.coreos.com_servicemonitors.yaml ]]; then
    log "prometheus-operator CRDs $PROM_OPERATOR_VERSION cached"
    return
  fi
  local dir="$WORK/promop" src
  mkdir -p "$dir"
  printf 'module switchboard.test/promop\n\ngo 1.26.0\n' >"$dir/go.mod"
  log "fetching prometheus-operator $PROM_OPERATOR_VERSION CRDs"
  src=$(cd "$dir" && go_env go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@$PROM_OPERATOR_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  [[ -d $src/example/prometheus-operator-crd ]] ||
    die "prometheus-operator $PROM_OPERATOR_VERSION has no example/prometheus-operator-crd"
  mkdir -p "$MONITORING_CRDS.tmp.$$"
  local kind
  for kind in servicemonitors podmonitors prometheusrules; do
    cp "$src/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$MONITORING_CRDS.tmp.$$/"
  done
  rm -rf "$MONITORING_CRDS"
  mv "$MONITORING_CRDS.tmp.$$" "$MONITORING_CRDS"
}

build_all() {
  command -v go >/dev/null || die "go is not installed"
  command -v flock >/dev/null || die "flock is not installed (util-linux)"
  mkdir -p "$CACHE"
  if all_cached; then
    log "etcd $ETCD_VERSION cached"
    log "helm $HELM_VERSION cached"
    log "kube-apiserver $K8S_VERSION cached"
    log "kubectl $K8S_VERSION cached"
    log "kube-controller-manager $K8S_VERSION cached"
    log "prometheus-operator CRDs $PROM_OPERATOR_VERSION cached"
    return
  fi
  # Two test runs starting together must not both spend half an hour building
  # the same binary: the second waits here and then finds everything cached.
  exec 9>"$CACHE/.lock"
  if ! flock -n 9; then
    log "another build holds $CACHE/.lock; waiting"
    flock 9
  fi
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-tools.XXXXXX")
  mkdir -p "$WORK/out"
  # Smallest first, so a broken environment shows up before the long build.
  build_etcd
  build_helm
  build_k8s_tool kube-apiserver "$KUBE_APISERVER"
  build_k8s_tool kubectl "$KUBECTL"
  build_k8s_tool kube-controller-manager "$KUBE_CONTROLLER_MANAGER"
  fetch_monitoring_crds
  flock -u 9
  exec 9>&-
}

case ${1:-build} in
  build) build_all; print_paths "" ;;
  env) build_all; print_paths "export " ;;
  paths)
    print_paths ""
    all_cached || { log "not all tools are cached; run scripts/test-tools.sh"; exit 1; }
    ;;
  -h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (try --help)" ;;
esac
