// The retention and immutability part of a Project's reconcile: read the registry's policies,
// write those the Project sets and that differ. Returns what changed, for the Project's events.
import type { ProjectSpec } from '../api/project.js';
import { must, type RegistryClient } from '../registry-client/client.js';
import { renderLifecycle, samePolicy } from '../resources/project/lifecycle.js';

export async function applyLifecycle(client: RegistryClient, project: string, spec: ProjectSpec, signal: AbortSignal): Promise<string[]> {
  const api = client.api;
  const path = { project };
  const desired = renderLifecycle(spec);
  const changes: string[] = [];
  if (desired.retention) {
    const live = must(`get retention of ${project}`, await api.GET('/api/v1/projects/{project}/retention', { params: { path }, signal }));
    if (!samePolicy(live, desired.retention)) {
      must(`put retention of ${project}`, await api.PUT('/api/v1/projects/{project}/retention', { params: { path }, body: desired.retention, signal }));
      changes.push('retention policy');
    }
  }
  if (desired.immutability) {
    const live = must(`get immutability of ${project}`, await api.GET('/api/v1/projects/{project}/immutability', { params: { path }, signal }));
    if (!samePolicy(live, desired.immutability)) {
      must(`put immutability of ${project}`, await api.PUT('/api/v1/projects/{project}/immutability', { params: { path }, body: desired.immutability, signal }));
      changes.push('immutability rules');
    }
  }
  return changes;
}
