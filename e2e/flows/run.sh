#!/usr/bin/env bash
# The flows that prove Wharf on a real cluster, one line each: `PASS <flow>` or
# `FAIL <flow>: <reason>`; exits 1 when any failed. Shared by the cluster providers (e2e/local
# today); they give:
#   KUBECONFIG       an admin kubeconfig of the cluster
#   E2E_NODE_ADDR    the node's address as this machine reaches it (NodePorts)
#   E2E_OVERLAY      a kustomize overlay of config/default whose `images:` name the loaded images
#   E2E_APP_LAYOUT   an OCI layout with a small image tagged 1, pushed as the application
#   E2E_MEMORY_CGROUP (optional) the memory cgroup root of the node's pods (kubepods), to show
#                    the registry's first-start peak
# Not here yet (the features are not on this branch): Project/RobotAccount with pull-secret
# injection and a Deployment pulling with it (flows 2-5 of issue 19), the node mirror (6), the
# Registry's deletion cleaning the node (7), kstatus of every object after flow 3 (8).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
: "${KUBECONFIG:?}" "${E2E_NODE_ADDR:?}" "${E2E_OVERLAY:?}" "${E2E_APP_LAYOUT:?}"
export KUBECONFIG
NS=default
REGISTRY=registry
failed=0
declare -A passed

pass() { passed[$1]=1; echo "PASS $1"; }
fail() { failed=1; echo "FAIL $1: $2"; }
needs() { [ -n "${passed[$1]:-}" ]; }
# Polls a command every second until it succeeds or the deadline passes.
until_ok() {
  local seconds=$1
  shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do ((SECONDS > deadline)) && return 1; sleep 1; done
}
jsonpath() { kubectl "$@" 2>/dev/null; }

flow_operator_installed() {
  local out
  out=$(kubectl apply --server-side -k "$E2E_OVERLAY" 2>&1) || { fail operator-installed "kubectl apply -k: $out"; return; }
  if ! kubectl -n wharf-system rollout status deployment/wharf-operator --timeout=300s >/dev/null 2>&1; then
    fail operator-installed "the operator Deployment did not become available: $(kubectl -n wharf-system get pods -o wide 2>&1 | tail -n +2 | tr '\n' ';')"
    return
  fi
  local want got
  want=$(kubectl kustomize "$E2E_OVERLAY" | grep -m1 -o 'image: .*wharf-operator.*' | cut -d' ' -f2)
  got=$(jsonpath -n wharf-system get pods -l app.kubernetes.io/name=wharf-operator -o jsonpath='{.items[*].spec.containers[0].image}')
  [[ " $got " == *" $want "* ]] || { fail operator-installed "operator pods run $got, not $want"; return; }
  pass operator-installed
}

