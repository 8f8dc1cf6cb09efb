import { randomBytes } from 'node:crypto';
import { fstatSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchingFileWriter } from '../../src/storage/batching-file-writer.js';
import { removeDir, tempDir } from '../support/registry.js';

describe('BatchingFileWriter (upload bodies to disk)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('wharf-bfw-');
  });
  afterAll(() => removeDir(dir));

  it('writes 16 KiB pieces as one writev per batch, byte for byte', async () => {
    const pieces = Array.from({ length: 200 }, () => randomBytes(16 * 1024));
    const file = join(dir, 'a');
    const writer = new BatchingFileWriter(openSync(file, 'wx'), 1024 * 1024, true);
    await pipeline(Readable.from(pieces), writer);
    expect((await readFile(file)).equals(Buffer.concat(pieces))).toBe(true);
    expect(writer.bytesWritten).toBe(200 * 16 * 1024);
    // 3.125 MiB in 1 MiB batches: 4 writes, not 200.
    expect(writer.writes).toBe(4);
  });

  it('closes its descriptor when the body fails, after any write in flight', async () => {
    const fd = openSync(join(dir, 'b'), 'wx');
    const writer = new BatchingFileWriter(fd, 64 * 1024, false);
    const failing = new Readable({
      read() {
        this.push(randomBytes(64 * 1024));
        setImmediate(() => this.destroy(new Error('client went away')));
      },
    });
    await expect(pipeline(failing, writer)).rejects.toThrow('client went away');
    await new Promise((resolve) => (writer.closed ? resolve(undefined) : writer.once('close', resolve)));
    expect(() => fstatSync(fd)).toThrow(/EBADF/);
  });
});
