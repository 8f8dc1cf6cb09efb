import formbody from '@fastify/formbody';
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { actorOf, subjectOf } from '../auth/identities.js';
import { grantAccess } from '../auth/grants.js';
import type { Principal } from '../auth/policy.js';
import { formatScope, parseScopes, type Access } from '../auth/scopes.js';
import type { TokenService } from '../auth/tokens.js';
import { ociError } from '../oci/errors.js';
import { formatChallenge } from './challenges.js';
import { basicCredentials } from './credentials.js';

const GetQuery = Type.Object({
  service: Type.Optional(Type.String()),
  scope: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
  account: Type.Optional(Type.String()),
  client_id: Type.Optional(Type.String()),
  offline_token: Type.Optional(Type.String()),
});

const PostBody = Type.Object({
  grant_type: Type.String(),
  service: Type.Optional(Type.String()),
  scope: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
  client_id: Type.Optional(Type.String()),
  access_type: Type.Optional(Type.String()),
  username: Type.Optional(Type.String()),
  password: Type.Optional(Type.String()),
  refresh_token: Type.Optional(Type.String()),
});

/**
 * The token endpoint of the distribution token spec: `GET /token` with Basic
 * credentials (or none, for anonymous pulls of public projects) and the OAuth2 form
 * `POST /token` with grant_type `password` or `refresh_token`.
 */
const token: FastifyPluginAsyncTypebox = async (app) => {
  const { identities, logins, audit, config } = app.auth;
  const tokens = app.auth.tokens as TokenService;
  await app.register(formbody);

  const checkService = (service: string | undefined) => {
    if (service !== undefined && service !== config.service) {
      throw ociError('INVALID_REQUEST', { service, expected: config.service }, { message: `unknown service ${JSON.stringify(service)}; this token service issues tokens for ${JSON.stringify(config.service)}` });
    }
  };

  const login = async (request: FastifyRequest, username: string, password: string): Promise<Principal> => {
    const result = await logins.authenticate(username, password, request.ip);
    if (result.ok) return result.principal;
    audit.record({ actor: username, action: 'login', resourceType: 'token', resource: config.service, outcome: 'failure', detail: { reason: result.reason, ip: request.ip } });
    throw ociError('UNAUTHORIZED', { reason: result.reason }, { message: `authentication failed: ${result.reason}`, headers: { 'WWW-Authenticate': formatChallenge('Basic', { realm: config.service }) } });
  };

  const respond = async (reply: FastifyReply, principal: Principal, requested: Access[], offline: boolean, passwordLogin: boolean) => {
    const access = await grantAccess(principal, requested, app.metadata.projects, { passwordLogin });
    const issued = await tokens.issueAccessToken(subjectOf(principal) ?? '', access);
    const body: Record<string, unknown> = { token: issued.token, access_token: issued.token, expires_in: issued.expiresIn, issued_at: issued.issuedAt.toISOString() };
    if (offline && principal.kind !== 'anonymous') body.refresh_token = await tokens.issueRefreshToken(subjectOf(principal)!);
    reply.log.info({ actor: actorOf(principal), granted: access.map(formatScope) }, 'token issued');
    return reply.header('Cache-Control', 'no-store').send(body);
  };

  app.get('/token', { schema: { querystring: GetQuery } }, async (request, reply) => {
    checkService(request.query.service);
    // Malformed scopes are refused before any password is checked.
    const requested = parseScopes(request.query.scope);
    const credentials = basicCredentials(request);
    const principal: Principal = credentials ? await login(request, credentials.username, credentials.password) : { kind: 'anonymous' };
    return respond(reply, principal, requested, request.query.offline_token === 'true', credentials !== undefined);
  });

  // A 401 must carry a challenge (RFC 9110): a refused refresh token is answered like a refused password.
  const refreshChallenge = formatChallenge('Basic', { realm: config.service });

  app.post('/token', { schema: { body: PostBody } }, async (request, reply) => {
    const form = request.body;
    checkService(form.service);
    const requested = parseScopes(form.scope);
    let principal: Principal;
    if (form.grant_type === 'password') {
      if (!form.username || form.password === undefined) throw ociError('INVALID_REQUEST', undefined, { message: 'grant_type=password needs username and password' });
      principal = await login(request, form.username, form.password);
    } else if (form.grant_type === 'refresh_token') {
      if (!form.refresh_token) throw ociError('INVALID_REQUEST', undefined, { message: 'grant_type=refresh_token needs refresh_token' });
      const subject = await tokens.verifyRefreshToken(form.refresh_token).catch(() => {
        throw ociError('UNAUTHORIZED', undefined, { message: 'refresh token is invalid or expired', headers: { 'WWW-Authenticate': refreshChallenge } });
      });
      principal = await identities.principalFor(subject);
      if (principal.kind === 'anonymous') {
        audit.record({ actor: subject, action: 'login', resourceType: 'token', resource: config.service, outcome: 'failure', detail: { reason: 'refresh for an account that no longer may sign in' } });
        throw ociError('UNAUTHORIZED', undefined, { message: 'the account of this refresh token no longer exists, is disabled or has expired', headers: { 'WWW-Authenticate': refreshChallenge } });
      }
    } else {
      throw ociError('INVALID_REQUEST', { grant_type: form.grant_type }, { message: 'grant_type must be password or refresh_token' });
    }
    return respond(reply, principal, requested, form.access_type === 'offline' || form.grant_type === 'refresh_token', form.grant_type === 'password');
  });
};

export default token;
