// Single-flight blob fills of a proxy-cache project, upstream a stand-in for Docker
// Hub: Debian's docker-registry (distribution 2.8.2) behind a request-counting proxy.
// 20 clients pull a 100 MiB image at once, on one replica and then across two
// replicas that share a PostgreSQL database and blob storage.
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { blobOf, OCI_CONFIG, OCI_MANIFEST, type Image } from '../support/oci.js';
import { startMinio } from '../support/minio.js';
import { createTestDatabase } from '../support/pg.js';
import { removeDir, startRegistry, tempDir, type RunningRegistry } from '../support/registry.js';
import { eventually } from '../support/raw-http.js';
import { pushToUpstream, startDistribution, startUpstreamProxy, type Distribution, type UpstreamProxy } from '../support/upstream.js';

const MiB = 1024 * 1024;
const LAYER_SIZE = 100 * MiB;
const CLIENTS = 20;

let work: string;
let upstream: Distribution;
let counter: UpstreamProxy;

/** An image with one incompressible layer, 100 MiB unless said (`seed` makes each image distinct). */
function largeImage(seed: string, size = LAYER_SIZE): Image {
  const layer = blobOf(randomBytes(size));
  const config = blobOf(JSON.stringify({ architecture: 'amd64', os: 'linux', seed, rootfs: { type: 'layers', diff_ids: [layer.digest] } }));
  const manifest = blobOf(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size }],
    }),
  );
  return { config, layers: [layer], manifest, mediaType: OCI_MANIFEST };
}

/**
 * One client's pull over plain HTTP: the manifest by tag, then every blob, each hashed
 * as it arrives. `abortAfter`: the client goes away after that many bytes of the layer.
 */
async function pull(base: string, repository: string, tag: string, abortAfter?: number): Promise<{ manifest: string; blobs: string[] } | 'aborted'> {
  const res = await fetch(`${base}/v2/${repository}/manifests/${tag}`, { headers: { Accept: OCI_MANIFEST }, signal: AbortSignal.timeout(300_000) });
  if (res.status !== 200) throw new Error(`manifest: ${res.status} ${await res.text()}`);
  const manifestBytes = Buffer.from(await res.arrayBuffer());
  const doc = JSON.parse(manifestBytes.toString()) as { config: { digest: string }; layers: { digest: string }[] };
  const blobs: string[] = [];
  for (const digest of [doc.config.digest, ...doc.layers.map((l) => l.digest)]) {
    const controller = new AbortController();
    const blob = await fetch(`${base}/v2/${repository}/blobs/${digest}`, { signal: AbortSignal.any([controller.signal, AbortSignal.timeout(300_000)]) });
    if (blob.status !== 200) throw new Error(`blob ${digest}: ${blob.status} ${await blob.text()}`);
    const hash = createHash('sha256');
    let received = 0;
    try {
      for await (const chunk of blob.body!) {
        hash.update(chunk);
        received += chunk.length;
        if (abortAfter !== undefined && digest === doc.layers[0]!.digest && received >= abortAfter) controller.abort();
      }
    } catch (err) {
      if (controller.signal.aborted) return 'aborted';
      throw err;
    }
    blobs.push(`sha256:${hash.digest('hex')}`);
  }
  return { manifest: `sha256:${createHash('sha256').update(manifestBytes).digest('hex')}`, blobs };
}

function expectOneUpstreamFetchPerBlob(image: Image, repository: string): void {
  expect(counter.requests.filter((r) => r.method === 'GET' && r.url === `/v2/${repository}/manifests/1`)).toHaveLength(1);
  for (const blob of [image.config, ...image.layers]) {
    expect(counter.requests.filter((r) => r.method === 'GET' && r.url === `/v2/${repository}/blobs/${blob.digest}`), blob.digest).toHaveLength(1);
  }
}

beforeAll(async () => {
  work = await tempDir('wharf-proxy-flight-');
  upstream = await startDistribution(join(work, 'upstream'));
  counter = await startUpstreamProxy(upstream.url);
});

afterAll(async () => {
  await counter?.close();
  await upstream?.stop();
  if (work) await removeDir(work);
});

