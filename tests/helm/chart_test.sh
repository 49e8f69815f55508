#!/usr/bin/env bash
# The Helm chart against the real tools: helm lint --strict, values.schema.json refusing
# wrong values with a clear message, and every rendered object accepted by a real
# kube-apiserver (kubectl apply --dry-run=server, with the Prometheus Operator's real
# CRDs for the monitoring objects). Then helm install into that apiserver, with the
# example EventRouter and route on, pointed at a nats-server on loopback, and:
#   - the controller runs from the Deployment the chart created (its container's args and
#     env, its ServiceAccount's token: the pod runner, switchboard-pod-run), with the
#     chart's RBAC and nothing more;
#   - the example router's pods run from the Deployment the controller wrote, the same way;
#   - the example EventRoute and EventRouter become Ready, the routes ConfigMap holds the
#     route, and an event goes through the route on the real nats-server;
#   - helm upgrade rolls the controller onto the new args; helm uninstall, with
#     kube-controller-manager's garbage collector collecting what the controller made for
#     the example router, leaves nothing behind in the namespace and only the CRDs in the
#     cluster.
#
# Usage: tests/helm/chart_test.sh [--controller BIN] [--router BIN] [--nats-tool BIN]
#                                 [--pod-run BIN]
#   The binaries default to build/bin/ of the repository (what `make build` makes); CTest
#   passes its own. Tools come from scripts/test-tools.sh's cache.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CHART=${SWITCHBOARD_CHART:-$REPO/helm/switchboard}  # another copy of the chart, for development
CONTROLLER=$REPO/build/bin/switchboard-controller
ROUTER=$REPO/build/bin/switchboard-router
NATS_TOOL=$REPO/build/bin/switchboard-nats
POD_RUN=$REPO/build/bin/switchboard-pod-run
usage() { echo "usage: $0 [--controller BIN] [--router BIN] [--nats-tool BIN] [--pod-run BIN]" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --controller) CONTROLLER=${2:?}; shift 2 ;;
    --router) ROUTER=${2:?}; shift 2 ;;
    --nats-tool) NATS_TOOL=${2:?}; shift 2 ;;
    --pod-run) POD_RUN=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

for bin in "$CONTROLLER" "$ROUTER" "$NATS_TOOL" "$POD_RUN"; do
  [[ -x $bin ]] || fail "$bin is not built (make build, or pass its path)"
done
NATS_SERVER=$(command -v nats-server || echo /usr/sbin/nats-server)
[[ -x $NATS_SERVER ]] || fail "nats-server is not installed (scripts/install-deps.sh installs it)"
eval "$("$REPO/scripts/test-tools.sh" paths 2>/dev/null | sed 's/^/export /')" ||
  fail "test tools are not built; run scripts/test-tools.sh"
[[ -x $HELM && -x $KUBECTL && -x $KUBE_CONTROLLER_MANAGER && -d $MONITORING_CRDS ]] ||
  fail "test tools are not built; run scripts/test-tools.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-chart.XXXXXX")
