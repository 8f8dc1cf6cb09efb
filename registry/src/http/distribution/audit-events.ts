import { projectOf } from '../../auth/scopes.js';
import type { AuditEvent } from '../../metadata/audit.js';

/**
 * The audit event for a completed /v2 request, if it is one we record: manifest
 * pushes and pulls, and deletes of manifests, tags and blobs. Pure.
 */
export function auditEventFor(input: { method: string; routeUrl: string | undefined; status: number; params: Record<string, string>; actor: string }): AuditEvent | undefined {
  const { method, routeUrl, status, params, actor } = input;
  if (status < 200 || status >= 300 || !routeUrl || !params.name) return undefined;
  const isManifest = routeUrl.endsWith('/manifests/:reference');
  const isBlob = routeUrl.endsWith('/blobs/:digest');
  const target = isManifest ? `${params.name}:${params.reference}` : isBlob ? `${params.name}@${params.digest}` : undefined;
  if (!target) return undefined;
  const action = method === 'PUT' && isManifest ? 'push' : method === 'GET' && isManifest ? 'pull' : method === 'DELETE' ? 'delete' : undefined;
  if (!action) return undefined;
  return { actor, action, resourceType: isManifest ? 'artifact' : 'blob', resource: target, project: projectOf(params.name), outcome: 'success' };
}
