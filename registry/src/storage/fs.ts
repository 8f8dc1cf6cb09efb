import { randomBytes } from 'node:crypto';
import { constants, createReadStream, createWriteStream, open as openCallback } from 'node:fs';
import { mkdir, open, opendir, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { BlobNotFoundError, type AppendHints, type AppendResult, type BlobInfo, type BlobStore, type ByteRange, type StoredBlob, type UploadState } from './blob-store.js';
import { BatchingFileWriter } from './batching-file-writer.js';
import { BufferPool } from './buffer-pool.js';
import { FileRangeStream } from './file-range-stream.js';
import { BLOBS_PREFIX, blobKey, digestFromBlobKey, uploadAssembledFileKey, uploadDirKey, uploadFilePrefix, uploadIdOfName, uploadPartFileKey, UPLOADS_PREFIX } from './paths.js';

const IO_CHUNK = 1024 * 1024;

/** Download buffers shared by every read: enough for a few dozen downloads in flight to reuse. */
const readBuffers = new BufferPool(IO_CHUNK, 64);

interface Part {
  key: string;
  size: number;
  /** Flushed to disk when it was written (the sole part of an append marked `last`). */
  synced?: boolean;
}

interface FsUploadState extends UploadState {
  parts: Part[];
}

function partsOf(state: UploadState): Part[] {
  return Array.isArray(state.parts) ? (state.parts as Part[]) : [];
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

const openFd = promisify(openCallback);

/** Runs `op`; if it fails with ENOENT, runs `prepare` (creating a directory) and `op` once more. */
async function ifMissing<T>(op: () => Promise<T>, prepare: () => Promise<unknown>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await prepare();
    return op();
  }
}

async function closed(stream: Writable): Promise<void> {
  if (stream.closed) return;
  await finished(stream).catch(() => undefined);
}

/**
 * Blobs on a local or shared (RWX) filesystem. Each append goes to its own part file;
 * commit joins the accepted parts (a rename when there is one), fsyncs, and renames
 * the result into blobs/, so a blob is either whole or absent. Concurrent commits of
 * the same digest rename identical content over each other.
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
    try {
      const last = range ? range.end : (await handle.stat()).size - 1;
      return new FileRangeStream(handle, range?.start ?? 0, last, readBuffers);
    } catch (err) {
      await handle.close();
      throw err;
    }
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

  /** Nothing is stored until the first append: a session may never receive a byte. */
  async startUpload(): Promise<UploadState> {
    return { parts: [] } satisfies FsUploadState;
  }

  async appendUpload(id: string, state: UploadState, offset: number, body: Readable, signal?: AbortSignal, hints: AppendHints = {}): Promise<AppendResult> {
    const key = uploadPartFileKey(id, offset, randomBytes(8).toString('hex'));
    const file = this.path(key);
    const fd = await ifMissing(
      () => openFd(file, 'wx'),
      () => mkdir(this.path(UPLOADS_PREFIX), { recursive: true }),
    );
    // Flushed now only when this part will be the whole blob: commit renames it as it is
    // (several parts are joined into a new file, which commit flushes instead).
    const sole = hints.last === true && partsOf(state).length === 0;
    const out = new BatchingFileWriter(fd, IO_CHUNK, sole);
    try {
      await pipeline(body, out, { signal });
    } catch (err) {
      // Wait until the descriptor is closed so no late write can land after we return.
      await closed(out);
      await rm(file, { force: true });
      throw err;
    }
    const written = out.bytesWritten;
    const part: Part = sole ? { key, size: written, synced: true } : { key, size: written };
    const parts = written > 0 ? [...partsOf(state), part] : partsOf(state);
    if (written === 0) await rm(file, { force: true });
    return { state: { parts } satisfies FsUploadState, size: offset + written };
  }

  async readUpload(id: string, state: UploadState, size: number, signal?: AbortSignal): Promise<Readable> {
    const parts = this.acceptedParts(id, state, size);
    const out = new PassThrough({ highWaterMark: IO_CHUNK });
    (async () => {
      for (const part of parts) await pipeline(createReadStream(this.path(part.key), { highWaterMark: IO_CHUNK, signal }), out, { end: false });
      out.end();
    })().catch((err: Error) => out.destroy(err));
    return out;
  }

  async commitUpload(id: string, state: UploadState, size: number, digest: string, signal?: AbortSignal): Promise<void> {
    const parts = this.acceptedParts(id, state, size);
    let source: string;
    if (parts.length === 1) {
      source = this.path(parts[0]!.key);
    } else {
      source = this.path(uploadAssembledFileKey(id));
      await pipeline(await this.readUpload(id, state, size, signal), createWriteStream(source, { highWaterMark: IO_CHUNK }), { signal });
    }
    if (parts.length !== 1 || !parts[0]!.synced) {
      const handle = await open(source, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    const target = this.path(blobKey(digest));
    await ifMissing(
      () => rename(source, target),
      () => mkdir(dirname(target), { recursive: true }),
    );
    // The blob is in place; anything this fails to remove is the purge job's (jobs/upload-purge.ts).
    await this.removeUploadFiles(id).catch(() => undefined);
  }

  async abortUpload(id: string): Promise<void> {
    await this.removeUploadFiles(id);
  }

  /**
   * Removes what is left of upload `id`: the parts a commit joined, and parts of appends
   * that lost a race or were still being written when the upload ended, which no state
   * names. One listing of uploads/, which holds only uploads in progress.
   */
  private async removeUploadFiles(id: string): Promise<void> {
    const names = await readdir(this.path(UPLOADS_PREFIX)).catch(() => [] as string[]);
    const prefix = uploadFilePrefix(id).slice(UPLOADS_PREFIX.length);
    await Promise.all(
      names.map((name) => {
        const path = join(this.path(UPLOADS_PREFIX), name);
        if (name.startsWith(prefix)) return unlink(path).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
        // A directory of the earlier layout (uploads/<id>/part-…), from before an upgrade.
        if (name === id) return rm(path, { recursive: true, force: true });
        return undefined;
      }),
    );
  }

  async *listUploads(): AsyncIterable<{ id: string; modifiedAt: Date }> {
    const latest = new Map<string, Date>();
    for (const name of await readdir(this.path(UPLOADS_PREFIX)).catch(() => [] as string[])) {
      const id = uploadIdOfName(name);
      if (!id) continue;
      const s = await stat(join(this.path(UPLOADS_PREFIX), name)).catch(() => undefined);
      const seen = latest.get(id);
      if (s && (!seen || s.mtime > seen)) latest.set(id, s.mtime);
    }
    for (const [id, modifiedAt] of latest) yield { id, modifiedAt };
  }

  /** The parts the database accepted, checked against the size it records. */
  private acceptedParts(id: string, state: UploadState, size: number): Part[] {
    const parts = partsOf(state);
    const total = parts.reduce((sum, p) => sum + p.size, 0);
    if (total !== size) throw new Error(`upload ${id}: parts hold ${total} bytes but the session records ${size}`);
    // Parts written before an upgrade sit in the upload's directory (the earlier layout).
    const prefixes = [`${uploadFilePrefix(id)}part-`, `${uploadDirKey(id)}/part-`];
    const inUpload = (key: string) => prefixes.some((prefix) => key.startsWith(prefix)) && !key.includes('..') && !key.slice(UPLOADS_PREFIX.length + 37).includes('/');
    if (!parts.every((p) => inUpload(p.key))) throw new Error(`upload ${id}: state names a part outside the upload`);
    return parts;
  }
}
