// A proxy fill that gives up an upstream body before reading it (a quota refusal, a spool
// that cannot be made) answers the client and goes on serving. The registry runs as its own
// process, so that a crash shows as that process exiting. Stand-in upstream: distribution 2.8.2.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobOf, OCI_CONFIG, OCI_MANIFEST, type Image } from '../support/oci.js';
import { spawnRegistry, type RegistryProcess } from '../support/process.js';
import { removeDir, tempDir } from '../support/registry.js';
import { pushToUpstream, startDistribution, type Distribution } from '../support/upstream.js';

const MiB = 1024 * 1024;

let work: string;
let upstream: Distribution;
let registry: RegistryProcess;

function image(layerBytes: number): Image {
  const layer = blobOf(randomBytes(layerBytes));
  const config = blobOf(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } }));
  const manifest = blobOf(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size }, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size }] }));
  return { config, layers: [layer], manifest, mediaType: OCI_MANIFEST };
}

async function putProject(name: string, body: unknown): Promise<void> {
  const res = await fetch(`${registry.url}/api/v1/projects/${name}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status, await res.text()).toBeLessThan(300);
}

async function expectServing(): Promise<void> {
  expect(registry.child.exitCode, registry.output()).toBeNull();
  expect((await fetch(`${registry.url}/v2/`)).status).toBe(200);
}

beforeAll(async () => {
  work = await tempDir('wharf-proxy-abandoned-');
  upstream = await startDistribution(join(work, 'upstream'));
  registry = await spawnRegistry({ dataDir: join(work, 'registry'), env: { WHARF_AUTH_MODE: 'none' }, readyTimeoutMs: 120_000 });
});

afterAll(async () => {
  await registry?.stop();
  await upstream?.stop();
  if (work) await removeDir(work);
});

describe('upstream bodies a fill gives up (stand-in: distribution 2.8.2)', () => {
  it('refuses a blob past the quota with DENIED and keeps running', async () => {
    const img = image(2 * MiB);
    await pushToUpstream(upstream.url, 'library/quota', '1', img);
    await putProject('tight', { public: true, storageLimit: MiB, proxyCache: { provider: 'docker-registry', url: upstream.url } });
    const manifest = await fetch(`${registry.url}/v2/tight/library/quota/manifests/1`, { headers: { accept: OCI_MANIFEST } });
    expect(manifest.status).toBe(200);
    const res = await fetch(`${registry.url}/v2/tight/library/quota/blobs/${img.layers[0]!.digest}`);
    const body = await res.text();
    expect(res.status, body).toBe(403);
    expect(JSON.parse(body).errors[0].code).toBe('DENIED');
    expect(body).toMatch(/quota/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await expectServing();
  });

  it('fails a fill whose spool cannot be made with a clear error, and keeps running', async () => {
    const img = image(6 * MiB);
    await pushToUpstream(upstream.url, 'library/spool', '1', img);
    await putProject('nospool', { public: true, proxyCache: { provider: 'docker-registry', url: upstream.url } });
    // A file where the spool directory goes (the data dir's proxy-spool).
    await writeFile(join(work, 'registry', 'proxy-spool'), 'not a directory');
    expect((await fetch(`${registry.url}/v2/nospool/library/spool/manifests/1`, { headers: { accept: OCI_MANIFEST } })).status).toBe(200);
    const res = await fetch(`${registry.url}/v2/nospool/library/spool/blobs/${img.layers[0]!.digest}`);
    const body = await res.text();
    expect(res.status, body).toBeGreaterThanOrEqual(500);
    expect(JSON.parse(body).errors[0].code).toMatch(/UNAVAILABLE|INTERNAL/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await expectServing();
  });
});
