// BlobFill on its own, over the real filesystem store: when a reader may send a blob's
// last byte. The upstream body is an in-memory stream; no registry runs.
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobFill, DigestMismatchError } from '../../src/proxy/fill.js';
import type { AppendHints, AppendResult, BlobStore, UploadState } from '../../src/storage/blob-store.js';
import { QuotaRoom } from '../../src/services/quota.js';
import { UploadBudget } from '../../src/services/upload-budget.js';
import { FilesystemBlobStore } from '../../src/storage/fs.js';
import { removeDir, tempDir } from '../support/registry.js';

const MiB = 1024 * 1024;

let work: string;

beforeAll(async () => {
  work = await tempDir('wharf-blob-fill-');
});

afterAll(async () => {
  if (work) await removeDir(work);
});

/** The filesystem store, except that appends finish (flushed, as for a sole part) only once `release` is called. */
function heldStore(dir: string): { store: BlobStore; appended: Promise<void>; release: () => void } {
  const inner = new FilesystemBlobStore(dir);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let reached!: () => void;
  const appended = new Promise<void>((resolve) => (reached = resolve));
  const store = Object.create(inner) as BlobStore;
  store.appendUpload = async (id: string, state: UploadState, offset: number, body: Readable, signal?: AbortSignal, hints?: AppendHints): Promise<AppendResult> => {
    const result = await inner.appendUpload(id, state, offset, body, signal, hints);
    reached();
    await gate;
    return result;
  };
  return { store, appended, release };
}

/** The largest blob accepted, as configured by default (32 GiB). */
const MAX_SIZE = 32 * 1024 * MiB;

/** The budget of a fill whose upstream announced `size` bytes, in a project without a quota. */
function announced(size: number): UploadBudget {
  return new UploadBudget(0, MAX_SIZE, undefined, size);
}

