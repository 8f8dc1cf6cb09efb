#!/usr/bin/env bash
# The flows that prove Wharf on a real cluster, one line each: `PASS <flow>` or
# `FAIL <flow>: <reason>`, then `flows: N passed, M failed`; exits 1 when any failed. One script
# for both cluster providers (e2e/local: `make e2e`; e2e/kind: `make lab`); they give:
#   KUBECONFIG       an admin kubeconfig of the cluster
#   E2E_NODE_ADDR    the node's address as this machine reaches it (NodePorts)
#   E2E_NODE_PORT    (optional) the node port to give the registry's Service, for a provider
#                    that maps one fixed port to this machine (kind's extraPortMappings)
#   E2E_NODE_SHELL   a command that runs a shell script, read from stdin, on the node
#                    (local: `bash -s`; kind: `docker exec -i <node> sh -s`)
#   E2E_NODE_CERTS_D containerd's config_path on the node (where hosts.toml files go)
#   E2E_OVERLAY      a kustomize overlay of config/default whose `images:` name the loaded images
#   E2E_APP_LAYOUT   an OCI layout with a small image tagged 1, pushed as the application
#   E2E_UPSTREAM_URL the stand-in for Docker Hub (a plain registry) as pods reach it, http://host:port
#   E2E_UPSTREAM_PUSH the same registry as this machine reaches it, host:port
#   E2E_MEMORY_CGROUP (optional) the memory cgroup root of the node's pods (kubepods), to show
#                    the registry's first-start peak
# docs/lab.md lists the flows and what each proves.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
: "${KUBECONFIG:?}" "${E2E_NODE_ADDR:?}" "${E2E_NODE_SHELL:?}" "${E2E_NODE_CERTS_D:?}" "${E2E_OVERLAY:?}" "${E2E_APP_LAYOUT:?}" "${E2E_UPSTREAM_URL:?}" "${E2E_UPSTREAM_PUSH:?}"
export KUBECONFIG
NS=default
REGISTRY=registry
failed=0
declare -A passed

pass() { passed[$1]=1; echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }
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
  if [ -n "${E2E_NODE_PORT:-}" ]; then
    # The operator's apply leaves nodePort to the API server: a port set here stays.
    kubectl -n "$NS" patch service "$REGISTRY" --type json -p "[{\"op\":\"replace\",\"path\":\"/spec/ports/0/nodePort\",\"value\":$E2E_NODE_PORT}]" >/dev/null ||
      { fail registry-nodeport "setting the node port $E2E_NODE_PORT failed"; return; }
  fi
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


# --- Content: a private project, a robot whose pull secret the kubelet uses (flows 2-5, 8). ----
APPS_NS=apps
PROJECT=apps
ROBOT=apps-puller
PULL_SECRET=$ROBOT-pull
REG_HOST="" # the registry as image references name it: its in-cluster endpoint, host:port
NODE_URL="" # where the node reaches it: the node's InternalIP and the NodePort

# The operator calls the registry's management API at its in-cluster endpoint
# (<name>.<ns>.svc). Without cluster DNS (the local lab has none) its pods resolve that one name
# by a hostAliases entry for the Service's ClusterIP; with CoreDNS (kind) nothing is changed.
operator_reaches_registry() {
  kubectl -n kube-system get service kube-dns >/dev/null 2>&1 && return 0
  local ip
  ip=$(jsonpath -n "$NS" get service "$REGISTRY" -o jsonpath='{.spec.clusterIP}')
  [ -n "$ip" ] || return 1
  kubectl -n wharf-system patch deployment wharf-operator --type strategic \
    -p "{\"spec\":{\"template\":{\"spec\":{\"hostAliases\":[{\"ip\":\"$ip\",\"hostnames\":[\"$REGISTRY.$NS.svc\"]}]}}}}" >/dev/null || return 1
  kubectl -n wharf-system rollout status deployment/wharf-operator --timeout=300s >/dev/null 2>&1 || return 1
  echo "  no cluster DNS: the operator's pods resolve $REGISTRY.$NS.svc by a hostAliases entry ($ip)"
}

# node_hosts_toml HOST CONTENT: writes $E2E_NODE_CERTS_D/HOST/hosts.toml on the node.
node_hosts_toml() {
  printf 'set -e\nmkdir -p "%s"\ncat >"%s/hosts.toml" <<'"'"'WHARF_TOML'"'"'\n%s\nWHARF_TOML\n' \
    "$E2E_NODE_CERTS_D/$1" "$E2E_NODE_CERTS_D/$1" "$2" | $E2E_NODE_SHELL
}

