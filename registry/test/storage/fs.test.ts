import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
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
    ({ state, size } = await store.appendUpload(id, state, size, Readable.from([randomBytes(10)])));
    const [older, newer] = (state.parts as { key: string }[]).map((p) => join(dir, p.key));
    await utimes(older!, new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'));
    await utimes(newer!, new Date('2026-02-01T00:00:00Z'), new Date('2026-02-01T00:00:00Z'));
    const listed = [];
    for await (const upload of store.listUploads()) listed.push(upload);
    expect(listed).toEqual([{ id, modifiedAt: new Date('2026-02-01T00:00:00Z') }]);
    await store.abortUpload(id);
    expect(size).toBe(20);
  });

  it('refuses a state naming a part of another upload', async () => {
    const id = randomUUID();
    const other = randomUUID();
    const key = `uploads/${other}.part-${'0'.padStart(16, '0')}-0123456789abcdef`;
    await expect(store.commitUpload(id, { parts: [{ key, size: 1 }] }, 1, sha256(Buffer.from('x')))).rejects.toThrow(/outside the upload/);
    await expect(store.commitUpload(id, { parts: [{ key: `uploads/${id}.part-/../../${other}`, size: 1 }] }, 1, sha256(Buffer.from('x')))).rejects.toThrow(/outside the upload/);
  });
});

async function collectIds(store: FilesystemBlobStore): Promise<string[]> {
  const ids = [];
  for await (const upload of store.listUploads()) ids.push(upload.id);
  return ids;
}
