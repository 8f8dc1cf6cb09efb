// How a Registry's status is derived from what the operator observed. Pure functions.
import type { RegistryStatus } from '../api/registry.js';
import type { KubeObject } from '../kube/types.js';
import type { Summary } from '../runtime/conditions.js';

export interface DeploymentLike extends KubeObject {
  spec?: { replicas?: number };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

/** Ready / progressing / stalled, from the registry Deployment (kstatus rules for Deployments). */
export function deploymentSummary(wantReplicas: number, deploy: DeploymentLike | undefined): Summary {
  if (!deploy) return { state: 'progressing', reason: 'Creating', message: 'Creating the registry Deployment' };
  const st = deploy.status ?? {};
  if ((st.observedGeneration ?? 0) < (deploy.metadata.generation ?? 0)) {
    return { state: 'progressing', reason: 'DeploymentUpdating', message: 'The Deployment controller has not yet observed the latest pod template' };
  }
  const progressing = st.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.status === 'False' && progressing.reason === 'ProgressDeadlineExceeded') {
    return { state: 'stalled', reason: 'ProgressDeadlineExceeded', message: progressing.message ?? 'The Deployment exceeded its progress deadline' };
  }
  const updated = st.updatedReplicas ?? 0;
  const total = st.replicas ?? 0;
  const available = st.availableReplicas ?? 0;
  const ready = st.readyReplicas ?? 0;
  if (updated < wantReplicas) return { state: 'progressing', reason: 'RollingOut', message: `${updated} of ${wantReplicas} replicas updated` };
  if (total > updated) return { state: 'progressing', reason: 'RollingOut', message: `${total - updated} old replicas pending termination` };
  if (available < wantReplicas) return { state: 'progressing', reason: 'WaitingForReplicas', message: `${ready} of ${wantReplicas} replicas ready` };
  if (wantReplicas === 0) return { state: 'ready', reason: 'ScaledToZero', message: 'The registry is scaled to zero replicas' };
  return { state: 'ready', reason: 'Available', message: `${available} of ${wantReplicas} replicas available` };
}

export function workloadStatus(deploy: DeploymentLike | undefined): Pick<RegistryStatus, 'replicas' | 'readyReplicas' | 'updatedReplicas'> {
  return {
    replicas: deploy?.status?.replicas ?? 0,
    readyReplicas: deploy?.status?.readyReplicas ?? 0,
    updatedReplicas: deploy?.status?.updatedReplicas ?? 0,
  };
}
