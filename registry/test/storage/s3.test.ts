import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startRegistry } from '../support/registry.js';
import { StorageUnavailableError, type BlobStore, type UploadState } from '../../src/storage/blob-store.js';
import { S3BlobStore, type S3BlobStoreOptions } from '../../src/storage/s3.js';
import { parseUploadState, planParts, type UploadChunk } from '../../src/storage/s3-upload-state.js';
import { startMinio, type RunningMinio } from '../support/minio.js';
import { sha256 } from '../support/oci.js';
import { createTestDatabase } from '../support/pg.js';
import { blobStoreDriverSuite } from './driver-suite.js';

const MiB = 1024 * 1024;

let minio: Promise<RunningMinio> | undefined;
const server = () => (minio ??= startMinio(inject('toolsBin')));
const stores: S3BlobStore[] = [];

afterAll(async () => {
  for (const store of stores) store.close();
  await (await minio)?.close();
});

async function options(bucket?: string, extra: Partial<S3BlobStoreOptions> = {}): Promise<S3BlobStoreOptions> {
  const m = await server();
  return {
    endpoint: m.endpoint,
    region: m.region,
    forcePathStyle: true,
    accessKeyId: m.accessKeyId,
    secretAccessKey: m.secretAccessKey,
    bucket: bucket ?? (await m.createBucket()),
    redirect: false,
    ...extra,
  };
}

function open(opts: S3BlobStoreOptions): S3BlobStore {
  const store = new S3BlobStore(opts);
  stores.push(store);
  return store;
}

async function objectsUnder(opts: S3BlobStoreOptions, prefix: string): Promise<{ key: string; size: number }[]> {
  const client = new S3Client({ endpoint: opts.endpoint, region: opts.region, forcePathStyle: true, credentials: { accessKeyId: opts.accessKeyId!, secretAccessKey: opts.secretAccessKey! } });
  try {
    const out = await client.send(new ListObjectsV2Command({ Bucket: opts.bucket, Prefix: prefix }));
    return (out.Contents ?? []).map((o) => ({ key: o.Key!, size: o.Size ?? 0 }));
  } finally {
    client.destroy();
  }
}

