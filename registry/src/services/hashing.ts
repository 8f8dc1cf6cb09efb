import type { Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** The most bytes a stream may pass, and the error once more arrive. */
export interface ByteLimit {
  bytes: number;
  exceeded(received: number): Error;
}

/**
 * Passes bytes through unchanged while feeding them to a hash and counting them. With a
 * `limit`, the piece that would take the count past it fails the stream instead, so
 * that what reaches storage never exceeds the limit.
 */
export class HashingStream extends Transform {
  bytes = 0;

  constructor(
    readonly hash: Hash,
    private readonly limit?: ByteLimit,
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.limit && this.bytes + chunk.length > this.limit.bytes) {
      callback(this.limit.exceeded(this.bytes + chunk.length));
      return;
    }
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

interface Entry {
  algorithm: string;
  size: number;
  hash: Hash;
}

/**
 * Hash state of uploads this process has been receiving, so that a chunked upload
 * is hashed once while streaming. Another replica, or this one after a restart,
 * lacks the state and re-reads the upload at commit instead.
 */
export class UploadHashCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly capacity = 10_000) {}

  /** Removes and returns the hash state for `id` if it covers exactly `size` bytes of `algorithm`. */
  take(id: string, algorithm: string, size: number): Hash | undefined {
    const entry = this.entries.get(id);
    this.entries.delete(id);
    return entry && entry.algorithm === algorithm && entry.size === size ? entry.hash : undefined;
  }

  put(id: string, algorithm: string, size: number, hash: Hash): void {
    this.entries.delete(id);
    if (this.entries.size >= this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(id, { algorithm, size, hash });
  }

  drop(id: string): void {
    this.entries.delete(id);
  }
}
