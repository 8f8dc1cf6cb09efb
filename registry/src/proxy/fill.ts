import { randomUUID } from 'node:crypto';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { newHasher, tryParseDigest } from '../oci/digest.js';
import { RemoteError } from '../remote/errors.js';
import type { BlobStore, UploadState } from '../storage/blob-store.js';
import { feed } from '../services/feed.js';
import type { UploadBudget } from '../services/upload-budget.js';
import { bothSettled } from '../services/uploads.js';

const READ_CHUNK = 256 * 1024;

/** The upstream sent bytes that do not hash to the digest asked for. */
export class DigestMismatchError extends Error {
  readonly code = 'DIGEST_MISMATCH';
  constructor(
    readonly expected: string,
    readonly actual: string,
    readonly size: number,
  ) {
    super(`the upstream sent ${size} bytes with digest ${actual} for ${expected}; they were not stored`);
    this.name = 'DigestMismatchError';
  }
}

/** The least an upstream must send in every window while a fill waits for it. */
export interface MinimumRate {
  windowMs: number;
  bytes: number;
}

export interface FillResult {
  uploadId: string;
  state: UploadState;
  size: number;
}

/** Bytes the spool may lag behind what went on to storage before the stream waits for it. */
const SPOOL_LAG = 8 * 1024 * 1024;

/**
 * The most recent bytes a fill keeps in memory (beyond what the spool has yet to take),
 * so that readers which keep up are handed the pieces themselves, without a read of the
 * spool file each: those reads, one thread-pool round trip after another, held a cold
 * pull to about half the upstream's speed (docs/proxy-cache.md, "Performance").
 */
const MEMORY_WINDOW = 4 * 1024 * 1024;

/**
 * Hashes what passes and hands it on to storage at once, while writing it to the spool
 * file in order (a blob that fits in memory has none); readers take each piece from the
 * fill's memory as soon as it is hashed, or from the spool once they have fallen behind.
 * The pieces an upstream body arrives in are small (16-64 KiB socket reads), so one
 * write per piece would be one thread-pool round trip each, taken one after another: that
 * capped a fill at 150-250 MB/s. Instead one `writev` is in flight at a time, and it takes
 * every piece that arrived while the previous one ran. Storage and spool writes overlap;
 * the stream waits only when the spool lags far behind.
 */
class SpoolingTap extends Transform {
  /** Bytes handed to the spool, written or not. */
  private queued = 0;

  get bytes(): number {
    return this.queued;
  }
  private pending: Buffer[] = [];
  private writing: Promise<void> | undefined;
  private failed: Error | undefined;
  /** The transform callback held back while the spool lags by more than SPOOL_LAG. */
  private held: (() => void) | undefined;

  constructor(
    private readonly fill: BlobFill,
    /** Absent for a blob small enough to stay in memory whole. */
    private readonly spool: FileHandle | undefined,
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.failed) return callback(this.failed);
    this.queued += chunk.length;
    if (this.queued > this.fill.budget.bytes) return callback(this.fill.budget.exceeded(this.queued));
    this.fill.hash.update(chunk);
    this.fill.receive(chunk);
    if (!this.spool) return callback(null, chunk);
    this.pending.push(chunk);
    this.writing ??= this.drain();
    if (this.queued - this.fill.written > SPOOL_LAG) this.held = () => callback(this.failed, chunk);
    else callback(null, chunk);
  }

  /** The body has ended and the spool holds all of it: the fill checks the digest before the stream may finish. */
  override _flush(callback: TransformCallback): void {
    (this.writing ?? Promise.resolve()).then(() => callback(this.failed ?? this.fill.verify(this.queued)));
  }

  /** Writes what is pending, in batches, until nothing is; never rejects (a failure is kept in `failed`). */
  private async drain(): Promise<void> {
    const spool = this.spool!;
    while (this.pending.length > 0 && !this.failed) {
      const batch = this.pending;
      this.pending = [];
      const offset = this.fill.written;
      let bytes = 0;
      for (const piece of batch) bytes += piece.length;
      try {
        await writeAll(spool, batch, offset);
      } catch (err) {
        this.failed ??= err as Error;
        break;
      }
      this.fill.advance(bytes);
      if (this.held && this.queued - this.fill.written <= SPOOL_LAG) this.release();
    }
    this.writing = undefined;
    if (this.failed) this.release();
  }

  private release(): void {
    const held = this.held;
    this.held = undefined;
    held?.();
  }
}

