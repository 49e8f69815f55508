#!/usr/bin/env bash
# A throwaway Kubernetes control plane (etcd + kube-apiserver, no controllers,
# no kubelet) for e2e tests. Everything listens on 127.0.0.1 only.
#
# Usage:
#   tests/support/control_plane.sh [start] [DIR]   start; DIR defaults to a new
#                                                  temp dir. Prints KEY=value
#                                                  lines (also kept in DIR/env)
#   tests/support/control_plane.sh stop DIR [--keep]
#                                                  stop both processes, then
#                                                  remove DIR unless --keep
#
# Binaries come from $KUBE_APISERVER and $ETCD, or else from the cache that
# scripts/test-tools.sh fills (this script never builds: a first build takes
# tens of minutes and should be a visible, separate step).
#
# Environment: CONTROL_PLANE_TIMEOUT (seconds to wait for /readyz, default 90).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
MARKER=.switchboard-control-plane

log() { echo "control-plane: $*" >&2; }
die() { log "error: $*"; exit 1; }

resolve_binaries() {
  if [[ -z ${KUBE_APISERVER:-} || -z ${ETCD:-} ]]; then
    local line
    while IFS= read -r line; do
      case $line in
        KUBE_APISERVER=*) : "${KUBE_APISERVER:=${line#*=}}" ;;
        ETCD=*) : "${ETCD:=${line#*=}}" ;;
      esac
    done < <("$REPO/scripts/test-tools.sh" paths 2>/dev/null || true)
  fi
  [[ -x ${KUBE_APISERVER:-} ]] || die "kube-apiserver not found (${KUBE_APISERVER:-unset}); run scripts/test-tools.sh"
  [[ -x ${ETCD:-} ]] || die "etcd not found (${ETCD:-unset}); run scripts/test-tools.sh"
}

