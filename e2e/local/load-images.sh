#!/usr/bin/env bash
# Imports the images `make images` built into the lab's containerd under lab names and writes
# the kustomize overlay that names them (e2e/lab-images.sh, shared with the kind lab).
source "$(dirname "$0")/lib.sh"
source "$ROOT/e2e/lab-images.sh"

ctr_load() {
  local layout=$1 reference=$2 lab=$3
  tar -C "$layout" -cf - . | ctr --address "$CONTAINERD_SOCK" -n k8s.io images import - >/dev/null
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images tag --force "$reference" "$lab" >/dev/null
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images rm "$reference" >/dev/null
}
load_lab_images "$E2E/kustomize" ctr_load
