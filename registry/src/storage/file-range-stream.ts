import type { FileHandle } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';
import type { BufferPool } from './buffer-pool.js';

class ShortFileError extends Error {
  readonly code = 'SHORT_FILE';
  constructor(position: number, end: number) {
    super(`blob file ended at byte ${position}, before the ${end} bytes it should hold`);
    this.name = 'ShortFileError';
  }
}

/** Writes `chunk` and resolves once the destination has handed it on (the buffer is free again). */
function write(destination: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => destination.write(chunk, (err) => (err ? reject(err) : resolve())));
}

/** How many buffers `chunks` rotates: the one being read, the one just handed out, and the one before it. */
const RING = 3;

/**
 * A byte range of an open file. As a Readable it works with any consumer, one fresh
 * buffer per chunk. `sendTo` is the download fast path: two pooled buffers, each
 * reused once its previous write has completed, so nothing is allocated per chunk and
 * at most two chunks per download are in memory. `chunks` is the same idea for a
 * writer that takes an async iterable (an HTTP client's request body). The file is
 * closed when any of them ends.
 */
export class FileRangeStream extends Readable {
  private position: number;
  private readonly end: number;
  private sending = false;

  /** `last` is the inclusive end offset, as in `Range: bytes=start-last`. */
  constructor(
    private readonly handle: FileHandle,
    start: number,
    last: number,
    private readonly pool: BufferPool,
  ) {
    super({ highWaterMark: pool.bufferSize });
    this.position = start;
    this.end = last + 1;
  }

  override _read(): void {
    const length = Math.min(this.pool.bufferSize, this.end - this.position);
    if (length <= 0) {
      this.push(null);
      return;
    }
    const buffer = Buffer.allocUnsafe(length);
    this.handle.read(buffer, 0, length, this.position).then(({ bytesRead }) => {
      if (bytesRead === 0) return this.destroy(new ShortFileError(this.position, this.end));
      this.position += bytesRead;
      this.push(bytesRead === length ? buffer : buffer.subarray(0, bytesRead));
    }, (err: Error) => this.destroy(err));
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.handle.close().then(
      () => callback(err),
      (closeErr: Error) => callback(err ?? closeErr),
    );
  }

  /**
   * The rest of the range as an async iterable over three buffers, reading one chunk
   * ahead. A chunk stays valid only until the one after the next is requested: made
   * for a consumer that hands each chunk to a socket and waits for the socket to take
   * it before asking for more (undici's iterable request body waits for 'drain'
   * whenever a write does not fit the socket's buffer). Anything that keeps chunks must
   * read the stream as a Readable instead.
   */
  async *chunks(): AsyncGenerator<Buffer, void, undefined> {
    if (this.sending || this.readableDidRead) throw new Error('FileRangeStream: already being read');
    this.sending = true;
    const ring = Array.from({ length: RING }, () => Buffer.allocUnsafeSlow(Math.min(this.pool.bufferSize, Math.max(this.end - this.position, 1))));
    let reading: Promise<Buffer> | undefined;
    const readAhead = (slot: number) => {
      if (this.position >= this.end) return undefined;
      const pending = this.readAt(ring[slot]!, this.position);
      pending.catch(() => undefined);
      return pending;
    };
    try {
      reading = readAhead(0);
      for (let slot = 0; reading; slot = (slot + 1) % RING) {
        const chunk = await reading;
        this.position += chunk.length;
        reading = readAhead((slot + 1) % RING);
        yield chunk;
      }
    } finally {
      await reading?.catch(() => undefined);
      this.destroy();
    }
  }

  private async readAt(buffer: Buffer, position: number): Promise<Buffer> {
    const length = Math.min(buffer.length, this.end - position);
    const { bytesRead } = await this.handle.read(buffer, 0, length, position);
    if (bytesRead === 0) throw new ShortFileError(position, this.end);
    return bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
  }

  /** Writes the rest of the range to `destination` and ends it; rejects if either side fails or `destination` closes first. */
  async sendTo(destination: Writable): Promise<void> {
    if (this.sending || this.readableDidRead) throw new Error('FileRangeStream: already being read');
    this.sending = true;
    const buffers = [this.pool.acquire(), this.pool.acquire()];
    const writes: (Promise<void> | undefined)[] = [undefined, undefined];
    const settled = [true, true];
    let onClose!: () => void;
    const closed = new Promise<never>((_, reject) => {
      onClose = () => reject(new Error('the destination closed before the blob was sent'));
      destination.once('close', onClose);
    });
    closed.catch(() => undefined);
    try {
      for (let i = 0; this.position < this.end; i ^= 1) {
        if (writes[i]) await Promise.race([writes[i], closed]);
        const chunk = await this.readAt(buffers[i]!, this.position);
        this.position += chunk.length;
        settled[i] = false;
        const slot = i;
        const done = () => {
          settled[slot] = true;
        };
        const pending = write(destination, chunk).then(done, (err: Error) => {
          done();
          throw err;
        });
        pending.catch(() => undefined);
        writes[i] = pending;
      }
      await Promise.race([Promise.all(writes), closed]);
      destination.end();
    } finally {
      destination.removeListener('close', onClose);
      // A buffer whose write has not completed may still be referenced by the socket.
      buffers.forEach((b, i) => settled[i] && this.pool.release(b));
      this.destroy();
    }
  }
}

/** A blob body that can send itself with reused buffers (see FileRangeStream.sendTo). */
export function canSendDirectly(body: Readable): body is FileRangeStream {
  return body instanceof FileRangeStream;
}