# skopeo_inspect CREDS REF: the digest, with CREDS user:password or "" for anonymous.
skopeo_inspect() {
  local auth=(--no-creds)
  [ -n "$1" ] && auth=(--creds "$1")
  skopeo inspect --tls-verify=false "${auth[@]}" --format '{{.Digest}}' "docker://$2" 2>&1
}

# The robot's credentials as user:password, read from the injected pull secret.
pull_secret_creds() {
  jsonpath -n "$APPS_NS" get secret "$PULL_SECRET" -o jsonpath='{.data.\.dockerconfigjson}' | base64 -d |
    jq -er --arg h "$REG_HOST" '.auths[$h] | "\(.username):\(.password)"'
}

newest_pod() { jsonpath -n "$APPS_NS" get pods -l app=app --sort-by=.metadata.creationTimestamp -o jsonpath='{.items[-1:].metadata.name}'; }
# pod_event POD REASON [PREFIX]: the message of the pod's last event with that reason (and prefix).
pod_event() {
  jsonpath -n "$APPS_NS" get events --field-selector "involvedObject.name=$1,reason=$2" -o json |
    jq -r --arg p "${3:-}" '[.items[] | select(.message | startswith($p))][-1].message // empty'
}

content_manifests() {
  cat <<MANIFESTS
apiVersion: v1
kind: Namespace
metadata: { name: $APPS_NS }
---
apiVersion: wharf.dev/v1alpha1
kind: Project
metadata: { name: $PROJECT, namespace: $NS }
spec: { registryRef: { name: $REGISTRY }, visibility: private }
---
apiVersion: wharf.dev/v1alpha1
kind: RobotAccount
metadata: { name: $ROBOT, namespace: $NS }
spec:
  registryRef: { name: $REGISTRY }
  level: project
  project: $PROJECT
  permissions: [{ project: $PROJECT, access: [{ resource: repository, action: pull }] }]
  # A rotation cuts the replaced secret off at once: pods that pull afterwards prove they hold the new one.
  rotation: { graceSeconds: 0 }
  pullSecret: { namespaces: [$APPS_NS], serviceAccounts: [default] }
MANIFESTS
}

flow_project_robot() {
  needs push || { fail project-robot "needs push"; return; }
  operator_reaches_registry || { fail project-robot "the operator's pods cannot be pointed at $REGISTRY.$NS.svc"; return; }
  REG_HOST=$(jsonpath -n "$NS" get registry "$REGISTRY" -o jsonpath='{.status.endpoint}')
  REG_HOST=${REG_HOST#http://}
  local out
  out=$(content_manifests | kubectl apply -f - 2>&1) || { fail project-robot "kubectl apply: $out"; return; }
  if ! kubectl -n "$NS" wait "projects.wharf.dev/$PROJECT" "robotaccounts.wharf.dev/$ROBOT" --for=condition=Ready --timeout=180s >/dev/null 2>&1; then
    fail project-robot "not Ready: project $(jsonpath -n "$NS" get projects.wharf.dev "$PROJECT" -o jsonpath='{.status.conditions}') robot $(jsonpath -n "$NS" get robotaccounts.wharf.dev "$ROBOT" -o jsonpath='{.status.conditions}')"
    return
  fi
  until_ok 60 pull_secret_creds || { fail project-robot "no pull secret $APPS_NS/$PULL_SECRET for $REG_HOST"; return; }
  until_ok 60 bash -c "kubectl -n $APPS_NS get serviceaccount default -o jsonpath='{.imagePullSecrets[*].name}' | grep -qw $PULL_SECRET" ||
    { fail project-robot "ServiceAccount $APPS_NS/default has no imagePullSecrets entry $PULL_SECRET"; return; }
  # The application goes into the private project (as the administrator); the robot may read it,
  # an anonymous client may not.
  local url="$E2E_NODE_ADDR:$NODE_PORT" password want got
  password=$(jsonpath -n "$NS" get secret "$REGISTRY-admin" -o jsonpath='{.data.password}' | base64 -d)
  out=$(skopeo copy --quiet --dest-tls-verify=false --dest-creds "admin:$password" "oci:$E2E_APP_LAYOUT:1" "docker://$url/$PROJECT/app:1" 2>&1) || { fail project-robot "skopeo copy: $out"; return; }
  want=$(jq -r '.manifests[0].digest' "$E2E_APP_LAYOUT/index.json")
  got=$(skopeo_inspect "$(pull_secret_creds)" "$url/$PROJECT/app:1") && [ "$got" = "$want" ] || { fail project-robot "the robot cannot read $PROJECT/app:1: $got"; return; }
  skopeo_inspect "" "$url/$PROJECT/app:1" >/dev/null && { fail project-robot "an anonymous client read the private $PROJECT/app:1"; return; }
  pass project-robot
}

app_deployment() {
  cat <<MANIFESTS
apiVersion: apps/v1
kind: Deployment
metadata: { name: app, namespace: $APPS_NS }
spec:
  replicas: 1
  selector: { matchLabels: { app: app } }
  strategy: { type: RollingUpdate, rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } }
  template:
    metadata: { labels: { app: app } }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: app
          image: $REG_HOST/$PROJECT/app:1
          # Every new pod pulls: the image on the node does not hide a missing or stale secret.
          imagePullPolicy: Always
MANIFESTS
}

