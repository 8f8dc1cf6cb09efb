/**
 * Repository names contain slashes, which a path router cannot capture as one
 * parameter. Before routing, `/v2/<name>/<resource>` is rewritten to
 * `/v2/_r/<url-encoded name>/<resource>` (no name component may start with `_`,
 * so the prefix cannot collide). The name is validated later, by the route.
 */
export const NAMED_PREFIX = '/v2/_r/';

export type ResourceKind = 'manifests' | 'blobs' | 'uploads' | 'tags' | 'referrers';

export interface ResourcePath {
  name: string;
  kind: ResourceKind;
  /** Everything after the name, e.g. `manifests/latest` or `blobs/uploads/`. */
  rest: string;
}

/** Splits `/v2/<name>/<resource>` taking the rightmost resource suffix; undefined when none matches. */
export function splitResourcePath(path: string): ResourcePath | undefined {
  if (!path.startsWith('/v2/') || path.startsWith(NAMED_PREFIX)) return undefined;
  const segments = path.slice(4).split('/');
  const n = segments.length;
  const at = (i: number) => segments[n - i];
  const result = (kind: ResourceKind, suffixLength: number): ResourcePath | undefined => {
    const nameSegments = segments.slice(0, n - suffixLength);
    if (nameSegments.length === 0) return undefined;
    return { name: nameSegments.join('/'), kind, rest: segments.slice(n - suffixLength).join('/') };
  };
  if (n >= 3 && at(2) === 'tags' && at(1) === 'list') return result('tags', 2);
  if (n >= 4 && at(3) === 'blobs' && at(2) === 'uploads') return result('uploads', 3);
  if (n >= 3 && at(2) === 'blobs' && at(1) === 'uploads') return result('uploads', 2);
  if (n >= 3 && at(2) === 'manifests') return result('manifests', 2);
  if (n >= 3 && at(2) === 'blobs') return result('blobs', 2);
  if (n >= 3 && at(2) === 'referrers') return result('referrers', 2);
  return undefined;
}

/** fastify `rewriteUrl`: moves the repository name into a single encoded path segment. */
export function rewriteDistributionUrl(url: string): string {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const parts = splitResourcePath(path);
  if (!parts) return url;
  return `${NAMED_PREFIX}${encodeURIComponent(parts.name)}/${parts.rest}${q === -1 ? '' : url.slice(q)}`;
}
