#!/usr/bin/env bash
# Tears the lab down and undoes every side effect up.sh recorded in .e2e/state (docs/lab.md):
#   1. the processes of the pods (found in the kubepods cgroups the lab made), then the
#      components up.sh started (by the PIDs it wrote), then containerd's shims (by the lab's
#      private containerd socket in their command line);
#   2. mounts below .e2e (overlay snapshots, the kubelet's bind mounts, volumes, netns);
#   3. iptables chains the kubelet and kube-proxy added (those absent before), IPv4 and IPv6,
#      and the nf_tables tables iptables made for them;
#   4. sysctls back to their recorded values;
#   5. cgroups kubepods and k8s.io, the bridge, paths outside .e2e created by the node;
#   6. .e2e itself.
# Safe to run again, and after a failed up.sh.
source "$(dirname "$0")/lib.sh"
# Best effort: every step runs even when an earlier one failed; what is left is reported at the end.
set +e

[ -d "$E2E" ] || { log "nothing to tear down ($E2E does not exist)"; exit 0; }
[ "$(id -u)" -eq 0 ] || die "needs root"
STATE="$E2E/state"

# stop_pids GRACE PID...: SIGTERM to those still running, GRACE seconds to exit, then SIGKILL.
stop_pids() {
  local grace=$1 pids=() p
  shift
  [ $# -gt 0 ] || return 0
  for p in "$@"; do kill -0 "$p" 2>/dev/null && pids+=("$p"); done
  [ ${#pids[@]} -gt 0 ] || return 0
  local since=$SECONDS what
  what=$(for p in "${pids[@]}"; do { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | cut -d' ' -f1 | xargs -r basename; done | sort -u | paste -sd, -)
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 1 $((grace * 2))); do
    local left=()
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left+=("$p"); done
    [ ${#left[@]} -eq 0 ] && { ((SECONDS - since > 1)) && log "$what took $((SECONDS - since))s to stop"; return 0; }
    sleep 0.5
  done
  log "still running after ${grace}s, killed: $(for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | cut -c1-60; done | paste -sd, -)"
  kill -KILL "${pids[@]}" 2>/dev/null || true
  sleep 0.5
}

# --- 1. Processes. -------------------------------------------------------------------------
# The kubelet first, so that it does not restart what the rest of this stops.
[ -f "$E2E/pids/kubelet.pid" ] && stop_pids 10 "$(cat "$E2E/pids/kubelet.pid")"
pod_pids() {
  local c
  for c in $(comm -23 <(lab_cgroups) <(sort "$STATE/existing-cgroups" 2>/dev/null)); do
    find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null
  done | sort -un
}
# Containers (their data goes with .e2e: a short grace), then their shims (whose command line
# names the lab's own containerd socket).
mapfile -t pids < <(pod_pids)
[ ${#pids[@]} -gt 0 ] && stop_pids 2 "${pids[@]}"
shim_pids() {
  local f
  for f in $(grep -alsF -- "$CONTAINERD_SOCK" /proc/[0-9]*/cmdline); do
    grep -aqs containerd-shim "$f" && { f=${f#/proc/}; echo "${f%/cmdline}"; }
  done
}
component_pids() { local name; for name in "$@"; do [ -f "$E2E/pids/$name.pid" ] && cat "$E2E/pids/$name.pid"; done; }
# The node's and the control plane's clients together, then the apiserver, then etcd.
mapfile -t pids < <(component_pids kube-proxy kube-scheduler kube-controller-manager containerd upstream)
stop_pids 10 "${pids[@]}"
mapfile -t pids < <(component_pids kube-apiserver)
stop_pids 10 "${pids[@]}"
mapfile -t pids < <(component_pids etcd)
stop_pids 10 "${pids[@]}"
mapfile -t pids < <(shim_pids)
[ ${#pids[@]} -gt 0 ] && stop_pids 10 "${pids[@]}"

log "processes stopped (${SECONDS}s)"
# --- 2. Mounts below .e2e, deepest first. ----------------------------------------------------
for _ in 1 2 3; do
  mapfile -t mounts < <(awk -v root="$E2E" '{ gsub(/\\040/, " ", $5); if ($5 == root || index($5, root "/") == 1) print $5 }' /proc/self/mountinfo | sort -r)
  [ ${#mounts[@]} -eq 0 ] && break
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
done
grep -q " $E2E" /proc/self/mountinfo && die "mounts below $E2E remain; not removing it: $(grep " $E2E" /proc/self/mountinfo | head -3)"

log "mounts removed (${SECONDS}s)"
# --- 3. iptables chains added by the kubelet and kube-proxy. ---------------------------------
if [ -f "$STATE/existing-chains" ]; then
  for cmd in iptables ip6tables; do
    for table in filter nat mangle; do
      mapfile -t added < <("$cmd-save" -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p' | while read -r chain; do grep -qx "$cmd $table $chain" "$STATE/existing-chains" || echo "$chain"; done)
      [ ${#added[@]} -gt 0 ] || continue
      # Rules that jump to them, deleted as iptables-save wrote them (iptables-restore reads the
      # quoted comments back); then the chains themselves.
      { echo "*$table"; "$cmd-save" -t "$table" | grep -E "^-A .* -j ($(IFS='|'; echo "${added[*]}"))( |$)" | sed 's/^-A /-D /'; echo COMMIT; } | "$cmd-restore" --noflush
      for chain in "${added[@]}"; do "$cmd" -t "$table" -F "$chain" 2>/dev/null || true; done
      for chain in "${added[@]}"; do "$cmd" -t "$table" -X "$chain" 2>/dev/null || true; done
    done
  done
fi

# Tables that iptables created for the lab (nf_tables backend), once they hold no rule and no chain of their own.
if [ -f "$STATE/existing-tables" ]; then
  nft list tables 2>/dev/null | while read -r _ family table; do
    grep -qx "table $family $table" "$STATE/existing-tables" && continue
    case $family in ip) cmd=iptables ;; ip6) cmd=ip6tables ;; *) continue ;; esac
    if ! "$cmd-save" -t "$table" 2>/dev/null | grep -q '^-A ' && ! "$cmd-save" -t "$table" 2>/dev/null | grep -q '^:[^ ]* - '; then
      nft delete table "$family" "$table"
    fi
  done
fi

log "iptables cleaned (${SECONDS}s)"
# --- 4. Sysctls. ----------------------------------------------------------------------------
if [ -f "$STATE/sysctls" ]; then
  while IFS='=' read -r key value; do
    [ -n "$key" ] && [ "$(sysctl -n "$key")" != "$value" ] && sysctl -qw "$key=$value"
  done <"$STATE/sysctls"
fi

# --- 5. Cgroups, the bridge, paths outside .e2e. --------------------------------------------
for c in $(comm -23 <(lab_cgroups) <(sort "$STATE/existing-cgroups" 2>/dev/null)); do
  find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  [ -d "$c" ] && log "warning: cgroup $c could not be removed (processes left?)"
done
if [ -f "$STATE/bridge" ] && ip link show "$(cat "$STATE/bridge")" >/dev/null 2>&1; then
  ip link delete "$(cat "$STATE/bridge")"
fi
if [ -f "$STATE/existing-paths" ]; then
  for p in "${OUTSIDE_PATHS[@]}"; do
    grep -qx "$p" "$STATE/existing-paths" && continue
    [ -e "$p" ] || continue
    if grep -q " $p" /proc/self/mountinfo; then log "warning: $p has mounts; left in place"; else rm -rf --one-file-system "$p"; fi
  done
fi

log "cgroups, bridge and paths removed (${SECONDS}s)"
# --- 6. The work directory, once nothing of the lab is left. ---------------------------------
left=()
ip link show "$BRIDGE" >/dev/null 2>&1 && left+=("bridge $BRIDGE")
for cmd in iptables ip6tables; do
  for table in filter nat mangle; do
    for chain in $("$cmd-save" -t "$table" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do
      grep -qx "$cmd $table $chain" "$STATE/existing-chains" 2>/dev/null || left+=("$cmd -t $table chain $chain")
    done
  done
done
[ ${#left[@]} -eq 0 ] || die "left behind: ${left[*]}; $E2E (with its state) is kept for another \`make e2e-down\`"
rm -rf --one-file-system "$E2E"
log "lab torn down"