flow_pull_injected_secret() {
  needs project-robot || { fail pull-injected-secret "needs project-robot"; return; }
  # The node pulls the registry's in-cluster name through the NodePort: a hosts.toml as kind's
  # local-registry recipe writes for localhost:5001. The kubelet finds the pull secret by that
  # name and hands it to containerd, which sends it to the host below.
  local ip out
  ip=$(jsonpath get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')
  NODE_URL="http://$ip:$NODE_PORT"
  node_hosts_toml "$REG_HOST" "# Written by wharf e2e/flows/run.sh: $REG_HOST through the registry's NodePort on this node.
server = \"http://$REG_HOST\"
[host.\"$NODE_URL\"]
  capabilities = [\"pull\", \"resolve\"]" || { fail pull-injected-secret "writing $E2E_NODE_CERTS_D/$REG_HOST/hosts.toml on the node failed"; return; }
  out=$(app_deployment | kubectl apply -f - 2>&1) || { fail pull-injected-secret "kubectl apply: $out"; return; }
  local pod
  if ! kubectl -n "$APPS_NS" rollout status deployment/app --timeout=180s >/dev/null 2>&1; then
    pod=$(newest_pod)
    fail pull-injected-secret "deployment app not available: pod $pod $(jsonpath -n "$APPS_NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].state}') $(pod_event "$pod" Failed "Failed to pull image")"
    return
  fi
  local template secrets
  template=$(jsonpath -n "$APPS_NS" get deployment app -o jsonpath='{.spec.template.spec.imagePullSecrets}')
  [ -z "$template" ] || { fail pull-injected-secret "the Deployment names imagePullSecrets itself: $template"; return; }
  pod=$(newest_pod)
  secrets=$(jsonpath -n "$APPS_NS" get pod "$pod" -o jsonpath='{.spec.imagePullSecrets[*].name}')
  [[ " $secrets " == *" $PULL_SECRET "* ]] || { fail pull-injected-secret "pod $pod got imagePullSecrets '$secrets' from its ServiceAccount, not $PULL_SECRET"; return; }
  [ "$(jsonpath -n "$APPS_NS" get pod "$pod" -o jsonpath='{.status.phase}')" = Running ] || { fail pull-injected-secret "pod $pod is not Running"; return; }
  [ -n "$(pod_event "$pod" Pulled)" ] || { fail pull-injected-secret "no Pulled event for pod $pod"; return; }
  echo "  $pod: $(pod_event "$pod" Pulled)"
  pass pull-injected-secret
}

# Argo CD / Flux-style health of every Wharf object: kstatus (e2e/flows/kstatus.jq).
KSTATUS_KINDS=""
kstatus_report() { kubectl get "$KSTATUS_KINDS" -A -o json | jq -r -f "$ROOT/e2e/flows/kstatus.jq"; }
all_current() { local r; r=$(kstatus_report) && [ -n "$r" ] && ! grep -qv ' Current$' <<<"$r"; }

flow_kstatus_current() {
  needs pull-injected-secret || { fail kstatus-current "needs pull-injected-secret"; return; }
  local report
  KSTATUS_KINDS=$(jsonpath get crd -o json | jq -r '[.items[] | select(.spec.group == "wharf.dev") | "\(.spec.names.plural).\(.spec.group)"] | join(",")')
  [ -n "$KSTATUS_KINDS" ] || { fail kstatus-current "no wharf.dev CRDs"; return; }
  # A status written a moment after the last change settles within seconds.
  until_ok 60 all_current || true
  report=$(kstatus_report)
  echo "  kstatus: $(paste -sd';' <<<"$report")"
  grep -q '^Registry/' <<<"$report" && grep -q '^Project/' <<<"$report" && grep -q '^RobotAccount/' <<<"$report" ||
    { fail kstatus-current "expected a Registry, a Project and a RobotAccount: $report"; return; }
  all_current || { fail kstatus-current "not Current: $(grep -v ' Current$' <<<"$report" | paste -sd';')"; return; }
  pass kstatus-current
}

flow_rotate() {
  needs pull-injected-secret || { fail rotate "needs pull-injected-secret"; return; }
  local url="$E2E_NODE_ADDR:$NODE_PORT" before after old_pod pod got
  before=$(pull_secret_creds)
  old_pod=$(newest_pod)
  kubectl -n "$NS" annotate "robotaccounts.wharf.dev/$ROBOT" "wharf.dev/rotate=$(date +%s%N)" --overwrite >/dev/null || { fail rotate "annotate failed"; return; }
  local deadline=$((SECONDS + 120))
  until after=$(pull_secret_creds) && [ "$after" != "$before" ]; do
    ((SECONDS > deadline)) && { fail rotate "the pull secret in $APPS_NS did not change: $(jsonpath -n "$NS" get robotaccounts.wharf.dev "$ROBOT" -o jsonpath='{.status.conditions}')"; return; }
    sleep 1
  done
  # graceSeconds 0: the replaced secret is refused at once, so a pod that pulls now holds the new one.
  skopeo_inspect "$before" "$url/$PROJECT/app:1" >/dev/null && { fail rotate "the replaced secret still reads $PROJECT/app:1"; return; }
  got=$(skopeo_inspect "$after" "$url/$PROJECT/app:1") || { fail rotate "the new secret cannot read $PROJECT/app:1: $got"; return; }
  kubectl -n "$APPS_NS" rollout restart deployment/app >/dev/null || { fail rotate "rollout restart failed"; return; }
  if ! kubectl -n "$APPS_NS" rollout status deployment/app --timeout=180s >/dev/null 2>&1; then
    pod=$(newest_pod)
    fail rotate "the rolled pod $pod did not start: $(pod_event "$pod" Failed "Failed to pull image")"
    return
  fi
  pod=$(newest_pod)
  [ "$pod" != "$old_pod" ] || { fail rotate "no new pod after the restart"; return; }
  [ -n "$(pod_event "$pod" Pulled)" ] || { fail rotate "no Pulled event for the new pod $pod"; return; }
  echo "  $pod: $(pod_event "$pod" Pulled)"
  pass rotate
}

flow_robot_deleted() {
  needs rotate || { fail robot-deleted "needs rotate"; return; }
  local creds pod message
  creds=$(pull_secret_creds)
  kubectl -n "$NS" delete "robotaccounts.wharf.dev/$ROBOT" --timeout=120s >/dev/null 2>&1 || { fail robot-deleted "the RobotAccount was not deleted within 120s"; return; }
  until_ok 60 bash -c "! kubectl -n $APPS_NS get secret $PULL_SECRET" || { fail robot-deleted "the pull secret $APPS_NS/$PULL_SECRET is still there"; return; }
  [[ " $(jsonpath -n "$APPS_NS" get serviceaccount default -o jsonpath='{.imagePullSecrets[*].name}') " != *" $PULL_SECRET "* ]] ||
    { fail robot-deleted "ServiceAccount $APPS_NS/default still names $PULL_SECRET"; return; }
  skopeo_inspect "$creds" "$E2E_NODE_ADDR:$NODE_PORT/$PROJECT/app:1" >/dev/null && { fail robot-deleted "the deleted robot's secret still reads $PROJECT/app:1"; return; }
  kubectl -n "$APPS_NS" rollout restart deployment/app >/dev/null || { fail robot-deleted "rollout restart failed"; return; }
  local deadline=$((SECONDS + 180))
  while :; do
    pod=$(newest_pod)
    # The kubelet's Failed events: "Failed to pull image ...: <why>", then ErrImagePull, ImagePullBackOff.
    message=$(pod_event "$pod" Failed "Failed to pull image")
    [ -n "$message" ] && break
    ((SECONDS > deadline)) && { fail robot-deleted "no Failed event for the new pod $pod: $(jsonpath -n "$APPS_NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].state}')"; return; }
    sleep 2
  done
  echo "  $pod: $message"
  grep -qiE 'unauthori[sz]ed|authoriz|denied|401|403' <<<"$message" || { fail robot-deleted "the pull failed, but not for authorization: $message"; return; }
  pass robot-deleted
}

