import SwaggerParser from '@apidevtools/swagger-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, fetchToken, ManagementClient } from '../support/auth.js';
import { randomBlob, RegistryClient } from '../support/oci.js';
import { removeDir, startRegistry, TEST_ADMIN_PASSWORD, tokenAuth, type RunningRegistry } from '../support/registry.js';

let registry: RunningRegistry;
let api: ManagementClient;
let openapi: any;

const robotBody = (actions: string[], extra: Record<string, unknown> = {}) => ({ permissions: [{ access: actions.map((action) => ({ resource: 'repository', action })) }], ...extra });

describe('management API', () => {
  beforeAll(async () => {
    registry = await startRegistry({ auth: tokenAuth() });
    api = new ManagementClient(registry.url);
    openapi = await (await fetch(`${registry.url}/api/v1/openapi.json`)).json();
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  it('serves a valid OpenAPI 3 document', async () => {
    expect(openapi.openapi).toMatch(/^3\.0\./);
    await expect(SwaggerParser.validate(structuredClone(openapi))).resolves.toBeTruthy();
    expect(Object.keys(openapi.paths).length).toBeGreaterThan(10);
  });

  describe('projects', () => {
    it('creates with 201, then answers the same PUT with 200 and the same object (idempotent, stable id)', async () => {
      const first = await api.call('PUT', '/projects/team-a', { public: false });
      expect(first.status).toBe(201);
      const again = await api.call('PUT', '/projects/team-a', { public: false });
      expect(again.status).toBe(200);
      expect(again.body).toEqual(first.body);
      const changed = await api.call('PUT', '/projects/team-a', { public: true });
      expect(changed.body).toMatchObject({ id: first.body.id, public: true });
      expect(await api.ok('GET', '/projects/team-a')).toMatchObject({ id: first.body.id, name: 'team-a', public: true, storageLimit: -1, usedBytes: 0 });
    });

    it('pages through the list with a cursor', async () => {
      for (const name of ['team-b', 'team-c', 'team-d', 'team-e']) await api.project(name);
      const seen: string[] = [];
      let after: string | undefined;
      let pages = 0;
      do {
        const page = await api.ok('GET', `/projects?limit=2${after ? `&after=${after}` : ''}`);
        seen.push(...page.items.map((p: { name: string }) => p.name));
        after = page.next;
        pages++;
      } while (after);
      expect(seen).toEqual(['team-a', 'team-b', 'team-c', 'team-d', 'team-e']);
      expect(pages).toBe(3);
    });

    it('rejects bad names and bodies with 400 INVALID_REQUEST, and unknown projects with 404', async () => {
      expect(await api.call('PUT', '/projects/Bad_Name', {})).toMatchObject({ status: 400, body: { errors: [{ code: 'INVALID_REQUEST' }] } });
      expect(await api.call('PUT', '/projects/team-a', { public: 'yes' })).toMatchObject({ status: 400, body: { errors: [{ code: 'INVALID_REQUEST' }] } });
      expect(await api.call('PUT', '/projects/team-a', { unknownField: 1 })).toMatchObject({ status: 400 });
      expect(await api.call('GET', '/projects/nope')).toMatchObject({ status: 404, body: { errors: [{ code: 'RESOURCE_NOT_FOUND' }] } });
    });

    it('sets and reads quotas', async () => {
      expect(await api.ok('PUT', '/projects/team-a/quota', { limitBytes: 1_000_000 })).toEqual({ limitBytes: 1_000_000, usedBytes: 0 });
      expect(await api.ok('GET', '/projects/team-a/quota')).toEqual({ limitBytes: 1_000_000, usedBytes: 0 });
    });

    it('refuses to delete a project that holds content (409), and deletes an empty one (204)', async () => {
      const token = (await fetchToken(registry.url, ['repository:team-b/app:push'], { username: 'admin', password: TEST_ADMIN_PASSWORD })).token;
      const blob = randomBlob(100);
      const pushed = await new RegistryClient(registry.url).fetch(`/v2/team-b/app/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: blob.data });
      expect(pushed.status).toBe(201);
      expect(await api.call('DELETE', '/projects/team-b')).toMatchObject({ status: 409, body: { errors: [{ code: 'CONFLICT' }] } });
      expect((await api.call('DELETE', '/projects/team-e')).status).toBe(204);
      expect((await api.call('GET', '/projects/team-e')).status).toBe(404);
    });
  });

  describe('users and members', () => {
    it('creates users idempotently and manages members', async () => {
      expect((await api.call('PUT', '/users/alice', { password: 'alice-password-123' })).status).toBe(201);
      const again = await api.call('PUT', '/users/alice', { password: 'alice-password-123' });
      expect(again.status).toBe(200);
      expect((await api.ok('GET', '/users/alice')).updatedAt).toBe(again.body.updatedAt);
      expect((await api.ok('GET', '/users?limit=10')).items.map((u: { username: string }) => u.username)).toEqual(['admin', 'alice']);
      expect((await api.call('PUT', '/projects/team-a/members/alice', { role: 'developer' })).status).toBe(201);
      expect((await api.call('PUT', '/projects/team-a/members/alice', { role: 'developer' })).status).toBe(200);
      expect((await api.ok('GET', '/projects/team-a/members')).items).toEqual([{ userId: expect.any(String), username: 'alice', role: 'developer' }]);
      expect(await api.call('PUT', '/projects/team-a/members/ghost', { role: 'guest' })).toMatchObject({ status: 404 });
      expect(await api.call('PUT', '/projects/team-a/members/alice', { role: 'owner' })).toMatchObject({ status: 400 });
    });

    it('stores group members (they grant access once identities carry groups)', async () => {
      expect((await api.call('PUT', '/projects/team-a/groups/oidc:platform', { role: 'maintainer' })).status).toBe(201);
      expect((await api.call('PUT', '/projects/team-a/groups/oidc:platform', { role: 'maintainer' })).status).toBe(200);
      expect((await api.ok('GET', '/projects/team-a/groups')).items).toEqual([{ group: 'oidc:platform', role: 'maintainer' }]);
      expect(await api.call('PUT', '/projects/team-a/groups/oidc:platform', { role: 'owner' })).toMatchObject({ status: 400 });
      expect((await api.call('DELETE', '/projects/team-a/groups/oidc:platform')).status).toBe(204);
      expect((await api.call('DELETE', '/projects/team-a/groups/oidc:platform')).status).toBe(404);
      expect((await api.ok('GET', '/projects/team-a/groups')).items).toEqual([]);
    });

    it('applies the policy to people who are not administrators', async () => {
      const alice = api.as(basic('alice', 'alice-password-123'));
      expect(await alice.call('PUT', '/projects/alices-own', {})).toMatchObject({ status: 403, body: { errors: [{ code: 'DENIED' }] } });
      expect(await alice.call('PUT', '/projects/team-a', { public: false })).toMatchObject({ status: 403 });
      expect((await alice.call('GET', '/projects/team-a')).status).toBe(200);
      expect((await alice.call('GET', '/projects/team-c')).status).toBe(404);
      expect((await alice.call('GET', '/users')).status).toBe(403);
      expect(await api.as(null).call('GET', '/users')).toMatchObject({ status: 401 });
      expect(await api.as(basic('alice', 'wrong')).call('GET', '/projects')).toMatchObject({ status: 401 });
      expect((await alice.call('PUT', '/users/alice', { password: 'alices-new-password', currentPassword: 'alice-password-123' })).status).toBe(200);
      expect((await api.as(basic('alice', 'alices-new-password')).call('GET', '/projects/team-a')).status).toBe(200);
    });

    it('keeps at least one administrator (409) and removes members and users', async () => {
      expect(await api.call('PUT', '/users/admin', { admin: false })).toMatchObject({ status: 409, body: { errors: [{ code: 'CONFLICT' }] } });
      expect(await api.call('DELETE', '/users/admin')).toMatchObject({ status: 409 });
      expect((await api.call('DELETE', '/projects/team-a/members/alice')).status).toBe(204);
      expect((await api.call('DELETE', '/projects/team-a/members/alice')).status).toBe(404);
      expect((await api.call('DELETE', '/users/alice')).status).toBe(204);
      expect((await api.call('GET', '/users/alice')).status).toBe(404);
    });
  });

  describe('robots', () => {
    it('returns the secret once on creation, never afterwards', async () => {
      const created = await api.call('PUT', '/projects/team-a/robots/builder', robotBody(['pull', 'push'], { description: 'CI' }));
      expect(created.status).toBe(201);
      expect(created.body.robot).toMatchObject({ name: 'robot$team-a+builder', project: 'team-a', durationDays: -1, expiresAt: null, disabled: false });
      expect(created.body.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const again = await api.call('PUT', '/projects/team-a/robots/builder', robotBody(['pull', 'push'], { description: 'CI' }));
      expect(again.status).toBe(200);
      expect(again.body.secret).toBeUndefined();
      expect(again.body.id).toBe(created.body.robot.id);
      expect(JSON.stringify(await api.ok('GET', '/projects/team-a/robots'))).not.toContain('secret');
      expect((await api.ok('GET', '/projects/team-a/robots/builder')).name).toBe('robot$team-a+builder');
    });

    it('sets expiry from a duration in days', async () => {
      const body = await api.ok('PUT', '/projects/team-a/robots/shortlived', robotBody(['pull'], { durationDays: 30 }));
      const days = (new Date(body.robot.expiresAt).getTime() - new Date(body.robot.createdAt).getTime()) / 86_400_000;
      expect(days).toBeCloseTo(30, 3);
      expect(await api.call('PUT', '/projects/team-a/robots/bad', robotBody(['pull'], { durationDays: 0 }))).toMatchObject({ status: 400 });
    });

    it('refuses permissions outside the project or not grantable', async () => {
      expect(await api.call('PUT', '/projects/team-a/robots/sneaky', { permissions: [{ namespace: 'team-c', access: [{ resource: 'repository', action: 'pull' }] }] })).toMatchObject({ status: 400 });
      expect(await api.call('PUT', '/projects/team-a/robots/sneaky', { permissions: [{ access: [{ resource: 'user', action: 'write' }] }] })).toMatchObject({ status: 400 });
    });

    it('rotates and deletes project robots', async () => {
      const rotated = await api.ok('POST', '/projects/team-a/robots/builder/rotate', {});
      expect(rotated.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(await api.call('POST', '/projects/team-a/robots/builder/rotate', { secret: 'short' })).toMatchObject({ status: 400 });
      expect((await api.call('DELETE', '/projects/team-a/robots/shortlived')).status).toBe(204);
      expect((await api.call('GET', '/projects/team-a/robots/shortlived')).status).toBe(404);
    });

    it('manages system robots (administrators only)', async () => {
      const created = await api.call('PUT', '/robots/mirror', { permissions: [{ namespace: '*', access: [{ resource: 'repository', action: 'pull' }] }] });
      expect(created.status).toBe(201);
      expect(created.body.robot).toMatchObject({ name: 'robot$mirror', project: null });
      expect((await api.ok('GET', '/robots')).items.map((r: { name: string }) => r.name)).toEqual(['robot$mirror']);
      expect((await api.ok('GET', '/robots/mirror')).permissions).toEqual([{ namespace: '*', access: [{ resource: 'repository', action: 'pull' }] }]);
      expect((await api.ok('POST', '/robots/mirror/rotate', {})).secret).toBeDefined();
      const robotCreds = await api.call('PUT', '/projects/team-a/robots/looker', robotBody(['pull']));
      expect(await api.as(basic(robotCreds.body.robot.name, robotCreds.body.secret)).call('GET', '/robots')).toMatchObject({ status: 403 });
      expect((await api.call('DELETE', '/robots/mirror')).status).toBe(204);
    });
  });

  describe('audit log', () => {
    it('records management changes with actor, time and target, newest first, and filters by project', async () => {
      const all = await api.ok('GET', '/audit?limit=500');
      const kinds = new Set(all.items.map((e: { resourceType: string; action: string }) => `${e.resourceType}:${e.action}`));
      for (const expected of ['project:create', 'project:update', 'project:delete', 'quota:update', 'user:create', 'user:delete', 'member:create', 'member:delete', 'robot:create', 'robot:rotate', 'robot:delete', 'api:login']) {
        expect(kinds, expected).toContain(expected);
      }
      expect(all.items[0].id).toBeGreaterThan(all.items[all.items.length - 1].id);
      expect(all.items.every((e: { at: string; actor: string }) => !Number.isNaN(Date.parse(e.at)) && e.actor.length > 0)).toBe(true);
      // An idempotent PUT that changed nothing is not a change.
      expect(all.items.filter((e: { resourceType: string; action: string; resource: string }) => e.resourceType === 'project' && e.action === 'create' && e.resource === 'team-a')).toHaveLength(1);
      const project = await api.ok('GET', '/projects/team-a/audit?limit=500');
      expect(project.items.length).toBeGreaterThan(0);
      expect(project.items.every((e: { project?: string }) => e.project === 'team-a')).toBe(true);
      const page = await api.ok('GET', `/audit?limit=2&before=${all.items[0].id}`);
      expect(page.items.map((e: { id: number }) => e.id)).toEqual([all.items[1].id, all.items[2].id]);
    });
  });

  describe('garbage collection', () => {
    it('queues a run (administrators only) whose status ends with a report', async () => {
      expect((await api.as(null).call('POST', '/gc', { dryRun: true })).status).toBe(401);
      const queued = await api.call('POST', '/gc', { dryRun: true });
      expect(queued).toMatchObject({ status: 202, body: { state: 'queued', dryRun: true, deleteUntagged: false } });
      let run = queued.body;
      for (let i = 0; i < 100 && (run.state === 'queued' || run.state === 'running'); i++) {
        await new Promise((r) => setTimeout(r, 100));
        run = await api.ok('GET', `/gc/${queued.body.id}`);
      }
      expect(run).toMatchObject({ state: 'succeeded', report: { dryRun: true, phase: 'done' } });
      expect((await api.ok('GET', '/gc')).items.map((r: { id: string }) => r.id)).toContain(run.id);
      expect((await api.call('GET', '/gc/00000000-0000-0000-0000-000000000000')).status).toBe(404);
    });
  });

  describe('replication (docs/replication.md; the copy itself: registry/test/replication/)', () => {
    it('manages remote registries, policies and executions (administrators only), never returning the password', async () => {
      expect((await api.as(null).call('GET', '/registries')).status).toBe(401);
      const created = await api.call('PUT', '/registries/self', { provider: 'wharf', url: registry.url, username: 'admin', password: TEST_ADMIN_PASSWORD });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ name: 'self', passwordSet: true, health: { status: 'healthy' } });
      expect(JSON.stringify(await api.ok('GET', '/registries'))).not.toContain(TEST_ADMIN_PASSWORD);
      expect((await api.ok('GET', '/registries/self')).username).toBe('admin');
      expect(await api.ok('POST', '/registries/self/ping')).toMatchObject({ status: 'healthy' });
      expect((await api.call('PUT', '/replication/policies/bad', { mode: 'push', registry: 'self', trigger: { type: 'scheduled', cron: 'not cron' } })).status).toBe(400);
      expect((await api.call('PUT', '/replication/policies/p1', { mode: 'push', registry: 'missing' })).status).toBe(400);
      const policy = await api.call('PUT', '/replication/policies/p1', { mode: 'push', registry: 'self', filters: { name: { matches: ['nothing/here'] } } });
      expect(policy.status).toBe(201);
      expect(policy.body).toMatchObject({ name: 'p1', mode: 'push', override: true, enabled: true, copyReferrers: true, destination: { namespace: '', flattening: 'one' }, trigger: { type: 'manual' } });
      expect((await api.ok('GET', '/replication/policies')).items.map((p: { name: string }) => p.name)).toEqual(['p1']);
      expect((await api.ok('GET', '/replication/policies/p1')).id).toBe(policy.body.id);
      expect((await api.call('DELETE', '/registries/self')).status).toBe(409);
      const started = await api.call('POST', '/replication/executions', { policy: 'p1' });
      expect(started.status).toBe(202);
      let execution = started.body;
      for (let i = 0; i < 100 && ['Pending', 'InProgress'].includes(execution.status); i++) {
        await new Promise((r) => setTimeout(r, 100));
        execution = await api.ok('GET', `/replication/executions/${started.body.id}`);
      }
      expect(execution).toMatchObject({ status: 'Succeeded', tasks: { total: 0 }, bytes: 0 });
      expect((await api.ok('GET', '/replication/executions?policy=p1')).items.map((e: { id: string }) => e.id)).toEqual([execution.id]);
      expect((await api.ok('GET', `/replication/executions/${execution.id}/tasks`)).items).toEqual([]);
      expect((await api.ok('POST', `/replication/executions/${execution.id}/stop`)).status).toBe('Succeeded');
      api.calls.push('GET /api/v1/replication/executions/x/tasks/x/log');
      expect((await fetch(`${registry.url}/api/v1/replication/executions/${execution.id}/tasks/00000000-0000-0000-0000-000000000000/log`, { headers: { Authorization: api.authorization! } })).status).toBe(404);
      expect((await api.call('DELETE', '/replication/policies/p1')).status).toBe(204);
      expect((await api.call('DELETE', '/registries/self')).status).toBe(204);
      expect((await api.call('GET', '/registries/self')).status).toBe(404);
    });
  });

  it('exercises every operation in the OpenAPI document', () => {
    const operations = Object.entries(openapi.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) =>
      Object.keys(methods).filter((m) => ['get', 'put', 'post', 'delete', 'patch'].includes(m)).map((m) => ({ method: m.toUpperCase(), path })),
    );
    const called = new Set(api.calls);
    const missing = operations.filter(({ method, path }) => {
      const pattern = new RegExp(`^${method} ${path.replace(/\{[^}]+\}/g, '[^/]+')}$`);
      return ![...called].some((c) => pattern.test(c));
    });
    expect(missing).toEqual([]);
  });
});
