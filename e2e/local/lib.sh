# Shared settings of the kindless lab (sourced by up.sh, down.sh, load-images.sh). docs/lab.md
# describes the lab; everything it writes lives below $E2E, and $E2E/state records every side
# effect outside it so that down.sh can undo exactly those.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
E2E="${E2E_DIR:-$ROOT/.e2e}"
case "$E2E" in /*/*) ;; *) echo "E2E_DIR must be an absolute path below / (not $E2E)" >&2; exit 1 ;; esac
BIN="$ROOT/.tools/bin"
export PATH="$BIN:$PATH"

NODE_NAME=wharf-e2e
# The lab's own bridge; pods and the node's components talk over it. 10.88.0.0/16 is avoided:
# podman's default network may use it.
BRIDGE=wharfe2e0
NODE_IP=10.244.0.1
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/24
API_SERVER="https://$NODE_IP:6443"
ETCD_CLIENT=127.0.0.1:12379
ETCD_PEER=127.0.0.1:12380
CONTAINERD_SOCK="$E2E/run/containerd.sock"
PAUSE_IMAGE=wharf.local/e2e/pause:1
KUBECONFIG_ADMIN="$E2E/pki/admin.kubeconfig"
# The stand-in for Docker Hub (flow node-mirror): Debian's docker-registry on the node's address.
UPSTREAM="$NODE_IP:5050"
# The pods' memory cgroup (cgroup v1 here; v2 untested): the flows read the registry's peak there.
if [ -d /sys/fs/cgroup/memory ]; then POD_MEMORY_CGROUP=/sys/fs/cgroup/memory/kubepods; else POD_MEMORY_CGROUP=/sys/fs/cgroup/kubepods; fi
# The cgroups the kubelet and containerd make, in every v1 hierarchy or the v2 root.
lab_cgroups() { { ls -d /sys/fs/cgroup/kubepods /sys/fs/cgroup/k8s.io /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/k8s.io 2>/dev/null || true; } | sort; }

# Paths outside $E2E that the node's components create whatever they are told; removed by
# down.sh when they did not exist before up.sh.
OUTSIDE_PATHS=(/var/lib/kubelet /var/log/containers /run/containerd /usr/libexec/kubernetes)
# Sysctls the kubelet sets (protectKernelDefaults: false) and the lab sets (ip_forward for
# pod-to-Service traffic between pods); restored by down.sh.
SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward)

log() { printf '[e2e %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

kubectl_admin() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# start NAME COMMAND...: starts a component in the background, its output in $E2E/logs/NAME.log,
# its PID in $E2E/pids/NAME.pid (what down.sh stops, by PID and only those).
start() {
  local name=$1
  shift
  mkdir -p "$E2E/logs" "$E2E/pids"
  setsid "$@" >"$E2E/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$E2E/pids/$name.pid"
}

# wait_for WHAT SECONDS COMMAND...: polls COMMAND every half second.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then
      log "timed out after ${seconds}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

alive() { [ -f "$E2E/pids/$1.pid" ] && kill -0 "$(cat "$E2E/pids/$1.pid")" 2>/dev/null; }

# Fails with the component's last log lines when it has exited.
check_alive() {
  local name=$1
  alive "$name" || { tail -n 30 "$E2E/logs/$name.log" >&2; die "$name exited"; }
}
