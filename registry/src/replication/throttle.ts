import { Transform, type TransformCallback } from 'node:stream';

/**
 * A bandwidth budget shared by every stream of one task (a token bucket holding at
 * most one second's worth); also counts the bytes that pass.
 */
export class Throttle {
  private available: number;
  private last = Date.now();

  constructor(
    /** Bytes per second; 0: unlimited. */
    private readonly rate: number,
    private readonly onBytes: (n: number) => void = () => undefined,
  ) {
    this.available = rate;
  }

  /** How long to wait before `n` more bytes may pass (taking them from the budget). */
  private take(n: number): number {
    if (this.rate === 0) return 0;
    const now = Date.now();
    this.available = Math.min(this.rate, this.available + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    this.available -= n;
    return this.available >= 0 ? 0 : (-this.available / this.rate) * 1000;
  }

  /** Passes `chunks` on as the budget allows, asking `chunks` for the next one only when asked: buffers a source reuses stay safe. */
  async *iterate(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer, void, undefined> {
    for await (const chunk of chunks) {
      this.onBytes(chunk.length);
      const wait = this.take(chunk.length);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      yield chunk;
    }
  }

  /** A pass-through stream that respects the budget. */
  stream(): Transform {
    const throttle = this;
    return new Transform({
      transform(chunk: Buffer, _encoding, callback: TransformCallback) {
        throttle.onBytes(chunk.length);
        const wait = throttle.take(chunk.length);
        if (wait <= 0) return callback(null, chunk);
        setTimeout(() => callback(null, chunk), wait);
      },
    });
  }
}
