import { close, fdatasync, ftruncate, write } from 'node:fs';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import type { AlignedSlabPool } from './aligned-slabs.js';

const writeAsync = promisify(write);
const ftruncateAsync = promisify(ftruncate);
const fdatasyncAsync = promisify(fdatasync);
const closeAsync = promisify(close);

/** Offsets and lengths of O_DIRECT writes are multiples of this (4 KiB covers 512-byte and 4 KiB sectors). */
export const DIRECT_IO_ALIGNMENT = 4096;

/**
 * Writes a stream to a file opened with O_DIRECT, so the bytes go from aligned slabs to
 * the disk without being copied into the page cache. Pieces are copied into a slab; a
 * full slab is one write at an aligned offset. A direct write returns only once the
 * disk has the data, so with two slabs the next one fills while the last is written.
 * The final, partial slab is written padded with zeros to the alignment, and the file is
 * then truncated to its real length. With `sync`, the file is flushed (fdatasync: its
 * size, and the disk's cache) before the stream finishes. The descriptor is closed and
 * the slabs returned to their pool when the stream finishes or is destroyed, never
 * while a write from them is in flight.
 */
export class DirectFileWriter extends Writable {
  bytesWritten = 0;
  /** Write calls made (a figure for tests). */
  writes = 0;
  private current: Buffer;
  private spare: Buffer | undefined;
  /** The write of the slab that is not `current`, if one is in flight. */
  private spareWrite: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private filled = 0;
  private diskOffset = 0;
  private released = false;

  constructor(
    private readonly fd: number,
    private readonly slabs: readonly Buffer[],
    private readonly pool: AlignedSlabPool,
    private readonly sync: boolean,
  ) {
    const size = slabs[0]?.length ?? 0;
    super({ highWaterMark: size });
    if (size === 0 || size % DIRECT_IO_ALIGNMENT !== 0 || slabs.some((s) => s.length !== size)) {
      throw new Error(`direct writes need one or two slabs of the same multiple of ${DIRECT_IO_ALIGNMENT} bytes`);
    }
    this.current = slabs[0]!;
    this.spare = slabs[1];
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    let at = 0;
    const fill = (): void => {
      while (at < chunk.length) {
        const copied = chunk.copy(this.current, this.filled, at, Math.min(chunk.length, at + this.current.length - this.filled));
        this.filled += copied;
        at += copied;
        if (this.filled === this.current.length) {
          this.rotate().then(fill, callback);
          return;
        }
      }
      callback();
    };
    fill();
  }

  override _final(callback: (error?: Error | null) => void): void {
    const finish = async () => {
      await this.spareWrite;
      const tail = this.filled;
      if (tail > 0) {
        const padded = Math.ceil(tail / DIRECT_IO_ALIGNMENT) * DIRECT_IO_ALIGNMENT;
        this.current.fill(0, tail, padded);
        await this.writeSlab(this.current, padded, tail);
        await ftruncateAsync(this.fd, this.bytesWritten);
      }
      if (this.sync) await fdatasyncAsync(this.fd);
    };
    finish()
      .then(() => this.release())
      .then(() => callback(), callback);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    Promise.allSettled([...this.inFlight])
      .then(() => this.release())
      .then(
        () => callback(err),
        (closeErr: Error) => callback(err ?? closeErr),
      );
  }

  /** Starts writing the full `current` slab and continues in the spare once its own last write is done. */
  private async rotate(): Promise<void> {
    const full = this.current;
    const written = this.writeSlab(full, full.length, full.length);
    if (!this.spare) return written;
    // Observed below or by the next rotation; a failure must not go unhandled meanwhile.
    written.catch(() => undefined);
    await this.spareWrite;
    this.spareWrite = written;
    this.current = this.spare;
    this.spare = full;
  }

  /** Writes the slab's first `length` bytes (aligned) at the next offset; `counted` of them are content. */
  private writeSlab(slab: Buffer, length: number, counted: number): Promise<void> {
    const offset = this.diskOffset;
    this.diskOffset += length;
    this.bytesWritten += counted;
    this.filled = 0;
    this.writes++;
    const work = writeAsync(this.fd, slab, 0, length, offset).then(({ bytesWritten }) => {
      if (bytesWritten !== length) {
        throw Object.assign(new Error(`short write: ${bytesWritten} of ${length} bytes (is the disk full?)`), { code: 'ENOSPC' });
      }
    });
    this.inFlight.add(work);
    work.then(
      () => this.inFlight.delete(work),
      () => this.inFlight.delete(work),
    );
    return work;
  }

  private async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    for (const slab of this.slabs) this.pool.release(slab);
    await closeAsync(this.fd);
  }
}
