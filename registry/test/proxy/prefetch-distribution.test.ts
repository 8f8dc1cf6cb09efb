// Blob prefetch of proxy-cache projects, upstream a stand-in for Docker Hub: Debian's
// docker-registry (distribution 2.8.2) on loopback behind a request-counting proxy.
// A GET of an image manifest fetches its blobs before the client asks; a HEAD, an
// index and `proxy.prefetch: 0` fetch none.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ManagementClient } from '../support/auth.js';
import { metricValue } from '../support/login.js';
import { buildImage, indexOf, OCI_INDEX, OCI_MANIFEST, RegistryClient, type Image } from '../support/oci.js';
import { createTestDatabase } from '../support/pg.js';
import { eventually } from '../support/raw-http.js';
import { removeDir, startRegistry, tempDir, type RunningRegistry } from '../support/registry.js';
import { pushToUpstream, startDistribution, startUpstreamProxy, type Distribution, type UpstreamProxy } from '../support/upstream.js';

const PREFETCH = 2;
const RETRY_MS = 1500;
const BLOB_GET = /\/blobs\/sha256:/;

let work: string;
let upstream: Distribution;
let counter: UpstreamProxy;
let wharf: RunningRegistry;
let off: RunningRegistry;

function blobsOf(image: Image) {
  return [image.config, ...image.layers];
}

/** wharf_proxy_prefetched_blobs_total of one outcome. */
function prefetched(registry: RunningRegistry, outcome: string): Promise<number> {
  return metricValue(registry.url, 'wharf_proxy_prefetched_blobs_total', `outcome="${outcome}"`);
}

