#!/usr/bin/env bash
# Starts the kindless single-node cluster of the e2e lab on this machine (docs/lab.md):
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler (.tools/bin, `make kube-tools
#   kube-node-tools`), containerd and runc from Debian with a private root, state, socket and
#   certs.d (config_path), a bridge CNI network on the lab's own bridge, a static pause image
#   built here and imported, the kubelet, kube-proxy (iptables mode), and a StorageClass with
#   hostPath PersistentVolumes below .e2e/, and Debian's docker-registry on the node's address
#   as the node mirror's stand-in upstream (Docker Hub cannot be reached). No cluster DNS: the flows reach pods through
#   NodePorts and the apiserver through its Service, which need none.
# Needs root. Everything lives below .e2e/; `make e2e-down` (down.sh) undoes it all.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || die "the lab needs root (network, mounts, cgroups)"
[ -d /sys/fs/cgroup/memory ] || [ -f /sys/fs/cgroup/cgroup.controllers ] || die "no cgroup hierarchy under /sys/fs/cgroup"
for tool in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  [ -x "$BIN/$tool" ] || die "$BIN/$tool is missing: run \`make kube-tools kube-node-tools\`"
done
for tool in containerd containerd-shim-runc-v2 ctr runc docker-registry iptables iptables-save nft ip openssl gcc jq skopeo; do
  command -v "$tool" >/dev/null || die "$tool is missing: run \`make e2e-system-deps\`"
done
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] || die "CNI plugins are missing (containernetworking-plugins): run \`make e2e-system-deps\`"
[ ! -e "$E2E/state" ] || die "$E2E/state exists: a lab is up (or was not torn down); run \`make e2e-down\` first"
ip link show "$BRIDGE" >/dev/null 2>&1 && die "the bridge $BRIDGE exists already"
route=$(ip -4 route show to match "$NODE_IP" | grep -v '^default' || true)
[ -z "$route" ] || die "$POD_CIDR overlaps a network this machine already routes ($route): another cluster or bridge uses it"
started=$SECONDS

# --- What the system looks like before: down.sh restores it. ---------------------------------
mkdir -p "$E2E/state" "$E2E/logs" "$E2E/pids" "$E2E/run"
for s in "${SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$E2E/state/sysctls"
for p in "${OUTSIDE_PATHS[@]}"; do [ -e "$p" ] && echo "$p"; done >"$E2E/state/existing-paths" || true
for cmd in iptables ip6tables; do
  for table in filter nat mangle; do "$cmd-save" -t "$table" 2>/dev/null | sed -n "s/^:\([^ ]*\) .*/$cmd $table \1/p"; done
done >"$E2E/state/existing-chains"
# iptables (nf_tables backend) creates its tables on first use: those are removed again when empty.
nft list tables >"$E2E/state/existing-tables"
lab_cgroups >"$E2E/state/existing-cgroups"
touch "$E2E/state/up-started"