# Searchable, not readable, by others: the pod runner runs pods as their securityContext's user.
chmod 0711 "$WORK"
CP_DIR=""
declare -A PIDS=()  # name -> pid of every process this script starts
stop_proc() { # NAME: SIGTERM, then wait (the pod runner stops its pods within 10 s)
  local pid=${PIDS[$1]:-} status=0
  [[ -n $pid ]] || return 0
  unset "PIDS[$1]"
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || status=$?
  return "$status"
}
cleanup() {
  local name
  for name in "${!PIDS[@]}"; do stop_proc "$name" || true; done
  if [[ -n $CP_DIR ]]; then "$REPO/tests/support/control_plane.sh" stop "$CP_DIR" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# helm keeps its own state in these folders: keep it out of $HOME.
export HELM_CACHE_HOME=$WORK/helm-cache HELM_CONFIG_HOME=$WORK/helm-config HELM_DATA_HOME=$WORK/helm-data
# The chart links crds/ and the dashboard files from the repository (one source of
# truth); helm notes each link on stderr.
helm() { "$HELM" "$@" 2> >(grep -v 'found symbolic link in path' >&2); }

ALL_ON=(--set controller.replicas=2 --set examples.enabled=true
  --set metrics.serviceMonitor.enabled=true --set metrics.podMonitor.enabled=true
  --set metrics.prometheusRule.enabled=true --set metrics.grafanaDashboard.enabled=true
  --set metrics.serviceMonitor.labels.release=kube-prometheus-stack)

step "helm lint --strict (defaults, everything on, one namespace)"
helm lint --strict "$CHART" >/dev/null || fail "lint with default values"
helm lint --strict "$CHART" "${ALL_ON[@]}" >/dev/null || fail "lint with every option on"
helm lint --strict "$CHART" --set controller.watchNamespace=team-a >/dev/null || fail "lint with watchNamespace"

step "values.schema.json refuses wrong values, saying where and why"
expect_refused() { # WANT ARGS...
  local want=$1 out
  shift
  if out=$(helm template t "$CHART" "$@" 2>&1); then fail "accepted: $*"; fi
  grep -qF -- "$want" <<<"$out" || fail "refusing '$*' should say '$want'; it said: $out"
}
expect_refused "at '/controller/replicas': got string, want integer" --set controller.replicas=two
expect_refused "additional properties 'replica' not allowed" --set controller.replica=2
expect_refused "at '/controller/logLevel'" --set controller.logLevel=loud
expect_refused "at '/metrics/port'" --set metrics.port=80
expect_refused "at '/controller/leaderElection/leaseDuration'" --set controller.leaderElection.leaseDuration=15
expect_refused "at '/image/digest'" --set image.digest=latest
expect_refused "at '/examples/router/natsUrls/0'" --set examples.router.natsUrls[0]=localhost:4222

step "the chart's README lists every value with its default"
# The values as helm sees them, as JSON: a copy of the chart whose only template prints them.
mkdir -p "$WORK/values-chart/templates"
cp "$CHART/Chart.yaml" "$CHART/values.yaml" "$WORK/values-chart/"
echo '{{ toJson .Values }}' >"$WORK/values-chart/templates/values.json"
"$HELM" template v "$WORK/values-chart" | sed -n '/^{/p' >"$WORK/values.json"
python3 - "$WORK/values.json" "$CHART/README.md" <<'PY' || fail "helm/switchboard/README.md does not match values.yaml"
import json, re, sys
values = json.load(open(sys.argv[1]))
rows = {}
for line in open(sys.argv[2]):
    m = re.match(r"^\| `([^`]+)` \| (`[^|]*`|[^|]*) \|", line)
    if m:
        rows[m.group(1)] = m.group(2).strip()
bad = []
def walk(node, path):
    if path in rows:
        want = "`" + json.dumps(node) + "`"
        # A list of examples may be summarised in words.
        if rows[path] != want and not (isinstance(node, list) and node and not rows[path].startswith("`")):
            bad.append(f"{path}: README says {rows[path]}, values.yaml has {want}")
        return
    if isinstance(node, dict) and node:
        for k, v in node.items():
            walk(v, f"{path}.{k}" if path else k)
    else:
        bad.append(f"{path}: not in the README's values table")
walk(values, "")
for path in rows:
    node = values
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if node is None and path not in ("",):
        bad.append(f"{path}: in the README but not in values.yaml")
for b in bad:
    print("   ", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY

step "rendered objects"
helm template sb "$CHART" --namespace switchboard-system "${ALL_ON[@]}" >"$WORK/all.yaml"
kinds=$(grep -E '^kind: ' "$WORK/all.yaml" | sort | uniq -c | awk '{print $3 "=" $1}' | tr '\n' ' ')
echo "    $kinds"
for k in ClusterRole ClusterRoleBinding ConfigMap Deployment EventRoute EventRouter Lease PodDisruptionBudget \
  PodMonitor PrometheusRule Role RoleBinding Service ServiceAccount ServiceMonitor; do
  grep -qx "kind: $k" "$WORK/all.yaml" || fail "no $k rendered with every option on"
done
helm template sb "$CHART" --namespace switchboard-system >"$WORK/default.yaml"
for k in PodDisruptionBudget ServiceMonitor PodMonitor PrometheusRule EventRouter; do
  if grep -qx "kind: $k" "$WORK/default.yaml"; then fail "$k rendered although it is off by default"; fi
done
# Every object carries the recommended labels.
n_objects=$(grep -c '^kind: ' "$WORK/all.yaml")
n_labelled=$(grep -c '^    app.kubernetes.io/part-of: switchboard$' "$WORK/all.yaml")
[[ $n_labelled -eq $n_objects ]] || fail "$n_objects objects but $n_labelled carry app.kubernetes.io/part-of"

step "start a real kube-apiserver"
CP_DIR=$WORK/cp
"$REPO/tests/support/control_plane.sh" start "$CP_DIR" >"$WORK/cp.env"
export KUBECONFIG=$CP_DIR/kubeconfig
kubectl() { "$KUBECTL" "$@"; }
kubectl apply --server-side -f "$MONITORING_CRDS" >/dev/null
kubectl apply --server-side -f "$REPO/crds" >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
kubectl create namespace switchboard-system >/dev/null
# The namespace enforces the "restricted" Pod Security profile: the controller's pod
# template must be admitted by it.
kubectl label namespace switchboard-system pod-security.kubernetes.io/enforce=restricted >/dev/null

step "kubectl apply --dry-run=server of everything the chart renders"
kubectl apply --dry-run=server -f "$WORK/all.yaml" >"$WORK/dry-run.out" ||
  fail "the apiserver refused rendered objects: $(cat "$WORK/dry-run.out")"
kubectl apply --dry-run=server -f "$WORK/default.yaml" >/dev/null
# The Deployment's pod template as a Pod, through Pod Security admission.
helm template sb "$CHART" --namespace switchboard-system "${ALL_ON[@]}" \
  --show-only templates/deployment.yaml >"$WORK/deployment.yaml"
kubectl create --dry-run=client -o json -f "$WORK/deployment.yaml" >"$WORK/deployment.json"
python3 - "$WORK/deployment.json" >"$WORK/pod.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["spec"]["template"]
print(json.dumps({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": "controller-pod-check", "namespace": "switchboard-system",
                               "labels": t["metadata"]["labels"]},
                  "spec": t["spec"]}))
PY
kubectl create --dry-run=server -f "$WORK/pod.json" >/dev/null 2>"$WORK/psa.err" ||
  fail "the restricted Pod Security profile refused the controller pod: $(cat "$WORK/psa.err")"


step "helm install, with the example router on a nats-server on loopback"
# Garbage collection of what the controller writes for an EventRouter (owner references)
# is kube-controller-manager's: only its garbage collector runs, on loopback.
KCM_PORT=$("$NATS_TOOL" free-port)
"$KUBE_CONTROLLER_MANAGER" --kubeconfig="$KUBECONFIG" --authentication-kubeconfig="$KUBECONFIG" \
  --authorization-kubeconfig="$KUBECONFIG" --controllers=garbagecollector --leader-elect=false \
  --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --cert-dir="$WORK/kcm-certs" \
  --use-service-account-credentials=false >"$WORK/kube-controller-manager.log" 2>&1 &
PIDS[kcm]=$!
NATS_PORT=$("$NATS_TOOL" free-port)
NATS_URL=nats://127.0.0.1:$NATS_PORT
"$NATS_SERVER" -a 127.0.0.1 -p "$NATS_PORT" >"$WORK/nats.log" 2>&1 &
PIDS[nats]=$!

# wait_until SECONDS WHAT COMMAND...: polls COMMAND every 0.2 s; at the timeout, fails
# with what the objects and the pods say.
wait_until() {
  local seconds=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      dump >&2
      fail "timed out after ${seconds}s waiting for $what"
    fi
    sleep 0.2
  done
}
dump() {
  local log
  kubectl -n switchboard-system get eventrouters,eventroutes -o yaml 2>&1 | sed -n '/^  status:/,/^- /p' | head -n 60 || true
  for log in "$WORK"/pods/*/*/*.log; do
    [[ -f $log ]] || continue
    echo "=== $log (last lines)"
    tail -n 15 "$log"
  done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_until 20 "nats-server on port $NATS_PORT" port_open "$NATS_PORT"

# Values for a real run: the example router's NATS is the test's.
# A short resync: the test sees it repair what no watch covers (the ServiceMonitor).
RUN=("${ALL_ON[@]}" --set "examples.router.natsUrls[0]=$NATS_URL" --set controller.resync=3s)
helm install sb "$CHART" --namespace switchboard-system "${RUN[@]}" >"$WORK/install.out"
grep -q "kubectl get switchboard" "$WORK/install.out" || fail "NOTES.txt does not tell the next step"
kubectl -n switchboard-system get deployment sb-switchboard >/dev/null
kubectl -n switchboard-system get eventroute large-orders >/dev/null
kubectl -n switchboard-system get lease sb-switchboard >/dev/null
# The controller's RBAC is the least that works: what it must do, it can; the rest, not.
SA=system:serviceaccount:switchboard-system:sb-switchboard
can() { [[ $(kubectl auth can-i --as "$SA" "$@" 2>/dev/null) == yes ]]; }
for check in "watch eventroutes.switchboard.dev -A" "patch eventroutes.switchboard.dev -n team-a" \
  "update eventrouters.switchboard.dev --subresource=finalizers -n team-a" "update eventroutes.switchboard.dev --subresource=status -n team-a" "patch deployments.apps -n team-a" \
  "create roles.rbac.authorization.k8s.io -n team-a" "delete configmaps -n team-a" \
  "get secrets -n team-a" "create leases.coordination.k8s.io -n switchboard-system" \
  "update leases.coordination.k8s.io/sb-switchboard -n switchboard-system" \
  "create servicemonitors.monitoring.coreos.com -n team-a"; do
  # shellcheck disable=SC2086
  can $check || fail "the controller's ServiceAccount cannot: $check"
done
for check in "create secrets -n team-a" "update secrets -n team-a" "delete secrets -n team-a" \
  "create pods -n team-a" "create pods --subresource=exec -n team-a" "delete namespaces" "create clusterroles.rbac.authorization.k8s.io" \
  "create clusterrolebindings.rbac.authorization.k8s.io" "escalate roles.rbac.authorization.k8s.io -n team-a" \
  "bind roles.rbac.authorization.k8s.io -n team-a" "create leases.coordination.k8s.io -n team-a" \
  "delete customresourcedefinitions.apiextensions.k8s.io" "create serviceaccounts --subresource=token -n team-a" \
  "get nodes" "impersonate users" "list secrets -n team-a" "watch secrets -n team-a" \
  "update deployments.apps -n team-a" "delete eventroutes.switchboard.dev -n team-a" \
  "patch eventtransforms.switchboard.dev -n team-a"; do
  # shellcheck disable=SC2086
  if can $check; then fail "the controller's ServiceAccount can, but must not: $check"; fi
done
# Then every verb on every resource at once rather than a sample: what the API server lets
# the controller do, less what any authenticated user may do (asked of a ServiceAccount
# nothing is bound to), is exactly what docs/controller.md ("What it needs") lists.
# kubectl auth can-i --list merges the rules of one resource into one row.
rules_of() { # USER NAMESPACE: "resource [names] [verbs]" rows
  kubectl auth can-i --list --as "$1" -n "$2" |
    awk 'NR > 1 && $0 !~ /^[[:space:]]/ {
      rest = substr($0, length($1) + 1); n = 0
      while (match(rest, /\[[^]]*\]/)) { g[++n] = substr(rest, RSTART, RLENGTH); rest = substr(rest, RSTART + RLENGTH) }
      print $1 " " g[2] " " g[3] }' | LC_ALL=C sort
}
granted() { # USER NAMESPACE
  LC_ALL=C comm -23 <(rules_of "$1" "$2") <(rules_of "system:serviceaccount:$2:nobody" "$2")
}
expect_granted() { # USER NAMESPACE EXPECTED-ROWS
  local got
  got=$(granted "$1" "$2")
  [[ -n $(rules_of "system:serviceaccount:$2:nobody" "$2") ]] || fail "kubectl auth can-i --list printed no rules"
  [[ $got == "$(LC_ALL=C sort <<<"$3")" ]] ||
    fail "$1 in namespace $2: the rules differ from the least that works (< got, > expected):
$(diff <(echo "$got") <(LC_ALL=C sort <<<"$3"))"
}
CRD_CHECK='customresourcedefinitions.apiextensions.k8s.io [servicemonitors.monitoring.coreos.com] [get]'
NAMESPACED='configmaps [] [get list watch create patch delete]
serviceaccounts [] [get list watch create patch delete]
services [] [get list watch create patch delete]
deployments.apps [] [get list watch create patch delete]
servicemonitors.monitoring.coreos.com [] [get list watch create patch delete]
poddisruptionbudgets.policy [] [get list watch create patch delete]
rolebindings.rbac.authorization.k8s.io [] [get list watch create patch delete]
roles.rbac.authorization.k8s.io [] [get list watch create patch delete]
eventroutes.switchboard.dev [] [get list watch patch]
eventrouters.switchboard.dev [] [get list watch]
eventtransforms.switchboard.dev [] [get list watch]
eventrouters.switchboard.dev/status [] [get update]
eventroutes.switchboard.dev/status [] [get update]
eventtransforms.switchboard.dev/status [] [get update]
eventrouters.switchboard.dev/finalizers [] [update]
secrets [] [get]'
expect_granted "$SA" team-a "$NAMESPACED
$CRD_CHECK"
expect_granted "$SA" switchboard-system "$NAMESPACED
$CRD_CHECK
leases.coordination.k8s.io [] [get create update]"
# controller.watchNamespace: the same rules in that one namespace only, and the one CRD
# still readable (whether ServiceMonitors exist). Rendered under another release name,
# checked, removed.
helm template ns "$CHART" --namespace switchboard-system --set controller.watchNamespace=team-a \
  --show-only templates/rbac.yaml >"$WORK/rbac-ns.yaml"