async function getManifest(registry: RunningRegistry, repository: string, reference: string, method = 'GET'): Promise<Response> {
  const res = await fetch(`${registry.url}/v2/${repository}/manifests/${reference}`, { method, headers: { Accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
  return res;
}

/** GETs a blob from Wharf and returns the digest of what arrived. */
async function pullBlob(repository: string, digest: string): Promise<string> {
  const res = await fetch(`${wharf.url}/v2/${repository}/blobs/${digest}`, { signal: AbortSignal.timeout(60_000) });
  expect(res.status, digest).toBe(200);
  return `sha256:${createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex')}`;
}

function upstreamGetsOf(repository: string, digest: string): number {
  return counter.requests.filter((r) => r.method === 'GET' && r.url === `/v2/${repository}/blobs/${digest}`).length;
}

async function proxyProject(registry: RunningRegistry): Promise<void> {
  await new ManagementClient(registry.url).ok('PUT', '/projects/hub', { public: true, proxyCache: { provider: 'docker-hub', url: counter.url, manifestTTLSeconds: 3600 } });
}

beforeAll(async () => {
  work = await tempDir('wharf-proxy-prefetch-');
  upstream = await startDistribution(join(work, 'upstream'));
  counter = await startUpstreamProxy(upstream.url);
  wharf = await startRegistry({ proxy: { prefetch: PREFETCH, prefetchRetryMs: RETRY_MS } });
  off = await startRegistry({ proxy: { prefetch: 0 } });
  await proxyProject(wharf);
  await proxyProject(off);
});

afterAll(async () => {
  await wharf?.stop();
  await off?.stop();
  await counter?.close();
  await upstream?.stop();
  if (work) await removeDir(work);
});

describe('blob prefetch (stand-in: distribution 2.8.2)', () => {
  it('a manifest GET fetches its blobs before the client asks, one upstream GET each; the client then gets them from the cache', async () => {
    const image = await buildImage({ layers: 5, payloadSize: 64 * 1024 });
    await pushToUpstream(upstream.url, 'library/eager', '1', image);
    counter.reset();
    const fetchedBefore = await prefetched(wharf, 'fetched');
    await getManifest(wharf, 'hub/library/eager', '1');
    await eventually(async () => (await prefetched(wharf, 'fetched')) === fetchedBefore + 6, 20_000, 'six blobs prefetched');
    for (const blob of blobsOf(image)) expect(upstreamGetsOf('library/eager', blob.digest), blob.digest).toBe(1);
    for (const blob of blobsOf(image)) expect(await pullBlob('hub/library/eager', blob.digest)).toBe(blob.digest);
    expect(counter.count('GET', BLOB_GET)).toBe(6);
    expect(counter.count('HEAD', BLOB_GET)).toBe(0);
    // A second GET of the manifest queues nothing: every blob is there.
    await getManifest(wharf, 'hub/library/eager', '1');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(counter.count('GET', BLOB_GET)).toBe(6);
  });

  it(`fetches at most ${PREFETCH} blobs at once; a client asking meanwhile joins the fills, one upstream GET per blob`, async () => {
    const image = await buildImage({ layers: 8, payloadSize: 256 * 1024 });
    await pushToUpstream(upstream.url, 'library/slow', '1', image);
    counter.reset();
    counter.holdBlobsMs = 150;
    try {
      await getManifest(wharf, 'hub/library/slow', '1');
      await eventually(async () => counter.count('GET', BLOB_GET) >= PREFETCH, 10_000, 'the prefetch under way');
      expect(counter.maxBlobGetsAtOnce).toBe(PREFETCH);
      // The client asks for every blob at once while the prefetch is under way.
      const digests = await Promise.all(blobsOf(image).map((blob) => pullBlob('hub/library/slow', blob.digest)));
      expect(digests).toEqual(blobsOf(image).map((blob) => blob.digest));
    } finally {
      counter.holdBlobsMs = 0;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const blob of blobsOf(image)) expect(upstreamGetsOf('library/slow', blob.digest), blob.digest).toBe(1);
  });

  it('a manifest HEAD fetches no blob, nor does an index GET or a GET refused for its Accept header; a child GET fetches only that child\'s blobs', async () => {
    const amd64 = await buildImage({ layers: 2, architecture: 'amd64' });
    const arm64 = await buildImage({ layers: 2, architecture: 'arm64' });
    await pushToUpstream(upstream.url, 'library/multi', 'amd64', amd64);
    await pushToUpstream(upstream.url, 'library/multi', 'arm64', arm64);
    expect((await new RegistryClient(upstream.url).pushManifest('library/multi', '1', indexOf([{ image: amd64, architecture: 'amd64' }, { image: arm64, architecture: 'arm64' }]), OCI_INDEX)).status).toBe(201);
    counter.reset();
    await getManifest(wharf, 'hub/library/multi', 'amd64', 'HEAD');
    await getManifest(wharf, 'hub/library/multi', '1');
    // A GET refused for its Accept header (the manifest is OCI) is no pull either.
    const refused = await fetch(`${wharf.url}/v2/hub/library/multi/manifests/amd64`, { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    expect(refused.status).toBe(404);
    await refused.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(counter.count('GET', BLOB_GET)).toBe(0);
    await getManifest(wharf, 'hub/library/multi', arm64.manifest.digest);
    await eventually(async () => counter.count('GET', BLOB_GET) === 3, 10_000, "the arm64 child's three blobs fetched");
    for (const blob of blobsOf(arm64)) expect(upstreamGetsOf('library/multi', blob.digest), blob.digest).toBe(1);
  });

  it('stops a manifest\'s prefetch at its first failure, asks the upstream no more for a while, then tries again; nothing corrupted is stored', async () => {
    const image = await buildImage({ layers: 5, payloadSize: 32 * 1024 });
    await pushToUpstream(upstream.url, 'library/flaky', '1', image);
    const failedBefore = await prefetched(wharf, 'failed');
    const fetchedBefore = await prefetched(wharf, 'fetched');
    counter.reset();
    counter.mode = 'corrupt-blobs';
    try {
      await getManifest(wharf, 'hub/library/flaky', '1');
      // The first two run at once and both fail; the other four are not tried.
      await eventually(async () => (await prefetched(wharf, 'failed')) === failedBefore + PREFETCH, 10_000, 'the running prefetches refused');
      for (let i = 0; i < 3; i++) await getManifest(wharf, 'hub/library/flaky', '1');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(counter.count('GET', BLOB_GET)).toBe(PREFETCH);
    } finally {
      counter.mode = 'forward';
    }
    for (const blob of blobsOf(image)) expect(await wharf.app.blobStore.stat(blob.digest), blob.digest).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    await getManifest(wharf, 'hub/library/flaky', '1');
    await eventually(async () => (await prefetched(wharf, 'fetched')) === fetchedBefore + 6, 10_000, 'the six blobs prefetched once the retry delay passed');
    for (const blob of blobsOf(image)) expect(await pullBlob('hub/library/flaky', blob.digest)).toBe(blob.digest);
  });

  it("pauses a project's prefetching when its upstream throttles, and only that project's", async () => {
    const throttling = await startUpstreamProxy(upstream.url);
    try {
      const [a, b, c] = [await buildImage({ layers: 3 }), await buildImage({ layers: 3 }), await buildImage({ layers: 2 })];
      await pushToUpstream(upstream.url, 'library/a', '1', a);
      await pushToUpstream(upstream.url, 'library/b', '1', b);
      await pushToUpstream(upstream.url, 'library/c', '1', c);
      await new ManagementClient(wharf.url).ok('PUT', '/projects/busy', { public: true, proxyCache: { provider: 'docker-hub', url: throttling.url } });
      // HEAD caches a manifest without prefetching.
      await getManifest(wharf, 'busy/library/a', '1', 'HEAD');
      await getManifest(wharf, 'busy/library/b', '1', 'HEAD');
      throttling.mode = 'throttle';
      const failedBefore = await prefetched(wharf, 'failed');
      await getManifest(wharf, 'busy/library/a', '1');
      await eventually(async () => (await prefetched(wharf, 'failed')) === failedBefore + PREFETCH, 10_000, 'the running prefetches throttled');
      // Another image of the paused project: nothing asked. Another project: prefetched as ever.
      await getManifest(wharf, 'busy/library/b', '1');
      const fetchedBefore = await prefetched(wharf, 'fetched');
      await getManifest(wharf, 'hub/library/c', '1');
      await eventually(async () => (await prefetched(wharf, 'fetched')) === fetchedBefore + 3, 10_000, "the other project's blobs prefetched");
      expect(throttling.count('GET', BLOB_GET)).toBe(PREFETCH);
      // Once the pause is over, the next GET prefetches again.
      throttling.mode = 'forward';
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      await getManifest(wharf, 'busy/library/b', '1');
      await eventually(async () => throttling.count('GET', BLOB_GET) === PREFETCH + 4, 10_000, "b's four blobs prefetched after the pause");
    } finally {
      await throttling.close();
    }
  });

  it('with proxy.prefetch 0, a manifest GET fetches no blob', async () => {
    const image = await buildImage({ layers: 2 });
    await pushToUpstream(upstream.url, 'library/lazy', '1', image);
    counter.reset();
    await getManifest(off, 'hub/library/lazy', '1');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(counter.count('GET', BLOB_GET)).toBe(0);
    expect(await prefetched(off, 'fetched')).toBe(0);
  });

  it('stores nothing past the project quota, and the refused blobs are left to the client, which is told DENIED', async () => {
    const image = await buildImage({ layers: 3, payloadSize: 200 * 1024 });
    await pushToUpstream(upstream.url, 'library/big', '1', image);
    const api = new ManagementClient(wharf.url);
    await api.ok('PUT', '/projects/capped', { public: true, storageLimit: 300 * 1024, proxyCache: { provider: 'docker-hub', url: counter.url } });
    const failedBefore = await prefetched(wharf, 'failed');
    await getManifest(wharf, 'capped/library/big', '1');
    await eventually(async () => (await prefetched(wharf, 'failed')) > failedBefore, 10_000, 'a prefetch refused by the quota');
    // Last blob first, two at a time: the last two layers both pass the precheck, one links and
    // the other is refused, which stops the rest of the prefetch (the first layer and the config).
    const fits = (used: number) => image.layers.some((layer) => used === layer.size);
    await eventually(async () => fits((await api.ok('GET', '/projects/capped/quota')).usedBytes), 10_000, 'what fits stored');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fits((await api.ok('GET', '/projects/capped/quota')).usedBytes)).toBe(true);
    const answers = await Promise.all(
      image.layers.map(async (layer) => {
        const res = await fetch(`${wharf.url}/v2/capped/library/big/blobs/${layer.digest}`);
        return res.status === 200 ? (await res.arrayBuffer(), 'served') : ((await res.json()) as { errors: { code: string }[] }).errors[0]!.code;
      }),
    );
    expect(answers.sort()).toEqual(['DENIED', 'DENIED', 'served']);
  });
});

describe('fills of one project do not reach another (stand-in: distribution 2.8.2 behind a slow proxy)', () => {
  const HOLD_MS = 6000;
  let slow: UpstreamProxy;

  beforeAll(async () => {
    slow = await startUpstreamProxy(upstream.url);
    slow.holdBlobsMs = HOLD_MS;
  });

  afterAll(async () => {
    await slow?.close();
  });

  /** A client that starts a fill of `digest` in `repository` and goes away (the fill runs on). */
  async function startFill(registry: RunningRegistry, repository: string, digest: string): Promise<void> {
    const controller = new AbortController();
    const started = fetch(`${registry.url}/v2/${repository}/blobs/${digest}`, { signal: controller.signal }).catch(() => undefined);
    await eventually(async () => slow.requests.some((r) => r.method === 'GET' && r.url.endsWith(`/blobs/${digest}`)), 5000, 'the fill under way at the slow upstream');
    controller.abort();
    await started;
  }

  it("a client of one project does not wait for, or see, another project's fill of the same blob", async () => {
    const image = await buildImage({ layers: 1, payloadSize: 64 * 1024 });
    await pushToUpstream(upstream.url, 'library/shared', '1', image);
    const api = new ManagementClient(off.url);
    await api.ok('PUT', '/projects/slowhub', { public: true, proxyCache: { provider: 'docker-hub', url: slow.url } });
    await getManifest(off, 'slowhub/library/shared', '1');
    await getManifest(off, 'hub/library/shared', '1');
    const layer = image.layers[0]!;
    await startFill(off, 'slowhub/library/shared', layer.digest);
    const started = Date.now();
    const res = await fetch(`${off.url}/v2/hub/library/shared/blobs/${layer.digest}`, { signal: AbortSignal.timeout(10_000) });
    const body = Buffer.from(await res.arrayBuffer());
    expect(res.status).toBe(200);
    expect(`sha256:${createHash('sha256').update(body).digest('hex')}`).toBe(layer.digest);
    // Well before the other project's fill gets its first byte.
    expect(Date.now() - started).toBeLessThan(HOLD_MS / 2);
  });

  it('a fill that ends after its project was deleted links nothing into it', async () => {
    const image = await buildImage({ layers: 1, payloadSize: 64 * 1024 });
    await pushToUpstream(upstream.url, 'library/doomed', '1', image);
    const api = new ManagementClient(off.url);
    await api.ok('PUT', '/projects/doomed', { public: true, proxyCache: { provider: 'docker-hub', url: slow.url } });
    await getManifest(off, 'doomed/library/doomed', '1');
    await startFill(off, 'doomed/library/doomed', image.layers[0]!.digest);
    expect((await api.call('DELETE', '/projects/doomed?deleteContent=true')).status).toBe(204);
    // The held upstream answers after HOLD_MS; the fill then stores the blob and must not link it.
    await new Promise((resolve) => setTimeout(resolve, HOLD_MS + 1500));
    await api.ok('PUT', '/projects/doomed', { public: true });
    expect((await api.ok('GET', '/projects/doomed/quota')).usedBytes).toBe(0);
    const head = await fetch(`${off.url}/v2/doomed/library/doomed/blobs/${image.layers[0]!.digest}`, { method: 'HEAD' });
    expect(head.status).toBe(404);
  });

  it('a blob a client filled itself before the prefetch reached it is not linked again by the prefetch (PostgreSQL)', async () => {
    const databaseUrl = await createTestDatabase(inject('pgAdminUrl'));
    const registry = await startRegistry({ databaseUrl, proxy: { prefetch: 1 } });
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      await proxyProject(registry);
      const image = await buildImage({ layers: 4, payloadSize: 64 * 1024 });
      await pushToUpstream(upstream.url, 'library/race', '1', image);
      const linkedAt = async (digest: string) =>
        (await db.query<{ at: string }>("SELECT created_at::text AS at FROM repository_blobs WHERE repository = 'hub/library/race' AND digest = $1", [digest])).rows[0]?.at;
      const presentBefore = await prefetched(registry, 'present');
      const fetchedBefore = await prefetched(registry, 'fetched');
      counter.reset();
      counter.holdBlobsMs = 150;
      try {
        await getManifest(registry, 'hub/library/race', '1');
        // The prefetch starts from the last layer, one at a time; the config is its last, and the client's first.
        const res = await fetch(`${registry.url}/v2/hub/library/race/blobs/${image.config.digest}`);
        expect(res.status).toBe(200);
        await res.arrayBuffer();
        await eventually(async () => (await linkedAt(image.config.digest)) !== undefined, 5000, 'the client\'s fill linked');
        const first = await linkedAt(image.config.digest);
        await eventually(async () => (await prefetched(registry, 'fetched')) + (await prefetched(registry, 'present')) === fetchedBefore + presentBefore + 5, 20_000, 'every blob prefetched or found');
        expect(await prefetched(registry, 'present')).toBe(presentBefore + 1);
        // Linking again would have refreshed the link's time.
        expect(await linkedAt(image.config.digest)).toBe(first);
        for (const blob of blobsOf(image)) expect(upstreamGetsOf('library/race', blob.digest), blob.digest).toBe(1);
      } finally {
        counter.holdBlobsMs = 0;
      }
    } finally {
      await db.end();
      await registry.stop();
    }
  });
});
