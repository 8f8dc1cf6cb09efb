/**
 * Coalesces concurrent reads of the same key without serving anything stale.
 *
 * A read that arrives while one for its key is in flight does not join that one (it
 * began before the caller arrived, and might miss a write the caller has already
 * seen acknowledged); it joins the *next* read, which starts when the current one
 * ends. Every caller therefore gets a result read after it arrived, exactly what it
 * would get by querying the database itself, while a crowd asking for one key (a
 * fleet of nodes pulling one tag) costs at most two reads in flight instead of one
 * per request. Nothing is kept once a read has finished.
 */
export class FreshCoalescer<V> {
  private readonly running = new Map<string, Promise<V>>();
  private readonly queued = new Map<string, Promise<V>>();
  /** Reads answered by joining another caller's read (a figure for tests and metrics). */
  shared = 0;

  run(key: string, read: () => Promise<V>): Promise<V> {
    const queued = this.queued.get(key);
    if (queued) {
      this.shared++;
      return queued;
    }
    const running = this.running.get(key);
    if (!running) return this.start(key, read);
    const next = running.then(
      () => undefined,
      () => undefined,
    ).then(() => {
      this.queued.delete(key);
      return this.start(key, read);
    });
    this.queued.set(key, next);
    return next;
  }

  private start(key: string, read: () => Promise<V>): Promise<V> {
    const current: Promise<V> = read().finally(() => {
      if (this.running.get(key) === current) this.running.delete(key);
    });
    this.running.set(key, current);
    return current;
  }
}