kubectl create namespace team-a >/dev/null
kubectl apply -f "$WORK/rbac-ns.yaml" >/dev/null
NS_SA=system:serviceaccount:switchboard-system:ns-switchboard
expect_granted "$NS_SA" team-a "$NAMESPACED
$CRD_CHECK"
expect_granted "$NS_SA" team-b "$CRD_CHECK"
kubectl delete -f "$WORK/rbac-ns.yaml" >/dev/null
kubectl delete namespace team-a --wait=false >/dev/null

# run_pods NAME DEPLOYMENT CONTAINER BINARY [POD-RUN ARGS...]: the Deployment's pods, as
# a kubelet would start them, by the pod runner; returns once every pod is ready. The
# runner's stdout names each pod's metrics port ("pod NAME metrics PORT log FILE").
run_pods() {
  local name=$1 deployment=$2 container=$3 binary=$4
  shift 4
  rm -f "$WORK/$name.out" "$WORK/$name.err"  # not to read a previous run's "ready"
  "$POD_RUN" --kubeconfig "$KUBECONFIG" --namespace switchboard-system --deployment "$deployment" \
    --container "$container" --binary "$binary" --work-dir "$WORK/pods/$name" --ready-timeout 60 "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  PIDS[$name]=$!
  until grep -qx ready "$WORK/$name.out" 2>/dev/null; do
    if ! kill -0 "${PIDS[$name]}" 2>/dev/null; then
      unset "PIDS[$name]"
      fail "the pods of deployment/$deployment did not start or get ready: $(cat "$WORK/$name.err")"
    fi
    sleep 0.2
  done
  awk '$1 == "pod" { print "    " $2 " (metrics on 127.0.0.1:" $4 ")" }' "$WORK/$name.out"
}
# stop_pods NAME: SIGTERM to the runner, which stops its pods; each must exit 0.
stop_pods() {
  stop_proc "$1" || fail "a pod of $1 did not stop cleanly on SIGTERM: $(cat "$WORK/$1.err")"
}
metrics_ports() { awk '$1 == "pod" { print $4 }' "$WORK/$1.out"; }
# controller_metric SERIES: the series' value summed over the controller replicas.
controller_metric() {
  local port sum=0 v
  for port in $(metrics_ports controller); do
    v=$(curl -s --max-time 5 "127.0.0.1:$port/metrics" | awk -v s="$1" '$1 == s { print $2 }')
    sum=$(awk -v a="$sum" -v b="${v:-0}" 'BEGIN { print a + b }')
  done
  echo "$sum"
}
metric_is() { [[ $(controller_metric "$1") == "$2" ]]; }
condition() { # KIND NAME TYPE: the condition's status
  kubectl -n switchboard-system get "$1" "$2" -o jsonpath="{.status.conditions[?(@.type==\"$3\")].status}"
}
ready() { [[ $(condition "$1" "$2" Ready) == True ]]; }

