import { describe, expect, it } from 'vitest';
import type { FuzzCase } from './support/case.js';
import type { Exchange } from './support/exchange.js';
import { checkExchange, Invariant, parseChallenge } from './support/invariants.js';
import { stateDiff } from './support/state.js';
import { encodeUrlPart, headerValue, wtf8 } from './support/strings.js';

// The fuzz suite's own checks, shown to fail when they should: an invariant that cannot fail proves nothing.

const route = { surface: 'v2' as const, method: 'GET', template: '/v2/{name}/tags/list', params: ['name'], query: {} };
const apiRoute = { surface: 'api' as const, method: 'PUT', template: '/api/v1/projects/{project}', params: ['project'], query: {} };

function caseOf(overrides: Partial<FuzzCase> = {}): FuzzCase {
  return { route, method: 'GET', path: '/v2/a/b/tags/list', headers: [], credentials: { kind: 'token', principal: 'admin', scoped: true }, ...overrides };
}

function answer(status: number, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' }): Exchange {
  return { request: { method: 'GET', path: '/', headers: [] }, status, headers, body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)) };
}

const invariants = (c: FuzzCase, ex: Exchange) => checkExchange(c, ex).map((v) => v.invariant);
const CHALLENGE = { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="http://r/token",service="wharf",scope="repository:a/b:pull"' };

describe('the fuzz invariants', () => {
  it('accept a documented error and a success', () => {
    expect(invariants(caseOf(), answer(404, { errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry', detail: { name: 'a/b' } }] }))).toEqual([]);
    expect(invariants(caseOf(), answer(401, { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }, CHALLENGE))).toEqual([]);
    expect(invariants(caseOf(), answer(200, { name: 'a/b', tags: [] }))).toEqual([]);
  });

  it('flag a 5xx, a missing answer, and error bodies outside the shape or the table', () => {
    expect(invariants(caseOf(), answer(500, { errors: [{ code: 'INTERNAL', message: 'internal server error' }] }))).toEqual([Invariant.serverError]);
    expect(invariants(caseOf(), { ...answer(0, ''), status: undefined, error: 'ECONNRESET' } as Exchange)).toEqual([Invariant.noResponse]);
    expect(invariants(caseOf(), answer(400, '<html>Bad Request</html>', { 'content-type': 'text/html' }))).toEqual([Invariant.errorShape]);
    expect(invariants(caseOf(), answer(400, { errors: [] }))).toEqual([Invariant.errorShape]);
    expect(invariants(caseOf(), answer(400, { error: 'bad' }))).toEqual([Invariant.errorShape]);
    expect(invariants(caseOf(), answer(400, { errors: [{ code: 'X', message: 'm', stack: 'at …' }] }))).toEqual([Invariant.errorShape]);
    expect(invariants(caseOf(), answer(400, { errors: [{ code: 'NOT_A_CODE', message: 'm' }] }))).toEqual([Invariant.errorCode]);
    // HEAD answers carry no body.
    expect(invariants(caseOf({ method: 'HEAD' }), answer(404, ''))).toEqual([]);
  });

  it('let a connection close only on a head past 16 KiB', () => {
    const broken = (path: string) => ({ request: { method: 'GET', path, headers: [] }, headers: {}, body: Buffer.alloc(0), error: 'ECONNRESET' }) as Exchange;
    expect(invariants(caseOf(), broken(`/v2/?q=${'a'.repeat(20_000)}`))).toEqual([]);
    expect(invariants(caseOf(), broken('/v2/'))).toEqual([Invariant.noResponse]);
  });

  it('flag a 401 whose challenge is missing or does not parse', () => {
    const body = { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] };
    expect(invariants(caseOf(), answer(401, body))).toEqual([Invariant.challenge]);
    expect(invariants(caseOf(), answer(401, body, { 'content-type': 'application/json', 'www-authenticate': 'Bearer realm="http://a"b/token",service="wharf"' }))).toEqual([Invariant.challenge]);
  });

  it('flag forged or wrong credentials that get through, and anonymous changes', () => {
    expect(invariants(caseOf({ credentials: { kind: 'forged', label: 'alg none' } }), answer(200, {}))).toEqual([Invariant.badCredentialsAccepted]);
    expect(invariants(caseOf({ credentials: { kind: 'bad-basic', username: 'admin', password: 'x' } }), answer(200, {}))).toEqual([Invariant.badCredentialsAccepted]);
    expect(invariants(caseOf({ route: apiRoute, method: 'PUT', credentials: { kind: 'none' } }), answer(201, {}))).toEqual([Invariant.anonymousChange]);
    expect(invariants(caseOf({ route: apiRoute, method: 'PUT', credentials: { kind: 'forged', label: 'alg none' } }), answer(200, {}))).toEqual([Invariant.badCredentialsAccepted, Invariant.anonymousChange]);
    // POST /token reads no Authorization header (the form carries the credentials), and Basic
    // credentials without a user name are served as anonymous.
    const tokenForm = { surface: 'token' as const, method: 'POST', template: '/token', params: [], query: {} };
    expect(invariants(caseOf({ route: tokenForm, method: 'POST', path: '/token', credentials: { kind: 'bad-basic', username: 'alice', password: 'x' } }), answer(200, { token: 't' }))).toEqual([]);
    expect(invariants(caseOf({ credentials: { kind: 'bad-basic', username: '', password: 'x' } }), answer(200, {}))).toEqual([]);
    expect(invariants(caseOf({ credentials: { kind: 'bad-basic', username: 'alice', password: 'x:y' } }), answer(200, {}))).toEqual([Invariant.badCredentialsAccepted]);
    // GET /token reads only Basic credentials: a forged bearer token there is no credentials at all.
    const token = { surface: 'token' as const, method: 'GET', template: '/token', params: [], query: {} };
    expect(invariants(caseOf({ route: token, path: '/token', credentials: { kind: 'forged', label: 'alg none' } }), answer(200, { token: 't' }))).toEqual([]);
  });
});

describe('parseChallenge (RFC 9110 §11.6.1)', () => {
  it('reads parameters, quoted with escapes or as tokens', () => {
    expect(parseChallenge('Bearer realm="http://r/token",service="wharf",scope="repository:a/b:pull,push"')).toEqual({
      scheme: 'Bearer',
      params: { realm: 'http://r/token', service: 'wharf', scope: 'repository:a/b:pull,push' },
    });
    expect(parseChallenge('Basic realm="a \\"quoted\\" realm", charset=UTF-8')?.params).toEqual({ realm: 'a "quoted" realm', charset: 'UTF-8' });
  });

  it('refuses what a header injection produces', () => {
    expect(parseChallenge('Bearer realm="http://a"b/token",service="wharf"')).toBeUndefined();
    expect(parseChallenge('Bearer realm=""://127.0.0.1/token",service="wharf"')).toBeUndefined();
    expect(parseChallenge('Bearer realm="http://x", realm="evil/token",service="wharf"')).toBeUndefined();
    expect(parseChallenge('Bearer')).toBeUndefined();
  });
});

describe('the encodings', () => {
  it('keeps lone surrogates as the invalid UTF-8 they would encode to', () => {
    expect([...wtf8('\ud800')]).toEqual([0xed, 0xa0, 0x80]);
    expect(wtf8('😀').toString('utf8')).toBe('😀');
    expect(encodeUrlPart('a/\u0000\ud800', 'keep-slashes')).toBe('a/%00%ED%A0%80');
    expect(encodeUrlPart('%00', 'literal-percent')).toBe('%00');
    expect(encodeUrlPart('/', 'double')).toBe('%252F');
  });

  it('sends header values as Latin-1 bytes, without what no header may carry', () => {
    expect(headerValue('a\u0000b\r\nc')).toBe('abc');
    expect(headerValue('é')).toBe('\u00c3\u00a9');
  });

  it('names what differs between two snapshots', () => {
    expect(stateDiff({ a: 1, b: [1, 2] }, { a: 1, b: [1, 3], c: true }).keys).toEqual(['b', 'c']);
  });
});
