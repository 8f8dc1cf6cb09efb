import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ManagementClient } from './support/auth.js';
import { buildImage, RegistryClient } from './support/oci.js';
import { createTestDatabase } from './support/pg.js';
import { removeDir, startRegistry, type RunningRegistry } from './support/registry.js';

// What the operator's Project controller relies on: the manager of a project is recorded, group
// members are stored, usage counts repositories, and a project can be deleted with its content.
describe.each(['pglite', 'postgresql'] as const)('declarative project management (%s)', (driver) => {
  let registry: RunningRegistry;
  let api: ManagementClient;
  let oci: RegistryClient;

  beforeAll(async () => {
    registry = await startRegistry(driver === 'postgresql' ? { databaseUrl: await createTestDatabase(inject('pgAdminUrl')) } : {});
    api = new ManagementClient(registry.url, null);
    oci = new RegistryClient(registry.url);
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  it('records, keeps and clears managedBy; an unrelated PUT leaves it alone; another manager is refused', async () => {
    const created = await api.ok('PUT', '/projects/owned', { public: false, managedBy: 'team-a/owned' });
    expect(created).toMatchObject({ name: 'owned', managedBy: 'team-a/owned', repositories: 0 });
    expect(await api.ok('PUT', '/projects/owned', { public: true })).toMatchObject({ public: true, managedBy: 'team-a/owned' });
    const again = await api.ok('PUT', '/projects/owned', { public: true, managedBy: 'team-a/owned' });
    expect(again.updatedAt).toBe((await api.ok('GET', '/projects/owned')).updatedAt);
    const claimed = await api.call('PUT', '/projects/owned', { public: false, managedBy: 'team-b/owned' });
    expect(claimed.status).toBe(409);
    expect(claimed.body.errors[0]).toMatchObject({ code: 'CONFLICT', message: 'project "owned" is managed by "team-a/owned"' });
    expect(await api.ok('GET', '/projects/owned')).toMatchObject({ public: true, managedBy: 'team-a/owned' });
    expect(await api.ok('PUT', '/projects/owned', { managedBy: '' })).toMatchObject({ managedBy: null });
    expect(await api.ok('PUT', '/projects/owned', { managedBy: 'team-b/owned' })).toMatchObject({ managedBy: 'team-b/owned' });
    expect((await api.ok('PUT', '/projects/unmanaged', {})).managedBy).toBeNull();
  });

  it('stores group members idempotently, rejects invalid group names and lists them', async () => {
    await api.ok('PUT', '/projects/groups', {});
    expect((await api.call('PUT', '/projects/groups/groups/oidc:platform-team', { role: 'developer' })).status).toBe(201);
    const same = await api.call('PUT', '/projects/groups/groups/oidc:platform-team', { role: 'developer' });
    expect(same).toEqual({ status: 200, body: { group: 'oidc:platform-team', role: 'developer' } });
    await api.ok('PUT', '/projects/groups/groups/auditors', { role: 'guest' });
    expect((await api.ok('GET', '/projects/groups/groups')).items).toEqual([
      { group: 'auditors', role: 'guest' },
      { group: 'oidc:platform-team', role: 'developer' },
    ]);
    const bad = await api.call('PUT', '/projects/groups/groups/%20spaces', { role: 'guest' });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].code).toBe('INVALID_REQUEST');
    expect((await api.call('DELETE', '/projects/groups/groups/auditors')).status).toBe(204);
    expect((await api.call('DELETE', '/projects/groups/groups/auditors')).status).toBe(404);
    expect((await api.ok('GET', '/projects/groups/groups')).items).toEqual([{ group: 'oidc:platform-team', role: 'developer' }]);
  });

  it('answers a wrong proxyCache with one clear message, takes a URL scheme in any case, and mirror ports from 1 to 65535', async () => {
    const refusal = async (proxyCache: unknown) => {
      const res = await api.call('PUT', '/projects/proxied', { proxyCache });
      expect(res.status).toBe(400);
      expect(res.body.errors[0].code).toBe('INVALID_REQUEST');
      return res.body.errors[0].message as string;
    };
    expect(await refusal({ provider: 'dockerhub', url: 'https://registry-1.docker.io' })).toBe(
      'invalid request: body/proxyCache/provider must be one of: "docker-hub", "docker-registry", "harbor", "wharf", "ghcr", "quay", "gcr", "ecr", "acr"',
    );
    expect(await refusal({ provider: 'docker-hub', url: 'https://registry-1.docker.io', manifestTTLSeconds: -1 })).toBe('invalid request: body/proxyCache/manifestTTLSeconds must be >= 0');
    expect(await refusal({ provider: 'docker-hub', url: 'https://registry-1.docker.io', mirrorOf: ['docker.io:99999'] })).toMatch(/proxyCache\.mirrorOf: "docker\.io:99999" is not a host name/);
    expect(await refusal({ provider: 'docker-hub', url: 'https://registry-1.docker.io', mirrorOf: ['docker.io:0'] })).toMatch(/is not a host name/);
    const created = await api.ok('PUT', '/projects/proxied', { proxyCache: { provider: 'docker-hub', url: 'HTTPS://Registry-1.Docker.io/', mirrorOf: ['registry.example:65535'] } });
    expect(created.proxyCache).toMatchObject({ url: 'https://registry-1.docker.io', mirrorOf: ['registry.example:65535'] });
  });

  it('deletes a project with its content only when asked; its manifests are gone at once', async () => {
    await api.ok('PUT', '/projects/doomed', {});
    const image = await buildImage({ layers: 1 });
    await oci.pushImage('doomed/app', 'v1', image);
    await oci.pushImage('doomed/other', 'v1', image);
    expect(await api.ok('GET', '/projects/doomed')).toMatchObject({ repositories: 2 });
    expect((await oci.fetch('/v2/doomed/app/manifests/v1')).status).toBe(200);

    const refused = await api.call('DELETE', '/projects/doomed');
    expect(refused.status).toBe(409);
    expect(refused.body.errors[0].message).toContain('deleteContent=true');
    expect((await oci.fetch('/v2/doomed/app/manifests/v1')).status).toBe(200);

    expect((await api.call('DELETE', '/projects/doomed?deleteContent=true')).status).toBe(204);
    expect((await api.call('GET', '/projects/doomed')).status).toBe(404);
    expect((await oci.fetch('/v2/doomed/app/manifests/v1')).status).toBe(404);
    expect((await oci.fetch(`/v2/doomed/app/manifests/${image.manifest.digest}`)).status).toBe(404);
    const tags = await oci.fetch('/v2/doomed/app/tags/list');
    expect(tags.status).toBe(404);
    // A new project of the same name starts empty.
    expect(await api.ok('PUT', '/projects/doomed', {})).toMatchObject({ repositories: 0, usedBytes: 0 });
  });
});
