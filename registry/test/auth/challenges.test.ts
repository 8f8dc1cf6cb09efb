import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, ManagementClient } from '../support/auth.js';
import { parseChallenge } from '../support/challenge.js';
import { rawRequest, type RawResponse } from '../support/raw-http.js';
import { removeDir, startRegistry, tokenAuth, type RunningRegistry } from '../support/registry.js';

/**
 * The challenge's realm: built from Host only as the client reached us, from
 * X-Forwarded-* only when the peer is a configured trusted proxy, and never from
 * anything when a realm is configured. Every parameter is an RFC 7230 quoted-string.
 */
const PROXY = '127.0.0.2';
const STRANGER = '127.0.0.1';

let derived: RunningRegistry;
let configured: RunningRegistry;

const pull = '/v2/acme/app/manifests/v1';

function challengeOf(res: RawResponse): Record<string, string> {
  const header = res.headers['www-authenticate'];
  expect(typeof header, `no challenge on ${res.status} ${res.body.toString()}`).toBe('string');
  const parsed = parseChallenge(header as string);
  expect(parsed.scheme).toBe('Bearer');
  return parsed.params;
}

const get = (registry: RunningRegistry, from: string, headers: Record<string, string>, path = pull) => rawRequest(registry.url, { method: 'GET', path, headers, localAddress: from });

describe('the realm in WWW-Authenticate', () => {
  beforeAll(async () => {
    derived = await startRegistry({ auth: tokenAuth(), trustedProxies: [PROXY] });
    configured = await startRegistry({ auth: tokenAuth({ realm: 'https://auth.example.com/token' }), trustedProxies: [PROXY] });
    await new ManagementClient(derived.url).project('acme');
  });

  afterAll(async () => {
    for (const r of [derived, configured]) {
      await r?.stop();
      if (r) await removeDir(r.dataDir);
    }
  });

  it('names the Host the client reached when no realm is configured', async () => {
    expect(challengeOf(await get(derived, STRANGER, { Host: 'registry.example:5000' })).realm).toBe('http://registry.example:5000/token');
    expect(challengeOf(await get(derived, STRANGER, { Host: '[::1]:5000' })).realm).toBe('http://[::1]:5000/token');
  });

  it('ignores X-Forwarded-Host and X-Forwarded-Proto from a peer that is not a trusted proxy', async () => {
    const res = await get(derived, STRANGER, { Host: derived.host, 'X-Forwarded-Host': 'attacker.example', 'X-Forwarded-Proto': 'https' });
    expect(challengeOf(res).realm).toBe(`${derived.url}/token`);
  });

  it('honours X-Forwarded-Host and X-Forwarded-Proto from a trusted proxy (the entry it appended: the last)', async () => {
    expect(challengeOf(await get(derived, PROXY, { Host: 'internal:5000', 'X-Forwarded-Host': 'registry.example.com', 'X-Forwarded-Proto': 'https' })).realm).toBe('https://registry.example.com/token');
    expect(challengeOf(await get(derived, PROXY, { Host: 'internal:5000', 'X-Forwarded-Host': 'spoofed.example, registry.example.com', 'X-Forwarded-Proto': 'http, https' })).realm).toBe('https://registry.example.com/token');
  });

  it.each([
    ['a quote in Host', STRANGER, { Host: 'evil.example",error="x' }],
    ['a backslash in Host', STRANGER, { Host: 'evil\\.example' }],
    ['a path in Host', STRANGER, { Host: 'evil.example/phish?' }],
    ['userinfo in Host', STRANGER, { Host: 'user@evil.example' }],
    ['a quote in X-Forwarded-Host from the proxy', PROXY, { Host: 'internal', 'X-Forwarded-Host': 'a.example", realm="https://evil' }],
    ['a non-HTTP X-Forwarded-Proto from the proxy', PROXY, { Host: 'internal', 'X-Forwarded-Host': 'a.example', 'X-Forwarded-Proto': 'javascript' }],
  ])('refuses %s with 400 INVALID_REQUEST instead of reflecting it', async (_what, from, headers) => {
    const res = await get(derived, from, headers);
    expect({ status: res.status, code: res.code }).toEqual({ status: 400, code: 'INVALID_REQUEST' });
    expect(res.headers['www-authenticate']).toBeUndefined();
  });

  it('uses the configured realm whatever Host and X-Forwarded-* say', async () => {
    for (const [from, headers] of [
      [STRANGER, { Host: 'evil.example",error="x' }],
      [PROXY, { Host: 'internal', 'X-Forwarded-Host': 'other.example', 'X-Forwarded-Proto': 'http' }],
    ] as const) {
      expect(challengeOf(await get(configured, from, headers)).realm).toBe('https://auth.example.com/token');
    }
  });

  it('quotes every parameter of every challenge (the /v2, /token and /api/v1 ones)', async () => {
    const v2 = await get(derived, STRANGER, { Host: derived.host, Authorization: 'Bearer not.a.token' });
    expect(challengeOf(v2)).toMatchObject({ service: 'wharf-test', scope: 'repository:acme/app:pull', error: 'invalid_token' });
    const token = await get(derived, STRANGER, { Host: derived.host, Authorization: basic('nobody', 'wrong-password') }, '/token?service=wharf-test');
    expect(token.status).toBe(401);
    expect(parseChallenge(String(token.headers['www-authenticate'])).scheme).toBe('Basic');
    const management = await get(derived, STRANGER, { Host: derived.host }, '/api/v1/users');
    expect(management.status).toBe(401);
    expect(parseChallenge(String(management.headers['www-authenticate'])).scheme).toBe('Basic');
  });

  it('records the client address behind a trusted proxy, and the peer otherwise', async () => {
    await get(derived, PROXY, { Host: 'internal', 'X-Forwarded-For': '203.0.113.7', Authorization: basic('ghost-behind-proxy', 'wrong-password') }, '/token?service=wharf-test');
    await get(derived, STRANGER, { Host: derived.host, 'X-Forwarded-For': '203.0.113.8', Authorization: basic('ghost-direct', 'wrong-password') }, '/token?service=wharf-test');
    const api = new ManagementClient(derived.url);
    const ipOf = async (actor: string) => (await api.ok('GET', `/audit?action=login&actor=${actor}`)).items[0]?.detail?.ip;
    expect(await ipOf('ghost-behind-proxy')).toBe('203.0.113.7');
    expect(await ipOf('ghost-direct')).toBe(STRANGER);
  });
});