/** Writes `buffers` at `position`, continuing after a short write. */
async function writeAll(file: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  while (buffers.length > 0) {
    let { bytesWritten } = await file.writev(buffers, position);
    position += bytesWritten;
    while (buffers.length > 0 && bytesWritten >= buffers[0]!.length) bytesWritten -= buffers.shift()!.length;
    if (bytesWritten > 0) buffers = [buffers[0]!.subarray(bytesWritten), ...buffers.slice(1)];
  }
}

/**
 * One blob on its way from an upstream into storage, readable by any number of clients
 * while it arrives. The bytes are hashed, written to storage as an upload, and spooled
 * to a local file that each client's reader follows at its own pace: a slow or
 * departed client never holds up the fill or another client. A reader sends the last
 * byte only once the whole body is spooled and its digest verified, so no client takes
 * a wrong blob for a complete one; a failure before that fails every reader. Storing
 * the blob (the flush to disk, the link) goes on after the readers are done: waiting
 * for it held every cold pull's last byte back by the time a flush of the whole blob
 * takes, a third of the pull of a large layer (docs/proxy-cache.md, "Performance").
 */
export class BlobFill {
  /** Bytes in the spool file. */
  written = 0;
  /** Bytes hashed so far; the newest of them are in `recent`. */
  received = 0;
  /** The newest pieces, from offset `recentStart` on: those not spooled yet, and up to MEMORY_WINDOW more. */
  private recent: Buffer[] = [];
  private recentStart = 0;
  private recentBytes = 0;
  readonly hash;
  /** The whole body is spooled and matches the digest: readers may send the last byte. */
  private verified = false;
  private failure: Error | undefined;
  private waiting: (() => void)[] = [];
  private readers = 0;
  private finished = false;
  private readonly spoolPath: string;
  /** Settles when the bytes are verified and written to the upload (not yet published). */
  readonly done: Promise<FillResult>;
  /**
   * The spool file, open for writing; readers open it only once it exists. None for a
   * blob that fits in the memory window: memory holds it whole while the fill runs (and
   * a request that comes later reads storage), which spares a small blob the spool's
   * five file-system calls.
   */
  private readonly spool: Promise<FileHandle> | undefined;

  constructor(
    readonly digest: string,
    /** From the upstream's Content-Length, when it sent one. */
    readonly size: number | undefined,
    /**
     * The most bytes the fill takes, and the refusal past them. undici already holds a body
     * to its Content-Length; this bounds one without (the quota, the largest blob accepted).
     */
    readonly budget: Pick<UploadBudget, 'bytes' | 'exceeded'>,
    private readonly body: Readable,
    private readonly store: BlobStore,
    spoolDir: string,
    signal: AbortSignal,
    private readonly minimumRate?: MinimumRate,
  ) {
    const parsed = tryParseDigest(digest);
    if (!parsed) throw new Error(`not a digest: ${digest}`);
    this.hash = newHasher(parsed.algorithm);
    this.spoolPath = join(spoolDir, `${parsed.hex}-${randomUUID()}`);
    if (size === undefined || size > MEMORY_WINDOW) {
      this.spool = mkdir(spoolDir, { recursive: true }).then(() => open(this.spoolPath, 'w+'));
      this.spool.catch(() => undefined);
    }
    this.done = this.run(signal);
    this.done.catch(() => undefined);
  }

  /**
   * Called by the tap once the body has ended and all of it is spooled: checks the
   * digest and size, and lets readers finish when they match; the error otherwise.
   */
  verify(size: number): DigestMismatchError | undefined {
    const actual = `${this.digest.split(':', 1)[0]}:${this.hash.digest('hex')}`;
    if (actual !== this.digest || (this.size !== undefined && size !== this.size)) return new DigestMismatchError(this.digest, actual, size);
    this.verified = true;
    this.wake();
    return undefined;
  }

  /** Called by the tap for every piece it hashed, before the piece is spooled. */
  receive(piece: Buffer): void {
    this.recent.push(piece);
    this.received += piece.length;
    this.recentBytes += piece.length;
    this.forget();
    this.wake();
  }