step "the controller from the chart's Deployment: two replicas, the chart's ServiceAccount and RBAC"
# --sa-kubeconfig: the controller reads its in-cluster configuration only from
# /var/run/secrets/kubernetes.io/serviceaccount, which a process here cannot have; it
# gets a kubeconfig with the same server, CA and ServiceAccount token instead.
run_pods controller sb-switchboard controller "$CONTROLLER" --sa-kubeconfig
grep -q -- '--leader-election-id sb-switchboard' "$WORK"/pods/controller/sb-switchboard-0/controller.log ||
  fail "the controller was not started with the rendered args: $(head -n 1 "$WORK"/pods/controller/sb-switchboard-0/controller.log)"
wait_until 30 "one controller replica leading" metric_is switchboard_controller_leader 1
[[ $(kubectl -n switchboard-system get lease sb-switchboard -o jsonpath='{.spec.holderIdentity}') == sb-switchboard-* ]] ||
  fail "the chart's Lease is not held by a controller replica"

step "the example EventRouter: its routes ConfigMap and Deployment, written by the controller"
has_route_table() {
  kubectl -n switchboard-system get configmap example-routes -o json | grep -q 'large-orders'
}
wait_until 30 "ConfigMap example-routes holding route large-orders" has_route_table
wait_until 30 "Deployment example" kubectl -n switchboard-system get deployment example
run_pods routers example router "$ROUTER"