# --- The node mirror (flows 6, 7). ------------------------------------------------------------
MIRROR_NS=mirror
MIRROR_PROJECT=hub
CERTS_D_BEFORE="" # the node's hosts.toml directory before the node agent ran

# Every directory and file below containerd's config_path on the node, files with their digest.
node_certs_d() {
  printf 'cd "%s" || exit 1\nfind . -type d | sort\nfind . -type f -exec sha256sum {} + | sort -k2\n' "$E2E_NODE_CERTS_D" | $E2E_NODE_SHELL
}
node_file() { printf 'cat "%s"\n' "$E2E_NODE_CERTS_D/$1" | $E2E_NODE_SHELL 2>/dev/null; }

mirror_manifests() {
  cat <<MANIFESTS
apiVersion: wharf.dev/v1alpha1
kind: Project
metadata: { name: $MIRROR_PROJECT, namespace: $NS }
spec:
  registryRef: { name: $REGISTRY }
  # containerd sends no credentials to a mirror: mirror projects are public.
  visibility: public
  proxyCache:
    provider: docker-registry
    url: $E2E_UPSTREAM_URL
    mirrorOf: [docker.io]
  deletionPolicy: Delete
---
apiVersion: v1
kind: Namespace
metadata: { name: $MIRROR_NS }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: mirrored, namespace: $MIRROR_NS }
spec:
  replicas: 1
  selector: { matchLabels: { app: mirrored } }
  template:
    metadata: { labels: { app: mirrored } }
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: app
          image: docker.io/library/app:1
          imagePullPolicy: Always
