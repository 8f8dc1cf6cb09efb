import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { fstatSync, openSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlignedSlabPool } from '../../src/storage/aligned-slabs.js';
import { DirectFileWriter } from '../../src/storage/direct-file-writer.js';
import { DIRECT_CREATE_FLAGS, supportsDirectIo, uploadSlabs } from '../../src/storage/direct-io.js';
import { FilesystemBlobStore } from '../../src/storage/fs.js';
import { removeDir, tempDir } from '../support/registry.js';

const SLAB = 64 * 1024;

describe('DirectFileWriter (upload bodies with O_DIRECT)', () => {
  let dir: string;
  const pool = new AlignedSlabPool(SLAB, 4);
  beforeAll(async () => {
    dir = await tempDir('wharf-direct-');
  });
  afterAll(() => removeDir(dir));

  it('the test directory takes direct writes (otherwise this suite would test nothing)', async () => {
    expect(await supportsDirectIo(dir)).toBe(true);
  });

  it.each([
    ['two slabs', 2],
    ['one slab', 1],
  ])('writes odd-sized pieces byte for byte, truncating the padded tail (%s)', async (_label, slabCount) => {
    const pieces = [...Array.from({ length: 40 }, (_, i) => randomBytes(1000 + i * 97)), randomBytes(1234)];
    const total = pieces.reduce((n, p) => n + p.length, 0);
    const file = join(dir, `odd-${slabCount}`);
    const writer = new DirectFileWriter(openSync(file, DIRECT_CREATE_FLAGS), pool.acquireUpTo(slabCount), pool, true);
    await pipeline(Readable.from(pieces), writer);
    expect((await stat(file)).size).toBe(total);
    expect((await readFile(file)).equals(Buffer.concat(pieces))).toBe(true);
    expect(writer.bytesWritten).toBe(total);
    expect(writer.writes).toBe(Math.ceil(total / SLAB));
    expect(pool.idleCount).toBe(4);
  });

  it('writes an exact multiple of the slab without a padded tail', async () => {
    const body = randomBytes(3 * SLAB);
    const file = join(dir, 'exact');
    const writer = new DirectFileWriter(openSync(file, DIRECT_CREATE_FLAGS), pool.acquireUpTo(2), pool, false);
    await pipeline(Readable.from([body.subarray(0, 100), body.subarray(100)]), writer);
    expect((await readFile(file)).equals(body)).toBe(true);
    expect(writer.writes).toBe(3);
  });

  it('writes nothing for an empty body', async () => {
    const file = join(dir, 'empty');
    const writer = new DirectFileWriter(openSync(file, DIRECT_CREATE_FLAGS), pool.acquireUpTo(2), pool, true);
    await pipeline(Readable.from([]), writer);
    expect((await stat(file)).size).toBe(0);
    expect(writer.writes).toBe(0);
  });

  it('closes its descriptor and returns its slabs when the body fails, after the writes in flight', async () => {
    const fd = openSync(join(dir, 'failed'), DIRECT_CREATE_FLAGS);
    const writer = new DirectFileWriter(fd, pool.acquireUpTo(2), pool, false);
    expect(pool.idleCount).toBe(2);
    let sent = 0;
    const failing = new Readable({
      read() {
        this.push(randomBytes(SLAB / 2));
        if (++sent === 5) setImmediate(() => this.destroy(new Error('client went away')));
      },
    });
    await expect(pipeline(failing, writer)).rejects.toThrow('client went away');
    await new Promise((resolve) => (writer.closed ? resolve(undefined) : writer.once('close', resolve)));
    expect(() => fstatSync(fd)).toThrow(/EBADF/);
    expect(pool.idleCount).toBe(4);
  });
});

describe('FilesystemBlobStore direct I/O choice', () => {
  it('uses direct writes on a filesystem that takes them, and not when told not to', async () => {
    const dir = await tempDir('wharf-direct-store-');
    try {
      expect((await new FilesystemBlobStore(join(dir, 'a')).init()).directIo).toBe(true);
      expect((await new FilesystemBlobStore(join(dir, 'b'), { directIo: false }).init()).directIo).toBe(false);
    } finally {
      await removeDir(dir);
    }
  });

  it('writes buffered when every slab is taken, and the blob still lands intact', async () => {
    const dir = await tempDir('wharf-direct-busy-');
    const taken = uploadSlabs().acquireUpTo(Number.MAX_SAFE_INTEGER);
    try {
      const store = await new FilesystemBlobStore(dir).init();
      expect(store.directIo).toBe(true);
      const body = randomBytes(300_000);
      const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
      const id = randomUUID();
      const { state, size } = await store.appendUpload(id, await store.startUpload(), 0, Readable.from([body]), undefined, { last: true });
      await store.commitUpload(id, state, size, digest);
      const chunks: Buffer[] = [];
      for await (const c of await store.read(digest)) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).equals(body)).toBe(true);
    } finally {
      for (const slab of taken) uploadSlabs().release(slab);
      await removeDir(dir);
    }
  });
});
