import { randomBytes, randomUUID } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile, rename, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FilesystemBlobStore } from '../../src/storage/fs.js';
import { sha256 } from '../support/oci.js';
import { removeDir, tempDir } from '../support/registry.js';
import { blobStoreDriverSuite } from './driver-suite.js';

blobStoreDriverSuite('filesystem', async () => {
  const dir = await tempDir('wharf-fs-');
  const store = await new FilesystemBlobStore(dir).init();
  return {
    store,
    async uploadBytes() {
      const names = await readdir(join(dir, 'uploads'));
      const sizes = await Promise.all(names.map(async (name) => (await stat(join(dir, 'uploads', name))).size));
      return sizes.reduce((sum, size) => sum + size, 0);
    },
    async cleanup() {
      // Committed and aborted uploads must not leave files behind.
      const left = await readdir(join(dir, 'uploads'));
      await removeDir(dir);
      if (left.length > 0) throw new Error(`upload files left behind: ${left.join(', ')}`);
    },
  };
});

describe('filesystem upload layout', () => {
  let dir: string;
  let store: FilesystemBlobStore;
  beforeAll(async () => {
    dir = await tempDir('wharf-fs-layout-');
    store = await new FilesystemBlobStore(dir).init();
  });
  afterAll(() => removeDir(dir));

  it('keeps an upload in files directly under uploads/, with no directory per upload', async () => {
    const id = randomUUID();
    const { state } = await store.appendUpload(id, await store.startUpload(), 0, Readable.from([randomBytes(100)]));
    const names = await readdir(join(dir, 'uploads'), { withFileTypes: true });
    expect(names.map((d) => [d.name.startsWith(`${id}.part-`), d.isFile()])).toEqual([[true, true]]);
    await store.abortUpload(id);
    expect(await readdir(join(dir, 'uploads'))).toEqual([]);
    expect(state.parts).toHaveLength(1);
  });

  it('commits, lists and removes an upload written in the earlier directory layout', async () => {
    const id = randomUUID();
    const data = randomBytes(5000);
    const key = `uploads/${id}/part-${'0'.padStart(16, '0')}-0123456789abcdef`;
    await mkdir(join(dir, 'uploads', id));
    await writeFile(join(dir, key), data);
    expect((await collectIds(store)).includes(id)).toBe(true);
    await store.commitUpload(id, { parts: [{ key, size: data.length }] }, data.length, sha256(data));
    expect(await readFile(join(dir, 'blobs', 'sha256', sha256(data).slice(7, 9), sha256(data).slice(7)))).toEqual(data);
    expect(await readdir(join(dir, 'uploads'))).toEqual([]);

    const orphan = randomUUID();
    await mkdir(join(dir, 'uploads', orphan));
    await writeFile(join(dir, 'uploads', orphan, 'part-x'), 'left by a crash');
    await store.abortUpload(orphan);
    expect(await readdir(join(dir, 'uploads'))).toEqual([]);
  });

  it('lists an upload once, as old as its newest file', async () => {
    const id = randomUUID();
    let { state, size } = await store.appendUpload(id, await store.startUpload(), 0, Readable.from([randomBytes(10)]));
    // A part without its inode (written before parts recorded it) is not extended: the append writes a second file.
    const parts = (state.parts as { key: string; size: number }[]).map(({ key, size }) => ({ key, size }));
    ({ state, size } = await store.appendUpload(id, { parts }, size, Readable.from([randomBytes(10)])));
    const [older, newer] = (state.parts as { key: string }[]).map((p) => join(dir, p.key));
    await utimes(older!, new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'));
    await utimes(newer!, new Date('2026-02-01T00:00:00Z'), new Date('2026-02-01T00:00:00Z'));
    const listed = [];
    for await (const upload of store.listUploads()) listed.push(upload);
    expect(listed).toEqual([{ id, modifiedAt: new Date('2026-02-01T00:00:00Z') }]);
    await store.abortUpload(id);
    expect(size).toBe(20);
  });

  it('keeps an upload sent in chunks in one file, and publishes that file without copying it', async () => {
    const id = randomUUID();
    const chunks = [randomBytes(300_000), randomBytes(5), randomBytes(1_000_000)];
    let state = await store.startUpload();
    let size = 0;
    for (const chunk of chunks) ({ state, size } = await store.appendUpload(id, state, size, Readable.from([chunk])));
    const names = await readdir(join(dir, 'uploads'));
    expect(names).toHaveLength(1);
    const inode = (await stat(join(dir, 'uploads', names[0]!))).ino;
    const data = Buffer.concat(chunks);
    await store.commitUpload(id, state, size, sha256(data));
    const blob = join(dir, 'blobs', 'sha256', sha256(data).slice(7, 9), sha256(data).slice(7));
    expect((await stat(blob)).ino).toBe(inode);
    expect((await readFile(blob)).equals(data)).toBe(true);
    expect(await readdir(join(dir, 'uploads'))).toEqual([]);
  });

  it('publishes an exclusive upload\'s flushed part by renaming it, and one not flushed by the usual commit', async () => {
    const flushed = randomBytes(80_000);
    const id = randomUUID();
    const { state, size } = await store.appendUpload(id, await store.startUpload(), 0, Readable.from([flushed]), undefined, { last: true });
    const [part] = state.parts as { key: string; synced?: boolean }[];
    expect(part!.synced).toBe(true);
    const inode = (await stat(join(dir, part!.key))).ino;
    await store.commitUpload(id, state, size, sha256(flushed), undefined, { exclusive: true });
    const blob = join(dir, 'blobs', 'sha256', sha256(flushed).slice(7, 9), sha256(flushed).slice(7));
    expect((await stat(blob)).ino).toBe(inode);
    expect((await readFile(blob)).equals(flushed)).toBe(true);

    // Without `last` the part was never flushed: the hint alone does not skip the commit's checks (it cuts off extra bytes).
    const unflushed = randomBytes(60_000);
    const other = randomUUID();
    const appended = await store.appendUpload(other, await store.startUpload(), 0, Readable.from([unflushed]));
    const [unsynced] = appended.state.parts as { key: string }[];
    await appendFile(join(dir, unsynced!.key), randomBytes(100));
    await store.commitUpload(other, appended.state, appended.size, sha256(unflushed), undefined, { exclusive: true });
    expect((await readAll(await store.read(sha256(unflushed)))).equals(unflushed)).toBe(true);
    expect(await readdir(join(dir, 'uploads'))).toEqual([]);
  });

  it('cuts off at commit what a refused append left past the accepted bytes', async () => {
    const id = randomUUID();
    const data = randomBytes(70_000);
    const { state, size } = await store.appendUpload(id, await store.startUpload(), 0, Readable.from([data]));
    const [part] = state.parts as { key: string }[];
    await appendFile(join(dir, part!.key), randomBytes(5000));
    await store.commitUpload(id, state, size, sha256(data));
    expect((await readAll(await store.read(sha256(data)))).equals(data)).toBe(true);
  });

  it('continues an upload whose last part a request took and never gave back (cut off mid-write), without touching that request\'s bytes', async () => {
    const id = randomUUID();
    const first = randomBytes(50_000);
    let { state, size } = await store.appendUpload(id, await store.startUpload(), 0, Readable.from([first]));
    // What a claiming append leaves when it dies: the part renamed, with bytes of its own after the accepted ones.
    const [part] = state.parts as { key: string }[];
    const claimedBy = join(dir, 'uploads', `${id}.part-${'0'.padStart(16, '0')}-00000000deadbeef`);
    await rename(join(dir, part!.key), claimedBy);
    await appendFile(claimedBy, randomBytes(7000));
    const second = randomBytes(30_000);
    ({ state, size } = await store.appendUpload(id, state, size, Readable.from([second])));
    expect((await readAll(await store.readUpload(id, state, size))).equals(Buffer.concat([first, second]))).toBe(true);
    const third = randomBytes(10);
    ({ state, size } = await store.appendUpload(id, state, size, Readable.from([third])));
    const data = Buffer.concat([first, second, third]);
    await store.commitUpload(id, state, size, sha256(data));
    expect((await readAll(await store.read(sha256(data)))).equals(data)).toBe(true);
    expect(await readdir(join(dir, 'uploads'))).toEqual([]);
  });

  it('refuses a state naming a part of another upload', async () => {
    const id = randomUUID();
    const other = randomUUID();
    const key = `uploads/${other}.part-${'0'.padStart(16, '0')}-0123456789abcdef`;
    await expect(store.commitUpload(id, { parts: [{ key, size: 1 }] }, 1, sha256(Buffer.from('x')))).rejects.toThrow(/outside the upload/);
    await expect(store.commitUpload(id, { parts: [{ key: `uploads/${id}.part-/../../${other}`, size: 1 }] }, 1, sha256(Buffer.from('x')))).rejects.toThrow(/outside the upload/);
  });
});

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function collectIds(store: FilesystemBlobStore): Promise<string[]> {
  const ids = [];
  for await (const upload of store.listUploads()) ids.push(upload.id);
  return ids;
}