step "the example EventRoute and EventRouter Ready, an event through the route"
wait_until 60 "EventRoute large-orders Ready" ready eventroute large-orders
wait_until 30 "EventRouter example Ready" ready eventrouter example
# The Prometheus Operator's CRDs are installed, so the controller wrote a ServiceMonitor.
kubectl -n switchboard-system get servicemonitor example >/dev/null ||
  fail "no ServiceMonitor for the example router although its CRD exists"
# No watch covers ServiceMonitors (their CRD may be missing): the periodic resync repairs one.
kubectl -n switchboard-system delete servicemonitor example >/dev/null
wait_until 30 "the deleted ServiceMonitor written again by the resync" \
  kubectl -n switchboard-system get servicemonitor example
echo "    eventroute/large-orders Ready ($(kubectl -n switchboard-system get eventroute large-orders -o jsonpath='{.status.applied}') pods applied)"
"$NATS_TOOL" sub --nats "$NATS_URL" --subject 'orders.*.large' --count 1 --timeout 15s \
  >"$WORK/large.out" 2>"$WORK/sub.err" &
PIDS[sub]=$!
wait_until 10 "the subscriber" grep -q subscribed "$WORK/sub.err"
printf '%s\n' '{"subject":"orders.eu.created","data":{"id":7,"amount":250,"region":"eu"}}' |
  "$NATS_TOOL" pub --nats "$NATS_URL" || fail "could not publish"
