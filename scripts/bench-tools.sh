#!/usr/bin/env bash
# Builds what the data-plane benchmark runs that does not come from this repository's
# CMake build or Debian: the nats CLI (`nats bench`, from the Go module proxy), the Go
# relay (bench/peers/go-relay, nats.go from the Go module proxy) and the Node.js relay's
# dependencies (bench/peers/node-relay, the `nats` package from npm). Everything is pinned
# and cached outside the checkout, one directory per tool and version; builds happen in a
# temporary copy, so the checkout never gets a go.sum or node_modules change.
#
# Usage:
#   scripts/bench-tools.sh [build] [TOOL...]  build what is missing, print KEY=path lines
#   scripts/bench-tools.sh paths              print KEY=path lines without building; the
#                                             path is empty for a tool not cached yet
# TOOLs: nats-cli, go-relay, node-relay (default: all). Keys: NATS_CLI, GO_RELAY,
# NODE_RELAY_MODULES (a node_modules folder for NODE_PATH). A tool that cannot be built
# is reported on stderr and printed with an empty path; the exit status is still 0.
#
# Environment:
#   SWITCHBOARD_TOOLS_CACHE   cache root (default ~/.cache/switchboard-tools)
#   SWITCHBOARD_NATSCLI_VERSION  override the nats CLI pin
set -euo pipefail

NATSCLI_VERSION=${SWITCHBOARD_NATSCLI_VERSION:-v0.5.1}
CACHE=${SWITCHBOARD_TOOLS_CACHE:-$HOME/.cache/switchboard-tools}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GO_SRC=$ROOT/bench/peers/go-relay
NODE_SRC=$ROOT/bench/peers/node-relay

log() { echo "bench-tools: $*" >&2; }

# Our own relays are versioned by their pinned dependency and a hash of their sources, so
# an edit gets a fresh build and an old cache entry is never mistaken for the new code.
content_hash() { cat "$@" | sha256sum | cut -c1-12; }
go_relay_dir() {
  local natsgo
  natsgo=$(awk '$1 == "require" && $2 == "github.com/nats-io/nats.go" {print $3}' "$GO_SRC/go.mod")
  echo "$CACHE/go-relay-nats.go-$natsgo-$(content_hash "$GO_SRC/go.mod" "$GO_SRC/go.sum" "$GO_SRC/main.go")"
}
node_relay_dir() {
  local natsjs
  natsjs=$(sed -n 's/^ *"nats": *"\([^"]*\)".*/\1/p' "$NODE_SRC/package.json" | head -1)
  echo "$CACHE/node-relay-nats-$natsjs-$(content_hash "$NODE_SRC/package.json" "$NODE_SRC/package-lock.json")"
}

NATS_CLI=$CACHE/nats-$NATSCLI_VERSION/bin/nats
GO_RELAY=$(go_relay_dir)/bin/go-relay
NODE_MODULES=$(node_relay_dir)/node_modules

cached() {
  case $1 in
    nats-cli) [[ -x $NATS_CLI ]] ;;
    go-relay) [[ -x $GO_RELAY ]] ;;
    node-relay) [[ -f $NODE_MODULES/nats/package.json ]] ;;
  esac
}

print_paths() {
  local t key path
  for t in nats-cli go-relay node-relay; do
    case $t in
      nats-cli) key=NATS_CLI path=$NATS_CLI ;;
      go-relay) key=GO_RELAY path=$GO_RELAY ;;
      node-relay) key=NODE_RELAY_MODULES path=$NODE_MODULES ;;
    esac
    if cached "$t"; then echo "$key=$path"; else echo "$key="; fi
  done
}

