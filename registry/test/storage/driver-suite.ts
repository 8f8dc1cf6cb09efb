import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobNotFoundError, type BlobStore } from '../../src/storage/blob-store.js';
import { sha256 } from '../support/oci.js';

export interface DriverFixture {
  store: BlobStore;
  /** Bytes the driver holds for uploads in progress (files or objects under uploads/). */
  uploadBytes(): Promise<number>;
  cleanup(): Promise<void>;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A body that yields `good` bytes and then fails, like a client that disconnects mid-upload. */
function failingBody(good: Buffer): Readable {
  return new Readable({
    read() {
      if (good.length > 0) {
        this.push(good);
        good = Buffer.alloc(0);
      } else {
        this.destroy(new Error('client went away'));
      }
    },
  });
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Put `data` as a blob through the upload path, the way the registry does. */
async function putBlob(store: BlobStore, data: Buffer, chunks = 1): Promise<string> {
  const id = randomUUID();
  let state = await store.startUpload(id);
  let size = 0;
  const step = Math.ceil(data.length / chunks) || 1;
  for (let offset = 0; offset < data.length || (offset === 0 && data.length === 0); offset += step) {
    const result = await store.appendUpload(id, state, size, Readable.from([data.subarray(offset, offset + step)]));
    state = result.state;
    size = result.size;
    if (data.length === 0) break;
  }
  const digest = sha256(data);
  await store.commitUpload(id, state, size, digest);
  return digest;
}

/**
 * The behaviour every BlobStore driver must have. Each driver's test file calls this
 * with a factory for a fresh, empty store.
 */
export function blobStoreDriverSuite(driver: string, create: () => Promise<DriverFixture>): void {
  describe(`BlobStore driver: ${driver}`, () => {
    let fixture: DriverFixture;
    let store: BlobStore;

    beforeAll(async () => {
      fixture = await create();
      store = fixture.store;
    });
    afterAll(async () => fixture?.cleanup());

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    it('commits a single-chunk upload as a blob and reads it back whole and by range', async () => {
      const data = randomBytes(100_000);
      const digest = await putBlob(store, data);
      expect(await store.stat(digest)).toMatchObject({ size: data.length });
      expect((await readAll(await store.read(digest))).equals(data)).toBe(true);
      const part = await readAll(await store.read(digest, { start: 10, end: 19 }));
      expect(part.equals(data.subarray(10, 20))).toBe(true);
    });

    it('commits an exclusive upload written by one last append (a proxy fill\'s), leaving nothing under uploads/', async () => {
      const data = randomBytes(300_000);
      const id = randomUUID();
      const { state, size } = await store.appendUpload(id, await store.startUpload(id), 0, Readable.from([data]), undefined, { last: true });
      await store.commitUpload(id, state, size, sha256(data), undefined, { exclusive: true });
      expect((await readAll(await store.read(sha256(data)))).equals(data)).toBe(true);
      expect(await fixture.uploadBytes()).toBe(0);
    });

    it('assembles chunked appends in order', async () => {
      const data = randomBytes(3 * 64 * 1024 + 17);
      const digest = await putBlob(store, data, 4);
      expect((await readAll(await store.read(digest))).equals(data)).toBe(true);
    });

    it('reads back an upload in progress, for re-hashing on another replica', async () => {
      const id = randomUUID();
      const first = randomBytes(5000);
      const second = randomBytes(7000);
      let state = await store.startUpload(id);
      ({ state } = await store.appendUpload(id, state, 0, Readable.from([first])));
      const { state: s2, size } = await store.appendUpload(id, state, first.length, Readable.from([second]));
      expect(size).toBe(12_000);
      expect((await readAll(await store.readUpload(id, s2, size))).equals(Buffer.concat([first, second]))).toBe(true);
      await store.abortUpload(id, s2);
    });

    it('stores an empty blob', async () => {
      const digest = await putBlob(store, Buffer.alloc(0));
      expect(await store.stat(digest)).toMatchObject({ size: 0 });
      expect((await readAll(await store.read(digest))).length).toBe(0);
    });

    it('streams a large blob without holding it whole', async () => {
      const chunk = randomBytes(1024 * 1024);
      const id = randomUUID();
      const state = await store.startUpload(id);
      const body = Readable.from((function* () {
        for (let i = 0; i < 24; i++) yield chunk;
      })());
      const result = await store.appendUpload(id, state, 0, body);
      expect(result.size).toBe(24 * 1024 * 1024);
      const digest = sha256(Buffer.concat(Array.from({ length: 24 }, () => chunk)));
      await store.commitUpload(id, result.state, result.size, digest);
      let total = 0;
      for await (const piece of await store.read(digest)) total += (piece as Buffer).length;
      expect(total).toBe(24 * 1024 * 1024);
    });

    it('discards a failed append so the upload can resume at the old offset', async () => {
      const id = randomUUID();
      const first = randomBytes(4096);
      let state = await store.startUpload(id);
      ({ state } = await store.appendUpload(id, state, 0, Readable.from([first])));
      await expect(store.appendUpload(id, state, first.length, failingBody(randomBytes(3000)))).rejects.toThrow();
      const rest = randomBytes(1000);
      const result = await store.appendUpload(id, state, first.length, Readable.from([rest]));
      const all = Buffer.concat([first, rest]);
      expect(result.size).toBe(all.length);
      const digest = sha256(all);
      await store.commitUpload(id, result.state, result.size, digest);
      expect((await readAll(await store.read(digest))).equals(all)).toBe(true);
    });

    it('removes what a failed append wrote at once, not when the upload ends', async () => {
      const before = await fixture.uploadBytes();
      const id = randomUUID();
      const first = randomBytes(4096);
      let state = await store.startUpload(id);
      ({ state } = await store.appendUpload(id, state, 0, Readable.from([first])));
      // More than one S3 chunk (8 MiB), so that some of it reaches storage before the failure.
      await expect(store.appendUpload(id, state, first.length, failingBody(randomBytes(9 * 1024 * 1024)))).rejects.toThrow('client went away');
      expect(await fixture.uploadBytes()).toBe(before + first.length);
      await store.abortUpload(id, state);
      expect(await fixture.uploadBytes()).toBe(before);
    });

    it('keeps appends racing at one offset apart; the accepted one is committed', async () => {
      const id = randomUUID();
      const state = await store.startUpload(id);
      const a = randomBytes(200_000);
      const b = randomBytes(200_000);
      const [ra] = await Promise.all([store.appendUpload(id, state, 0, Readable.from([a])), store.appendUpload(id, state, 0, Readable.from([b]))]);
      await store.commitUpload(id, ra.state, ra.size, sha256(a));
      expect((await readAll(await store.read(sha256(a)))).equals(a)).toBe(true);
    });

    it('keeps appends racing at one offset after the first chunk apart; either one commits whole', async () => {
      for (const pick of [0, 1] as const) {
        const id = randomUUID();
        const first = randomBytes(100_000);
        const { state, size } = await store.appendUpload(id, await store.startUpload(id), 0, Readable.from([first]));
        const racing = [randomBytes(300_000), randomBytes(200_000)];
        const results = await Promise.all(racing.map((bytes) => store.appendUpload(id, state, size, Readable.from([bytes]))));
        const data = Buffer.concat([first, racing[pick]!]);
        await store.commitUpload(id, results[pick]!.state, results[pick]!.size, sha256(data));
        expect((await readAll(await store.read(sha256(data)))).equals(data)).toBe(true);
      }
    });

    it('makes nothing visible before commit, and nothing after abort', async () => {
      const data = randomBytes(2048);
      const digest = sha256(data);
      const id = randomUUID();
      const state = await store.startUpload(id);
      const result = await store.appendUpload(id, state, 0, Readable.from([data]));
      expect(await store.stat(digest)).toBeUndefined();
      await store.abortUpload(id, result.state);
      expect(await store.stat(digest)).toBeUndefined();
      const uploads = await collect(store.listUploads());
      expect(uploads.map((u) => u.id)).not.toContain(id);
    });

    it('survives concurrent commits of the same content', async () => {
      const data = randomBytes(256 * 1024);
      const digests = await Promise.all(Array.from({ length: 8 }, () => putBlob(store, data, 2)));
      expect(new Set(digests).size).toBe(1);
      expect((await readAll(await store.read(digests[0]!))).equals(data)).toBe(true);
    });

    it('reports a missing blob', async () => {
      const digest = sha256(randomBytes(16));
      expect(await store.stat(digest)).toBeUndefined();
      await expect(store.read(digest)).rejects.toBeInstanceOf(BlobNotFoundError);
    });

    it('deletes blobs, idempotently', async () => {
      const digest = await putBlob(store, randomBytes(512));
      await store.delete(digest);
      expect(await store.stat(digest)).toBeUndefined();
      await expect(store.delete(digest)).resolves.toBeUndefined();
    });

    it('lists committed blobs with their sizes', async () => {
      const data = randomBytes(3333);
      const digest = await putBlob(store, data);
      const listed = await collect(store.list());
      expect(listed.find((b) => b.digest === digest)).toMatchObject({ size: 3333 });
      expect(listed.every((b) => /^sha256:[0-9a-f]{64}$/.test(b.digest))).toBe(true);
    });

    it('lists uploads in progress for purging', async () => {
      const id = randomUUID();
      const state = await store.startUpload(id);
      await store.appendUpload(id, state, 0, Readable.from([randomBytes(10)]));
      const uploads = await collect(store.listUploads());
      expect(uploads.map((u) => u.id)).toContain(id);
      await store.abortUpload(id, state);
    });
  });
}
