import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, fetchToken, ManagementClient } from '../support/auth.js';
import { callRoute, managementRoutes } from '../support/management-routes.js';
import { buildImage, RegistryClient, sha256 } from '../support/oci.js';
import { removeDir, startRegistry, TEST_ADMIN_PASSWORD, tokenAuth, type RunningRegistry } from '../support/registry.js';

type Action = 'pull' | 'push' | 'delete' | 'catalog';
type Visibility = 'public' | 'private';
const ACTIONS: Action[] = ['pull', 'push', 'delete', 'catalog'];
const PASSWORD = 'matrix-user-password';

/**
 * The expected permission matrix, written out independently of the policy module:
 * who may do what on a repository of a public or a private project.
 */
const EXPECTED: Record<string, Record<Visibility, Action[]>> = {
  anonymous: { public: ['pull', 'catalog'], private: [] },
  systemAdmin: { public: ['pull', 'push', 'delete', 'catalog'], private: ['pull', 'push', 'delete', 'catalog'] },
  nonMember: { public: ['pull', 'catalog'], private: [] },
  projectAdmin: { public: ['pull', 'push', 'delete', 'catalog'], private: ['pull', 'push', 'delete', 'catalog'] },
  maintainer: { public: ['pull', 'push', 'delete', 'catalog'], private: ['pull', 'push', 'delete', 'catalog'] },
  developer: { public: ['pull', 'push', 'catalog'], private: ['pull', 'push', 'catalog'] },
  guest: { public: ['pull', 'catalog'], private: ['pull', 'catalog'] },
  limitedGuest: { public: ['pull', 'catalog'], private: ['pull', 'catalog'] },
  projectRobot: { public: ['pull', 'push', 'catalog'], private: ['pull', 'push', 'catalog'] },
  projectRobotWithDelete: { public: ['pull', 'push', 'delete', 'catalog'], private: ['pull', 'push', 'delete', 'catalog'] },
  systemRobotPullAll: { public: ['pull', 'catalog'], private: ['pull', 'catalog'] },
  expiredRobot: { public: [], private: [] },
  disabledRobot: { public: [], private: [] },
  otherProjectRobot: { public: ['pull', 'catalog'], private: [] },
};

/**
 * Reading a project through the management API (`GET /api/v1/projects/<p>`) with a token
 * that carries the management scope (anonymous and refused callers have none). 200: read;
 * 403: the caller may know the project (it holds a permission there) but not read it;
 * 404: the project is hidden, answered as if absent; 401: sign in, or credentials refused.
 */
const EXPECTED_MANAGEMENT_READ: Record<string, Record<Visibility, number>> = {
  anonymous: { public: 200, private: 401 },
  systemAdmin: { public: 200, private: 200 },
  nonMember: { public: 200, private: 404 },
  projectAdmin: { public: 200, private: 200 },
  maintainer: { public: 200, private: 200 },
  developer: { public: 200, private: 200 },
  guest: { public: 200, private: 200 },
  limitedGuest: { public: 200, private: 200 },
  projectRobot: { public: 200, private: 403 },
  projectRobotWithDelete: { public: 200, private: 403 },
  systemRobotPullAll: { public: 200, private: 403 },
  expiredRobot: { public: 401, private: 401 },
  disabledRobot: { public: 401, private: 401 },
  otherProjectRobot: { public: 200, private: 404 },
};
const MANAGEMENT_SCOPE = 'registry:management:*';

interface Cell {
  principal: string;
  visibility: Visibility;
  action: Action;
  allowed: boolean;
}

const cells: Cell[] = Object.entries(EXPECTED).flatMap(([principal, byVisibility]) =>
  (['public', 'private'] as const).flatMap((visibility) => ACTIONS.map((action) => ({ principal, visibility, action, allowed: byVisibility[visibility].includes(action) }))),
);

let registry: RunningRegistry;
const credentials = new Map<string, { username: string; password: string } | undefined>();
const projectOf = (v: Visibility) => `matrix-${v}`;
let escalations = 0;