  /** Called by the tap for the pieces written to the spool. */
  advance(bytes: number): void {
    this.written += bytes;
    this.forget();
    this.wake();
  }

  /** Drops the oldest pieces that are spooled and lie beyond the window. */
  private forget(): void {
    for (;;) {
      const oldest = this.recent[0];
      if (!oldest || this.recentBytes - oldest.length < MEMORY_WINDOW || this.recentStart + oldest.length > this.written) return;
      this.recent.shift();
      this.recentStart += oldest.length;
      this.recentBytes -= oldest.length;
    }
  }

  /** The bytes from `position` to `end` still in memory, or undefined when `position` has left the window. */
  private fromMemory(position: number, end: number): Buffer[] | undefined {
    if (position < this.recentStart) return undefined;
    const pieces: Buffer[] = [];
    let offset = this.recentStart;
    for (const piece of this.recent) {
      const pieceEnd = offset + piece.length;
      if (pieceEnd > position && offset < end) pieces.push(piece.subarray(Math.max(0, position - offset), Math.min(piece.length, end - offset)));
      offset = pieceEnd;
      if (offset >= end) break;
    }
    return pieces;
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private async run(signal: AbortSignal): Promise<FillResult> {
    let spool: FileHandle | undefined;
    try {
      spool = await this.spool;
    } catch (err) {
      this.failure = err as Error;
      this.finished = true;
      this.body.destroy();
      this.wake();
      throw err;
    }
    const uploadId = randomUUID();
    let state: UploadState | undefined;
    const watch = this.minimumRate && this.watchRate(this.minimumRate);
    try {
      state = await this.store.startUpload(uploadId, signal);
      const tap = new SpoolingTap(this, spool);
      const result = await bothSettled(this.store.appendUpload(uploadId, state, 0, tap, signal, { last: true }), feed(this.body, tap, signal));
      state = result.state;
      // The tap verified what passed it; storage must have taken exactly that.
      if (!this.verified || result.size !== tap.bytes) throw new Error(`storage took ${result.size} bytes of a ${tap.bytes}-byte blob ${this.digest}`);
      return { uploadId, state, size: result.size };
    } catch (err) {
      this.failure = err as Error;
      this.body.destroy();
      if (state) await this.store.abortUpload(uploadId, state).catch(() => undefined);
      throw err;
    } finally {
      clearInterval(watch);
      await spool?.close().catch(() => undefined);
      this.finished = true;
      this.wake();
      await this.releaseWhenUnread();
    }
  }

  /**
   * Gives the body up when two windows in a row pass in each of which the upstream sent
   * fewer than `bytes`, while the fill was waiting for it (nothing unread in the body): a
   * body that trickles a byte now and then is never idle long enough for its idle timeout,
   * and would hold its readers, and a prefetch slot, forever. One short window is let
   * pass: the last bytes of a body, sent after a pause, may straddle a window's end.
   */
  private watchRate({ windowMs, bytes }: MinimumRate): NodeJS.Timeout {
    let mark = this.received;
    let previous: number | undefined;
    const timer = setInterval(() => {
      const waitingForUpstream = this.body.readableFlowing !== false && this.body.readableLength === 0;
      const sent = this.received - mark;
      const short = waitingForUpstream && !this.body.readableEnded && sent < bytes;
      if (short && previous !== undefined) {
        this.body.destroy(new RemoteError('timeout', `the upstream sent ${previous} and then ${sent} bytes of ${this.digest} in two ${windowMs} ms windows, fewer than the ${bytes} a fill needs in each; given up`));
      }
      previous = short ? sent : undefined;
      mark = this.received;
    }, windowMs);
    timer.unref();
    return timer;
  }

  /** The verified bytes are published (stored and linked). */
  published(): void {
    this.wake();
  }

  /**
   * Publishing failed (storage, quota). Readers still waiting for bytes fail; once the
   * digest is verified they have the whole blob in the spool and finish.
   */
  fail(err: Error): void {
    this.failure ??= err;
    this.wake();
  }

  /**
   * A reader that follows the fill from its first byte; it fails if the fill fails.
   * Undefined once the fill has ended (its spool may be gone): read the stored blob.
   */
  reader(): Readable | undefined {
    if (this.finished) return undefined;
    this.readers++;
    return new FillReader(this, this.spoolPath, (spool) => this.readerDone(spool));
  }

  /** What a reader at `position` does next. */
  next(position: number): ReaderStep {
    if (this.failure && !this.verified) return { failed: this.failure };
    // The last byte waits until the whole blob is spooled and verified.
    const readable = this.verified ? this.received : this.received - 1;
    if (position < readable) {
      const pieces = this.fromMemory(position, readable);
      // Behind the window, so before `written`: memory keeps every piece the spool has yet to take.
      return pieces ? { pieces } : { spooled: this.written };
    }
    if (this.verified && position === this.received) return { end: true };
    return { wait: this.changed() };
  }

  /**
   * Not awaited by the reader: the response ends as soon as the last byte is out, or a
   * client that has all it asked for (Content-Length) may hang up before the server finishes it.
   */
  private readerDone(spool: FileHandle | undefined): void {
    this.readers--;
    void (spool ? spool.close().catch(() => undefined) : Promise.resolve()).then(() => this.releaseWhenUnread());
  }

  /**
   * Once the fill has ended and its last reader is done, nothing reads its pieces or its spool
   * again (a later request reads storage): both go, although the fill itself lives on until the
   * blob is stored and linked. Held until the fill was collected, the bytes of a cold pull's blobs
   * stayed allocated until the next full collection, about 20 MB per pull of 40 × 512 KiB
   * (docs/proxy-cache.md, "Full collections that cost the next pull").
   */
  private async releaseWhenUnread(): Promise<void> {
    if (!this.finished || this.readers > 0) return;
    this.recent = [];
    this.recentStart = this.received;
    this.recentBytes = 0;
    if (this.spool) await rm(this.spoolPath, { force: true }).catch(() => undefined);
  }
}

type ReaderStep = { pieces: Buffer[] } | { spooled: number } | { end: true } | { wait: Promise<void> } | { failed: Error };

/**
 * One client's reader of a fill: pieces from the fill's memory as they arrive, or from
 * the spool once it fell behind the window. A plain Readable rather than an async
 * generator: a small blob's pieces are pushed as they come, without a promise each.
 */
class FillReader extends Readable {
  private position = 0;
  /** A wait for the fill or a spool read is under way; `_read` calls meanwhile change nothing. */
  private busy = false;
  /** Opened once the reader falls behind the memory window; a reader that keeps up, as for every small blob, never opens it. */
  private spool: FileHandle | undefined;

