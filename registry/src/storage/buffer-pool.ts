/**
 * Fixed-size buffers handed out and taken back. Blob downloads copy gigabytes a
 * second; a fresh buffer per chunk would make the garbage collector the bottleneck
 * (each is external memory the GC must account for and free). The pool keeps at
 * most `retain` idle buffers; beyond that, returned buffers are left to the GC.
 */
export class BufferPool {
  private readonly idle: Buffer[] = [];

  constructor(
    readonly bufferSize: number,
    private readonly retain: number,
  ) {}

  acquire(): Buffer {
    return this.idle.pop() ?? Buffer.allocUnsafeSlow(this.bufferSize);
  }

  release(buffer: Buffer): void {
    if (buffer.length === this.bufferSize && this.idle.length < this.retain) this.idle.push(buffer);
  }

  get idleCount(): number {
    return this.idle.length;
  }
}
