#!/usr/bin/env bash
# The Helm chart against the real tools: helm lint --strict, values.schema.json refusing
# wrong values with a clear message, and every rendered object accepted by a real
# kube-apiserver (kubectl apply --dry-run=server, with the Prometheus Operator's real
# CRDs for the monitoring objects). Then helm install, upgrade and uninstall into that
# apiserver: uninstall leaves nothing behind but the CRDs.
#
# Usage: tests/helm/chart_test.sh   (tools come from scripts/test-tools.sh's cache)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CHART=${SWITCHBOARD_CHART:-$REPO/helm/switchboard}  # another copy of the chart, for development

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

eval "$("$REPO/scripts/test-tools.sh" paths 2>/dev/null | sed 's/^/export /')" ||
  fail "test tools are not built; run scripts/test-tools.sh"
[[ -x $HELM && -x $KUBECTL && -d $MONITORING_CRDS ]] ||
  fail "test tools are not built; run scripts/test-tools.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-chart.XXXXXX")
CP_DIR=""
cleanup() {
  if [[ -n $CP_DIR ]]; then "$REPO/tests/support/control_plane.sh" stop "$CP_DIR" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
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
for k in ClusterRole ClusterRoleBinding ConfigMap Deployment EventRoute EventRouter PodDisruptionBudget \
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

step "helm install, upgrade, uninstall"
helm install sb "$CHART" --namespace switchboard-system "${ALL_ON[@]}" >"$WORK/install.out"
grep -q "kubectl get switchboard" "$WORK/install.out" || fail "NOTES.txt does not tell the next step"
kubectl -n switchboard-system get deployment sb-switchboard >/dev/null
kubectl -n switchboard-system get eventroute large-orders >/dev/null
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
helm upgrade sb "$CHART" --namespace switchboard-system "${ALL_ON[@]}" \
  --set controller.logLevel=debug >/dev/null
kubectl -n switchboard-system get deployment sb-switchboard -o jsonpath='{.spec.template.spec.containers[0].args}' |
  grep -q '"debug"' || fail "helm upgrade did not change the controller's --log-level"
helm uninstall sb --namespace switchboard-system --wait >/dev/null
left=$(kubectl get all,configmaps,serviceaccounts,roles,rolebindings,poddisruptionbudgets,servicemonitors,podmonitors,prometheusrules,eventrouters,eventroutes \
  -n switchboard-system -l app.kubernetes.io/instance=sb -o name)
[[ -z $left ]] || fail "helm uninstall left: $left"
left=$(kubectl get clusterroles,clusterrolebindings -l app.kubernetes.io/instance=sb -o name)
[[ -z $left ]] || fail "helm uninstall left: $left"
kubectl get crd eventroutes.switchboard.dev >/dev/null || fail "uninstall removed the CRDs (helm keeps crds/ by design)"
echo "PASS"