wait "${PIDS[sub]}" || fail "no event on orders.*.large: $(cat "$WORK/sub.err")"
unset "PIDS[sub]"
if ! grep -q '"subject":"orders.EU.large"' "$WORK/large.out" || ! grep -q '"region":"EU"' "$WORK/large.out"; then
  fail "the route's output is not the transformed event: $(cat "$WORK/large.out")"
fi
echo "    orders.eu.created -> $(cut -c1-100 "$WORK/large.out")"
wait_until 30 "the controller counting 2 router pods applied" \
  metric_is 'switchboard_controller_routers_pods{namespace="switchboard-system",router="example",state="applied"}' 2

step "helm upgrade: the controller rolls onto the new args"
helm upgrade sb "$CHART" --namespace switchboard-system "${RUN[@]}" --set controller.logLevel=debug >/dev/null
kubectl -n switchboard-system get deployment sb-switchboard -o jsonpath='{.spec.template.spec.containers[0].args}' |
  grep -q '"debug"' || fail "helm upgrade did not change the controller's --log-level"
# What a rollout does: the old pods stop (and release the Lease), new ones start from
# the upgraded Deployment.
stop_pods controller
run_pods controller sb-switchboard controller "$CONTROLLER" --sa-kubeconfig
grep -q -- '--log-level debug' "$WORK"/pods/controller/sb-switchboard-0/controller.log ||
  fail "the controller did not restart with --log-level debug"
