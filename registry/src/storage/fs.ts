import { randomBytes } from 'node:crypto';
import { constants, createWriteStream, close as closeCallback, fdatasync as fdatasyncCallback, fstat as fstatCallback, ftruncate as ftruncateCallback, open as openCallback, type BigIntStats } from 'node:fs';
import { mkdir, open, opendir, readdir, rename, rm, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { BlobNotFoundError, type AppendHints, type AppendResult, type BlobInfo, type BlobStore, type ByteRange, type CommitHints, type StoredBlob, type UploadState } from './blob-store.js';
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
  /** Flushed to disk when it was written (its last append was marked `last`). */
  synced?: boolean;
  /**
   * The file's identity (`dev:ino`). An append that claims the part (renames it to
   * extend it) and then fails to have the new name recorded leaves the part under a name
   * the state does not know; reads find it again by this.
   */
  inode?: string;
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
const fstatFd = promisify(fstatCallback);
const ftruncateFd = promisify(ftruncateCallback);
const fdatasyncFd = promisify(fdatasyncCallback);
const closeFdAsync = promisify(closeCallback);

function attempt(): string {
  return randomBytes(8).toString('hex');
}

function inodeOf(s: BigIntStats): string {
  return `${s.dev}:${s.ino}`;
}

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

function closeFd(fd: number): void {
  closeCallback(fd, () => undefined);
}

async function closed(stream: Writable): Promise<void> {
  if (stream.closed) return;
  await finished(stream).catch(() => undefined);
}

/**
 * Blobs on a local or shared (RWX) filesystem. An upload's bytes live in part files
 * under uploads/. An append claims the last part by renaming it (only one of racing
 * requests can) and writes after its accepted bytes, so an upload sent in many chunks
 * stays one file; an append that finds the part claimed by another request writes a
 * part of its own. Commit claims the sole part the same way, cuts off anything past
 * the accepted size, fsyncs, and renames it into blobs/ (several parts, left by races,
 * are joined into a new file), so a blob is either whole or absent and no request can
 * still be writing into a published blob. Concurrent commits of the same digest rename
 * identical content over each other.
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
    // Checked like a commit's: the append may rename the last part.
    const parts = this.acceptedParts(id, state, offset);
    const tail = parts.at(-1);
    if (tail?.inode) {
      const key = uploadPartFileKey(id, offset - tail.size, attempt());
      const fd = await this.claim(tail, key, 'r+');
      if (fd !== undefined) return this.extendPart(parts, tail, key, fd, offset, body, signal, hints.last === true && parts.length === 1);
    }
    return this.addPart(id, parts, offset, body, signal, hints.last === true && parts.length === 0);
  }

  /**
   * Renames `part` to `key` and opens it: the caller then has it to itself. Undefined
   * when another request claimed it first (or it is gone).
   */
  private async claim(part: Part, key: string, flags: string): Promise<number | undefined> {
    try {
      await rename(this.path(part.key), this.path(key));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const fd = await openFd(this.path(key), flags);
    if (part.inode && inodeOf(await fstatFd(fd, { bigint: true })) !== part.inode) {
      closeFd(fd);
      await rename(this.path(key), this.path(part.key)).catch(() => undefined);
      return undefined;
    }
    return fd;
  }

  /** Writes `body` after the accepted bytes of the claimed last part; on failure the part is as it was. */
  private async extendPart(parts: Part[], tail: Part, key: string, fd: number, offset: number, body: Readable, signal: AbortSignal | undefined, sync: boolean): Promise<AppendResult> {
    const restore = async () => {
      await truncate(this.path(key), tail.size).catch(() => undefined);
      await rename(this.path(key), this.path(tail.key)).catch(() => undefined);
    };
    let out;
    try {
      // Bytes past the accepted ones are what a failed or refused append left.
      await ftruncateFd(fd, tail.size);
      out = new BatchingFileWriter(fd, IO_CHUNK, sync, tail.size);
    } catch (err) {
      closeFd(fd);
      await restore();
      throw err;
    }
    try {
      await pipeline(body, out, { signal });
    } catch (err) {
      await closed(out);
      await restore();
      throw err;
    }
    const written = out.bytesWritten;
    if (written === 0) {
      await rename(this.path(key), this.path(tail.key));
      return { state: { parts } satisfies FsUploadState, size: offset };
    }
    const extended: Part = { key, size: tail.size + written, inode: tail.inode, ...(sync && { synced: true }) };
    return { state: { parts: [...parts.slice(0, -1), extended] } satisfies FsUploadState, size: offset + written };
  }

  /** Writes `body` to a new part file; `sync` when it will be the whole blob (commit renames it as it is). */
  private async addPart(id: string, parts: Part[], offset: number, body: Readable, signal: AbortSignal | undefined, sync: boolean): Promise<AppendResult> {
    const key = uploadPartFileKey(id, offset, attempt());
    const file = this.path(key);
    const fd = await ifMissing(
      () => openFd(file, 'wx'),
      () => mkdir(this.path(UPLOADS_PREFIX), { recursive: true }),
    );
    let inode;
    let out;
    try {
      inode = inodeOf(await fstatFd(fd, { bigint: true }));
      out = new BatchingFileWriter(fd, IO_CHUNK, sync);
    } catch (err) {
      closeFd(fd);
      await rm(file, { force: true });
      throw err;
    }
    try {
      await pipeline(body, out, { signal });
    } catch (err) {
      // Wait until the descriptor is closed so no late write can land after we return.
      await closed(out);
      await rm(file, { force: true });
      throw err;
    }
    const written = out.bytesWritten;
    if (written === 0) {
      await rm(file, { force: true });
      return { state: { parts } satisfies FsUploadState, size: offset };
    }
    const part: Part = { key, size: written, inode, ...(sync && { synced: true }) };
    return { state: { parts: [...parts, part] } satisfies FsUploadState, size: offset + written };
  }

  async readUpload(id: string, state: UploadState, size: number, signal?: AbortSignal): Promise<Readable> {
    const parts = this.acceptedParts(id, state, size);
    const out = new PassThrough({ highWaterMark: IO_CHUNK });
    (async () => {
      for (const part of parts) {
        const handle = await this.openPart(id, part);
        // Only the accepted bytes: an append may be writing after them.
        await pipeline(handle.createReadStream({ start: 0, end: part.size - 1, highWaterMark: IO_CHUNK, signal }), out, { end: false });
      }
      out.end();
    })().catch((err: Error) => out.destroy(err));
    return out;
  }

  /** Opens a part for reading, by its name or, when an append renamed it and could not record that, by its inode. */
  private async openPart(id: string, part: Part): Promise<FileHandle> {
    for (let attempts = 0; attempts < 3; attempts++) {
      try {
        return await open(this.path(part.key), 'r');
      } catch (err) {
        if (!isNotFound(err) || !part.inode) throw err;
      }
      const names = await readdir(this.path(UPLOADS_PREFIX)).catch(() => [] as string[]);
      const prefix = uploadFilePrefix(id).slice(UPLOADS_PREFIX.length);
      for (const name of names.filter((n) => n.startsWith(prefix))) {
        const handle = await open(join(this.path(UPLOADS_PREFIX), name), 'r').catch(() => undefined);
        if (!handle) continue;
        const found = await handle.stat({ bigint: true }).then((s) => inodeOf(s) === part.inode, () => false);
        if (found) return handle;
        await handle.close();
      }
    }
    throw new Error(`upload ${id}: part ${part.key} is gone (the upload was committed or aborted meanwhile)`);
  }

  async commitUpload(id: string, state: UploadState, size: number, digest: string, signal?: AbortSignal, hints: CommitHints = {}): Promise<void> {
    const parts = this.acceptedParts(id, state, size);
    const target = this.path(blobKey(digest));
    // Written whole and flushed by its one append, and nobody else's to claim: one rename publishes it.
    if (hints.exclusive && parts.length === 1 && parts[0]!.synced) {
      await ifMissing(
        () => rename(this.path(parts[0]!.key), target),
        () => mkdir(dirname(target), { recursive: true }),
      );
      return;
    }
    const key = uploadAssembledFileKey(id, attempt());
    const source = this.path(key);
    const sole = parts.length === 1 ? await this.claim(parts[0]!, key, 'r+') : undefined;
    if (sole !== undefined) {
      try {
        const held = (await fstatFd(sole)).size;
        if (held < size) throw new Error(`upload ${id}: part ${parts[0]!.key} holds ${held} bytes, fewer than the ${size} accepted`);
        if (held > size) await ftruncateFd(sole, size);
        if (held > size || !parts[0]!.synced) await fdatasyncFd(sole);
      } finally {
        await closeFdAsync(sole);
      }
    } else {
      await pipeline(await this.readUpload(id, state, size, signal), createWriteStream(source, { flags: 'wx', highWaterMark: IO_CHUNK }), { signal });
      const handle = await open(source, 'r+');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
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
