import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { gcReport } from './support/gc.js';
import { startMinio, type RunningMinio } from './support/minio.js';
import { blobOf, buildImage, indexOf, OCI_INDEX, OCI_MANIFEST, randomBlob, type Blob, type Image } from './support/oci.js';
import { createTestDatabase } from './support/pg.js';
import { PushClient, PushError } from './support/push.js';
import { removeDir, startRegistry, type RunningRegistry } from './support/registry.js';

const ROUNDS = 20;
const CLIENTS = 10;
const GRACE_SECONDS = 2;
const LIVE_TAGS_PER_CLIENT = 4;
const EMPTY = blobOf('{}');

/** What a live tag must still serve. */
interface Expected {
  tag: string;
  manifest: Blob;
  mediaType: string;
  blobs: string[];
  children: string[];
  referrer?: { digest: string; payload: string };
}

/**
 * Ten clients push and delete images (some sharing base layers, some multi-arch
 * indexes, some with referrers) while garbage collection runs twenty times. The
 * clients pause only while the state is checked between rounds.
 */
describe('online garbage collection under concurrent pushes and deletes (PostgreSQL + S3)', () => {
  let minio: RunningMinio;
  let registry: RunningRegistry;
  let gate: Promise<void> | undefined;
  let release = () => undefined as void;
  let active = 0;
  let stopped = false;
  const errors: string[] = [];
  /** Blob digests pushed since the last check. */
  let touched = new Set<string>();
  const live: Expected[][] = Array.from({ length: CLIENTS }, () => []);
  const bases = Array.from({ length: 4 }, () => randomBlob(3000));
  const stats = { headSkips: 0, lostHeadRaces: 0 };

  /** One client operation, never cut by a pause. */
  async function op(fn: () => Promise<void>): Promise<void> {
    while (gate) await gate;
    active++;
    try {
      await fn();
    } catch (err) {
      errors.push((err as Error).message);
    } finally {
      active--;
    }
  }

  async function pause(): Promise<void> {
    gate = new Promise<void>((resolve) => (release = resolve));
    while (active > 0) await sleep(5);
  }

  function resume(): void {
    gate = undefined;
    release();
  }

  async function pushImage(client: PushClient, repo: string, reference: string): Promise<Image> {
    const image = await buildImage({ layers: 1, payloadSize: 2000 });
    // Half the images share a base layer with other clients' images.
    const base = randomInt(2) === 0 ? bases[randomInt(bases.length)] : undefined;
    if (base) {
      const manifest = JSON.parse(image.manifest.data.toString());
      manifest.layers.unshift({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: base.digest, size: base.size });
      image.layers.unshift(base);
      image.manifest = blobOf(JSON.stringify(manifest));
    }
    for (const blob of [image.config, ...image.layers]) {
      touched.add(blob.digest);
      // Like docker, skip uploading a shared layer the repository already has.
      if (blob === base && (await fetch(`${registry.url}/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD' })).status === 200) {
        stats.headSkips++;
        continue;
      }
      await client.pushBlob(repo, blob);
    }
    // A manifest still in flight: its blobs are uploaded but not yet named.
    await sleep(randomInt(300));
    try {
      await client.pushManifest(repo, reference, image.manifest, image.mediaType);
    } catch (err) {
      // The skipped layer's link was collected after the HEAD (it was unreferenced here for
      // longer than the grace window): the documented answer; upload it and push again.
      if (!base || !(err instanceof PushError) || err.status !== 400 || !err.message.includes('MANIFEST_BLOB_UNKNOWN')) throw err;
      stats.lostHeadRaces++;
      await client.pushBlob(repo, base);
      await client.pushManifest(repo, reference, image.manifest, image.mediaType);
    }
    return image;
  }

  async function clientLoop(c: number): Promise<void> {
    const client = new PushClient(registry.url);
    const repo = `safety/c${c}`;
    for (let n = 0; !stopped; n++) {
      await op(async () => {
        const tag = `t${n}`;
        const kind = randomInt(10);
        let expected: Expected;
        if (kind < 2) {
          const [a, b] = [await pushImage(client, repo, 'pending-a'), await pushImage(client, repo, 'pending-b')];
          await client.deleteManifest(repo, 'pending-a');
          const index = indexOf([{ image: a, architecture: 'amd64' }, { image: b, architecture: 'arm64' }]);
          await client.pushManifest(repo, tag, index, OCI_INDEX);
          expected = { tag, manifest: index, mediaType: OCI_INDEX, blobs: [a, b].flatMap((i) => [i.config, ...i.layers].map((x) => x.digest)), children: [a.manifest.digest, b.manifest.digest] };
        } else {
          const image = await pushImage(client, repo, tag);
          expected = { tag, manifest: image.manifest, mediaType: OCI_MANIFEST, blobs: [image.config, ...image.layers].map((x) => x.digest), children: [] };
          if (kind < 4) {
            const payload = randomBlob(200);
            for (const blob of [EMPTY, payload]) {
              touched.add(blob.digest);
              await client.pushBlob(repo, blob);
            }
            const referrer = blobOf(
              JSON.stringify({
                schemaVersion: 2,
                mediaType: OCI_MANIFEST,
                artifactType: 'application/vnd.example.sbom',
                config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY.digest, size: EMPTY.size },
                layers: [{ mediaType: 'application/octet-stream', digest: payload.digest, size: payload.size }],
                subject: { mediaType: OCI_MANIFEST, digest: image.manifest.digest, size: image.manifest.size },
              }),
            );
            await client.pushManifest(repo, referrer.digest, referrer, OCI_MANIFEST);
            expected.referrer = { digest: referrer.digest, payload: payload.digest };
          }
        }
        live[c]!.push(expected);
        if (live[c]!.length > LIVE_TAGS_PER_CLIENT) {
          const old = live[c]!.shift()!;
          // Delete the manifest (its blobs become garbage), or just the tag (an untagged manifest).
          if (n % 2 === 0) await client.deleteManifest(repo, old.manifest.digest);
          else await client.deleteManifest(repo, old.tag);
        }
      });
    }
  }

  /** Every live tag resolves to its manifest, and everything it references downloads with the right digest. */
  async function checkLive(): Promise<number> {
    const client = new PushClient(registry.url);
    let blobs = 0;
    for (let c = 0; c < CLIENTS; c++) {
      const repo = `safety/c${c}`;
      for (const e of live[c]!) {
        expect((await client.manifest(repo, e.tag)).equals(e.manifest.data), `${repo}:${e.tag}`).toBe(true);
        for (const child of e.children) await client.manifest(repo, child);
        const digests = [...e.blobs, ...(e.referrer ? [e.referrer.payload] : [])];
        for (const digest of digests) await client.verifyBlob(repo, digest);
        blobs += digests.length;
        if (e.referrer) {
          const list = (await (await fetch(`${registry.url}/v2/${repo}/referrers/${e.manifest.digest}`)).json()) as { manifests: { digest: string }[] };
          expect(list.manifests.map((m) => m.digest)).toContain(e.referrer.digest);
        }
      }
    }
    return blobs;
  }

  async function storageObjects(): Promise<Map<string, Date>> {
    const objects = new Map<string, Date>();
    for await (const o of registry.app.blobStore.list()) objects.set(o.digest, o.modifiedAt);
    return objects;
  }

  async function referencedBlobs(): Promise<Set<string>> {
    const rows = await registry.app.metadata.sql.query<{ child: string }>("SELECT DISTINCT child FROM manifest_references WHERE kind = 'blob'");
    return new Set(rows.map((r) => r.child));
  }

  beforeAll(async () => {
    minio = await startMinio(inject('toolsBin'));
    const { endpoint, region, accessKeyId, secretAccessKey } = minio;
    registry = await startRegistry({
      databaseUrl: await createTestDatabase(inject('pgAdminUrl')),
      storage: { driver: 's3', s3: { endpoint, region, accessKeyId, secretAccessKey, forcePathStyle: true, bucket: await minio.createBucket(), redirect: false } },
      jobs: { pollIntervalMs: 50, gc: { graceSeconds: GRACE_SECONDS, schedule: undefined }, uploads: { purgeSchedule: undefined } },
    });
  });

  afterAll(async () => {
    stopped = true;
    resume();
    await registry?.stop();
    await minio?.close();
    if (registry) await removeDir(registry.dataDir);
  });

  it(`${ROUNDS} rounds: tags resolve, referenced blobs download, collectable blobs are gone from storage`, async () => {
    const clients = Array.from({ length: CLIENTS }, (_, c) => clientLoop(c));
    let unreferencedBefore = new Set<string>();
    let verifiedGone = 0;
    let checkedBlobs = 0;
    let freed = 0;
    let manifestsDeleted = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      await sleep(500);
      const [clock] = await registry.app.metadata.sql.query<{ now: Date }>('SELECT now() AS now');
      const gcStart = clock!.now.getTime();
      const report = await gcReport(registry.url, { deleteUntagged: round % 2 === 0 });
      freed += report.bytesFreed;
      manifestsDeleted += report.manifests.deleted;

      await pause();
      try {
        expect(errors, `client errors in round ${round}`).toEqual([]);
        checkedBlobs += await checkLive();
        const objects = await storageObjects();
        const referenced = await referencedBlobs();
        // No manifest may name a blob that is not in storage.
        const missing = [...referenced].filter((d) => !objects.has(d));
        expect(missing, `round ${round}: referenced blobs missing from storage`).toEqual([]);
        // Unreferenced at the previous check and still now, untouched meanwhile, and older than
        // the grace window when this round's collection started: it must be gone.
        const overdue = [...objects].filter(([d, modified]) => unreferencedBefore.has(d) && !referenced.has(d) && !touched.has(d) && modified.getTime() < gcStart - GRACE_SECONDS * 1000 - 1000);
        expect(overdue.map(([d]) => d), `round ${round}: blobs the collector should have removed`).toEqual([]);
        verifiedGone += [...unreferencedBefore].filter((d) => !objects.has(d) && !touched.has(d)).length;
        unreferencedBefore = new Set([...objects.keys()].filter((d) => !referenced.has(d)));
        touched = new Set();
      } finally {
        resume();
      }
    }
    stopped = true;
    await Promise.all(clients);
    expect(errors).toEqual([]);
    console.log(
      `gc safety: ${ROUNDS} rounds, ${checkedBlobs} blob downloads checked, ${verifiedGone} collectable blobs confirmed gone, ${manifestsDeleted} untagged manifests deleted, ${freed} bytes freed; shared layers skipped after HEAD ${stats.headSkips} times, ${stats.lostHeadRaces} of them collected before the manifest came`,
    );
    expect(stats.headSkips).toBeGreaterThan(20);
    expect(verifiedGone).toBeGreaterThan(50);
    expect(manifestsDeleted).toBeGreaterThan(10);
  }, 300_000);
});