# A random high port that nothing accepts on right now. Racy by nature; start
# retries with fresh ports if a process then fails to bind.
USED_PORTS=" "
pick_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 40000))
    [[ $USED_PORTS == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      USED_PORTS+="$p "
      echo "$p"
      return
    fi
  done
  die "no free port found on 127.0.0.1"
}

make_pki() {
  local d=$1/pki
  mkdir -p "$d"
  (
    cd "$d"
    # Short-lived: these only ever secure one test run.
    openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj /CN=switchboard-test-ca \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
      -keyout ca.key -out ca.crt 2>/dev/null

    sign() { # NAME SUBJECT EXTENSIONS
      openssl req -new -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
      printf '%s\n' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    # Our own serving cert, so that the kubeconfig can trust one CA for both
    # directions instead of whatever kube-apiserver would self-sign.
    sign apiserver /CN=kube-apiserver "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
    # system:masters bypasses RBAC, which is what an admin kubeconfig needs.
    sign admin "/O=system:masters/CN=switchboard-admin" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"

    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    chmod 600 ./*.key
  )
}

write_kubeconfig() {
  local dir=$1 url=$2
  cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: switchboard-test
  cluster:
    server: $url
    certificate-authority: $dir/pki/ca.crt
users:
- name: switchboard-admin
  user:
    client-certificate: $dir/pki/admin.crt
    client-key: $dir/pki/admin.key
contexts:
- name: switchboard-test
  context:
    cluster: switchboard-test
    user: switchboard-admin
current-context: switchboard-test
EOF
}

# setsid: the processes must outlive this script (the caller stops them with
# `stop`) and must not get the terminal's SIGINT meant for a test runner.
spawn() { # NAME LOG ARGS...
  local name=$1 logf=$2
  shift 2
  setsid "$@" >"$logf" 2>&1 </dev/null &
  echo $! >"$DIR/$name.pid"
}

alive() { [[ -f $DIR/$1.pid ]] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

wait_http() { # NAME URL DEADLINE CURL_ARGS...
  local name=$1 url=$2 deadline=$3
  shift 3
  while ((SECONDS < deadline)); do
    alive "$name" || return 1
    if [[ $(curl -fsS --max-time 2 "$@" "$url" 2>/dev/null) == ok ]]; then return 0; fi
    # etcd's /health answers JSON, not "ok".
    if [[ $name == etcd ]] && curl -fsS --max-time 2 "$url" 2>/dev/null | grep -q '"health":"true"'; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# Stops one process, but only if the pid still belongs to this control plane:
# a stale pid file must never take down an unrelated process.
stop_one() {
  local name=$1 pidf="$DIR/$1.pid" pid i
  [[ -f $pidf ]] || return 0
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name ($pid) ignored SIGTERM; killing"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidf"
}

stop_all() {
  # apiserver first, so it does not spend its shutdown retrying a dead etcd.
  stop_one kube-apiserver
  stop_one etcd
}

start_once() {
  local etcd_client etcd_peer api_port deadline
  etcd_client=$(pick_port)
  etcd_peer=$(pick_port)
  api_port=$(pick_port)
  rm -rf "$DIR/etcd-data"

  spawn etcd "$DIR/etcd.log" "$ETCD" \
    --name=switchboard-test \
    --data-dir="$DIR/etcd-data" \
    --listen-client-urls="http://127.0.0.1:$etcd_client" \
    --advertise-client-urls="http://127.0.0.1:$etcd_client" \
    --listen-peer-urls="http://127.0.0.1:$etcd_peer" \
    --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer" \
    --initial-cluster="switchboard-test=http://127.0.0.1:$etcd_peer" \
    --unsafe-no-fsync
  deadline=$((SECONDS + TIMEOUT))
  if ! wait_http etcd "http://127.0.0.1:$etcd_client/health" "$deadline"; then
    if alive etcd; then
      log "etcd did not become healthy within ${TIMEOUT}s; last log lines:"
    else
      log "etcd exited; last log lines:"
    fi
    tail -n 20 "$DIR/etcd.log" >&2 || true
    stop_all
    return 1
  fi

  local url="https://127.0.0.1:$api_port" pki="$DIR/pki"
  # The endpoint reconcilers refuse a loopback advertise address, and any
  # other address would leak the host's real IP into the kubernetes Service;
  # with no kube-proxy nothing routes to that Service anyway.
  # PodTemplates bypass the watch cache, so that their watches read etcd
  # directly and a watch from a compacted resourceVersion gets 410 Gone (the
  # cache would serve it from memory); the Kubernetes client tests use them
  # for exactly that, and nothing else here uses PodTemplates.
  spawn kube-apiserver "$DIR/kube-apiserver.log" "$KUBE_APISERVER" \
    --etcd-servers="http://127.0.0.1:$etcd_client" \
    --cert-dir="$DIR/apiserver-certs" \
    --tls-cert-file="$pki/apiserver.crt" \
    --tls-private-key-file="$pki/apiserver.key" \
    --secure-port="$api_port" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --endpoint-reconciler-type=none \
    --service-cluster-ip-range=10.0.0.0/24 \
    --allow-privileged=true \
    --authorization-mode=RBAC \
    --disable-admission-plugins=ServiceAccount \
    --service-account-issuer="$url" \
    --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    --client-ca-file="$pki/ca.crt" \
    --watch-cache-sizes=podtemplates#0
  if ! wait_http kube-apiserver "$url/readyz" "$deadline" \
    --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key"; then
    if alive kube-apiserver; then
      log "kube-apiserver did not become ready within ${TIMEOUT}s; last log lines:"
    else
      log "kube-apiserver exited; last log lines:"
    fi
    tail -n 30 "$DIR/kube-apiserver.log" >&2 || true
    stop_all
    return 1
  fi

  write_kubeconfig "$DIR" "$url"
  {
    echo "CONTROL_PLANE_DIR=$DIR"
    echo "KUBECONFIG=$DIR/kubeconfig"
    echo "KUBE_APISERVER_URL=$url"
    echo "ETCD_URL=http://127.0.0.1:$etcd_client"
    echo "ETCD_PID=$(cat "$DIR/etcd.pid")"
    echo "KUBE_APISERVER_PID=$(cat "$DIR/kube-apiserver.pid")"
  } >"$DIR/env"
  cat "$DIR/env"
}

cmd_start() {
  command -v openssl >/dev/null || die "openssl is required"
  command -v curl >/dev/null || die "curl is required"
  resolve_binaries
  TIMEOUT=${CONTROL_PLANE_TIMEOUT:-90}
  if [[ -n ${1:-} ]]; then
    DIR=$1
    mkdir -p "$DIR"
  else
    DIR=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-cp.XXXXXX")
  fi
  DIR=$(cd "$DIR" && pwd)
  if alive etcd || alive kube-apiserver; then
    die "$DIR already has a running control plane"
  fi
  touch "$DIR/$MARKER"
  # Interrupted while waiting: leave nothing behind.
  trap 'stop_all; exit 130' INT TERM
  make_pki "$DIR"
  local attempt
  for attempt in 1 2 3; do
    if start_once; then
      trap - INT TERM
      log "ready in $DIR (stop with: $0 stop $DIR)"
      return 0
    fi
    # A failed bind is the usual cause: pick_port can race with other tests.
    if grep -qi 'address already in use' "$DIR/etcd.log" "$DIR/kube-apiserver.log" 2>/dev/null; then
      log "port clash, retrying (attempt $attempt)"
      continue
    fi
    break
  done
  die "control plane did not start; logs in $DIR"
}

cmd_stop() {
  [[ -n ${1:-} ]] || die "usage: $0 stop DIR [--keep]"
  DIR=$(cd "$1" && pwd) || die "no such directory: $1"
  [[ -f $DIR/$MARKER ]] || die "$DIR was not made by $0"
  stop_all
  if [[ ${2:-} != --keep ]]; then
    rm -rf "$DIR"
  fi
  log "stopped"
}

case ${1:-start} in
  start) shift || true; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  -h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  /*|./*|../*) cmd_start "$1" ;;
  *) die "unknown command '$1' (try --help)" ;;
esac
