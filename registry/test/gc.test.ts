import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BlobDeletingError } from '../src/metadata/blob-links.js';
import { GcStore } from '../src/metadata/gc.js';
import { ADMIN, basic, ManagementClient } from './support/auth.js';
import { gcReport, runGc } from './support/gc.js';
import { blobOf, buildImage, indexOf, OCI_INDEX, OCI_MANIFEST, randomBlob, RegistryClient, sha256, type Blob, type Image } from './support/oci.js';
import { rawRequest } from './support/raw-http.js';
import { removeDir, startRegistry, tokenAuth, type RunningRegistry } from './support/registry.js';

const GRACE_SECONDS = 1;
const pastGrace = () => sleep(GRACE_SECONDS * 1000 + 300);
const EMPTY = blobOf('{}');

function referrerOf(subject: Blob, payload: Blob): Blob {
  return blobOf(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.example.signature',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY.digest, size: EMPTY.size },
      layers: [{ mediaType: 'application/octet-stream', digest: payload.digest, size: payload.size }],
      subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.size },
    }),
  );
}

describe('garbage collection', () => {
  let registry: RunningRegistry;
  let client: RegistryClient;
  const inStorage = async (digest: string) => (await registry.app.blobStore.stat(digest)) !== undefined;

  async function push(repo: string, reference: string, image: Image): Promise<void> {
    for (const blob of [image.config, ...image.layers]) expect((await client.pushBlob(repo, blob)).status).toBe(201);
    expect((await client.pushManifest(repo, reference, image.manifest, image.mediaType)).status).toBe(201);
  }

  async function pushReferrer(repo: string, subject: Blob): Promise<{ manifest: Blob; payload: Blob }> {
    const payload = randomBlob(300);
    for (const blob of [EMPTY, payload]) expect((await client.pushBlob(repo, blob)).status).toBe(201);
    const manifest = referrerOf(subject, payload);
    expect((await client.pushManifest(repo, manifest.digest, manifest)).status).toBe(201);
    return { manifest, payload };
  }

  const manifestStatus = async (repo: string, reference: string) => (await client.fetch(`/v2/${repo}/manifests/${reference}`, { method: 'HEAD' })).status;

  beforeAll(async () => {
    registry = await startRegistry({ jobs: { pollIntervalMs: 50, gc: { graceSeconds: GRACE_SECONDS, schedule: undefined }, uploads: { purgeAfterSeconds: GRACE_SECONDS, purgeSchedule: undefined } } });
    client = new RegistryClient(registry.url);
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  it('sweeps blobs no manifest references once they are older than the grace window; a dry run only reports', async () => {
    // A project of the management API, so that its quota can be read there too.
    await new ManagementClient(registry.url).project('gc');
    const kept = await buildImage({ layers: 2 });
    const dropped = await buildImage({ layers: 2 });
    const lone = randomBlob(4096);
    await push('gc/basic', 'v1', kept);
    await push('gc/basic', 'v2', dropped);
    expect((await client.pushBlob('gc/basic', lone)).status).toBe(201);
    expect((await client.fetch(`/v2/gc/basic/manifests/${dropped.manifest.digest}`, { method: 'DELETE' })).status).toBe(202);
    const garbage = [dropped.config, ...dropped.layers, lone];
    const garbageBytes = garbage.reduce((sum, b) => sum + b.size, 0);

    // Within the grace window nothing goes, not even a blob no manifest names yet.
    const early = await gcReport(registry.url);
    expect(early).toMatchObject({ blobs: { deleted: 0 }, links: { deleted: 0 }, bytesFreed: 0 });

    await pastGrace();
    const dry = await gcReport(registry.url, { dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, links: { deleted: 4 }, blobs: { deleted: 4, bytesFreed: garbageBytes }, bytesFreed: garbageBytes });
    for (const blob of garbage) expect(await inStorage(blob.digest)).toBe(true);
    const usedBefore = dry.projects.find((p) => p.project === 'gc')!.usedBytes;

    const report = await gcReport(registry.url);
    expect(report).toMatchObject({ dryRun: false, phase: 'done', links: { deleted: 4 }, blobs: { deleted: 4, bytesFreed: garbageBytes }, bytesFreed: garbageBytes });
    for (const blob of garbage) {
      expect(await inStorage(blob.digest), blob.digest).toBe(false);
      expect((await client.fetch(`/v2/gc/basic/blobs/${blob.digest}`, { method: 'HEAD' })).status).toBe(404);
    }
    for (const blob of [kept.config, ...kept.layers]) expect((await client.getBlob('gc/basic', blob.digest)).equals(blob.data)).toBe(true);
    expect(await manifestStatus('gc/basic', 'v1')).toBe(200);
    // Quotas count what is linked, so usage drops by exactly what was freed.
    expect(report.projects.find((p) => p.project === 'gc')!.usedBytes).toBe(usedBefore - garbageBytes);
    expect((await new ManagementClient(registry.url).ok('GET', '/projects/gc/quota')).usedBytes).toBe(usedBefore - garbageBytes);

    // Pushing a swept blob again brings it back.
    expect((await client.pushBlob('gc/basic', lone)).status).toBe(201);
    expect((await client.getBlob('gc/basic', lone.digest)).equals(lone.data)).toBe(true);
  });

  it('deletes untagged manifests only when asked, keeping index children and referrers of tagged manifests', async () => {
    const repo = 'gc/untagged';
    const untagged = await buildImage({ layers: 1 });
    const [arm, amd] = [await buildImage({ layers: 1, architecture: 'arm64' }), await buildImage({ layers: 1 })];
    const orphanChild = await buildImage({ layers: 1, architecture: 'riscv64' });
    const tagged = await buildImage({ layers: 1 });
    await push(repo, untagged.manifest.digest, untagged);
    await push(repo, arm.manifest.digest, arm);
    await push(repo, amd.manifest.digest, amd);
    const index = indexOf([{ image: arm, architecture: 'arm64' }, { image: amd, architecture: 'amd64' }]);
    expect((await client.pushManifest(repo, 'multi', index, OCI_INDEX)).status).toBe(201);
    // An untagged index and the image only it names: both unreachable.
    await push(repo, orphanChild.manifest.digest, orphanChild);
    const orphanIndex = indexOf([{ image: orphanChild, architecture: 'riscv64' }]);
    expect((await client.pushManifest(repo, orphanIndex.digest, orphanIndex, OCI_INDEX)).status).toBe(201);
    await push(repo, 'v1', tagged);
    const keptSignature = await pushReferrer(repo, tagged.manifest);
    const childSignature = await pushReferrer(repo, arm.manifest);
    const droppedSignature = await pushReferrer(repo, untagged.manifest);
    await pastGrace();

    const plain = await gcReport(registry.url);
    expect(plain.manifests.deleted).toBe(0);
    expect(await manifestStatus(repo, untagged.manifest.digest)).toBe(200);

    const dry = await gcReport(registry.url, { deleteUntagged: true, dryRun: true });
    const gone = [untagged.manifest, orphanIndex, orphanChild.manifest, droppedSignature.manifest];
    expect(dry.manifests).toEqual({ deleted: gone.length, bytes: gone.reduce((sum, m) => sum + m.size, 0) });
    const goneBlobs = [untagged.config, ...untagged.layers, orphanChild.config, ...orphanChild.layers, droppedSignature.payload];
    expect(dry.blobs.deleted).toBe(goneBlobs.length);
    expect(await manifestStatus(repo, untagged.manifest.digest)).toBe(200);

    const report = await gcReport(registry.url, { deleteUntagged: true });
    expect(report.manifests.deleted).toBe(gone.length);
    expect(report.blobs.deleted).toBe(goneBlobs.length);
    for (const m of gone) expect(await manifestStatus(repo, m.digest), m.digest).toBe(404);
    for (const b of goneBlobs) expect(await inStorage(b.digest), b.digest).toBe(false);
    for (const m of [index, arm.manifest, amd.manifest, tagged.manifest, keptSignature.manifest, childSignature.manifest]) expect(await manifestStatus(repo, m.digest), m.digest).toBe(200);
    for (const b of [arm.config, ...arm.layers, amd.config, ...amd.layers, tagged.config, keptSignature.payload, childSignature.payload, EMPTY]) {
      expect((await client.getBlob(repo, b.digest)).equals(b.data), b.digest).toBe(true);
    }
    const referrers = (await (await client.fetch(`/v2/${repo}/referrers/${tagged.manifest.digest}`)).json()) as { manifests: { digest: string }[] };
    expect(referrers.manifests.map((m: { digest: string }) => m.digest)).toEqual([keptSignature.manifest.digest]);
  });

  it('removes storage objects without a row, and abandoned upload sessions and directories', async () => {
    const store = registry.app.blobStore;
    const orphan = randomBlob(2048);
    const id = randomUUID();
    const appended = await store.appendUpload(id, await store.startUpload(id), 0, Readable.from([orphan.data]));
    await store.commitUpload(id, appended.state, appended.size, orphan.digest);
    const strayId = randomUUID();
    await store.appendUpload(strayId, await store.startUpload(strayId), 0, Readable.from([randomBytes(100)]));
    const session = await rawRequest(registry.url, { method: 'POST', path: '/v2/gc/uploads/blobs/uploads/' });
    const location = String(session.headers.location);
    expect((await rawRequest(registry.url, { method: 'PATCH', path: location, body: randomBytes(500) })).status).toBe(202);
    await pastGrace();

    const report = await gcReport(registry.url);
    expect(report.orphanObjects).toEqual({ deleted: 1, bytesFreed: orphan.size });
    expect(report.uploads).toEqual({ sessions: 1, orphans: 1 });
    expect(await inStorage(orphan.digest)).toBe(false);
    expect((await rawRequest(registry.url, { method: 'GET', path: location })).status).toBe(404);
    const left: string[] = [];
    for await (const u of store.listUploads()) left.push(u.id);
    expect(left).toEqual([]);
  });

  it('makes a push of a digest that is being deleted wait, then stores it whole', async () => {
    const gc = new GcStore(registry.app.metadata.sql);
    const blob = randomBlob(1500);
    expect((await client.pushBlob('gc/race', blob)).status).toBe(201);
    expect((await client.fetch(`/v2/gc/race/blobs/${blob.digest}`, { method: 'DELETE' })).status).toBe(202);
    const future = new Date(Date.now() + 60_000);
    const [mark] = await gc.markBlobs([blob.digest], future, 60);
    expect(mark).toMatchObject({ digest: blob.digest, size: blob.size });

    // Watch the push reach the reservation of the digest and be refused it (the mark holds it).
    const reserve = vi.spyOn(registry.app.metadata.blobs, 'reserve');
    try {
      const pushing = client.pushBlob('gc/race2', blob).then((res) => res.status);
      await vi.waitFor(() => {
        const refused = reserve.mock.calls.some(([digest], i) => digest === blob.digest && reserve.mock.settledResults[i]?.type === 'fulfilled' && reserve.mock.settledResults[i]!.value === undefined);
        expect(refused, 'the push was refused the reservation').toBe(true);
      }, { timeout: 30_000, interval: 20 });
      expect(await Promise.race([pushing, 'waiting'])).toBe('waiting');
      await registry.app.blobStore.delete(blob.digest);
      expect(await gc.finishBlobDeletions([mark!])).toBe(1);
      expect(await pushing).toBe(201);
    } finally {
      reserve.mockRestore();
    }
    expect((await client.getBlob('gc/race2', blob.digest)).equals(blob.data)).toBe(true);
    // And the collector now leaves it alone: it was just pushed and is linked.
    expect(await gc.markBlobs([blob.digest], new Date(Date.now() + 60_000), 60)).toEqual([]);
  });

  it('refuses to link a reserved blob that a collector marked or removed meanwhile', async () => {
    const gc = new GcStore(registry.app.metadata.sql);
    const meta = registry.app.metadata;
    const digest = sha256(randomBytes(32));
    const reservedAt = (await meta.blobs.reserve(digest, 32))!;
    const [mark] = await gc.markBlobs([digest], new Date(Date.now() + 60_000), 60);
    expect(mark).toBeDefined();
    await expect(meta.blobs.link('gc/late', digest, 32, undefined, reservedAt)).rejects.toBeInstanceOf(BlobDeletingError);
    expect(await meta.blobs.linkReserved('gc/late', digest, reservedAt)).toBe('lost');
    expect(await meta.blobs.reserve(digest, 32)).toBeUndefined();
    await gc.finishBlobDeletions([mark!]);
    // Another push re-created the row; the first push's object may be gone, so it still may not link.
    expect(await meta.blobs.reserve(digest, 32)).toBeDefined();
    await expect(meta.blobs.link('gc/late', digest, 32, undefined, reservedAt)).rejects.toBeInstanceOf(BlobDeletingError);
    expect(await meta.blobs.linkReserved('gc/late', digest, reservedAt)).toBe('lost');
  });

  it('re-checks every candidate when deleting it: what a push claimed since the mark phase stays', async () => {
    const gc = new GcStore(registry.app.metadata.sql);
    const repo = 'gc/recheck';
    const layer = randomBlob(700);
    const spare = randomBlob(800);
    const untagged = await buildImage({ layers: 1 });
    expect((await client.pushBlob(repo, layer)).status).toBe(201);
    expect((await client.pushBlob(repo, spare)).status).toBe(201);
    await push(repo, untagged.manifest.digest, untagged);
    await pastGrace();
    const cutoff = new Date(Date.now() - 100);
    const links = (await gc.unreferencedLinks(cutoff, undefined, 1000)).filter((l) => l.repository === repo);
    expect(links.map((l) => l.digest).sort()).toEqual([layer.digest, spare.digest].sort());
    const manifests = (await gc.unreachableManifests(cutoff)).filter((m) => m.repository === repo);
    expect(manifests.map((m) => m.digest)).toEqual([untagged.manifest.digest]);

    // Between the mark and the sweep, a client that found the layer present pushes a manifest
    // naming it without uploading it again, and another tags the untagged manifest.
    const config = blobOf(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    expect((await client.pushBlob(repo, config)).status).toBe(201);
    const reuse = blobOf(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size }],
      }),
    );
    expect((await client.pushManifest(repo, 'reuse', reuse)).status).toBe(201);
    expect((await client.pushManifest(repo, 'late-tag', untagged.manifest)).status).toBe(201);

    expect(await gc.deleteManifests(manifests, cutoff)).toEqual([]);
    expect(await gc.deleteLinks(links, cutoff)).toEqual([{ repository: repo, digest: spare.digest }]);
    const marks = await gc.markBlobs([layer.digest, spare.digest], cutoff, 60);
    expect(marks.map((m) => m.digest)).toEqual([spare.digest]);
    await gc.unmarkBlobs(marks);
    expect((await client.getBlob(repo, layer.digest)).equals(layer.data)).toBe(true);
    expect(await manifestStatus(repo, 'late-tag')).toBe(200);
  });

  it('exports request, byte, upload, job and GC figures on /metrics', async () => {
    const text = await (await fetch(`${registry.url}/metrics`)).text();
    const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? NaN);
    expect(value(/^wharf_http_requests_total\{method="POST",route="\/v2\/:name\/blobs\/uploads\/",status="201"\} (\d+)/m)).toBeGreaterThan(10);
    expect(value(/^wharf_http_request_duration_seconds_count\{method="GET",route="\/v2\/:name\/blobs\/:digest",status="200"\} (\d+)/m)).toBeGreaterThan(5);
    expect(value(/^wharf_http_received_bytes_total\{route="\/v2\/:name\/blobs\/uploads\/"\} (\d+)/m)).toBeGreaterThan(10_000);
    expect(value(/^wharf_http_sent_bytes_total\{route="\/v2\/:name\/blobs\/:digest"\} (\d+)/m)).toBeGreaterThan(1000);
    expect(value(/^wharf_upload_requests_in_flight (\d+)/m)).toBe(0);
    expect(value(/^wharf_gc_runs_total\{dry_run="false"\} (\d+)/m)).toBeGreaterThanOrEqual(5);
    expect(value(/^wharf_gc_bytes_freed_total (\d+)/m)).toBeGreaterThan(4096);
    expect(value(/^wharf_gc_deleted_total\{what="manifests"\} (\d+)/m)).toBe(4);
    expect(value(/^wharf_jobs\{kind="gc",state="succeeded"\} (\d+)/m)).toBe(7);
    expect(value(/^wharf_jobs_processed_total\{kind="gc",outcome="succeeded"\} (\d+)/m)).toBe(7);
  });
});

