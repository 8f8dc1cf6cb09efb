import { performance, type EventLoopUtilization } from 'node:perf_hooks';

/**
 * One full garbage collection when the process goes quiet after work that left memory behind.
 *
 * The registry runs with --no-incremental-marking (node-flags.ts), and V8's memory
 * reducer, which normally collects a heap that has gone idle, works through
 * incremental marking: without it, what a burst left behind (old-generation garbage,
 * and request-body buffers whose memory is freed only when their objects are
 * collected) stayed resident until the next burst grew the heap to its limit.
 * Measured on PostgreSQL: 40 s idle after manifest GETs and pushes, no collection and
 * 30 MB of body buffers still held; one collection here takes about 25 ms.
 *
 * A full collection is not free for the burst that follows: optimized code that refers to
 * objects it frees is thrown away and compiled again. Collecting after every burst cost each
 * cold proxy pull that followed a pause about a tenth more CPU (docs/proxy-cache.md, "Full
 * collections that cost the next pull"), so a quiet spell collects only once the
 * memory held has grown by `minGrowth` since the last collection.
 */
export class IdleCollector {
  private busySinceCollection = false;
  private heldAfterCollection: number;

  constructor(
    private readonly collect: () => void,
    /** The memory held now that a full collection could free (what is live included). */
    private readonly held: () => number,
    /** Growth of `held` since the last collection below which a quiet spell does not collect. */
    private readonly minGrowth: number,
    /** Event-loop utilization (0-1) at or below which an interval counts as quiet. */
    private readonly quietUtilization = 0.05,
  ) {
    this.heldAfterCollection = held();
  }

  /**
   * Called once per interval with that interval's utilization; on the first quiet interval
   * after a busy one, collects if the memory held grew by `minGrowth`. True when it collected.
   */
  tick(utilization: number): boolean {
    if (utilization > this.quietUtilization) {
      this.busySinceCollection = true;
      return false;
    }
    if (!this.busySinceCollection) return false;
    this.busySinceCollection = false;
    if (this.held() - this.heldAfterCollection < this.minGrowth) return false;
    this.collect();
    this.heldAfterCollection = this.held();
    return true;
  }
}

/** Samples this thread's event-loop utilization every `intervalMs` and feeds it to `collector`; the timer keeps no process alive. */
export function watchEventLoop(collector: IdleCollector, intervalMs = 1000): { stop(): void } {
  let previous: EventLoopUtilization = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const collected = collector.tick(performance.eventLoopUtilization(now, previous).utilization);
    // The collection ran in this callback: the next interval is measured from after it. Counted as
    // work, a collection longer than the quiet threshold (50 ms of a second, a 25 MB heap on a slow
    // machine) made every other second busy, and the collector ran every 2 s for as long as the
    // process stayed idle.
    previous = collected ? performance.eventLoopUtilization() : now;
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** V8's collector, present when Node.js was started with --expose-gc (REGISTRY_NODE_FLAGS). */
export function exposedGc(): (() => void) | undefined {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? (gc as () => void) : undefined;
}
