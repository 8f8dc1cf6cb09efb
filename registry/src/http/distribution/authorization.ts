import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthContext } from '../../plugins/auth.js';
import { isSystemAdmin, seesProject } from '../../auth/policy.js';
import { projectOf, type Access } from '../../auth/scopes.js';
import type { ProjectStore } from '../../metadata/projects.js';
import { ociError } from '../../oci/errors.js';
import { isValidRepositoryName } from '../../oci/reference.js';
import { formatChallenge, realmFor } from '../challenges.js';
import { bearerToken } from '../credentials.js';

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
 * Why a token falls short on `project`, in words that do not tell an outsider whether a
 * private project exists: whoever cannot see the project (see `seesProject`) gets the
 * same reason for it as for a project that does not exist. Those who can see it (and
 * administrators, who see every project) get the precise reason.
 */
async function denialReason(auth: AuthContext, projects: ProjectStore, subject: string, projectName: string, missing: string): Promise<string> {
  const [principal, project] = await Promise.all([auth.identities.principalFor(subject), projects.get(projectName)]);
  if (project && seesProject(principal, project)) return `the token does not grant ${missing}`;
  if (isSystemAdmin(principal)) return `project "${projectName}" does not exist`;
  if (principal.kind === 'anonymous') return `project "${projectName}" does not exist, or it is private and you are not signed in`;
  return `project "${projectName}" does not exist or you have no access to it`;
}

/**
 * onRequest for /v2: verifies the bearer token (signature, alg, iss, aud, exp/nbf) and
 * that it grants what the route needs. Failures are 401 with a challenge naming the
 * realm, service and scope, so clients fetch a suitable token and retry; a refusal
 * also says why in `error_description`, which reaches clients whose request (HEAD) has
 * no response body.
 */
export function authorizationHook(auth: AuthContext, projects: ProjectStore) {
  return async function authorize(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const tokens = auth.tokens;
    const action = request.routeOptions.config?.action;
    if (!tokens || !action) return;
    const name = (request.params as { name?: string } | undefined)?.name;
    const { scopes, mountFrom } = neededScopes(request, action, name);
    const scope = scopes.length > 0 ? scopes.join(' ') : undefined;
    const challenge = (error?: string, description?: string) =>
      formatChallenge('Bearer', { realm: realmFor(request, auth.config.realm), service: auth.config.service, scope, error, error_description: description });

    const raw = bearerToken(request);
    if (!raw) throw ociError('UNAUTHORIZED', scope ? { scope } : undefined, { message: 'authentication required', headers: { 'WWW-Authenticate': challenge() } });
    let claims;
    try {
      claims = await tokens.verifyAccessToken(raw);
    } catch (err) {
      throw ociError('UNAUTHORIZED', { reason: (err as Error).message }, { message: 'invalid or expired token', headers: { 'WWW-Authenticate': challenge('invalid_token', 'invalid or expired token') } });
    }
    request.grants = claims.access;
    request.tokenSubject = claims.sub;
    if (action === 'base') return;
    const allowed =
      action === 'catalog'
        ? claims.access.some((a) => a.type === 'registry' && a.name === 'catalog')
        : name !== undefined && tokenAllows(claims.access, name, action) && (mountFrom === undefined || tokenAllows(claims.access, mountFrom, 'pull'));
    if (allowed) return;
    let reason: string;
    if (name === undefined) reason = 'the token does not grant registry:catalog:*';
    else if (!tokenAllows(claims.access, name, action)) reason = await denialReason(auth, projects, claims.sub, projectOf(name), `${action} on ${name}`);
    else reason = await denialReason(auth, projects, claims.sub, projectOf(mountFrom!), `pull on ${mountFrom} (the mount source)`);
    throw ociError('UNAUTHORIZED', { scope, reason }, { message: `insufficient access: ${reason}`, headers: { 'WWW-Authenticate': challenge('insufficient_scope', reason) } });
  };
}
