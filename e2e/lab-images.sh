# Sourced by both cluster providers (e2e/local/load-images.sh, e2e/kind/lab.sh): the images
# `make images` built (dist/images) go into the cluster under lab names,
# wharf.local/e2e/<name>:<version>-<digest> (a rebuilt image is a new tag, so a node never runs a
# stale one), and a kustomize overlay of config/default names them in `images:`, the setting a
# user points at their own registry (docs/lab.md).
#
# load_lab_images OVERLAY_DIR LOADER: runs `LOADER <layout> <reference in the layout> <lab reference>`
# for each image (the provider's way into its nodes), then writes OVERLAY_DIR/kustomization.yaml.
load_lab_images() {
  local overlay=$1 loader=$2 root name layout reference digest lab
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  mkdir -p "$overlay"
  {
    echo "# Written by e2e/lab-images.sh: config/default with the images loaded into the lab."
    echo "resources: [$(realpath --relative-to="$overlay" "$root/config/default")]"
    echo "images:"
  } >"$overlay/kustomization.yaml"
  for name in wharf-registry wharf-operator; do
    layout="$root/dist/images/$name"
    [ -f "$layout/index.json" ] || { echo "$layout is missing: run \`make images\`" >&2; return 1; }
    reference=$(jq -r '.manifests[0].annotations["io.containerd.image.name"]' "$layout/index.json")
    digest=$(jq -r '.manifests[0].digest' "$layout/index.json")
    lab="wharf.local/e2e/$name:${reference##*:}-${digest:7:12}"
    "$loader" "$layout" "$reference" "$lab" || return 1
    printf '  - name: %s\n    newName: %s\n    newTag: %s\n' "${reference%:*}" "${lab%:*}" "${lab##*:}" >>"$overlay/kustomization.yaml"
    echo "[e2e $(date +%T)] loaded $lab ($digest)" >&2
  done
}

# build_app_image DIR REFERENCE: the flows' application (and the local lab's pause image), a
# static pause binary (e2e/local/pause.c) as a one-file image, as the OCI layout DIR/pause-layout.
build_app_image() {
  local dir=$1 reference=$2 root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  mkdir -p "$dir"
  gcc -static -Os -s -o "$dir/pause" "$root/e2e/local/pause.c"
  node "$root/dist/e2e/src/images/pause.js" "$dir/pause" "$reference" "$dir/pause-layout" >/dev/null
}
