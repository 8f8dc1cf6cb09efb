import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, fetchToken, jwtPayload, ManagementClient } from '../support/auth.js';
import { parseChallenge } from '../support/challenge.js';
import { callRoute, managementRoutes, type Route } from '../support/management-routes.js';
import { removeDir, startRegistry, TEST_ADMIN_PASSWORD, tokenAuth, type RunningRegistry } from '../support/registry.js';

const MANAGEMENT = 'registry:management:*';
const ALICE = { username: 'alice', password: 'alice-first-password' };
const ADMIN_CREDS = { username: 'admin', password: TEST_ADMIN_PASSWORD };

let registry: RunningRegistry;
let api: ManagementClient;
let routes: Route[];
let robot: { name: string; secret: string };
/** Real targets for every route parameter, so a call that got through would act. */
const targets = { project: 'mgmt', username: 'alice', robot: 'ci', id: '00000000-0000-0000-0000-000000000000' };

const bearer = (token: string | undefined) => {
  if (!token) throw new Error('the token endpoint issued no token');
  return `Bearer ${token}`;
};

/** What the management API holds, as the administrator sees it with Basic credentials. */
async function snapshot(): Promise<unknown> {
  return {
    users: await api.ok('GET', '/users?limit=500'),
    projects: await api.ok('GET', '/projects?limit=500'),
    members: await api.ok('GET', '/projects/mgmt/members'),
    robots: await api.ok('GET', '/projects/mgmt/robots'),
    systemRobots: await api.ok('GET', '/robots'),
    quota: await api.ok('GET', '/projects/mgmt/quota'),
    gc: await api.ok('GET', '/gc'),
  };
}

/** Calls every management route with `authorization`; returns `METHOD url → status code` per route. */
async function sweep(authorization: string | undefined, only?: (r: Route) => boolean): Promise<Map<string, { status: number; code?: string; challenge: string | null }>> {
  const results = new Map<string, { status: number; code?: string; challenge: string | null }>();
  for (const route of routes.filter(only ?? (() => true))) {
    const res = await callRoute(registry.url, route, targets, authorization);
    const text = await res.text();
    const code = text ? (JSON.parse(text) as { errors?: { code: string }[] }).errors?.[0]?.code : undefined;
    results.set(`${route.method} ${route.url}`, { status: res.status, ...(code && { code }), challenge: res.headers.get('www-authenticate') });
  }
  return results;
}

function expectAllRefused(results: Awaited<ReturnType<typeof sweep>>): void {
  const notRefused = [...results].filter(([, r]) => r.status !== 401 || r.code !== 'UNAUTHORIZED');
  expect(notRefused).toEqual([]);
  for (const [route, r] of results) {
    const challenge = parseChallenge(r.challenge ?? '');
    expect({ route, scheme: challenge.scheme, scope: challenge.params.scope, error: challenge.params.error }).toEqual({ route, scheme: 'Bearer', scope: MANAGEMENT, error: 'insufficient_scope' });
    expect(challenge.params.realm).toBe(`${registry.url}/token`);
  }
}

beforeAll(async () => {
  registry = await startRegistry({ auth: tokenAuth() });
  api = new ManagementClient(registry.url);
  routes = managementRoutes(registry.app);
  await api.project('mgmt');
  await api.user(ALICE.username, ALICE.password);
  await api.member('mgmt', ALICE.username, 'developer');
  robot = await api.robot('mgmt', 'ci', ['pull', 'push']);
});

afterAll(async () => {
  await registry?.stop();
  if (registry) await removeDir(registry.dataDir);
});

