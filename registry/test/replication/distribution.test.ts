// Push Wharf → distribution 2.8.2 and pull distribution 2.8.2 → Wharf (Debian's
// docker-registry on loopback, htpasswd Basic auth), with name and tag filters that
// use matches and excludes: exactly the selected tags arrive.
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, ManagementClient } from '../support/auth.js';
import { buildImage, RegistryClient } from '../support/oci.js';
import { removeDir, startRegistry, tempDir, type RunningRegistry } from '../support/registry.js';
import { pushToUpstream, startDistribution, type Distribution } from '../support/upstream.js';
import { runPolicy, tasksOf } from './support.js';

const AUTH = basic('sync', 'sync-secret');

let work: string;
let distribution: Distribution;
let wharf: RunningRegistry;
let api: ManagementClient;

async function distributionTags(repository: string): Promise<string[] | undefined> {
  const res = await fetch(`${distribution.url}/v2/${repository}/tags/list`, { headers: { Authorization: AUTH } });
  if (res.status === 404) return undefined;
  return (((await res.json()) as { tags: string[] | null }).tags ?? []).sort();
}

async function wharfTags(repository: string): Promise<string[] | undefined> {
  const res = await fetch(`${wharf.url}/v2/${repository}/tags/list`);
  if (res.status === 404) return undefined;
  return ((await res.json()) as { tags: string[] }).tags.sort();
}

beforeAll(async () => {
  work = await tempDir('wharf-replication-dist-');
  const htpasswd = join(work, 'htpasswd');
  await writeFile(htpasswd, execFileSync('htpasswd', ['-nbB', 'sync', 'sync-secret']));
  distribution = await startDistribution(join(work, 'distribution'), { htpasswd });
  wharf = await startRegistry({ replication: { settings: { retryBaseMs: 200 } } });
  api = new ManagementClient(wharf.url, null);
  await api.ok('PUT', '/registries/dist', { provider: 'docker-registry', url: distribution.url, username: 'sync', password: 'sync-secret' });
});

afterAll(async () => {
  await wharf?.stop();
  await distribution?.stop();
  if (wharf) await removeDir(wharf.dataDir);
  if (work) await removeDir(work);
});

describe('push Wharf → distribution 2.8.2 (Basic auth)', () => {
  it('sends exactly the repositories and tags the filters select', async () => {
    await api.project('apps');
    await api.project('other');
    const client = new RegistryClient(wharf.url);
    const image = await buildImage();
    for (const tag of ['1.0', '1.1', '1.1-rc1', 'latest', 'dev']) await client.pushImage('apps/web', tag, image);
    await client.pushImage('apps/tmp-scratch', '1.0', await buildImage());
    await client.pushImage('apps/team/api', '1.2', await buildImage());
    await client.pushImage('apps/team/api', '2.0', await buildImage());
    await client.pushImage('other/thing', '1.0', await buildImage());

    await api.ok('PUT', '/replication/policies/to-dist', {
      mode: 'push',
      registry: 'dist',
      filters: { name: { matches: ['apps/**'], excludes: ['apps/tmp-*'] }, tag: { matches: ['1.*', 'latest'], excludes: ['*-rc*'] } },
      destination: { namespace: 'dist', flattening: 'none' },
    });
    const execution = await runPolicy(api, 'to-dist');
    expect(execution.status, JSON.stringify(execution)).toBe('Succeeded');
    // apps/web: one artifact under three tags; apps/team/api: 1.2.
    expect(execution.tasks.total).toBe(2);

    expect(await distributionTags('dist/apps/web')).toEqual(['1.0', '1.1', 'latest']);
    expect(await distributionTags('dist/apps/team/api')).toEqual(['1.2']);
    expect(await distributionTags('dist/apps/tmp-scratch')).toBeUndefined();
    expect(await distributionTags('dist/other/thing')).toBeUndefined();
    const web = await fetch(`${distribution.url}/v2/dist/apps/web/manifests/latest`, { method: 'HEAD', headers: { Authorization: AUTH, Accept: image.mediaType } });
    expect(web.headers.get('docker-content-digest')).toBe(image.manifest.digest);
  });
});

describe('pull distribution 2.8.2 → Wharf (Basic auth)', () => {
  it('brings exactly the selected repositories and tags, flattened into the local project', async () => {
    await api.project('pulled');
    const images = { a: await buildImage(), b: await buildImage(), c: await buildImage() };
    await pushToUpstream(distribution.url, 'lib/alpha', '3.18', images.a, AUTH);
    await pushToUpstream(distribution.url, 'lib/alpha', '3.19', images.b, AUTH);
    await pushToUpstream(distribution.url, 'lib/alpha', 'edge', images.c, AUTH);
    await pushToUpstream(distribution.url, 'lib/alpha', 'test', images.c, AUTH);
    await pushToUpstream(distribution.url, 'lib/beta', '3.19', images.a, AUTH);
    await pushToUpstream(distribution.url, 'junk/gamma', '3.19', images.a, AUTH);

    await api.ok('PUT', '/replication/policies/from-dist', {
      mode: 'pull',
      registry: 'dist',
      filters: { name: { matches: ['lib/*'], excludes: ['lib/beta'] }, tag: { matches: ['3.*', 'edge'], excludes: ['3.18'] } },
      destination: { namespace: 'pulled', flattening: 'all' },
    });
    const execution = await runPolicy(api, 'from-dist');
    expect(execution.status, JSON.stringify(execution)).toBe('Succeeded');
    expect(await wharfTags('pulled/alpha')).toEqual(['3.19', 'edge']);
    expect(await wharfTags('pulled/beta')).toBeUndefined();
    expect(await wharfTags('pulled/gamma')).toBeUndefined();
    const edge = await fetch(`${wharf.url}/v2/pulled/alpha/manifests/edge`, { headers: { Accept: images.c.mediaType } });
    expect(edge.headers.get('docker-content-digest')).toBe(images.c.manifest.digest);
    expect(Buffer.from(await edge.arrayBuffer()).equals(images.c.manifest.data)).toBe(true);
    const tasks = await tasksOf(api, execution.id);
    expect(tasks.map((t) => [t.source.repository, t.destination.repository, t.source.tags.sort()]).sort()).toEqual([
      ['lib/alpha', 'pulled/alpha', ['3.19']],
      ['lib/alpha', 'pulled/alpha', ['edge']],
    ]);
  });

  it('fails a pull into a project that does not exist, saying so', async () => {
    await api.ok('PUT', '/replication/policies/nowhere', { mode: 'pull', registry: 'dist', filters: { name: { matches: ['lib/alpha'] }, tag: { matches: ['edge'] } }, destination: { namespace: 'missing-project' } });
    const execution = await runPolicy(api, 'nowhere');
    expect(execution.status).toBe('Failed');
    const [task] = await tasksOf(api, execution.id);
    expect(task.status).toBe('Failed');
    expect(task.message).toMatch(/project missing-project does not exist/);
    expect(task.attempts).toBe(1);
  });
});