WORK=""
cleanup() { if [[ -n $WORK ]]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT

go_env() {
  # GOTOOLCHAIN=local: never swap compilers behind our back; -mod=mod: the temporary
  # wrapper module may be completed freely; GOPROXY without ",direct": from the Go module
  # proxy (or SWITCHBOARD_GOPROXY, a mirror of it) and nowhere else.
  env GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local GOMAXPROCS=2 GOWORK=off \
    GOPROXY="${SWITCHBOARD_GOPROXY:-https://proxy.golang.org}" "$@"
}

# Moves a finished build into place with a rename, so an interrupted one never looks cached.
install_file() {
  local built=$1 dest=$2
  mkdir -p "$(dirname "$dest")"
  mv -f "$built" "$dest.tmp.$$"
  mv -f "$dest.tmp.$$" "$dest"
}

build_nats_cli() {
  command -v go >/dev/null || { log "go is not installed: cannot build the nats CLI"; return 1; }
  local dir="$WORK/natscli" start
  mkdir -p "$dir"
  printf 'module switchboard.bench/natscli\n\ngo 1.26.0\n\nrequire github.com/nats-io/natscli %s\n' \
    "$NATSCLI_VERSION" >"$dir/go.mod"
  log "building the nats CLI $NATSCLI_VERSION (about 2 minutes on 2 cores)"
  start=$(date +%s)
  (cd "$dir" && go_env go build -trimpath -ldflags "-s -w" -o "$WORK/nats" github.com/nats-io/natscli/nats) ||
    { log "build of the nats CLI $NATSCLI_VERSION failed"; return 1; }
  install_file "$WORK/nats" "$NATS_CLI"
  log "nats CLI $NATSCLI_VERSION built in $(($(date +%s) - start))s -> $NATS_CLI"
}

build_go_relay() {
  command -v go >/dev/null || { log "go is not installed: cannot build the Go relay"; return 1; }
  local dir="$WORK/go-relay"
  mkdir -p "$dir"
  cp "$GO_SRC/go.mod" "$GO_SRC/go.sum" "$GO_SRC/main.go" "$dir/"
  log "building the Go relay ($(go version | cut -d' ' -f3))"
  (cd "$dir" && go_env go build -trimpath -o "$WORK/go-relay-bin" .) || { log "build of the Go relay failed"; return 1; }
  install_file "$WORK/go-relay-bin" "$GO_RELAY"
  log "Go relay -> $GO_RELAY"
}

build_node_relay() {
  command -v npm >/dev/null || { log "npm is not installed: cannot install the Node.js relay's dependencies"; return 1; }
  local dir="$WORK/node-relay" dest
  dest=$(node_relay_dir)
  mkdir -p "$dir"
  cp "$NODE_SRC/package.json" "$NODE_SRC/package-lock.json" "$dir/"
  log "installing the Node.js relay's dependencies (npm ci, node $(node --version))"
  (cd "$dir" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2) ||
    { log "npm ci for the Node.js relay failed"; return 1; }
  mkdir -p "$dest"
  rm -rf "$dest/node_modules.tmp.$$"
  mv "$dir/node_modules" "$dest/node_modules.tmp.$$"
  rm -rf "$dest/node_modules"
  mv "$dest/node_modules.tmp.$$" "$dest/node_modules"
  log "Node.js relay dependencies -> $dest/node_modules"
}

build() {
  local tools=("$@") t
  [[ ${#tools[@]} -gt 0 ]] || tools=(nats-cli go-relay node-relay)
  mkdir -p "$CACHE"
  local missing=()
  for t in "${tools[@]}"; do
    case $t in nats-cli | go-relay | node-relay) ;; *) log "unknown tool '$t'"; exit 2 ;; esac
    cached "$t" || missing+=("$t")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    # Two benchmark runs starting together must not build the same thing twice.
    exec 9>"$CACHE/.bench-tools.lock"
    flock 9
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench-tools.XXXXXX")
    for t in "${missing[@]}"; do
      cached "$t" && continue
      case $t in
        nats-cli) build_nats_cli || true ;;
        go-relay) build_go_relay || true ;;
        node-relay) build_node_relay || true ;;
      esac
    done
    flock -u 9
    exec 9>&-
  fi
  print_paths
}

case ${1:-build} in
  build) shift || true; build "$@" ;;
  paths) print_paths ;;
  -h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *) log "unknown command '$1' (try --help)"; exit 2 ;;
esac