describe('management API: bearer tokens need the management scope', () => {
  it("refuses every management route to the administrator's pull token, and changes nothing", async () => {
    const before = await snapshot();
    const pull = await fetchToken(registry.url, ['repository:mgmt/app:pull'], ADMIN_CREDS);
    expectAllRefused(await sweep(bearer(pull.token)));
    expect(await snapshot()).toEqual(before);
  });

  it('refuses every management route to an administrator token with no scope: it cannot create an administrator', async () => {
    const before = await snapshot();
    const bare = await fetchToken(registry.url, [], ADMIN_CREDS);
    expect(jwtPayload(bare.token!).access).toEqual([]);
    expectAllRefused(await sweep(bearer(bare.token)));
    const evil = await fetch(`${registry.url}/api/v1/users/evil`, { method: 'PUT', headers: { Authorization: bearer(bare.token), 'Content-Type': 'application/json' }, body: JSON.stringify({ password: 'evil-admin-password', admin: true }) });
    expect(evil.status).toBe(401);
    expect((await api.call('GET', '/users/evil')).status).toBe(404);
    expect(await snapshot()).toEqual(before);
  });

  it("refuses every management route to a user's and a robot's push token: a leaked token cannot change the password", async () => {
    const before = await snapshot();
    const alicePush = await fetchToken(registry.url, ['repository:mgmt/app:pull,push', 'registry:catalog:*'], ALICE);
    expectAllRefused(await sweep(bearer(alicePush.token)));
    const robotPush = await fetchToken(registry.url, ['repository:mgmt/app:pull,push'], { username: robot.name, password: robot.secret });
    expectAllRefused(await sweep(bearer(robotPush.token)));
    expect(await snapshot()).toEqual(before);
    expect((await fetchToken(registry.url, [], ALICE)).status).toBe(200);
  });

  it('refuses a forged or expired bearer token with 401 and a challenge', async () => {
    const res = await fetch(`${registry.url}/api/v1/projects`, { headers: { Authorization: 'Bearer not.a.token' } });
    expect(res.status).toBe(401);
    expect(parseChallenge(res.headers.get('www-authenticate')!).params).toMatchObject({ scope: MANAGEMENT, error: 'invalid_token' });
  });

  it('grants the management scope only to a password (or robot secret) login at /token', async () => {
    const granted = (res: { token?: string }) => (jwtPayload(res.token!).access as { type: string; name: string; actions: string[] }[]).some((a) => a.type === 'registry' && a.name === 'management' && a.actions.includes('*'));
    expect(granted(await fetchToken(registry.url, [MANAGEMENT], ALICE))).toBe(true);
    expect(granted(await fetchToken(registry.url, [MANAGEMENT], { username: robot.name, password: robot.secret }))).toBe(true);
    expect(granted(await fetchToken(registry.url, [MANAGEMENT]))).toBe(false);
    expect((await fetchToken(registry.url, [MANAGEMENT], { ...ALICE, password: 'wrong' })).status).toBe(401);

    const form = (fields: Record<string, string>) => fetch(`${registry.url}/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ service: 'wharf-test', client_id: 'test', ...fields }) });
    const password = (await (await form({ grant_type: 'password', access_type: 'offline', username: ALICE.username, password: ALICE.password, scope: `${MANAGEMENT} repository:mgmt/app:pull` })).json()) as { access_token: string; refresh_token: string };
    expect(granted({ token: password.access_token })).toBe(true);
    // A refresh token is a stored credential, not a password: it renews repository access only.
    const refreshed = (await (await form({ grant_type: 'refresh_token', refresh_token: password.refresh_token, scope: `${MANAGEMENT} repository:mgmt/app:pull` })).json()) as { access_token: string };
    expect(jwtPayload(refreshed.access_token).access).toEqual([{ type: 'repository', name: 'mgmt/app', actions: ['pull'] }]);
    expect((await fetch(`${registry.url}/api/v1/projects/mgmt`, { headers: { Authorization: bearer(refreshed.access_token) } })).status).toBe(401);
  });

  it('accepts a management token for what its holder may do, and no more', async () => {
    const admin = api.as(bearer((await fetchToken(registry.url, [MANAGEMENT], ADMIN_CREDS)).token));
    // The control for the sweeps above: with the scope, no route answers 401.
    const reads = await sweep(admin.authorization!, (r) => r.method === 'GET');
    expect([...reads].filter(([, r]) => r.status === 401)).toEqual([]);
    expect(reads.size).toBeGreaterThan(8);
    expect((await admin.call('PUT', '/users/bob', { password: 'bobs-own-password' })).status).toBe(201);

    const alice = api.as(bearer((await fetchToken(registry.url, [MANAGEMENT], ALICE)).token));
    expect((await alice.call('GET', '/projects/mgmt')).status).toBe(200);
    expect(await alice.call('GET', '/users')).toMatchObject({ status: 403, body: { errors: [{ code: 'DENIED' }] } });
    expect(await alice.call('PUT', '/users/alice', { admin: true })).toMatchObject({ status: 403 });
  });
});

describe('changing your own password needs the current one', () => {
  const carol = { username: 'carol', password: 'carol-first-password' };
  const login = async (password: string) => (await fetchToken(registry.url, [], { username: carol.username, password })).status;
  let carolApi: ManagementClient;

  beforeAll(async () => {
    await api.user(carol.username, carol.password);
    carolApi = api.as(bearer((await fetchToken(registry.url, [MANAGEMENT], carol)).token));
  });

  it('refuses a change without currentPassword, even when the new one equals the old (no oracle for guesses)', async () => {
    for (const client of [carolApi, api.as(basic(carol.username, carol.password))]) {
      expect(await client.call('PUT', '/users/carol', { password: 'carol-second-password' })).toMatchObject({ status: 400, body: { errors: [{ code: 'INVALID_REQUEST', message: expect.stringContaining('currentPassword') }] } });
      expect(await client.call('PUT', '/users/carol', { password: carol.password })).toMatchObject({ status: 400, body: { errors: [{ code: 'INVALID_REQUEST' }] } });
    }
    expect(await login(carol.password)).toBe(200);
    expect(await login('carol-second-password')).toBe(401);
  });

  it('refuses a wrong currentPassword with 403 and records it', async () => {
    expect(await carolApi.call('PUT', '/users/carol', { password: 'carol-second-password', currentPassword: 'a-wrong-guess-here' })).toMatchObject({ status: 403, body: { errors: [{ code: 'DENIED' }] } });
    expect(await login(carol.password)).toBe(200);
    const audit = await api.ok('GET', `/audit?actor=carol&resourceType=user&limit=10`);
    expect(audit.items[0]).toMatchObject({ actor: 'carol', action: 'update', resource: 'carol', outcome: 'failure' });
  });

  it('changes the password with the right currentPassword: the new one works, the old one no longer does', async () => {
    expect((await carolApi.call('PUT', '/users/carol', { password: 'carol-second-password', currentPassword: carol.password })).status).toBe(200);
    expect(await login('carol-second-password')).toBe(200);
    expect(await login(carol.password)).toBe(401);
  });

  it("lets an administrator reset someone else's password without it, but not their own", async () => {
    expect((await api.call('PUT', '/users/carol', { password: 'carol-reset-by-admin' })).status).toBe(200);
    expect(await login('carol-reset-by-admin')).toBe(200);
    expect(await api.call('PUT', '/users/admin', { password: 'a-new-admin-password' })).toMatchObject({ status: 400, body: { errors: [{ code: 'INVALID_REQUEST' }] } });
    expect((await fetchToken(registry.url, [], ADMIN_CREDS)).status).toBe(200);
  });
});