# --- Certificates: one CA; each component its client identity. -----------------------------
PKI="$E2E/pki"
mkdir -p "$PKI"
ossl() { openssl "$@" >/dev/null 2>&1; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 7 -subj /CN=wharf-e2e-ca
# issue NAME SUBJECT [EXTENSIONS]
issue() {
  printf '%s\n' "${3:-extendedKeyUsage=clientAuth}" | tr ';' '\n' >"$PKI/$1.ext"
  ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$PKI/$1.key" -out "$PKI/$1.csr" -subj "$2"
  ossl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 7 -out "$PKI/$1.crt" -extfile "$PKI/$1.ext"
}
issue apiserver /CN=kube-apiserver "subjectAltName=IP:$NODE_IP,IP:127.0.0.1,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:localhost;extendedKeyUsage=serverAuth"
issue kubelet-serving "/CN=$NODE_NAME" "subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME;extendedKeyUsage=serverAuth"
issue admin /O=system:masters/CN=wharf-e2e-admin
issue apiserver-kubelet-client /O=system:masters/CN=kube-apiserver-kubelet-client
issue controller-manager /CN=system:kube-controller-manager
issue scheduler /CN=system:kube-scheduler
issue kube-proxy /CN=system:kube-proxy
issue kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
for who in admin controller-manager scheduler kube-proxy kubelet; do
  cat >"$PKI/$who.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: "$API_SERVER", certificate-authority: "$PKI/ca.crt"}}]
users: [{name: $who, user: {client-certificate: "$PKI/$who.crt", client-key: "$PKI/$who.key"}}]
contexts: [{name: e2e, context: {cluster: e2e, user: $who}}]
current-context: e2e
EOF
done

# --- The lab's bridge: the node's address and the pods' gateway. ---------------------------
ip link add "$BRIDGE" type bridge
echo "$BRIDGE" >"$E2E/state/bridge"
ip addr add "$NODE_IP/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
# Pods reach Services whose endpoints are other pods through the node.
sysctl -qw net.ipv4.ip_forward=1

# --- Control plane. ------------------------------------------------------------------------
start etcd "$BIN/etcd" --name=e2e --data-dir="$E2E/etcd" \
  --listen-client-urls="http://$ETCD_CLIENT" --advertise-client-urls="http://$ETCD_CLIENT" \
  --listen-peer-urls="http://$ETCD_PEER" --initial-advertise-peer-urls="http://$ETCD_PEER" \
  --initial-cluster="e2e=http://$ETCD_PEER" --unsafe-no-fsync=true --log-level=warn
wait_for etcd 60 curl -fsS "http://$ETCD_CLIENT/health" || { check_alive etcd; exit 1; }

start kube-apiserver "$BIN/kube-apiserver" --etcd-servers="http://$ETCD_CLIENT" \
  --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port=6443 \
  --cert-dir="$E2E/apiserver-certs" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true --profiling=false --v=1
wait_for kube-apiserver 120 kubectl_admin get --raw /readyz || { check_alive kube-apiserver; exit 1; }

start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$PKI/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --service-cluster-ip-range="$SERVICE_CIDR" --flex-volume-plugin-dir="$E2E/flexvolume" --v=1
start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$PKI/scheduler.kubeconfig" --bind-address=127.0.0.1 --leader-elect=false --v=1
wait_for "the default ServiceAccount" 90 kubectl_admin -n default get serviceaccount default || { check_alive kube-controller-manager; exit 1; }
control_plane=$((SECONDS - started))

# --- containerd: private root, state, socket, runc root, certs.d and network namespaces. ---
mkdir -p "$E2E/containerd/certs.d" "$E2E/cni/net.d" "$E2E/cni/state"
cat >"$E2E/containerd/config.toml" <<EOF
version = 2
root = "$E2E/containerd/root"
state = "$E2E/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$E2E/run/containerd-ttrpc.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$E2E/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  # This machine lacks CAP_SYS_RESOURCE: runc could not lower the sandbox's OOM score.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$E2E/run/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$E2E/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$E2E/containerd/certs.d"
EOF
start containerd containerd --config "$E2E/containerd/config.toml"
wait_for containerd 60 ctr --address "$CONTAINERD_SOCK" version || { check_alive containerd; exit 1; }

# The bridge CNI network: the lab's bridge made above, host-local addresses from the pod range,
# the node as the pods' gateway; no masquerading and no port mapping (no iptables rules of its own).
cat >"$E2E/cni/net.d/10-wharf-e2e.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "wharf-e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$E2E/cni/state",
        "ranges": [[{ "subnet": "$POD_CIDR", "rangeStart": "10.244.0.10", "rangeEnd": "10.244.0.250", "gateway": "$NODE_IP" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    }
  ]
}
EOF

# The pause image: a static binary built here, imported; nothing is pulled.
source "$ROOT/e2e/lab-images.sh"
build_app_image "$E2E/images" "$PAUSE_IMAGE"
tar -C "$E2E/images/pause-layout" -cf - . | ctr --address "$CONTAINERD_SOCK" -n k8s.io images import - >/dev/null

# --- The kubelet. ---------------------------------------------------------------------------
mkdir -p "$E2E/kubelet" "$E2E/pod-logs"
cat >"$E2E/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine's cgroups are v1: the kubelet refuses them unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzPort: 0
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $PKI/ca.crt }
authorization: { mode: Webhook }
podLogsDir: $E2E/pod-logs
volumePluginDir: $E2E/kubelet-plugins
# No cluster DNS: pods get no nameserver rather than the host's.
resolvConf: ""
failSwapOn: false
maxPods: 40
serializeImagePulls: false
# The disk is shared: no eviction or image garbage collection for lack of space.
evictionHard: { memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%" }
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
EOF
start kubelet "$BIN/kubelet" --config="$E2E/kubelet.yaml" --kubeconfig="$PKI/kubelet.kubeconfig" \
  --root-dir="$E2E/kubelet" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
kubelet_started=$SECONDS
wait_for "node $NODE_NAME Ready" 120 bash -c "kubectl --kubeconfig '$KUBECONFIG_ADMIN' get node '$NODE_NAME' -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True" || { check_alive kubelet; exit 1; }
node_ready=$((SECONDS - kubelet_started))

# --- kube-proxy: iptables mode; NodePorts on the bridge address only; no sysctls. ------------
cat >"$E2E/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: { kubeconfig: $PKI/kube-proxy.kubeconfig }
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
clusterCIDR: $POD_CIDR
nodePortAddresses: ["$NODE_IP/32"]
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
iptables: { localhostNodePorts: false, masqueradeAll: false }
conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
EOF
start kube-proxy "$BIN/kube-proxy" --config="$E2E/kube-proxy.yaml" --v=1
wait_for "kube-proxy's rules" 60 bash -c "iptables-save -t nat | grep -q 'KUBE-SVC-.*default/kubernetes'" || { check_alive kube-proxy; exit 1; }

# --- Storage: hostPath volumes below .e2e, bound by a default StorageClass without a provisioner.
mkdir -p "$E2E/volumes"
{
  cat <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: e2e-hostpath
  annotations: { storageclass.kubernetes.io/is-default-class: "true" }
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: Immediate
reclaimPolicy: Retain
EOF
  for i in 1 2 3 4; do
    # World-writable like local-path-provisioner's directories: hostPath volumes ignore fsGroup.
    install -d -m 0777 "$E2E/volumes/pv-$i"
    cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata: { name: e2e-pv-$i }
spec:
  capacity: { storage: 20Gi }
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: e2e-hostpath
  hostPath: { path: $E2E/volumes/pv-$i, type: Directory }
EOF
  done
} | kubectl_admin apply -f - >/dev/null

# --- The stand-in for Docker Hub, which the lab cannot reach: a plain registry (Debian's
# docker-registry, distribution 2.8) on the node's address, the node mirror's upstream.
mkdir -p "$E2E/upstream/data"
cat >"$E2E/upstream/config.yml" <<EOF
version: 0.1
log: { level: warn, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $E2E/upstream/data } }
http: { addr: "$UPSTREAM" }
EOF
start upstream docker-registry serve "$E2E/upstream/config.yml"
wait_for "the stand-in upstream registry" 30 curl -fsS "http://$UPSTREAM/v2/" || { check_alive upstream; exit 1; }

echo "control plane ${control_plane}s, node Ready ${node_ready}s after the kubelet started, lab up in $((SECONDS - started))s" >"$E2E/state/up-times"
log "lab up in $((SECONDS - started))s (control plane ${control_plane}s; node Ready ${node_ready}s after the kubelet started); KUBECONFIG=$KUBECONFIG_ADMIN"
