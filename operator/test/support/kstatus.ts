// kstatus (sigs.k8s.io/cli-utils/pkg/kstatus) for custom resources, as Flux's health checks and
// `kubectl wait`-style tools compute it from the object alone:
//   1. deletionTimestamp set                         → Terminating
//   2. status.observedGeneration != generation       → InProgress
//   3. condition Stalled=True                        → Failed
//   4. condition Reconciling=True                    → InProgress
//   5. condition Ready present and not True          → InProgress
//   6. otherwise                                     → Current
export type KStatus = 'Current' | 'InProgress' | 'Failed' | 'Terminating';

interface Obj {
  metadata: { generation?: number; deletionTimestamp?: string };
  status?: { observedGeneration?: number; conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

export function computeKStatus(obj: Obj): { status: KStatus; message: string } {
  if (obj.metadata.deletionTimestamp) return { status: 'Terminating', message: 'Resource scheduled for deletion' };
  const st = obj.status ?? {};
  if (st.observedGeneration !== undefined && st.observedGeneration !== obj.metadata.generation) {
    return { status: 'InProgress', message: `Resource generation ${obj.metadata.generation} not yet observed (observed ${st.observedGeneration})` };
  }
  const cond = (t: string) => st.conditions?.find((c) => c.type === t);
  const stalled = cond('Stalled');
  if (stalled?.status === 'True') return { status: 'Failed', message: stalled.message ?? stalled.reason ?? 'Stalled' };
  const reconciling = cond('Reconciling');
  if (reconciling?.status === 'True') return { status: 'InProgress', message: reconciling.message ?? 'Reconciling' };
  const ready = cond('Ready');
  if (ready && ready.status !== 'True') return { status: 'InProgress', message: ready.message ?? 'Not ready' };
  return { status: 'Current', message: 'Resource is current' };
}
