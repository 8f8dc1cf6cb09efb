import { close, fdatasync, writev } from 'node:fs';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';

const writevAsync = promisify(writev);
const fdatasyncAsync = promisify(fdatasync);
const closeAsync = promisify(close);

/**
 * Writes a stream to an open file (from `position` on) in batches: request bodies arrive in 16-64 KiB
 * pieces, and one write per piece would be one thread-pool round trip each. Pieces
 * are collected up to `batchBytes` and written with one `writev`, so an upload costs
 * about one write per `batchBytes`, and at most that much is held in memory. With
 * `sync`, the data is flushed to disk (fdatasync) before the stream finishes. The file
 * is closed when the stream finishes or is destroyed.
 */
export class BatchingFileWriter extends Writable {
  bytesWritten = 0;
  /** writev calls made (a figure for tests). */
  writes = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private fdOpen = true;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly fd: number,
    private readonly batchBytes: number,
    private readonly sync: boolean,
    /** Where in the file the stream's first byte goes. */
    private readonly position = 0,
  ) {
    super({ highWaterMark: batchBytes });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < this.batchBytes) return callback();
    this.track(this.flush()).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.track(this.flush().then(() => (this.sync ? fdatasyncAsync(this.fd) : undefined)))
      .then(() => this.closeFd())
      .then(() => callback(), callback);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // A write still in flight must finish before the descriptor is closed (and its number reused).
    this.flushing
      .catch(() => undefined)
      .then(() => this.closeFd())
      .then(
        () => callback(err),
        (closeErr: Error) => callback(err ?? closeErr),
      );
  }

  private track(work: Promise<void>): Promise<void> {
    this.flushing = work;
    return work;
  }

  private async flush(): Promise<void> {
    let buffers = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    while (buffers.length > 0) {
      this.writes++;
      let written = (await writevAsync(this.fd, buffers, this.position + this.bytesWritten)).bytesWritten;
      this.bytesWritten += written;
      // A regular file takes the whole writev unless the disk is full; continue after a short write.
      while (buffers.length > 0 && written >= buffers[0]!.length) written -= buffers.shift()!.length;
      if (written > 0) buffers = [buffers[0]!.subarray(written), ...buffers.slice(1)];
    }
  }

  private async closeFd(): Promise<void> {
    if (!this.fdOpen) return;
    this.fdOpen = false;
    await closeAsync(this.fd);
  }
}
