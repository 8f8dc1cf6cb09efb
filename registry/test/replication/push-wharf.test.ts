// Push replication Wharf → Wharf: the destination runs with token auth, and a robot of
// its project is the credential. A multi-arch index with a cosign-style signature and an
// SBOM (referrers) must arrive with identical digests, and a second run copies nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, fetchToken, ManagementClient } from '../support/auth.js';
import { DOCKER_V2S2, OCI_INDEX, RegistryClient } from '../support/oci.js';
import { removeDir, startRegistry, TEST_ADMIN_PASSWORD, tokenAuth, type RunningRegistry } from '../support/registry.js';
import { pushDockerImage, pushMultiArch, runPolicy, tasksOf, type MultiArch } from './support.js';

const ACCEPT = [OCI_INDEX, 'application/vnd.oci.image.manifest.v1+json', DOCKER_V2S2].join(', ');

let source: RunningRegistry;
let destination: RunningRegistry;
let sourceApi: ManagementClient;
let destinationApi: ManagementClient;
let pushed: MultiArch;
let legacy: { digest: string };

async function destinationGet(path: string, repository: string): Promise<Response> {
  const { token } = await fetchToken(destination.url, [`repository:${repository}:pull`], { username: 'admin', password: TEST_ADMIN_PASSWORD });
  return fetch(`${destination.url}${path}`, { headers: { Accept: ACCEPT, Authorization: `Bearer ${token}` } });
}

beforeAll(async () => {
  source = await startRegistry({ replication: { settings: { retryBaseMs: 200 } } });
  destination = await startRegistry({ auth: tokenAuth() });
  sourceApi = new ManagementClient(source.url, null);
  destinationApi = new ManagementClient(destination.url, ADMIN);
  await sourceApi.project('apps');
  await destinationApi.project('mirror');
  const robot = await destinationApi.robot('mirror', 'sync', ['pull', 'push']);
  const client = new RegistryClient(source.url);
  pushed = await pushMultiArch(client, 'apps/web', '1.0');
  legacy = await pushDockerImage(client, 'apps/web', 'legacy');
  await sourceApi.ok('PUT', '/registries/site-b', { provider: 'wharf', url: destination.url, username: robot.name, password: robot.secret });
  await sourceApi.ok('PUT', '/replication/policies/to-site-b', {
    mode: 'push',
    registry: 'site-b',
    filters: { name: { matches: ['apps/**'] } },
    destination: { namespace: 'mirror', flattening: 'one' },
  });
});

afterAll(async () => {
  await source?.stop();
  await destination?.stop();
  for (const r of [source, destination]) if (r) await removeDir(r.dataDir);
});

describe('push replication Wharf → Wharf with token auth', () => {
  it('shows the registry healthy and never returns its password', async () => {
    const registry = await sourceApi.ok('GET', '/registries/site-b');
    expect(registry.health.status).toBe('healthy');
    expect(registry.passwordSet).toBe(true);
    expect(JSON.stringify(registry)).not.toMatch(/"password"/);
  });

  it('copies the index, its children, both referrers and a v2s2 image with identical digests', async () => {
    const execution = await runPolicy(sourceApi, 'to-site-b');
    expect(execution.status, JSON.stringify(execution)).toBe('Succeeded');
    expect(execution.tasks).toMatchObject({ total: 2, succeeded: 2, failed: 0 });
    expect(execution.bytes).toBeGreaterThan(0);

    const head = await destinationGet('/v2/mirror/web/manifests/1.0', 'mirror/web');
    expect(head.status).toBe(200);
    expect(head.headers.get('docker-content-digest')).toBe(pushed.index.digest);
    expect(Buffer.from(await head.arrayBuffer()).equals(pushed.index.data)).toBe(true);
    for (const digest of [...pushed.images.map((i) => i.manifest.digest), pushed.signature.digest, pushed.sbom.digest]) {
      const res = await destinationGet(`/v2/mirror/web/manifests/${digest}`, 'mirror/web');
      expect(res.status, digest).toBe(200);
      expect(res.headers.get('docker-content-digest')).toBe(digest);
    }
    for (const blob of pushed.images.flatMap((i) => [i.config, ...i.layers])) {
      const res = await destinationGet(`/v2/mirror/web/blobs/${blob.digest}`, 'mirror/web');
      expect(Buffer.from(await res.arrayBuffer()).equals(blob.data)).toBe(true);
    }
    const referrers = await destinationGet(`/v2/mirror/web/referrers/${pushed.index.digest}`, 'mirror/web');
    const listed = ((await referrers.json()) as { manifests: { digest: string; artifactType: string }[] }).manifests;
    expect(listed.map((m) => m.digest).sort()).toEqual([pushed.signature.digest, pushed.sbom.digest].sort());

    const docker = await destinationGet('/v2/mirror/web/manifests/legacy', 'mirror/web');
    expect(docker.headers.get('content-type')).toBe(DOCKER_V2S2);
    expect(docker.headers.get('docker-content-digest')).toBe(legacy.digest);
  });

  it('a second run copies 0 bytes and reports the artifacts unchanged', async () => {
    const execution = await runPolicy(sourceApi, 'to-site-b');
    expect(execution.status).toBe('Succeeded');
    expect(execution.bytes).toBe(0);
    expect(execution.artifacts).toBe(0);
    const tasks = await tasksOf(sourceApi, execution.id);
    expect(tasks.map((t) => t.message)).toEqual(['unchanged: already at the destination', 'unchanged: already at the destination']);
  });

  it('keeps a per-task log and lists executions newest first with paging', async () => {
    const first = await sourceApi.ok('GET', '/replication/executions?policy=to-site-b&limit=1');
    expect(first.items).toHaveLength(1);
    expect(first.next).toBeDefined();
    const second = await sourceApi.ok('GET', `/replication/executions?policy=to-site-b&limit=1&after=${first.next}`);
    expect(second.items).toHaveLength(1);
    expect(second.items[0].id).not.toBe(first.items[0].id);
    expect(second.next).toBeUndefined();
    const [task] = await tasksOf(sourceApi, second.items[0].id);
    const log = await fetch(`${source.url}/api/v1/replication/executions/${second.items[0].id}/tasks/${task.id}/log`);
    expect(log.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await log.text()).toMatch(/manifest sha256:[0-9a-f]{64} .*sent/);
  });
});
