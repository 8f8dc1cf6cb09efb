import { projectOf } from '../../auth/scopes.js';
import type { ArtifactEvent } from '../../events/artifact-events.js';
import { tryParseManifestReference } from '../../oci/reference.js';

/** Requests whose manifest push created or moved a tag (set by the route, read when the event is built). */
const tagCreations = new WeakSet<object>();
export const markTagCreated = (request: object): void => void tagCreations.add(request);
export const createdTag = (request: object): boolean => tagCreations.has(request);

/**
 * The artifact event for a completed /v2 manifest request, if it is one: a successful PUT
 * (pushed), GET (pulled; HEAD is not a pull) or DELETE (deleted). Pure.
 */
export function artifactEventFor(input: {
  method: string;
  routeUrl: string | undefined;
  status: number;
  params: Record<string, string>;
  headers: Record<string, unknown>;
  actor: string;
  at: Date;
  tagCreated?: boolean;
}): ArtifactEvent | undefined {
  const { method, routeUrl, status, params, headers, actor, at } = input;
  if (status < 200 || status >= 300 || !routeUrl?.endsWith('/manifests/:reference') || !params.name || !params.reference) return undefined;
  const type = method === 'PUT' ? 'pushed' : method === 'GET' ? 'pulled' : method === 'DELETE' ? 'deleted' : undefined;
  if (!type) return undefined;
  const byDigest = tryParseManifestReference(params.reference)?.kind === 'digest';
  const headerDigest = typeof headers['docker-content-digest'] === 'string' ? headers['docker-content-digest'] : undefined;
  const digest = byDigest ? params.reference : headerDigest;
  const contentType = typeof headers['content-type'] === 'string' && type === 'pulled' ? headers['content-type'] : undefined;
  const length = Number(headers['content-length']);
  return {
    type,
    project: projectOf(params.name),
    repository: params.name,
    ...(digest && { digest }),
    ...(!byDigest && { tag: params.reference }),
    ...(type === 'pushed' && input.tagCreated && { tagCreated: true }),
    ...(contentType && { mediaType: contentType }),
    ...(type === 'pulled' && Number.isFinite(length) && { size: length }),
    actor,
    at,
  };
}
