import { describe, expect, it } from 'vitest';
import { FreshCoalescer } from '../../src/services/fresh-coalescer.js';

/** A value that changes when written, read through reads that finish only when told to. */
function slowStore() {
  let value = 0;
  const pending: Array<() => void> = [];
  let reads = 0;
  return {
    write: (v: number) => void (value = v),
    read: () => {
      reads++;
      const seen = value;
      return new Promise<number>((resolve) => pending.push(() => resolve(seen)));
    },
    finishOne: async () => {
      pending.shift()?.();
      await new Promise((r) => setImmediate(r));
    },
    get reads() {
      return reads;
    },
  };
}

describe('FreshCoalescer', () => {
  it('answers a caller that arrives during a read from the next read, not the one in flight', async () => {
    const store = slowStore();
    const c = new FreshCoalescer<number>();
    const early = c.run('k', store.read);
    store.write(1);
    // These arrive after the write: they must not get the in-flight read's value (0).
    const late = [c.run('k', store.read), c.run('k', store.read), c.run('k', store.read)];
    expect(store.reads).toBe(1);
    await store.finishOne();
    expect(await early).toBe(0);
    expect(store.reads).toBe(2);
    await store.finishOne();
    expect(await Promise.all(late)).toEqual([1, 1, 1]);
    expect(c.shared).toBe(2);
  });

  it('keeps keys apart and holds nothing once reads finish', async () => {
    const c = new FreshCoalescer<string>();
    expect(await Promise.all([c.run('a', async () => 'A'), c.run('b', async () => 'B')])).toEqual(['A', 'B']);
    let reads = 0;
    await c.run('a', async () => `A${++reads}`);
    expect(await c.run('a', async () => `A${++reads}`)).toBe('A2');
  });

  it('gives a failed read to the callers that shared it and starts afresh afterwards', async () => {
    const c = new FreshCoalescer<number>();
    let fail = true;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = c.run('k', async () => {
      await gate;
      throw new Error('database away');
    });
    const second = c.run('k', async () => {
      if (fail) throw new Error('still away');
      return 7;
    });
    release();
    await expect(first).rejects.toThrow('database away');
    await expect(second).rejects.toThrow('still away');
    fail = false;
    expect(await c.run('k', async () => 8)).toBe(8);
  });
});
