// The source side of a blob copy to a remote destination: the bytes reach the writer
// over reused buffers, and the source file is closed whatever the request did with them.
import { open, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyArtifact } from '../../src/replication/copy.js';
import type { BlobUpload, DestinationEndpoint, SourceEndpoint } from '../../src/replication/endpoints.js';
import { BufferPool } from '../../src/storage/buffer-pool.js';
import { FileRangeStream } from '../../src/storage/file-range-stream.js';
import { buildImage, type Image } from '../support/oci.js';
import { removeDir, tempDir } from '../support/registry.js';

describe('copyArtifact: a blob sent to a remote destination', () => {
  let dir: string;
  let file: string;
  let image: Image;
  let layer: Buffer;

  beforeAll(async () => {
    image = await buildImage({ layers: 1, payloadSize: 300 * 1024 });
    layer = image.layers[0]!.data;
    dir = await tempDir('wharf-copy-source-');
    file = join(dir, 'layer');
    await writeFile(file, layer);
  });
  afterAll(() => removeDir(dir));

  /** A source whose layer is a file read through FileRangeStream, as the filesystem store serves it; it keeps every handle it opened. */
  function source(handles: FileHandle[]): SourceEndpoint {
    return {
      label: 'test source',
      repositories: async () => ['app'],
      tags: async () => ['v1'],
      manifest: async () => ({ digest: image.manifest.digest, mediaType: image.mediaType, content: image.manifest.data }),
      blob: async (_repository, digest, offset, length) => {
        if (digest !== image.layers[0]!.digest) return Readable.from([image.config.data.subarray(offset, offset + length)]);
        const handle = await open(file, 'r');
        handles.push(handle);
        return new FileRangeStream(handle, offset, offset + length - 1, new BufferPool(64 * 1024, 2));
      },
      referrers: async () => [],
    };
  }

  function destination(putBlob: (upload: BlobUpload) => Promise<number>): DestinationEndpoint {
    return {
      label: 'test destination',
      manifestDigest: async () => undefined,
      hasBlob: async () => false,
      mountBlob: async () => false,
      putBlob,
      putManifest: async () => undefined,
      deleteManifest: async () => false,
    };
  }

  const copy = (src: SourceEndpoint, dst: DestinationEndpoint, chunkSize: number) =>
    copyArtifact({
      source: src,
      destination: dst,
      srcRepository: 'app',
      dstRepository: 'app',
      digest: image.manifest.digest,
      tags: ['v1'],
      override: true,
      copyReferrers: false,
      bandwidthBytesPerSecond: 0,
      chunkSize,
      resume: new Map(),
      saveCheckpoints: async () => undefined,
      log: () => undefined,
      signal: new AbortController().signal,
    });

  const isClosed = (handle: FileHandle) => handle.stat().then(
    () => false,
    () => true,
  );

  it('closes the source file when the request fails before reading the body (connection refused)', async () => {
    const handles: FileHandle[] = [];
    const refused = destination(async (upload) => upload.sendChunks(0, upload.size, async () => Promise.reject(new Error('connect ECONNREFUSED'))));
    await expect(copy(source(handles), refused, 1024 * 1024)).rejects.toThrow(/ECONNREFUSED/);
    expect(handles).toHaveLength(1);
    expect(await isClosed(handles[0]!)).toBe(true);
  });

  it('closes it when the request stops after the first chunk, and sends every chunk intact when read through', async () => {
    const handles: FileHandle[] = [];
    const hangsUp = destination(async (upload) =>
      upload.sendChunks(0, upload.size, async (chunks) => {
        for await (const _ of chunks) throw new Error('socket hang up');
        return 0;
      }),
    );
    await expect(copy(source(handles), hangsUp, 1024 * 1024)).rejects.toThrow(/socket hang up/);
    expect(await isClosed(handles[0]!)).toBe(true);

    const received = new Map<string, Buffer>();
    const keeps = destination(async (upload) => {
      const parts: Buffer[] = [];
      // Chunks of 100 KiB: the layer goes in four requests, each over its own source stream.
      for (let offset = 0; offset < upload.size; offset += 100 * 1024) {
        const length = Math.min(100 * 1024, upload.size - offset);
        await upload.sendChunks(offset, length, async (chunks) => {
          for await (const chunk of chunks) parts.push(Buffer.from(chunk));
        });
      }
      received.set(upload.digest, Buffer.concat(parts));
      return upload.size;
    });
    const after: FileHandle[] = [];
    await copy(source(after), keeps, 100 * 1024);
    expect(received.get(image.layers[0]!.digest)!.equals(layer)).toBe(true);
    expect(after).toHaveLength(4);
    for (const handle of after) expect(await isClosed(handle)).toBe(true);
  });
});
