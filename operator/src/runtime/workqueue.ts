// A rate-limited work queue of string keys (namespace/name), after client-go's workqueue:
// - a key waiting in the queue is stored once (dedupe);
// - a key being processed is never handed to a second worker; if it is added meanwhile, it is
//   queued again when the first worker calls done();
// - addRateLimited() delays a key by max(per-key exponential backoff, overall token bucket);
// - addAfter() delays a key; the earliest pending deadline wins.

export interface RateLimiterOptions {
  baseDelayMs: number;
  maxDelayMs: number;
  /** Overall rate for rate-limited adds, and its burst. */
  qps: number;
  burst: number;
}

const DEFAULTS: RateLimiterOptions = { baseDelayMs: 250, maxDelayMs: 5 * 60_000, qps: 10, burst: 100 };

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private readonly opts: RateLimiterOptions;
  private tokens: number;
  private lastRefill: number;
  private shuttingDown = false;

  constructor(options: Partial<RateLimiterOptions> = {}, private readonly now: () => number = Date.now) {
    this.opts = { ...DEFAULTS, ...options };
    this.tokens = this.opts.burst;
    this.lastRefill = now();
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.push(key);
  }

  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const at = this.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref?.();
    this.timers.set(key, { at, timer });
  }

  /** Re-adds a key after its backoff: base * 2^failures, capped, and never faster than the bucket. */
  addRateLimited(key: string): void {
    this.addAfter(key, this.when(key));
  }

  /** The delay addRateLimited would use now (and records the failure). */
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const itemDelay = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** n);
    return Math.max(itemDelay, this.reserveToken());
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key to process, or undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    if (this.queue.length > 0) return Promise.resolve(this.take());
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  get length(): number {
    return this.queue.length;
  }

  get pendingDelayed(): number {
    return this.timers.size;
  }

  private push(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      this.dirty.delete(key);
      this.processing.add(key);
      waiter(key);
    } else {
      this.queue.push(key);
    }
  }

  private take(): string {
    const key = this.queue.shift()!;
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }

  private reserveToken(): number {
    const t = this.now();
    this.tokens = Math.min(this.opts.burst, this.tokens + ((t - this.lastRefill) / 1000) * this.opts.qps);
    this.lastRefill = t;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.opts.qps) * 1000);
  }
}