async function keysUnder(opts: S3BlobStoreOptions, prefix: string): Promise<string[]> {
  return (await objectsUnder(opts, prefix)).map((o) => o.key);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The upload state as it comes back from the database: JSON, not the object the store returned. */
function viaDatabase(state: UploadState): UploadState {
  return JSON.parse(JSON.stringify(state)) as UploadState;
}

async function appendAll(store: BlobStore, id: string, state: UploadState, size: number, chunks: Buffer[]): Promise<{ state: UploadState; size: number }> {
  for (const chunk of chunks) {
    const result = await store.appendUpload(id, viaDatabase(state), size, Readable.from([chunk]));
    expect(result.size).toBe(size + chunk.length);
    ({ state, size } = result);
  }
  return { state, size };
}

blobStoreDriverSuite('s3', async () => {
  const opts = await options();
  const store = open(opts);
  return {
    store,
    uploadBytes: async () => (await objectsUnder(opts, 'uploads/')).reduce((sum, o) => sum + o.size, 0),
    async cleanup() {
      // Committed and aborted uploads must not leave chunk objects behind.
      const left = await keysUnder(opts, 'uploads/');
      if (left.length > 0) throw new Error(`upload objects left behind: ${left.join(', ')}`);
    },
  };
});

describe('S3 upload state and part planning', () => {
  const chunksOf = (...sizes: number[]): UploadChunk[] => {
    let offset = 0;
    return sizes.map((size) => ({ offset: (offset += size) - size, size, attempt: '0123456789abcdef' }));
  };
  const shape = (sizes: number[]) => planParts(chunksOf(...sizes), 5).map((p) => (p.kind === 'copy' ? p.chunk.size : p.chunks.map((c) => c.size)));

  it('copies chunks of the minimum size alone and joins smaller ones until they reach it', () => {
    expect(shape([])).toEqual([]);
    expect(shape([3])).toEqual([3]);
    expect(shape([5, 8, 2])).toEqual([5, 8, 2]);
    expect(shape([1, 1, 1, 1, 1, 1, 1])).toEqual([[1, 1, 1, 1, 1], [1, 1]]);
    expect(shape([1, 8, 6, 2, 2])).toEqual([[1, 8], 6, [2, 2]]);
  });

  it('every part but the last reaches the minimum', () => {
    const sizes = Array.from({ length: 200 }, (_, i) => ((i * 7919) % 9) + 1);
    const parts = planParts(chunksOf(...sizes), 5);
    const partSize = (p: (typeof parts)[number]) => (p.kind === 'copy' ? p.chunk.size : p.size);
    expect(parts.slice(0, -1).every((p) => partSize(p) >= 5)).toBe(true);
    expect(parts.reduce((n, p) => n + partSize(p), 0)).toBe(sizes.reduce((a, b) => a + b, 0));
  });

  it('refuses state with gaps, foreign shapes or a different size', () => {
    const id = randomUUID();
    expect(parseUploadState(id, { chunks: chunksOf(2, 3) }, 5).chunks).toHaveLength(2);
    expect(() => parseUploadState(id, { chunks: [{ offset: 1, size: 2, attempt: '0123456789abcdef' }] })).toThrow(/does not follow byte 0/);
    expect(() => parseUploadState(id, { parts: [] })).toThrow(/invalid s3 upload state/);
    expect(() => parseUploadState(id, { chunks: [{ offset: 0, size: 2, attempt: '../x' }] })).toThrow(/invalid s3 upload state/);
    expect(() => parseUploadState(id, { chunks: chunksOf(2) }, 3)).toThrow(/chunks hold 2 bytes/);
  });
});

describe('S3 blob store', () => {
  let opts: S3BlobStoreOptions;

  beforeAll(async () => {
    opts = await options();
  });

  it('continues an upload on a second instance (another replica) and commits it there', async () => {
    const replica1 = open(opts);
    const replica2 = open(opts);
    const id = randomUUID();
    // Sizes that make commit copy one chunk, join two small ones into a part, and copy the last.
    const chunks = [randomBytes(6 * MiB), randomBytes(1 * MiB), randomBytes(7 * MiB), randomBytes(300_000)];
    const all = Buffer.concat(chunks);
    let upload = { state: await replica1.startUpload(id), size: 0 };
    upload = await appendAll(replica1, id, upload.state, upload.size, chunks.slice(0, 2));
    upload = await appendAll(replica2, id, upload.state, upload.size, chunks.slice(2, 3));
    // Replica 1 never saw chunk 3, so it re-hashes what storage holds, as the upload service does.
    expect(sha256(await readAll(await replica1.readUpload(id, viaDatabase(upload.state), upload.size)))).toBe(sha256(Buffer.concat(chunks.slice(0, 3))));
    upload = await appendAll(replica1, id, upload.state, upload.size, chunks.slice(3));
    await replica2.commitUpload(id, viaDatabase(upload.state), upload.size, sha256(all));
    expect(await replica1.stat(sha256(all))).toMatchObject({ size: all.length });
    expect((await readAll(await replica1.read(sha256(all)))).equals(all)).toBe(true);
    expect(await keysUnder(opts, `uploads/${id}/`)).toEqual([]);
  });

  it('commits many small chunks as multipart parts of at least 5 MiB', async () => {
    const store = open(opts);
    const id = randomUUID();
    const chunks = Array.from({ length: 13 }, () => randomBytes(512 * 1024));
    const all = Buffer.concat(chunks);
    const upload = await appendAll(store, id, await store.startUpload(id), 0, chunks);
    await store.commitUpload(id, upload.state, upload.size, sha256(all));
    expect((await readAll(await store.read(sha256(all)))).equals(all)).toBe(true);
  });

  it('splits a streamed body into chunk objects of at most chunkSize', async () => {
    const store = open({ ...opts, chunkSize: 5 * MiB });
    const id = randomUUID();
    const piece = randomBytes(MiB + 3);
    const all = Buffer.concat(Array.from({ length: 12 }, () => piece));
    const result = await store.appendUpload(id, await store.startUpload(id), 0, Readable.from((function* () {
      for (let i = 0; i < 12; i++) yield piece;
    })()));
    expect(result.size).toBe(all.length);
    const sizes = (result.state.chunks as { size: number }[]).map((c) => c.size);
    expect(sizes).toEqual([5 * MiB, 5 * MiB, all.length - 10 * MiB]);
    await store.commitUpload(id, result.state, result.size, sha256(all));
    const range = await readAll(await store.read(sha256(all), { start: 5 * MiB - 10, end: 5 * MiB + 9 }));
    expect(range.equals(all.subarray(5 * MiB - 10, 5 * MiB + 10))).toBe(true);
  });

  it('rejects upload state that does not match the session', async () => {
    const store = open(opts);
    const id = randomUUID();
    const { state, size } = await store.appendUpload(id, await store.startUpload(id), 0, Readable.from([randomBytes(100)]));
    await expect(store.commitUpload(id, state, size + 1, sha256(Buffer.alloc(0)))).rejects.toThrow(/chunks hold 100 bytes/);
    await expect(store.appendUpload(id, { parts: [] }, 0, Readable.from([Buffer.alloc(1)]))).rejects.toThrow(/invalid s3 upload state/);
    await store.abortUpload(id, state);
  });

  it('lists blobs and uploads across pages', async () => {
    const paged = await options(undefined, { listPageSize: 2 });
    const store = open(paged);
    const digests: string[] = [];
    for (let i = 0; i < 5; i++) {
      const data = randomBytes(10 + i);
      const id = randomUUID();
      const { state, size } = await store.appendUpload(id, await store.startUpload(id), 0, Readable.from([data]));
      await store.commitUpload(id, state, size, sha256(data));
      digests.push(sha256(data));
    }
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const id = randomUUID();
      // Three chunk objects each, so one upload spans pages.
      await appendAll(store, id, await store.startUpload(id), 0, [randomBytes(10), randomBytes(10), randomBytes(10)]);
      ids.push(id);
    }
    const listed: string[] = [];
    for await (const blob of store.list()) listed.push(blob.digest);
    expect(listed.sort()).toEqual([...digests].sort());
    const uploads: string[] = [];
    for await (const upload of store.listUploads()) uploads.push(upload.id);
    expect(uploads).toEqual([...ids].sort());
  });

  it('passes the AbortSignal down: an aborted call stops with AbortError, not a storage error', async () => {
    const store = open(opts);
    const aborted = AbortSignal.abort();
    await expect(store.stat(sha256('x'), aborted)).rejects.toMatchObject({ name: 'AbortError' });
    await expect(store.ping(aborted)).rejects.toMatchObject({ name: 'AbortError' });
    const id = randomUUID();
    await expect(store.appendUpload(id, await store.startUpload(id), 0, Readable.from([randomBytes(10)]), aborted)).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('gives no redirect URL unless configured to', async () => {
    const store = open(opts);
    expect(await store.redirectUrl(sha256('anything'))).toBeUndefined();
  });

  it('redirects to a presigned URL that downloads the blob, whole and by range', async () => {
    const store = open({ ...opts, redirect: true });
    const data = randomBytes(70_000);
    const id = randomUUID();
    const { state, size } = await store.appendUpload(id, await store.startUpload(id), 0, Readable.from([data]));
    await store.commitUpload(id, state, size, sha256(data));
    const url = await store.redirectUrl(sha256(data));
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/.+X-Amz-Signature=/);
    const whole = await fetch(url!);
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).equals(data)).toBe(true);
    const part = await fetch(url!, { headers: { Range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(Buffer.from(await part.arrayBuffer()).equals(data.subarray(100, 200))).toBe(true);
    // The signature covers the key: another key with the same query is refused.
    const forged = await fetch(url!.replace(/blobs\/sha256\/[0-9a-f]{2}\/[0-9a-f]{64}/, 'blobs/sha256/00/' + '0'.repeat(64)));
    expect(forged.status).toBe(403);
  });

  it('serves blobs through the registry on s3 + PostgreSQL, redirecting when configured', async () => {
    const databaseUrl = await createTestDatabase(inject('pgAdminUrl'));
    for (const redirect of [false, true]) {
      const { app } = await startRegistry({ databaseUrl, storage: { driver: 's3', s3: { ...opts, redirect } } });
      try {
        const data = randomBytes(20_000);
        const digest = sha256(data);
        const put = await app.inject({ method: 'POST', url: `/v2/s3test/app/blobs/uploads/?digest=${digest}`, headers: { 'content-type': 'application/octet-stream' }, payload: data });
        expect(put.statusCode, put.body).toBe(201);
        const get = await app.inject({ method: 'GET', url: `/v2/s3test/app/blobs/${digest}` });
        if (redirect) {
          expect(get.statusCode).toBe(307);
          const fetched = await fetch(get.headers.location!);
          expect(Buffer.from(await fetched.arrayBuffer()).equals(data)).toBe(true);
        } else {
          expect(get.statusCode).toBe(200);
          expect(get.rawPayload.equals(data)).toBe(true);
        }
      } finally {
        await app.close();
      }
    }
  });
});

// Last in the file: these stop the shared MinIO (and start it again).
describe('S3 blob store when the S3 server is down', () => {
  it('fails with StorageUnavailableError within its deadline when S3 accepts connections but never answers', async () => {
    // A listener that accepts connections and never answers: a frozen or partitioned S3.
    const sockets = new Set<Socket>();
    const blackhole = createServer((socket) => {
      sockets.add(socket);
      // Resets by the client are what this server expects: it never answers.
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
    const { port } = blackhole.address() as AddressInfo;
    const store = open({ ...(await options(undefined, { timeouts: { request: 500, transfer: 1000 } })), endpoint: `http://127.0.0.1:${port}` });
    try {
      const digest = sha256('anything');
      await expect(store.stat(digest)).rejects.toBeInstanceOf(StorageUnavailableError);
      await expect(store.read(digest)).rejects.toBeInstanceOf(StorageUnavailableError);
      await expect(store.appendUpload(randomUUID(), { chunks: [] }, 0, Readable.from([randomBytes(10)]))).rejects.toBeInstanceOf(StorageUnavailableError);
      // Bounded by attempts, not by the clock: each SDK call tries at most three connections (a
      // call that waited forever would hit the test timeout instead). Four calls: stat, read, the
      // chunk PUT of the append, and the append's removal of the chunk it began to write.
      expect(sockets.size).toBeGreaterThanOrEqual(3);
      expect(sockets.size).toBeLessThanOrEqual(4 * 3);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => blackhole.close(resolve));
    }
  });

  it('fails with StorageUnavailableError instead of hanging, and recovers without a new instance once S3 is back', async () => {
    const m = await server();
    const opts = await options();
    const store = open(opts);
    const data = randomBytes(1000);
    const id = randomUUID();
    let upload = await store.appendUpload(id, await store.startUpload(id), 0, Readable.from([data]));
    await store.commitUpload(id, upload.state, upload.size, sha256(data));

    const { app } = await startRegistry({ databaseUrl: await createTestDatabase(inject('pgAdminUrl')), storage: { driver: 's3', s3: opts }, logLevel: 'silent' });
    const layer = randomBytes(500);
    const pushed = await app.inject({ method: 'POST', url: `/v2/s3down/app/blobs/uploads/?digest=${sha256(layer)}`, headers: { 'content-type': 'application/octet-stream' }, payload: layer });
    expect(pushed.statusCode, pushed.body).toBe(201);

    await m.stop();
    try {
      const get = await app.inject({ method: 'GET', url: `/v2/s3down/app/blobs/${sha256(layer)}` });
      expect(get.statusCode).toBe(503);
      expect(get.json()).toMatchObject({ errors: [{ code: 'UNAVAILABLE' }] });
      const ready = await app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ checks: expect.arrayContaining([expect.objectContaining({ name: 'storage', ok: false })]) });
      const calls: [string, () => Promise<unknown>][] = [
        ['ping', () => store.ping()],
        ['stat', () => store.stat(sha256(data))],
        ['read', () => store.read(sha256(data))],
        ['append', () => store.appendUpload(randomUUID(), { chunks: [] }, 0, Readable.from([data]))],
        ['list', async () => {
          for await (const _ of store.list());
        }],
      ];
      for (const [name, call] of calls) {
        const error = await call().then(() => undefined, (err: unknown) => err);
        expect(error, name).toBeInstanceOf(StorageUnavailableError);
      }
      // Each call fails (retries included) rather than hanging: a hang would hit the test timeout.
    } finally {
      await m.start();
    }
    try {
      expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
      const get = await app.inject({ method: 'GET', url: `/v2/s3down/app/blobs/${sha256(layer)}` });
      expect(get.statusCode).toBe(200);
      expect(get.rawPayload.equals(layer)).toBe(true);
    } finally {
      await app.close();
    }

    expect(await store.stat(sha256(data))).toMatchObject({ size: 1000 });
    const more = randomBytes(2000);
    upload = await store.appendUpload(id, await store.startUpload(id), 0, Readable.from([more]));
    await store.commitUpload(id, upload.state, upload.size, sha256(more));
    expect((await readAll(await store.read(sha256(more)))).equals(more)).toBe(true);
  });
});
