#!/usr/bin/env bash
# `make e2e`: starts the lab (up.sh), loads the images (load-images.sh), runs the flows
# (e2e/flows/run.sh) and tears the lab down (down.sh; E2E_KEEP=1 leaves it up). Prints how long
# the lab took to start, the whole run's time and its peak memory, and last `e2e: N passed, M failed`;
# exits 1 when a flow failed.
source "$(dirname "$0")/lib.sh"
run_started=$SECONDS
here="$(dirname "$0")"

teardown() { [ "${E2E_KEEP:-0}" = 1 ] && log "E2E_KEEP=1: the lab stays up; \`make e2e-down\` removes it" || "$here/down.sh"; }
# Interrupted (Ctrl-C, a CI timeout): remove the lab all the same.
trap 'log "interrupted"; "$here/down.sh"; exit 130' INT TERM
if ! "$here/up.sh"; then
  log "the lab did not start; logs in $E2E/logs (kept: E2E_KEEP=1 \`make e2e\` to look, \`make e2e-down\` to clean)"
  [ "${E2E_KEEP:-0}" = 1 ] || { cp -r "$E2E/logs" "$ROOT/.e2e-logs-failed" 2>/dev/null; "$here/down.sh"; }
  echo "e2e: 0 passed, 1 failed (the lab did not start)"
  exit 1
fi
up_seconds=$((SECONDS - run_started))

# Peak memory of the run: the components' RSS plus the pods' memory cgroup, every 2 s.
memory_sample() {
  local total=0 pid kb
  for f in "$E2E"/pids/*.pid; do
    pid=$(cat "$f")
    kb=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  local pods
  for pods in "$POD_MEMORY_CGROUP/memory.usage_in_bytes" "$POD_MEMORY_CGROUP/memory.current"; do
    [ -f "$pods" ] && total=$((total + $(cat "$pods") / 1024)) && break
  done
  echo "$total"
}
(
  peak=0
  while [ -d "$E2E/state" ]; do
    now=$(memory_sample)
    ((now > peak)) && peak=$now && echo "$peak" >"$E2E/state/memory-peak-kb"
    sleep 2
  done
) &
sampler=$!

"$here/load-images.sh"
status=0
flows_out=$(mktemp)
KUBECONFIG="$KUBECONFIG_ADMIN" E2E_NODE_ADDR="$NODE_IP" E2E_NODE_SHELL="bash -s" E2E_NODE_CERTS_D="$E2E/containerd/certs.d" \
  E2E_UPSTREAM_URL="http://$UPSTREAM" E2E_UPSTREAM_PUSH="$UPSTREAM" \
  E2E_OVERLAY="$E2E/kustomize" E2E_APP_LAYOUT="$E2E/images/pause-layout" E2E_MEMORY_CGROUP="$POD_MEMORY_CGROUP" \
  "$ROOT/e2e/flows/run.sh" | tee "$flows_out" || status=1
peak_kb=$(cat "$E2E/state/memory-peak-kb" 2>/dev/null || echo 0)
kill "$sampler" 2>/dev/null || true
log "$(cat "$E2E/state/up-times")"
log "lab up in ${up_seconds}s; flows done after $((SECONDS - run_started))s; peak memory $((peak_kb / 1024)) MiB (components' RSS + pods' memory cgroup)"
[ $status -eq 0 ] || cp -r "$E2E/logs" "$ROOT/.e2e-logs-failed" 2>/dev/null || true
teardown
log "whole run $((SECONDS - run_started))s"
passed=$(grep -c '^PASS ' "$flows_out" || true)
failed=$(grep -c '^FAIL ' "$flows_out" || true)
# The flow script stopped without a FAIL line of its own: count that as one.
[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "e2e: $passed passed, $failed failed"
rm -f "$flows_out"
exit $status
