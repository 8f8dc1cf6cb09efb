import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../plugins/auth.js';
import { projectOf, type Access } from '../../auth/scopes.js';
import type { ProjectStore } from '../../metadata/projects.js';
import { ociError } from '../../oci/errors.js';
import { isValidRepositoryName } from '../../oci/reference.js';
import { bearerToken, realmFor } from '../credentials.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The token's access list; undefined when auth is off (everything allowed). */
    grants?: Access[];
    /** The token's subject (`''` for anonymous); undefined when auth is off. */
    tokenSubject?: string;
  }
}

/** Whether the token's access list allows `action` on `repository`. */
export function tokenAllows(grants: Access[] | undefined, repository: string, action: string): boolean {
  if (grants === undefined) return true;
  return grants.some((a) => a.type === 'repository' && a.name === repository && (a.actions.includes(action) || a.actions.includes('*')));
}

/**
 * The scopes a request needs, as the challenge names them. A cross-repository mount
 * also needs pull on its source, as in distribution, so the client's token covers both.
 */
function neededScopes(request: FastifyRequest, action: string, name: string | undefined): { scopes: string[]; mountFrom?: string } {
  if (action === 'catalog') return { scopes: ['registry:catalog:*'] };
  if (!name || action === 'base') return { scopes: [] };
  if (action !== 'push') return { scopes: [`repository:${name}:${action}`] };
  const { mount, from } = request.query as { mount?: string; from?: string };
  const scopes = [`repository:${name}:pull,push`];
  if (request.method === 'POST' && mount !== undefined && from !== undefined && from !== name && isValidRepositoryName(from)) {
    scopes.push(`repository:${from}:pull`);
    return { scopes, mountFrom: from };
  }
  return { scopes };
}

/**
 * onRequest for /v2: verifies the bearer token (signature, alg, iss, aud, exp/nbf) and
 * that it grants what the route needs. Failures are 401 with a challenge naming the
 * realm, service and scope, so clients fetch a suitable token and retry.
 */
export function authorizationHook(auth: AuthContext, projects: ProjectStore) {
  return async function authorize(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const tokens = auth.tokens;
    const action = request.routeOptions.config?.action;
    if (!tokens || !action) return;
    const name = (request.params as { name?: string } | undefined)?.name;
    const { scopes, mountFrom } = neededScopes(request, action, name);
    const scope = scopes.length > 0 ? scopes.join(' ') : undefined;
    const challenge = (error?: string) =>
      `Bearer realm="${realmFor(request, auth.config.realm)}",service="${auth.config.service}"${scope ? `,scope="${scope}"` : ''}${error ? `,error="${error}"` : ''}`;

    const raw = bearerToken(request);
    if (!raw) throw ociError('UNAUTHORIZED', scope ? { scope } : undefined, { message: 'authentication required', headers: { 'WWW-Authenticate': challenge() } });
    let claims;
    try {
      claims = await tokens.verifyAccessToken(raw);
    } catch (err) {
      throw ociError('UNAUTHORIZED', { reason: (err as Error).message }, { message: 'invalid or expired token', headers: { 'WWW-Authenticate': challenge('invalid_token') } });
    }
    request.grants = claims.access;
    request.tokenSubject = claims.sub;
    if (action === 'base') return;
    const allowed =
      action === 'catalog'
        ? claims.access.some((a) => a.type === 'registry' && a.name === 'catalog')
        : name !== undefined && tokenAllows(claims.access, name, action) && (mountFrom === undefined || tokenAllows(claims.access, mountFrom, 'pull'));
    if (allowed) return;
    const project = name ? projectOf(name) : undefined;
    const missing = name !== undefined && !tokenAllows(claims.access, name, action) ? `${action} on ${name}` : mountFrom ? `pull on ${mountFrom} (the mount source)` : `${action} on the catalog`;
    const reason = project && !(await projects.get(project)) ? `project "${project}" does not exist` : `the token does not grant ${missing}`;
    throw ociError('UNAUTHORIZED', { scope, reason }, { message: `insufficient access: ${reason}`, headers: { 'WWW-Authenticate': challenge('insufficient_scope') } });
  };
}