wait_until 30 "one upgraded controller replica leading" metric_is switchboard_controller_leader 1
wait_until 30 "EventRoute large-orders still Ready" ready eventroute large-orders

step "helm uninstall leaves nothing behind but the CRDs"
# Every namespaced kind but Events (which expire); kubectl's warning that v1 Endpoints
# are deprecated is not news.
kinds=$(kubectl api-resources --verbs=list --namespaced -o name | grep -v '^events' | paste -sd, -)
get_all() { kubectl get "$kinds" -n switchboard-system -o name "$@" 2> >(grep -v 'is deprecated' >&2); }
fleet=$(get_all -l app.kubernetes.io/instance=example | wc -l)
[[ $fleet -ge 6 ]] || fail "the controller made only $fleet objects for the example router"
helm uninstall sb --namespace switchboard-system --wait >/dev/null
# The Deployments are gone, so are their pods.
stop_pods controller
stop_pods routers
wait_until 60 "kube-controller-manager healthy" curl -sfk "https://127.0.0.1:$KCM_PORT/healthz"
# Nothing left of the release, nor of the objects the controller made for the example
# router (their owner, the EventRouter, went with the release; the garbage collector
# follows the owner references).
leftovers() { get_all; }
nothing_left() {
  local out
  out=$(leftovers) || return 1
  [[ -z $out ]]
}
nothing_left_within() { # SECONDS
  local deadline=$((SECONDS + $1))
  until nothing_left 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}
nothing_left_within 60 || fail "left in switchboard-system: $(leftovers 2>&1 | tr '\n' ' ')"
echo "    the release's objects and the $fleet the controller made for the example router: gone"
left=$(kubectl get clusterroles,clusterrolebindings -l app.kubernetes.io/instance=sb -o name)
[[ -z $left ]] || fail "helm uninstall left: $left"
kubectl get crd eventroutes.switchboard.dev >/dev/null || fail "uninstall removed the CRDs (helm keeps crds/ by design)"
echo "PASS"