/** 64 KiB pieces, as an upstream socket delivers them. */
function body(data: Buffer): Readable {
  const pieces: Buffer[] = [];
  for (let at = 0; at < data.length; at += 64 * 1024) pieces.push(data.subarray(at, at + 64 * 1024));
  return Readable.from(pieces, { objectMode: false });
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('BlobFill', () => {
  it('lets a reader finish once the digest is verified, while storage is still taking the blob', async () => {
    const data = randomBytes(5 * MiB + 123);
    const digest = sha256(data);
    const { store, appended, release } = heldStore(join(work, 'held'));
    const fill = new BlobFill(digest, data.length, announced(data.length), body(data), store, join(work, 'spool'), new AbortController().signal);
    const reader = fill.reader()!;
    const read = readAll(reader);
    await appended;
    // Storage has not returned (it would flush and commit now): the reader still ends, with every byte.
    const outcome = await Promise.race([read, sleep(20_000).then(() => 'still waiting' as const)]);
    expect(typeof outcome === 'string' ? outcome : sha256(outcome)).toBe(digest);
    release();
    const result = await fill.done;
    expect(result.size).toBe(data.length);
    fill.published();
  });

  it('never sends the last byte of a body that does not match its digest', async () => {
    const data = randomBytes(3 * MiB);
    const digest = sha256(data);
    const corrupt = Buffer.from(data);
    corrupt[corrupt.length - 10]! ^= 0xff;
    const fill = new BlobFill(digest, data.length, announced(data.length), body(corrupt), new FilesystemBlobStore(join(work, 'bad')), join(work, 'spool'), new AbortController().signal);
    const reader = fill.reader()!;
    let received = 0;
    const read = (async () => {
      for await (const chunk of reader) received += (chunk as Buffer).length;
    })();
    await expect(read).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(fill.done).rejects.toBeInstanceOf(DigestMismatchError);
    expect(received).toBeLessThan(data.length);
  });

  it('serves a reader that joins after the first bytes left memory, and one that stalls, from the spool, with every byte', async () => {
    const data = randomBytes(24 * MiB + 7);
    const digest = sha256(data);
    const { store, appended, release } = heldStore(join(work, 'late'));
    const fill = new BlobFill(digest, data.length, announced(data.length), body(data), store, join(work, 'spool'), new AbortController().signal);
    const steady = readAll(fill.reader()!);
    const stalled = fill.reader()![Symbol.asyncIterator]();
    const first = (await stalled.next()).value as Buffer;
    // Every byte has arrived and the window holds only the last few MiB; the fill is not over (storage is held).
    await appended;
    expect(sha256(await steady)).toBe(digest);
    const late = fill.reader();
    expect(late).toBeDefined();
    const rest = (async () => {
      const chunks: Buffer[] = [];
      for (let next = await stalled.next(); !next.done; next = await stalled.next()) chunks.push(next.value as Buffer);
      return Buffer.concat(chunks);
    })();
    const [lateBytes, restBytes] = await Promise.all([readAll(late!), rest]);
    expect(sha256(lateBytes)).toBe(digest);
    expect(sha256(Buffer.concat([first, restBytes]))).toBe(digest);
    release();
    await fill.done;
    fill.published();
  });

  it('keeps a blob that fits in memory there: a late reader gets every byte, and no spool file is made', async () => {
    const data = randomBytes(MiB + 5);
    const digest = sha256(data);
    const spool = join(work, 'small-spool');
    const { store, appended, release } = heldStore(join(work, 'small'));
    const fill = new BlobFill(digest, data.length, announced(data.length), body(data), store, spool, new AbortController().signal);
    const first = readAll(fill.reader()!);
    await appended;
    const late = fill.reader();
    expect(late).toBeDefined();
    const [firstBytes, lateBytes] = await Promise.all([first, readAll(late!)]);
    expect(sha256(firstBytes)).toBe(digest);
    expect(sha256(lateBytes)).toBe(digest);
    release();
    await fill.done;
    fill.published();
    expect(await readdir(spool).catch(() => 'absent')).toBe('absent');
  });

  it('refuses a body longer than the size the upstream announced, at the first byte past it', async () => {
    const data = randomBytes(6 * MiB);
    const fill = new BlobFill(sha256(data), MiB, announced(MiB), body(data), new FilesystemBlobStore(join(work, 'liar')), join(work, 'liar-spool'), new AbortController().signal);
    let received = 0;
    const read = (async () => {
      for await (const chunk of fill.reader()!) received += (chunk as Buffer).length;
    })();
    await expect(read).rejects.toThrow(/more than the 1048576 bytes/);
    await expect(fill.done).rejects.toThrow(/more than the 1048576 bytes/);
    expect(received).toBeLessThan(MiB);
    expect(await readdir(join(work, 'liar', 'uploads')).catch(() => [])).toEqual([]);
  });

  it("holds a body of unannounced length to the project's quota while it streams, and keeps none of it", async () => {
    const data = randomBytes(24 * MiB);
    const budget = new UploadBudget(0, MAX_SIZE, new QuotaRoom('tight', 3 * MiB, MiB), undefined);
    const stored = join(work, 'unannounced');
    const spool = join(work, 'unannounced-spool');
    const source = body(data);
    const fill = new BlobFill(sha256(data), undefined, budget, source, new FilesystemBlobStore(stored), spool, new AbortController().signal);
    let received = 0;
    const read = (async () => {
      for await (const chunk of fill.reader()!) received += (chunk as Buffer).length;
    })();
    await expect(read).rejects.toMatchObject({ code: 'DENIED' });
    await expect(fill.done).rejects.toThrow(/quota/);
    expect(received).toBeLessThanOrEqual(2 * MiB);
    // The source was given up well before its end (a stream buffers at most a few MiB ahead).
    expect(source.destroyed).toBe(true);
    expect(await readdir(join(stored, 'uploads')).catch(() => [])).toEqual([]);
    await sleep(100);
    expect(await readdir(spool)).toEqual([]);
  });

  it('holds a body of unannounced length to the largest blob the registry accepts', async () => {
    const data = randomBytes(12 * MiB);
    const budget = new UploadBudget(0, 5 * MiB, undefined, undefined);
    const fill = new BlobFill(sha256(data), undefined, budget, body(data), new FilesystemBlobStore(join(work, 'huge')), join(work, 'huge-spool'), new AbortController().signal);
    const read = (async () => {
      for await (const _ of fill.reader()!);
    })();
    await expect(read).rejects.toMatchObject({ code: 'SIZE_INVALID', httpStatus: 413 });
    await expect(fill.done).rejects.toThrow(/largest blob this registry accepts \(5242880 bytes\)/);
    expect(await readdir(join(work, 'huge', 'uploads')).catch(() => [])).toEqual([]);
  });
  it('gives up an upstream that trickles, sending less than the minimum in two windows in a row, and fails its readers', async () => {
    // 100 bytes every 20 ms: never idle, but about 5 KB/s against a minimum of 64 KiB per 300 ms.
    let timer: NodeJS.Timeout | undefined;
    const trickle = new Readable({
      read() {
        timer ??= setInterval(() => this.push(randomBytes(100)), 20);
      },
      destroy(err, callback) {
        clearInterval(timer);
        callback(err);
      },
    });
    const started = Date.now();
    const fill = new BlobFill(`sha256:${'a'.repeat(64)}`, MiB, announced(MiB), trickle, new FilesystemBlobStore(join(work, 'trickle')), join(work, 'trickle-spool'), new AbortController().signal, { windowMs: 300, bytes: 64 * 1024 });
    const read = (async () => {
      for await (const _ of fill.reader()!);
    })();
    await expect(read).rejects.toMatchObject({ name: 'RemoteError', failure: 'timeout' });
    await expect(fill.done).rejects.toThrow(/fewer than the 65536 a fill needs/);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(trickle.destroyed).toBe(true);
    expect(await readdir(join(work, 'trickle', 'uploads')).catch(() => [])).toEqual([]);
  });

  it('lets one short window pass: the last bytes of a body, sent after a pause, may straddle a window', async () => {
    // 80 KiB at once, 10 KiB after 400 ms (the window 300-600 ms gets only those), the last 10 KiB at 700 ms.
    const data = randomBytes(100 * 1024);
    const pieces = [data.subarray(0, 80 * 1024), data.subarray(80 * 1024, 90 * 1024), data.subarray(90 * 1024)];
    const at = [0, 400, 700];
    const started = Date.now();
    let next = 0;
    const tail = new Readable({
      read() {
        if (next > at.length) return;
        const i = next++;
        if (i === at.length) return void this.push(null);
        setTimeout(() => this.push(pieces[i]), Math.max(0, at[i]! - (Date.now() - started)));
      },
    });
    const fill = new BlobFill(sha256(data), data.length, announced(data.length), tail, new FilesystemBlobStore(join(work, 'tail')), join(work, 'tail-spool'), new AbortController().signal, { windowMs: 300, bytes: 64 * 1024 });
    expect(sha256(await readAll(fill.reader()!))).toBe(sha256(data));
    expect((await fill.done).size).toBe(data.length);
    fill.published();
  });

  it('does not count against the upstream a window in which the fill itself was the slow side', async () => {
    const data = randomBytes(3 * MiB);
    const digest = sha256(data);
    const store = new FilesystemBlobStore(join(work, 'slow-store'));
    // Storage takes nothing for 1 s (three windows), then everything: the body waits on Wharf, not the upstream.
    const slow = Object.create(store) as BlobStore;
    slow.appendUpload = async (id, state, offset, body, signal, hints) => {
      await sleep(1_000);
      return store.appendUpload(id, state, offset, body, signal, hints);
    };
    const fill = new BlobFill(digest, data.length, announced(data.length), body(data), slow, join(work, 'spool'), new AbortController().signal, { windowMs: 300, bytes: 64 * 1024 });
    expect(sha256(await readAll(fill.reader()!))).toBe(digest);
    expect((await fill.done).size).toBe(data.length);
    fill.published();
  });
  it('removes the spool once the fill ends when a reader was given up before its first read (a client that left early)', async () => {
    const data = randomBytes(6 * MiB);
    const spool = join(work, 'left-spool');
    const fill = new BlobFill(sha256(data), data.length, announced(data.length), body(data), new FilesystemBlobStore(join(work, 'left')), spool, new AbortController().signal);
    fill.reader()!.destroy();
    await fill.done;
    fill.published();
    await sleep(200);
    expect(await readdir(spool)).toEqual([]);
  });

  it("lets go of a small blob's bytes once the fill has ended and its last reader is done, while the fill itself lives on", async () => {
    setFlagsFromString('--expose-gc');
    const collect = runInNewContext('gc') as () => void;
    const data = randomBytes(MiB);
    // Pieces of their own (not views of `data`), made as the body is read, so that nothing but the fill can hold them.
    const held: WeakRef<Buffer>[] = [];
    const upstream = Readable.from(
      (function* () {
        for (let at = 0; at < data.length; at += 64 * 1024) {
          const piece = Buffer.from(data.subarray(at, at + 64 * 1024));
          held.push(new WeakRef(piece));
          yield piece;
        }
      })(),
      { objectMode: false },
    );
    const fill = new BlobFill(sha256(data), data.length, announced(data.length), upstream, new FilesystemBlobStore(join(work, 'let-go')), join(work, 'let-go-spool'), new AbortController().signal);
    expect(sha256(await readAll(fill.reader()!))).toBe(sha256(data));
    await fill.done;
    await sleep(50);
    collect();
    expect(held.filter((ref) => ref.deref() !== undefined)).toHaveLength(0);
    // Not published yet: the fill is still reachable (here, and in a registry until the blob is linked).
    fill.published();
  });
});
