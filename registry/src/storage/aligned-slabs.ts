// The project's TypeScript libraries do not describe WebAssembly; this is the part used here.
declare const WebAssembly: { Memory: new (descriptor: { initial: number }) => { buffer: ArrayBuffer } };

/**
 * Fixed-size buffers whose memory starts on a page boundary, for O_DIRECT writes (the
 * kernel refuses an unaligned buffer with EINVAL). Node.js has no aligned allocation,
 * but a WebAssembly memory is mapped in whole pages, so slabs cut from one at multiples
 * of its 64 KiB page size are aligned. A page becomes resident only once used, and the
 * most recently returned slab is handed out first, so an idle pool costs little.
 */
export class AlignedSlabPool {
  static readonly PAGE = 64 * 1024;
  private readonly idle: Buffer[];

  constructor(
    readonly slabBytes: number,
    readonly count: number,
  ) {
    if (slabBytes <= 0 || slabBytes % AlignedSlabPool.PAGE !== 0) throw new Error(`slab size ${slabBytes} is not a multiple of 64 KiB`);
    const memory = new WebAssembly.Memory({ initial: (slabBytes * count) / AlignedSlabPool.PAGE });
    this.idle = Array.from({ length: count }, (_, i) => Buffer.from(memory.buffer, (count - 1 - i) * slabBytes, slabBytes));
  }

  /** A free slab, or undefined when all are in use (the caller writes another way). */
  acquire(): Buffer | undefined {
    return this.idle.pop();
  }

  /** Up to `n` free slabs (none when all are in use). */
  acquireUpTo(n: number): Buffer[] {
    return this.idle.splice(Math.max(0, this.idle.length - n));
  }

  release(slab: Buffer): void {
    this.idle.push(slab);
  }

  get idleCount(): number {
    return this.idle.length;
  }
}