MANIFESTS
}

flow_node_mirror() {
  needs registry-nodeport || { fail node-mirror "needs registry-nodeport"; return; }
  CERTS_D_BEFORE=$(node_certs_d) || { fail node-mirror "cannot list $E2E_NODE_CERTS_D on the node"; return; }
  # The stand-in for Docker Hub (which this lab cannot reach) holds library/app:1: the
  # application recompressed (zstd), so that its manifest and layer are new to the node.
  local out upstream_digest
  out=$(skopeo copy --quiet --dest-tls-verify=false --dest-no-creds --dest-compress-format zstd "oci:$E2E_APP_LAYOUT:1" "docker://$E2E_UPSTREAM_PUSH/library/app:1" 2>&1) ||
    { fail node-mirror "pushing library/app:1 to the stand-in upstream $E2E_UPSTREAM_PUSH: $out"; return; }
  upstream_digest=$(skopeo_inspect "" "$E2E_UPSTREAM_PUSH/library/app:1") || { fail node-mirror "the stand-in upstream: $upstream_digest"; return; }
  kubectl -n "$NS" patch registry "$REGISTRY" --type merge -p "{\"spec\":{\"nodeMirror\":{\"enabled\":true,\"configPath\":\"$E2E_NODE_CERTS_D\"}}}" >/dev/null ||
    { fail node-mirror "enabling spec.nodeMirror failed"; return; }
  # The Deployment is applied with the Project: its pod pulls once the node agent has written the file.
  out=$(mirror_manifests | kubectl apply -f - 2>&1) || { fail node-mirror "kubectl apply: $out"; return; }
  kubectl -n "$NS" wait "projects.wharf.dev/$MIRROR_PROJECT" --for=condition=Ready --timeout=180s >/dev/null 2>&1 ||
    { fail node-mirror "project $MIRROR_PROJECT not Ready: $(jsonpath -n "$NS" get projects.wharf.dev "$MIRROR_PROJECT" -o jsonpath='{.status.conditions}')"; return; }
  until_ok 180 bash -c "$(declare -f node_file); E2E_NODE_CERTS_D='$E2E_NODE_CERTS_D' E2E_NODE_SHELL='$E2E_NODE_SHELL'; node_file docker.io/hosts.toml | grep -q '^\\[host\\.'" ||
    { fail node-mirror "no $E2E_NODE_CERTS_D/docker.io/hosts.toml on the node: registry $(jsonpath -n "$NS" get registry "$REGISTRY" -o jsonpath='{.status.nodeMirror}') pods $(kubectl -n "$NS" get pods -o wide 2>&1 | tail -n +2 | tr '\n' ';')"; return; }
  echo "  the node agent wrote $E2E_NODE_CERTS_D/docker.io/hosts.toml: $(node_file docker.io/hosts.toml | grep -v '^ *#' | grep . | paste -sd' ')"
  if ! kubectl -n "$MIRROR_NS" rollout status deployment/mirrored --timeout=180s >/dev/null 2>&1; then
    local pod
    pod=$(jsonpath -n "$MIRROR_NS" get pods -l app=mirrored -o jsonpath='{.items[-1:].metadata.name}')
    fail node-mirror "docker.io/library/app:1 did not run: $(jsonpath -n "$MIRROR_NS" get events --field-selector "involvedObject.name=$pod,reason=Failed" -o jsonpath='{.items[0].message}')"
    return
  fi
  local image image_id mirrored
  image=$(jsonpath -n "$MIRROR_NS" get deployment mirrored -o jsonpath='{.spec.template.spec.containers[0].image}')
  [ "$image" = docker.io/library/app:1 ] || { fail node-mirror "the Deployment's image changed to $image"; return; }
  image_id=$(jsonpath -n "$MIRROR_NS" get pods -l app=mirrored -o jsonpath='{.items[0].status.containerStatuses[0].imageID}')
  [[ $image_id == *"@$upstream_digest" ]] || { fail node-mirror "the pod runs $image_id, not the upstream's $upstream_digest"; return; }
  mirrored=$(kubectl -n "$NS" logs -l "app.kubernetes.io/instance=$REGISTRY" --tail=-1 2>/dev/null | grep -o '"url":"[^"]*?ns=docker.io"' | sort -u)
  grep -q '/v2/library/app/manifests/1?ns=docker.io' <<<"$mirrored" || { fail node-mirror "the registry's log shows no ?ns=docker.io pull of library/app:1: $mirrored"; return; }
  echo "  pod image $image_id; registry log: $(paste -sd' ' <<<"$mirrored" | cut -c1-600)"
  pass node-mirror
}

