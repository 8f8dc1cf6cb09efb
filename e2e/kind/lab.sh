#!/usr/bin/env bash
# `make lab`: the e2e flows on a kind cluster, for machines with Docker (docs/lab.md). Creates the
# cluster (kind.yaml), loads the images `make images` built, and runs e2e/flows/run.sh, the
# script `make e2e` runs on the kindless local lab. The cluster stays up afterwards, to look
# around (`make lab-down` deletes it); LAB_DOWN=1 deletes it at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CLUSTER=wharf-lab
NODE="$CLUSTER-control-plane"
NODE_PORT=30500 # kind.yaml maps it to 127.0.0.1
WORK="$ROOT/.lab"
export PATH="$ROOT/.tools/bin:$PATH"
log() { printf '[lab %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
source "$ROOT/e2e/lab-images.sh"

for tool in docker kind kubectl skopeo jq gcc; do
  command -v "$tool" >/dev/null || die "$tool is missing (make lab needs Docker, kind v0.27+, skopeo, jq, gcc; make e2e is the lab without Docker)"
done
docker info >/dev/null 2>&1 || die "docker does not answer (is the daemon running, may this user use it?)"
started=$SECONDS
mkdir -p "$WORK"

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  die "the kind cluster $CLUSTER exists already: \`make lab-down\` first"
fi
kind create cluster --config "$ROOT/e2e/kind/kind.yaml" --kubeconfig "$WORK/kubeconfig" --wait 120s
docker exec "$NODE" grep -q 'config_path *= *"/etc/containerd/certs.d"' /etc/containerd/config.toml ||
  die "containerd in $NODE has no config_path /etc/containerd/certs.d (kind v0.27+ needed)"
log "cluster up in $((SECONDS - started))s"

# kind loads docker-archive tarballs; the images are OCI layouts: skopeo converts.
kind_load() {
  local layout=$1 reference=$2 lab=$3 archive
  archive="$WORK/${lab##*/}.tar"
  archive="${archive//:/_}"
  rm -f "$archive"
  skopeo copy --quiet "oci:$layout:${reference##*:}" "docker-archive:$archive:$lab"
  kind load image-archive "$archive" --name "$CLUSTER"
  rm -f "$archive"
}
load_lab_images "$WORK/kustomize" kind_load
build_app_image "$WORK/images" wharf.local/e2e/app:1

# The stand-in for Docker Hub (flow node-mirror): a plain registry on kind's network, pushed to
# from this machine through 127.0.0.1:5050, reached by the registry's pods at its address there.
docker rm -f "$CLUSTER-upstream" >/dev/null 2>&1 || true
docker run -d --name "$CLUSTER-upstream" --network kind -p 127.0.0.1:5050:5000 registry:2 >/dev/null
upstream_ip=$(docker inspect -f '{{(index .NetworkSettings.Networks "kind").IPAddress}}' "$CLUSTER-upstream")

status=0
KUBECONFIG="$WORK/kubeconfig" E2E_NODE_ADDR=127.0.0.1 E2E_NODE_PORT=$NODE_PORT \
  E2E_NODE_SHELL="docker exec -i $NODE sh -s" E2E_NODE_CERTS_D=/etc/containerd/certs.d \
  E2E_OVERLAY="$WORK/kustomize" E2E_APP_LAYOUT="$WORK/images/pause-layout" \
  E2E_UPSTREAM_URL="http://$upstream_ip:5000" E2E_UPSTREAM_PUSH=127.0.0.1:5050 \
  "$ROOT/e2e/flows/run.sh" || status=1
log "flows done after $((SECONDS - started))s"
if [ "${LAB_DOWN:-0}" = 1 ]; then
  kind delete cluster --name "$CLUSTER"
  docker rm -f "$CLUSTER-upstream" >/dev/null
else
  log "the cluster stays up: KUBECONFIG=$WORK/kubeconfig kubectl ...; \`make lab-down\` deletes it"
fi
exit $status
