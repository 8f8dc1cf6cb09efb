#!/usr/bin/env bash
# Loads the images `make images` built (dist/images) into the lab's containerd under lab names
# (wharf.local/e2e/<name>:<version>-<digest>, so a rebuilt image is a new tag), and writes the
# kustomize overlay that points config/default at them: the `images:` setting a user points at
# their own registry (docs/lab.md).
source "$(dirname "$0")/lib.sh"

overlay="$E2E/kustomize"
mkdir -p "$overlay"
{
  echo "# Written by e2e/local/load-images.sh: config/default with the images loaded into the lab."
  echo "resources: [$(realpath --relative-to="$overlay" "$ROOT/config/default")]"
  echo "images:"
} >"$overlay/kustomization.yaml"
for name in wharf-registry wharf-operator; do
  layout="$ROOT/dist/images/$name"
  [ -f "$layout/index.json" ] || die "$layout is missing: run \`make images\`"
  reference=$(jq -r '.manifests[0].annotations["io.containerd.image.name"]' "$layout/index.json")
  digest=$(jq -r '.manifests[0].digest' "$layout/index.json")
  lab="wharf.local/e2e/$name:${reference##*:}-${digest:7:12}"
  tar -C "$layout" -cf - . | ctr --address "$CONTAINERD_SOCK" -n k8s.io images import - >/dev/null
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images tag --force "$reference" "$lab" >/dev/null
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images rm "$reference" >/dev/null
  printf '  - name: %s\n    newName: %s\n    newTag: %s\n' "${reference%:*}" "${lab%:*}" "${lab##*:}" >>"$overlay/kustomization.yaml"
  log "loaded $lab ($digest)"
done
