import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchToken, jwtPayload, ManagementClient } from '../support/auth.js';
import { buildImage, RegistryClient } from '../support/oci.js';
import { removeDir, startRegistry, tokenAuth, type RunningRegistry } from '../support/registry.js';

let registry: RunningRegistry;
let api: ManagementClient;
let robot: { name: string; secret: string };
let validToken: string;
let privateKey: KeyObject;

const SCOPE = 'repository:acme/app:pull';

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function claims(overrides: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: 'wharf-test-issuer',
    sub: robot.name,
    aud: 'wharf-test',
    iat: now,
    nbf: now,
    exp: now + 300,
    jti: 'forged',
    access: [{ type: 'repository', name: 'acme/app', actions: ['pull'] }],
    ...overrides,
  };
}

async function signWith(key: KeyObject, alg: 'ES256' | 'RS256', payload: Record<string, unknown>): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'JWT' }).sign(key);
}

async function pull(token: string): Promise<Response> {
  return fetch(`${registry.url}/v2/acme/app/manifests/v1`, { headers: { Authorization: `Bearer ${token}`, Accept: 'application/vnd.oci.image.manifest.v1+json' } });
}

describe('token authentication', () => {
  beforeAll(async () => {
    registry = await startRegistry({ auth: tokenAuth() });
    api = new ManagementClient(registry.url);
    await api.project('acme');
    robot = await api.robot('acme', 'ci', ['pull', 'push']);
    const push = await fetchToken(registry.url, ['repository:acme/app:pull,push'], { username: robot.name, password: robot.secret });
    const client = new RegistryClient(registry.url);
    const image = await buildImage({ layers: 1 });
    const headers = { Authorization: `Bearer ${push.token}` };
    for (const blob of [image.config, ...image.layers]) {
      const res = await client.fetch(`/v2/acme/app/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/octet-stream' }, body: blob.data });
      expect(res.status).toBe(201);
    }
    const put = await client.fetch('/v2/acme/app/manifests/v1', { method: 'PUT', headers: { ...headers, 'Content-Type': image.mediaType }, body: image.manifest.data });
    expect(put.status).toBe(201);
    validToken = (await fetchToken(registry.url, [SCOPE], { username: robot.name, password: robot.secret })).token!;
    privateKey = (await import('node:crypto')).createPrivateKey(await readFile(join(registry.dataDir, 'token-signing-key.pem'), 'utf8'));
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  it('answers an unauthenticated request with 401 and a challenge naming realm, service and scope', async () => {
    const res = await fetch(`${registry.url}/v2/acme/app/manifests/v1`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer realm="${registry.url}/token",service="wharf-test",scope="repository:acme/app:pull"`);
    expect(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('UNAUTHORIZED');
  });

  it('accepts a token from the token endpoint, signed ES256 with a kid', async () => {
    const header = JSON.parse(Buffer.from(validToken.split('.')[0]!, 'base64url').toString());
    expect(header).toMatchObject({ alg: 'ES256', typ: 'JWT' });
    expect(header.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(jwtPayload(validToken)).toMatchObject({ iss: 'wharf-test-issuer', aud: 'wharf-test', sub: robot.name, access: [{ type: 'repository', name: 'acme/app', actions: ['pull'] }] });
    expect((await pull(validToken)).status).toBe(200);
    const audit = await api.ok('GET', `/audit?action=pull&actor=${encodeURIComponent(robot.name)}`);
    expect(audit.items[0]).toMatchObject({ action: 'pull', resourceType: 'artifact', resource: 'acme/app:v1', project: 'acme', outcome: 'success' });
  });

  it('records repeated pulls of one artifact as counted audit records', async () => {
    // Every pull record carries its count: a record without one would count nothing.
    const total = async () =>
      (await api.ok('GET', `/audit?action=pull&actor=${encodeURIComponent(robot.name)}&limit=500`)).items.reduce((sum: number, e: { detail?: { count?: number } }) => {
        expect(e.detail?.count, JSON.stringify(e)).toBeGreaterThanOrEqual(1);
        return sum + e.detail!.count!;
      }, 0);
    const before = await total();
    for (let i = 0; i < 3; i++) expect((await pull(validToken)).status).toBe(200);
    expect(await total()).toBe(before + 3);
  });

  it('grants the intersection of requested and allowed actions', async () => {
    const res = await fetchToken(registry.url, ['repository:acme/app:pull,push,delete', 'repository:other/app:pull', 'registry:catalog:*'], { username: robot.name, password: robot.secret });
    expect(jwtPayload(res.token!).access).toEqual([
      { type: 'repository', name: 'acme/app', actions: ['pull', 'push'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
  });

  it('supports the OAuth2 password and refresh_token grants', async () => {
    const form = new URLSearchParams({ grant_type: 'password', service: 'wharf-test', client_id: 'test', access_type: 'offline', username: robot.name, password: robot.secret, scope: SCOPE });
    const first = await fetch(`${registry.url}/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: form });
    expect(first.status).toBe(200);
    const body = (await first.json()) as { access_token: string; refresh_token: string; expires_in: number };
    expect(body.expires_in).toBe(300);
    expect((await pull(body.access_token)).status).toBe(200);
    const refreshed = await fetch(`${registry.url}/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', service: 'wharf-test', client_id: 'test', refresh_token: body.refresh_token, scope: SCOPE }),
    });
    expect(refreshed.status).toBe(200);
    expect((await pull(((await refreshed.json()) as { access_token: string }).access_token)).status).toBe(200);
    // A refresh token is not an access token.
    expect((await pull(body.refresh_token)).status).toBe(401);
  });

  it('refuses a bad refresh token with 401 and a challenge, as every 401 must carry', async () => {
    const res = await fetch(`${registry.url}/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', service: 'wharf-test', refresh_token: 'not-a-token' }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Basic realm="wharf-test"');
    expect(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('UNAUTHORIZED');
  });

  it('refuses bad credentials with 401 and records the failed login', async () => {
    const res = await fetchToken(registry.url, [SCOPE], { username: robot.name, password: 'wrong' });
    expect(res.status).toBe(401);
    expect(res.body.errors[0].code).toBe('UNAUTHORIZED');
    const audit = await api.ok('GET', `/audit?action=login&actor=${encodeURIComponent(robot.name)}`);
    expect(audit.items[0]).toMatchObject({ actor: robot.name, action: 'login', outcome: 'failure' });
  });

  describe('forged tokens are rejected', () => {
    const forgeries: [string, () => Promise<string>][] = [
      ['alg none', async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`],
      [
        'HS256 signed with the public key as the secret',
        async () => {
          const publicPem = (await import('node:crypto')).createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }) as string;
          const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims())}`;
          return `${unsigned}.${createHmac('sha256', publicPem).update(unsigned).digest('base64url')}`;
        },
      ],
      ['signed with another key', async () => signWith(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey, 'ES256', claims())],
      ['signed RS256 with another key', async () => signWith(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'RS256', claims())],
      ['expired', async () => signWith(privateKey, 'ES256', claims({ exp: Math.floor(Date.now() / 1000) - 120, nbf: Math.floor(Date.now() / 1000) - 600 }))],
      ['not yet valid', async () => signWith(privateKey, 'ES256', claims({ nbf: Math.floor(Date.now() / 1000) + 600 }))],
      ['wrong audience', async () => signWith(privateKey, 'ES256', claims({ aud: 'another-registry' }))],
      ['wrong issuer', async () => signWith(privateKey, 'ES256', claims({ iss: 'evil' }))],
      [
        'tampered scope',
        async () => {
          const [header, payload, signature] = validToken.split('.');
          const changed = { ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), access: [{ type: 'repository', name: 'acme/app', actions: ['pull', 'push', 'delete'] }] };
          return `${header}.${b64(changed)}.${signature}`;
        },
      ],
      ['garbage', async () => 'not.a.token'],
    ];

    it('a correctly signed control token works, so the forgeries fail for the right reason', async () => {
      expect((await pull(await signWith(privateKey, 'ES256', claims()))).status).toBe(200);
    });

    it.each(forgeries)('%s', async (_name, forge) => {
      const res = await pull(await forge());
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
      expect(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('UNAUTHORIZED');
    });
  });

  it('stops a disabled robot at its next token request', async () => {
    const temp = await api.robot('acme', 'temp', ['pull']);
    expect((await fetchToken(registry.url, [SCOPE], { username: temp.name, password: temp.secret })).status).toBe(200);
    await api.ok('PUT', '/projects/acme/robots/temp', { disabled: true, permissions: [{ access: [{ resource: 'repository', action: 'pull' }] }] });
    const res = await fetchToken(registry.url, [SCOPE], { username: temp.name, password: temp.secret });
    expect(res.status).toBe(401);
    expect(res.body.errors[0].message).toContain('disabled');
  });

  it('rotation without a grace window replaces the secret: the old one fails, the new one works, a provided one is accepted', async () => {
    const r = await api.robot('acme', 'rotating', ['pull']);
    const rotated = await api.ok('POST', '/projects/acme/robots/rotating/rotate', { graceSeconds: 0 });
    expect(rotated.secret).not.toBe(r.secret);
    expect((await fetchToken(registry.url, [SCOPE], { username: r.name, password: r.secret })).status).toBe(401);
    expect((await fetchToken(registry.url, [SCOPE], { username: r.name, password: rotated.secret })).status).toBe(200);
    await api.ok('POST', '/projects/acme/robots/rotating/rotate', { secret: 'a-chosen-secret-of-some-length' });
    expect((await fetchToken(registry.url, [SCOPE], { username: r.name, password: 'a-chosen-secret-of-some-length' })).status).toBe(200);
  });

  it('refuses tokens for another service', async () => {
    const res = await fetchToken(registry.url, [SCOPE], { username: robot.name, password: robot.secret }, 'another-service');
    expect(res.status).toBe(400);
  });
});