describe('garbage collection on a schedule, with auth', () => {
  let registry: RunningRegistry;
  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  it('runs from the cron schedule, and only administrators may start or read runs', async () => {
    registry = await startRegistry({ auth: tokenAuth(), jobs: { pollIntervalMs: 50, gc: { schedule: '* * * * * *', graceSeconds: 3600 } } });
    const api = new ManagementClient(registry.url);
    let runs: { state: string; dryRun: boolean }[] = [];
    for (let i = 0; i < 60 && !runs.some((r) => r.state === 'succeeded'); i++) {
      await sleep(100);
      runs = (await api.ok('GET', '/gc')).items;
    }
    expect(runs.find((r) => r.state === 'succeeded')).toMatchObject({ dryRun: false });

    await api.ok('PUT', '/users/alice', { password: 'alice-password-123' });
    await api.ok('PUT', '/projects/team', {});
    await api.ok('PUT', '/projects/team/members/alice', { role: 'projectAdmin' });
    const alice = api.as(basic('alice', 'alice-password-123'));
    expect(await alice.call('POST', '/gc', {})).toMatchObject({ status: 403, body: { errors: [{ code: 'DENIED' }] } });
    expect(await alice.call('GET', '/gc')).toMatchObject({ status: 403 });
    expect(await api.as(null).call('GET', '/gc')).toMatchObject({ status: 401 });
    expect((await runGc(registry.url, { dryRun: true }, ADMIN)).state).toBe('succeeded');
    const audit = await api.ok('GET', '/audit?resourceType=gc');
    expect(audit.items.some((e: { actor: string; action: string }) => e.actor === 'admin' && e.action === 'create')).toBe(true);
  });
});