describe('single-flight fills (stand-in: distribution 2.8.2)', () => {
  it(`${CLIENTS} concurrent cold pulls of a 100 MiB image make one upstream fetch per blob, and every client gets the right digests`, async () => {
    const image = largeImage('one');
    await pushToUpstream(upstream.url, 'library/big', '1', image);
    const wharf = await startRegistry({ dataDir: join(work, 'one') });
    try {
      const api = (body: unknown) => fetch(`${wharf.url}/api/v1/projects/hub`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      expect((await api({ proxyCache: { provider: 'docker-hub', url: counter.url } })).status).toBe(201);
      counter.reset();
      // One client goes away early: the fill goes on for the others.
      const results = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => pull(wharf.url, 'hub/big', '1', i === 0 ? 4 * MiB : undefined)));
      expect(results[0]).toBe('aborted');
      for (const result of results.slice(1)) expect(result).toEqual({ manifest: image.manifest.digest, blobs: [image.config.digest, image.layers[0]!.digest] });
      expectOneUpstreamFetchPerBlob(image, 'library/big');
      // Stored and linked: a later pull is served locally.
      counter.reset();
      expect(await pull(wharf.url, 'hub/big', '1')).toEqual({ manifest: image.manifest.digest, blobs: [image.config.digest, image.layers[0]!.digest] });
      expect(counter.requests).toEqual([]);
    } finally {
      await wharf.stop();
    }
  });

  it(`${CLIENTS} concurrent cold pulls spread over two replicas on one database fetch each blob once (the fill lease)`, async () => {
    const image = largeImage('two');
    await pushToUpstream(upstream.url, 'library/shared', '1', image);
    const databaseUrl = await createTestDatabase(inject('pgAdminUrl'));
    const storage = { driver: 'filesystem' as const, dir: join(work, 'shared-blobs') };
    const replicas: RunningRegistry[] = [];
    try {
      for (const name of ['a', 'b']) replicas.push(await startRegistry({ databaseUrl, storage, dataDir: join(work, `replica-${name}`) }));
      const put = await fetch(`${replicas[0]!.url}/api/v1/projects/hub`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ proxyCache: { provider: 'docker-hub', url: counter.url } }) });
      expect(put.status).toBe(201);
      // The manifest first, through one replica, so that both start their blob requests at once.
      const first = await fetch(`${replicas[0]!.url}/v2/hub/shared/manifests/1`, { headers: { Accept: OCI_MANIFEST } });
      expect(first.headers.get('docker-content-digest')).toBe(image.manifest.digest);
      counter.reset();
      const results = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => pull(replicas[i % 2]!.url, 'hub/shared', '1')));
      for (const result of results) expect(result).toEqual({ manifest: image.manifest.digest, blobs: [image.config.digest, image.layers[0]!.digest] });
      for (const blob of [image.config, ...image.layers]) {
        expect(counter.requests.filter((r) => r.method === 'GET' && r.url === `/v2/library/shared/blobs/${blob.digest}`), blob.digest).toHaveLength(1);
      }
      const waited = await Promise.all(replicas.map(async (r) => (await (await fetch(`${r.url}/metrics`)).text()).match(/wharf_proxy_blob_fills_total\{outcome="waited"\} (\d+)/)?.[1]));
      expect(waited.map(Number).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    } finally {
      for (const replica of replicas) await replica.stop();
    }
  });

  it('fills into S3 storage (MinIO) the same way: 5 concurrent cold pulls of a 24 MiB image, one upstream fetch per blob', async () => {
    const image = largeImage('s3', 24 * MiB);
    await pushToUpstream(upstream.url, 'library/ons3', '1', image);
    const minio = await startMinio(inject('toolsBin'));
    try {
      const storage = { driver: 's3' as const, s3: { endpoint: minio.endpoint, region: minio.region, forcePathStyle: true, accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey, bucket: await minio.createBucket(), redirect: false } };
      const wharf = await startRegistry({ storage, dataDir: join(work, 's3') });
      try {
        const put = await fetch(`${wharf.url}/api/v1/projects/hub`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ proxyCache: { provider: 'docker-hub', url: counter.url } }) });
        expect(put.status).toBe(201);
        counter.reset();
        const results = await Promise.all(Array.from({ length: 5 }, () => pull(wharf.url, 'hub/ons3', '1')));
        for (const result of results) expect(result).toEqual({ manifest: image.manifest.digest, blobs: [image.config.digest, image.layers[0]!.digest] });
        expectOneUpstreamFetchPerBlob(image, 'library/ons3');
        // Clients finish once the bytes are verified; storing them may still be under way.
        await eventually(async () => (await wharf.app.blobStore.stat(image.layers[0]!.digest))?.size === 24 * MiB, 30_000, 'the layer stored in S3');
      } finally {
        await wharf.stop();
      }
    } finally {
      await minio.close();
    }
  });
});