flow_registry_ready() {
  needs operator-installed || { fail registry-ready "needs operator-installed"; return; }
  kubectl -n "$NS" apply -f "$ROOT/examples/registry-minimal.yaml" >/dev/null || { fail registry-ready "kubectl apply examples/registry-minimal.yaml failed"; return; }
  if ! kubectl -n "$NS" wait "registry/$REGISTRY" --for=condition=Ready --timeout=600s >/dev/null 2>&1; then
    fail registry-ready "not Ready: $(jsonpath -n "$NS" get registry "$REGISTRY" -o jsonpath='{.status.conditions}') pods: $(kubectl -n "$NS" get pods -o wide 2>&1 | tail -n +2 | tr '\n' ';')"
    return
  fi
  local pvc pod ready restarts
  pvc=$(jsonpath -n "$NS" get pvc "$REGISTRY-data" -o jsonpath='{.status.phase}')
  [ "$pvc" = Bound ] || { fail registry-ready "PVC $REGISTRY-data is $pvc"; return; }
  pod=$(jsonpath -n "$NS" get pods -l "app.kubernetes.io/instance=$REGISTRY" -o jsonpath='{.items[0].metadata.name}')
  ready=$(jsonpath -n "$NS" get pod "$pod" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')
  restarts=$(jsonpath -n "$NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].restartCount}')
  [ "$ready" = True ] || { fail registry-ready "pod $pod is not Ready"; return; }
  [ "$restarts" = 0 ] || { fail registry-ready "pod $pod restarted $restarts times: $(jsonpath -n "$NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].lastState}')"; return; }
  if [ -n "${E2E_MEMORY_CGROUP:-}" ]; then
    local uid cid peak
    uid=$(jsonpath -n "$NS" get pod "$pod" -o jsonpath='{.metadata.uid}')
    cid=$(jsonpath -n "$NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].containerID}')
    local dir file
    dir="$(find "$E2E_MEMORY_CGROUP" -type d -name "pod$uid" | head -1)/${cid#containerd://}"
    for file in memory.max_usage_in_bytes memory.peak; do [ -f "$dir/$file" ] && peak=$(cat "$dir/$file") && break; done
    [ -n "${peak:-}" ] && echo "  registry first start: peak memory $((peak / 1048576)) MiB (cgroup $file), limit $(jsonpath -n "$NS" get pod "$pod" -o jsonpath='{.spec.containers[0].resources.limits.memory}'), Ready after $(($(date -d "$(jsonpath -n "$NS" get pod "$pod" -o jsonpath='{.status.conditions[?(@.type=="Ready")].lastTransitionTime}')" +%s) - $(date -d "$(jsonpath -n "$NS" get pod "$pod" -o jsonpath='{.status.startTime}')" +%s)))s"
  fi
  pass registry-ready
}

NODE_PORT=""
flow_registry_nodeport() {
  needs registry-ready || { fail registry-nodeport "needs registry-ready"; return; }
  kubectl -n "$NS" patch registry "$REGISTRY" --type merge -p '{"spec":{"service":{"type":"NodePort"}}}' >/dev/null || { fail registry-nodeport "patch failed"; return; }
  until_ok 120 bash -c "kubectl -n $NS get service $REGISTRY -o jsonpath='{.spec.ports[0].nodePort}' | grep -q ." || { fail registry-nodeport "the Service got no node port"; return; }
  NODE_PORT=$(jsonpath -n "$NS" get service "$REGISTRY" -o jsonpath='{.spec.ports[0].nodePort}')
  local url="http://$E2E_NODE_ADDR:$NODE_PORT" headers
  until_ok 60 curl -fsS "$url/readyz" || { fail registry-nodeport "$url/readyz does not answer 200"; return; }
  headers=$(curl -sS -D - -o /dev/null "$url/v2/")
  grep -q '^HTTP/1.1 401' <<<"$headers" || { fail registry-nodeport "$url/v2/ answered $(head -1 <<<"$headers")"; return; }
  # The token realm is where this client reached the registry, not the Service's cluster DNS name.
  grep -qi "^www-authenticate: Bearer realm=\"$url/token\"" <<<"$headers" || { fail registry-nodeport "the challenge names another realm: $(grep -i www-authenticate <<<"$headers")"; return; }
  # Published as kind's local-registry recipe does (KEP-1755), for tools that look for it.
  kubectl apply -f - >/dev/null <<EOF || { fail registry-nodeport "publishing kube-public/local-registry-hosting failed"; return; }
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "$E2E_NODE_ADDR:$NODE_PORT"
    help: "https://github.com/wharf-dev/wharf/blob/main/docs/lab.md"
EOF
  pass registry-nodeport
}

flow_push() {
  needs registry-nodeport || { fail push "needs registry-nodeport"; return; }
  local url="$E2E_NODE_ADDR:$NODE_PORT" password status want got
  password=$(jsonpath -n "$NS" get secret "$REGISTRY-admin" -o jsonpath='{.data.password}' | base64 -d)
  status=$(curl -sS -o /dev/null -w '%{http_code}' -u "admin:$password" -X PUT -H 'Content-Type: application/json' -d '{}' "http://$url/api/v1/projects/e2e")
  [[ $status == 20[01] ]] || { fail push "creating project e2e answered $status"; return; }
  local out
  out=$(skopeo copy --quiet --dest-tls-verify=false --dest-creds "admin:$password" "oci:$E2E_APP_LAYOUT:1" "docker://$url/e2e/app:1" 2>&1) || { fail push "skopeo copy: $out"; return; }
  want=$(jq -r '.manifests[0].digest' "$E2E_APP_LAYOUT/index.json")
  got=$(skopeo inspect --tls-verify=false --creds "admin:$password" --format '{{.Digest}}' "docker://$url/e2e/app:1" 2>&1) || { fail push "skopeo inspect: $got"; return; }
  [ "$got" = "$want" ] || { fail push "pulled digest $got, pushed $want"; return; }
  pass push
}

flow_operator_installed
flow_registry_ready
flow_registry_nodeport
flow_push
exit $failed