flow_registry_deleted() {
  needs node-mirror || { fail registry-deleted "needs node-mirror"; return; }
  local pvc="$REGISTRY-data" left after
  kubectl -n "$NS" delete registry "$REGISTRY" --timeout=300s >/dev/null 2>&1 || { fail registry-deleted "the Registry was not deleted within 300s"; return; }
  gone() { [ -z "$(kubectl -n "$NS" get pods,services,daemonsets,deployments -l "app.kubernetes.io/instance=$REGISTRY" -o name 2>/dev/null)" ]; }
  until_ok 180 gone || { fail registry-deleted "left behind: $(kubectl -n "$NS" get pods,services,daemonsets,deployments -l "app.kubernetes.io/instance=$REGISTRY" -o name | paste -sd' ')"; return; }
  left=$(kubectl -n "$NS" get service "$REGISTRY" -o name 2>/dev/null)
  [ -z "$left" ] || { fail registry-deleted "the Service $left is still there"; return; }
  after=$(node_certs_d) || { fail registry-deleted "cannot list $E2E_NODE_CERTS_D on the node"; return; }
  [ "$after" = "$CERTS_D_BEFORE" ] || { fail registry-deleted "$E2E_NODE_CERTS_D differs from before the node mirror: $(diff <(echo "$CERTS_D_BEFORE") <(echo "$after") | grep '^[<>]' | paste -sd' ')"; return; }
  # persistence.reclaimPolicy Retain (the default): the data outlives the Registry.
  [ "$(jsonpath -n "$NS" get pvc "$pvc" -o jsonpath='{.status.phase}')" = Bound ] || { fail registry-deleted "the data PVC $pvc was not retained"; return; }
  echo "  pods, Services and the node agent are gone; $E2E_NODE_CERTS_D is as before; PVC $pvc retained"
  pass registry-deleted
}

flow_operator_installed
flow_registry_ready
flow_registry_nodeport
flow_push
flow_project_robot
flow_pull_injected_secret
flow_kstatus_current
flow_rotate
flow_robot_deleted
flow_node_mirror
flow_registry_deleted
echo "flows: ${#passed[@]} passed, $failed failed"
[ "$failed" -eq 0 ]
