import type { FastifyRequest } from 'fastify';
import type { Principal } from '../../auth/policy.js';
import { grantsManagement, MANAGEMENT_SCOPE } from '../../auth/scopes.js';
import type { AuthContext } from '../../plugins/auth.js';
import { ociError } from '../../oci/errors.js';
import { formatChallenge, realmFor } from '../challenges.js';
import { basicCredentials, bearerToken } from '../credentials.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
}

/** With auth mode `none` the management API is open: every caller acts as this administrator. */
const OPEN_REGISTRY_PRINCIPAL: Principal = { kind: 'user', id: '00000000-0000-0000-0000-000000000000', name: 'system', admin: true, roles: new Map() };

/**
 * Resolves the caller from Basic credentials (users and robots) or a bearer token issued
 * by /token. A bearer token counts only when it carries the management scope, which
 * /token grants only to a password login: a pull token, however it leaks, manages nothing.
 */
export function principalHook(auth: AuthContext) {
  return async function resolvePrincipal(request: FastifyRequest): Promise<void> {
    if (!auth.tokens) {
      request.principal = OPEN_REGISTRY_PRINCIPAL;
      return;
    }
    const basic = basicCredentials(request);
    if (basic) {
      const result = await auth.logins.authenticate(basic.username, basic.password, request.ip);
      if (!result.ok) {
        auth.audit.record({ actor: basic.username, action: 'login', resourceType: 'api', resource: request.url.split('?', 1)[0]!, outcome: 'failure', detail: { reason: result.reason, ip: request.ip } });
        throw ociError('UNAUTHORIZED', { reason: result.reason }, { message: `authentication failed: ${result.reason}`, headers: { 'WWW-Authenticate': 'Basic realm="wharf"' } });
      }
      request.principal = result.principal;
      return;
    }
    const token = bearerToken(request);
    if (token) {
      const challenge = (error: string, description: string) =>
        formatChallenge('Bearer', { realm: realmFor(request, auth.config.realm), service: auth.config.service, scope: MANAGEMENT_SCOPE, error, error_description: description });
      const claims = await auth.tokens.verifyAccessToken(token).catch(() => {
        throw ociError('UNAUTHORIZED', undefined, { message: 'invalid or expired token', headers: { 'WWW-Authenticate': challenge('invalid_token', 'invalid or expired token') } });
      });
      if (!grantsManagement(claims.access)) {
        const message = `this token does not carry the management scope; use Basic credentials, or a token for scope ${MANAGEMENT_SCOPE} from /token with your password`;
        throw ociError('UNAUTHORIZED', { scope: MANAGEMENT_SCOPE }, { message, headers: { 'WWW-Authenticate': challenge('insufficient_scope', message) } });
      }
      request.principal = await auth.identities.principalFor(claims.sub);
      return;
    }
    request.principal = { kind: 'anonymous' };
  };
}
