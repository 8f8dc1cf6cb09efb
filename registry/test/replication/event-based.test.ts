// Event-based push replication: a push made with skopeo reaches the other Wharf within
// seconds, and with replicateDeletion a delete made with skopeo is replicated too.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManagementClient } from '../support/auth.js';
import { run } from '../support/clients/run.js';
import { imageBlobs, writeOciLayout } from '../support/clients/oci-layout.js';
import { buildImage, type Image } from '../support/oci.js';
import { removeDir, startRegistry, tempDir, type RunningRegistry } from '../support/registry.js';
import { eventually, tasksOf } from './support.js';

let work: string;
let source: RunningRegistry;
let destination: RunningRegistry;
let api: ManagementClient;
let image: Image;

const skopeo = (...args: string[]) => run('skopeo', ['--policy', join(work, 'policy.json'), '--tmpdir', work, ...args], { timeoutMs: 60_000 });

async function destinationDigest(reference: string): Promise<string | undefined> {
  const res = await fetch(`${destination.url}/v2/mirror/web/manifests/${reference}`, { method: 'HEAD', headers: { Accept: image.mediaType } });
  return res.status === 200 ? (res.headers.get('docker-content-digest') ?? undefined) : undefined;
}

beforeAll(async () => {
  work = await tempDir('wharf-replication-events-');
  await writeFile(join(work, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  source = await startRegistry({ replication: { settings: { retryBaseMs: 200 } } });
  destination = await startRegistry();
  api = new ManagementClient(source.url, null);
  await api.project('apps');
  await new ManagementClient(destination.url, null).project('mirror');
  image = await buildImage();
  await writeOciLayout(join(work, 'layout'), [{ tag: 'v1', manifest: image.manifest, mediaType: image.mediaType }], imageBlobs(image));
  await api.ok('PUT', '/registries/site-b', { provider: 'wharf', url: destination.url });
  await api.ok('PUT', '/replication/policies/on-push', {
    mode: 'push',
    registry: 'site-b',
    filters: { name: { matches: ['apps/**'] }, tag: { excludes: ['scratch'] } },
    destination: { namespace: 'mirror' },
    trigger: { type: 'eventBased' },
    replicateDeletion: true,
  });
});

afterAll(async () => {
  await source?.stop();
  await destination?.stop();
  for (const r of [source, destination]) if (r) await removeDir(r.dataDir);
  if (work) await removeDir(work);
});

describe('event-based push replication', () => {
  it('copies a skopeo push to the destination within 10 s', async () => {
    await skopeo('copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${join(work, 'layout')}:v1`, `docker://${source.host}/apps/web:v1`);
    const digest = await eventually('the pushed tag at the destination', () => destinationDigest('v1'), 10_000);
    expect(digest).toBe(image.manifest.digest);
    const executions = await api.ok('GET', '/replication/executions?policy=on-push');
    expect(executions.items[0]).toMatchObject({ trigger: 'eventBased' });
  });

  it('ignores pushes the filters exclude', async () => {
    await skopeo('copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${join(work, 'layout')}:v1`, `docker://${source.host}/apps/web:scratch`);
    await skopeo('copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${join(work, 'layout')}:v1`, `docker://${source.host}/apps/web:v2`);
    await eventually('v2 at the destination', () => destinationDigest('v2'), 10_000);
    expect(await destinationDigest('scratch')).toBeUndefined();
  });

  it('replicates a delete when replicateDeletion is set', async () => {
    await skopeo('delete', '--tls-verify=false', `docker://${source.host}/apps/web:v1`);
    await eventually('the manifest gone from the destination', async () => (await destinationDigest(image.manifest.digest)) === undefined, 10_000);
    const executions = (await api.ok('GET', '/replication/executions?policy=on-push')).items;
    const deletion = executions[0];
    const [task] = await tasksOf(api, deletion.id);
    expect(task).toMatchObject({ operation: 'delete', status: 'Succeeded', destination: { repository: 'mirror/web' } });
  });
});
