# kstatus (sigs.k8s.io/cli-utils/pkg/kstatus) of each object of a Kubernetes List, as Flux's
# health checks and `kubectl wait`-style tools compute it from the object alone; one line
# "<Kind>/<namespace>/<name> <status>" each. The same rules as operator/test/support/kstatus.ts
# (operator/test/unit/kstatus-jq.test.ts checks that the two agree):
#   deletionTimestamp set → Terminating; observedGeneration behind → InProgress;
#   Stalled=True → Failed; Reconciling=True → InProgress; Ready present and not True → InProgress;
#   otherwise Current.
def cond($t): [.status.conditions[]? | select(.type == $t)][0];
def kstatus:
  if .metadata.deletionTimestamp then "Terminating"
  elif (.status.observedGeneration != null and .status.observedGeneration != .metadata.generation) then "InProgress"
  elif cond("Stalled").status == "True" then "Failed"
  elif cond("Reconciling").status == "True" then "InProgress"
  elif (cond("Ready") != null and cond("Ready").status != "True") then "InProgress"
  else "Current" end;
.items[] | "\(.kind)/\(.metadata.namespace // "")/\(.metadata.name) \(kstatus)"