async function attempt(cell: Cell): Promise<{ allowed: boolean; status: number; tokenStatus: number }> {
  const repo = `${projectOf(cell.visibility)}/app`;
  const scope = cell.action === 'catalog' ? 'registry:catalog:*' : `repository:${repo}:${cell.action === 'push' ? 'pull,push' : cell.action}`;
  const creds = credentials.get(cell.principal);
  const token = await fetchToken(registry.url, [scope], creds);
  // A client whose credentials are refused gets no token and so no access.
  const headers: Record<string, string> = token.token ? { Authorization: `Bearer ${token.token}` } : {};
  const client = new RegistryClient(registry.url);
  switch (cell.action) {
    case 'pull': {
      const res = await client.fetch(`/v2/${repo}/manifests/v1`, { headers: { ...headers, Accept: 'application/vnd.oci.image.manifest.v1+json' } });
      return { allowed: res.status === 200, status: res.status, tokenStatus: token.status };
    }
    case 'push': {
      const res = await client.fetch(`/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
      if (res.status === 202) await client.fetch(res.headers.get('location')!, { method: 'DELETE', headers });
      return { allowed: res.status === 202, status: res.status, tokenStatus: token.status };
    }
    case 'delete': {
      // Deleting a blob that is not there: past authorization the answer is 404, before it 401.
      const res = await client.fetch(`/v2/${repo}/blobs/${sha256(`absent ${Math.random()}`)}`, { method: 'DELETE', headers });
      return { allowed: res.status === 404, status: res.status, tokenStatus: token.status };
    }
    case 'catalog': {
      const res = await client.fetch('/v2/_catalog', { headers });
      const listed = res.status === 200 && ((await res.json()) as { repositories: string[] }).repositories.includes(repo);
      return { allowed: listed, status: res.status, tokenStatus: token.status };
    }
  }
}

const EXPECTED_STATUS: Record<Action, { allowed: number; denied: number }> = {
  pull: { allowed: 200, denied: 401 },
  push: { allowed: 202, denied: 401 },
  delete: { allowed: 404, denied: 401 },
  catalog: { allowed: 200, denied: 200 },
};

describe('scope matrix: every principal × public/private project × pull/push/delete/catalog', () => {
  beforeAll(async () => {
    registry = await startRegistry({ auth: tokenAuth() });
    const api = new ManagementClient(registry.url);
    const client = new RegistryClient(registry.url);
    const image = await buildImage({ layers: 1 });
    for (const v of ['public', 'private'] as const) {
      await api.project(projectOf(v), { public: v === 'public' });
      const admin = await fetchToken(registry.url, [`repository:${projectOf(v)}/app:pull,push`], { username: 'admin', password: TEST_ADMIN_PASSWORD });
      const headers = { Authorization: `Bearer ${admin.token}` };
      for (const blob of [image.config, ...image.layers]) {
        expect((await client.fetch(`/v2/${projectOf(v)}/app/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', headers, body: blob.data })).status).toBe(201);
      }
      expect((await client.fetch(`/v2/${projectOf(v)}/app/manifests/v1`, { method: 'PUT', headers: { ...headers, 'Content-Type': image.mediaType }, body: image.manifest.data })).status).toBe(201);
    }
    await api.project('elsewhere');

    credentials.set('anonymous', undefined);
    credentials.set('systemAdmin', { username: 'admin', password: TEST_ADMIN_PASSWORD });
    for (const role of ['nonMember', 'projectAdmin', 'maintainer', 'developer', 'guest', 'limitedGuest']) {
      const username = role.toLowerCase();
      await api.user(username, PASSWORD);
      if (role !== 'nonMember') for (const v of ['public', 'private'] as const) await api.member(projectOf(v), username, role);
      credentials.set(role, { username, password: PASSWORD });
    }
    const projectRobot = async (key: string, name: string, actions: string[], extra: Record<string, unknown> = {}) => {
      // One robot per project, with the same name and secret handling; the token request names the project's robot.
      const robots = await Promise.all((['public', 'private'] as const).map((v) => api.robot(projectOf(v), name, actions, extra)));
      return robots;
    };
    const [pubRobot, privRobot] = await projectRobot('projectRobot', 'ci', ['pull', 'push']);
    const [pubDel, privDel] = await projectRobot('projectRobotWithDelete', 'cleaner', ['pull', 'push', 'delete']);
    const perVisibility = new Map<string, Record<Visibility, { name: string; secret: string }>>([
      ['projectRobot', { public: pubRobot!, private: privRobot! }],
      ['projectRobotWithDelete', { public: pubDel!, private: privDel! }],
    ]);
    const [pubExpired, privExpired] = await projectRobot('expiredRobot', 'expired', ['pull', 'push'], { durationDays: 1 });
    // Simulate the passage of a day: the robot's expiry is now in the past.
    await registry.app.metadata.sql.query("UPDATE robots SET expires_at = now() - interval '1 minute' WHERE name LIKE '%+expired'");
    perVisibility.set('expiredRobot', { public: pubExpired!, private: privExpired! });
    const [pubDisabled, privDisabled] = await projectRobot('disabledRobot', 'disabled', ['pull', 'push'], { disabled: true });
    perVisibility.set('disabledRobot', { public: pubDisabled!, private: privDisabled! });
    const other = await api.robot('elsewhere', 'ci', ['pull', 'push', 'delete']);
    credentials.set('otherProjectRobot', { username: other.name, password: other.secret });
    const system = await api.ok('PUT', '/robots/puller', { permissions: [{ namespace: '*', access: [{ resource: 'repository', action: 'pull' }] }] });
    credentials.set('systemRobotPullAll', { username: system.robot.name, password: system.secret });
    for (const [key, byVisibility] of perVisibility) {
      for (const v of ['public', 'private'] as const) credentials.set(`${key}:${v}`, { username: byVisibility[v].name, password: byVisibility[v].secret });
    }
  });

  afterAll(async () => {
    console.log(`scope matrix: ${cells.length} cells, ${escalations} escalations`);
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  it.each(cells)('$principal on a $visibility project: $action allowed=$allowed', async (cell) => {
    const perProject = credentials.has(`${cell.principal}:${cell.visibility}`);
    const result = await attempt(perProject ? { ...cell, principal: `${cell.principal}:${cell.visibility}` } : cell);
    if (result.allowed && !cell.allowed) escalations++;
    const refused = cell.principal === 'expiredRobot' || cell.principal === 'disabledRobot';
    // Refused credentials get no token at all, so even the catalog answers 401.
    const status = refused ? 401 : EXPECTED_STATUS[cell.action][cell.allowed ? 'allowed' : 'denied'];
    expect({ allowed: result.allowed, status: result.status }).toEqual({ allowed: cell.allowed, status });
    if (refused) expect(result.tokenStatus).toBe(401);
  });

  it('found no escalations', () => {
    expect(escalations).toBe(0);
  });

  /** Robots are created per project; the other principals have one set of credentials. */
  const credentialsFor = (principal: string, visibility: Visibility) => credentials.get(credentials.has(`${principal}:${visibility}`) ? `${principal}:${visibility}` : principal);
  const managementCells = Object.keys(EXPECTED).flatMap((principal) => (['public', 'private'] as const).map((visibility) => ({ principal, visibility })));

  it.each(Object.keys(EXPECTED))('%s: a token with every repository scope it can get calls no management route', async (principal) => {
    const routes = managementRoutes(registry.app);
    for (const visibility of ['public', 'private'] as const) {
      const creds = credentialsFor(principal, visibility);
      const token = await fetchToken(registry.url, [`repository:${projectOf('public')}/app:*`, `repository:${projectOf('private')}/app:*`, 'registry:catalog:*'], creds);
      if (!token.token) {
        expect(['expiredRobot', 'disabledRobot']).toContain(principal);
        continue;
      }
      const targets = { project: projectOf(visibility), username: creds?.username ?? 'admin', robot: 'ci' };
      const answers = [];
      for (const route of routes) {
        const res = await callRoute(registry.url, route, targets, `Bearer ${token.token}`);
        answers.push(`${route.method} ${route.url} → ${res.status}`);
      }
      expect(answers.filter((a) => !a.endsWith('→ 401'))).toEqual([]);
    }
  });

  it.each(managementCells)('$principal reads the $visibility project through the management API only as the policy allows', async ({ principal, visibility }) => {
    const creds = credentialsFor(principal, visibility);
    const token = creds && (await fetchToken(registry.url, [MANAGEMENT_SCOPE], creds)).token;
    // Without a management token (anonymous, refused credentials) the call goes out with whatever the caller has.
    const authorization = token ? `Bearer ${token}` : creds ? basic(creds.username, creds.password) : undefined;
    const res = await fetch(`${registry.url}/api/v1/projects/${projectOf(visibility)}`, authorization ? { headers: { Authorization: authorization } } : {});
    const expected = EXPECTED_MANAGEMENT_READ[principal]![visibility];
    expect(res.status).toBe(expected);
    const allowed = expected === 200;
    if (allowed) expect(((await res.json()) as { name: string }).name).toBe(projectOf(visibility));
  });
});
