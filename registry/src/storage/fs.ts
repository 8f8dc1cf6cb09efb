import { constants, createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, opendir, readdir, rename, rm, stat, truncate } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlobNotFoundError, type AppendResult, type BlobInfo, type BlobStore, type ByteRange, type StoredBlob, type UploadState } from './blob-store.js';
import { BLOBS_PREFIX, blobKey, digestFromBlobKey, isUploadId, uploadDataKey, uploadDirKey, UPLOADS_PREFIX } from './paths.js';

const READ_CHUNK = 1024 * 1024;

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

/**
 * Blobs on a local or shared filesystem. Upload bytes go to uploads/<id>/data; commit
 * fsyncs the file and renames it into blobs/, so a blob is either whole or absent.
 * Concurrent commits of the same digest rename identical content over each other.
 */
export class FilesystemBlobStore implements BlobStore {
  readonly driver = 'filesystem';

  constructor(private readonly root: string) {}

  async init(): Promise<this> {
    await mkdir(join(this.root, BLOBS_PREFIX), { recursive: true });
    await mkdir(join(this.root, UPLOADS_PREFIX), { recursive: true });
    return this;
  }

  private path(key: string): string {
    return join(this.root, key);
  }

  async stat(digest: string): Promise<BlobInfo | undefined> {
    try {
      const s = await stat(this.path(blobKey(digest)));
      return { size: s.size, modifiedAt: s.mtime };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async read(digest: string, range?: ByteRange): Promise<Readable> {
    let handle;
    try {
      handle = await open(this.path(blobKey(digest)), constants.O_RDONLY);
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFoundError(digest);
      throw err;
    }
    return handle.createReadStream({ start: range?.start, end: range?.end, highWaterMark: READ_CHUNK, autoClose: true });
  }

  async delete(digest: string): Promise<void> {
    await rm(this.path(blobKey(digest)), { force: true });
  }

  async *list(): AsyncIterable<StoredBlob> {
    const top = this.path(BLOBS_PREFIX);
    for (const algorithm of await readdir(top).catch(() => [] as string[])) {
      for (const prefix of await readdir(join(top, algorithm)).catch(() => [] as string[])) {
        const dir = await opendir(join(top, algorithm, prefix)).catch(() => undefined);
        if (!dir) continue;
        for await (const entry of dir) {
          const digest = digestFromBlobKey(`${BLOBS_PREFIX}${algorithm}/${prefix}/${entry.name}`);
          if (!digest) continue;
          const s = await stat(join(top, algorithm, prefix, entry.name)).catch(() => undefined);
          if (s) yield { digest, size: s.size, modifiedAt: s.mtime };
        }
      }
    }
  }

  async redirectUrl(): Promise<string | undefined> {
    return undefined;
  }

  async ping(): Promise<void> {
    await stat(this.path(BLOBS_PREFIX));
  }

  async startUpload(id: string): Promise<UploadState> {
    const file = this.path(uploadDataKey(id));
    await mkdir(dirname(file), { recursive: true });
    await (await open(file, 'w')).close();
    return {};
  }

  async appendUpload(id: string, state: UploadState, offset: number, body: Readable, signal?: AbortSignal): Promise<AppendResult> {
    const file = this.path(uploadDataKey(id));
    const out = createWriteStream(file, { flags: 'r+', start: offset, highWaterMark: READ_CHUNK });
    try {
      await pipeline(body, out, { signal });
    } catch (err) {
      await truncate(file, offset).catch(() => undefined);
      throw err;
    }
    return { state, size: offset + out.bytesWritten };
  }

  async readUpload(id: string, _state: UploadState, size: number, signal?: AbortSignal): Promise<Readable> {
    if (size === 0) return Readable.from([]);
    return createReadStream(this.path(uploadDataKey(id)), { start: 0, end: size - 1, highWaterMark: READ_CHUNK, signal });
  }

  async commitUpload(id: string, _state: UploadState, size: number, digest: string): Promise<void> {
    const source = this.path(uploadDataKey(id));
    const target = this.path(blobKey(digest));
    const handle = await open(source, 'r+');
    try {
      // A failed append may have left bytes past the acknowledged size.
      await handle.truncate(size);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await mkdir(dirname(target), { recursive: true });
    await rename(source, target);
    await rm(this.path(uploadDirKey(id)), { recursive: true, force: true });
  }

  async abortUpload(id: string): Promise<void> {
    await rm(this.path(uploadDirKey(id)), { recursive: true, force: true });
  }

  async *listUploads(): AsyncIterable<{ id: string; modifiedAt: Date }> {
    for (const id of await readdir(this.path(UPLOADS_PREFIX)).catch(() => [] as string[])) {
      if (!isUploadId(id)) continue;
      const s = await stat(this.path(uploadDirKey(id))).catch(() => undefined);
      if (s) yield { id, modifiedAt: s.mtime };
    }
  }
}