  constructor(
    private readonly fill: BlobFill,
    private readonly spoolPath: string,
    private readonly onDone: (spool: FileHandle | undefined) => void,
  ) {
    super();
  }

  override _read(): void {
    if (!this.busy) this.pump();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    callback(err);
    this.onDone(this.spool);
  }

  /** Pushes what the fill has, until the consumer is full or the fill has nothing more yet. */
  private pump(): void {
    for (;;) {
      const step = this.fill.next(this.position);
      if ('failed' in step) return void this.destroy(step.failed);
      if ('end' in step) return void this.push(null);
      if ('wait' in step) return this.after(step.wait.then(() => true));
      if ('spooled' in step) return this.after(this.readSpool(step.spooled));
      let wanted = true;
      for (const piece of step.pieces) {
        this.position += piece.length;
        wanted = this.push(piece);
      }
      if (!wanted) return;
    }
  }

  /** Pumps again once `work` is done, if the consumer still wants more (`work` says whether it does). */
  private after(work: Promise<boolean>): void {
    this.busy = true;
    work.then(
      (wanted) => {
        this.busy = false;
        if (wanted && !this.destroyed) this.pump();
      },
      (err: Error) => this.destroy(err),
    );
  }

  private async readSpool(written: number): Promise<boolean> {
    if (!this.spool) {
      const spool = await open(this.spoolPath, 'r');
      // Destroyed while it opened: _destroy has run without it.
      if (this.destroyed) {
        await spool.close().catch(() => undefined);
        return false;
      }
      this.spool = spool;
    }
    const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, written - this.position));
    const { bytesRead } = await this.spool.read(buffer, 0, buffer.length, this.position);
    if (bytesRead === 0) throw new Error('the spool file is shorter than the bytes written to it');
    this.position += bytesRead;
    return this.push(buffer.subarray(0, bytesRead));
  }
}
