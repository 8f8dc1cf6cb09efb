import type { FastifyBaseLogger } from 'fastify';
import type { AuditEvent, AuditStore } from '../metadata/audit.js';

const FLUSH_INTERVAL_MS = 1000;
const MAX_BUFFER = 500;

/**
 * Records audit events. Writes are batched off the request path; the buffer is flushed
 * every second, when it fills, and on shutdown. Identical pulls within one flush (same
 * actor, artifact and outcome) become one record with `detail.count`, so a fleet
 * pulling one tag costs a row per second, not a row per request.
 */
export class AuditLog {
  private buffer: AuditEvent[] = [];
  private readonly pulls = new Map<string, AuditEvent & { detail: { count: number } }>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: AuditStore,
    private readonly log: FastifyBaseLogger,
  ) {
    this.timer = setInterval(() => void this.flush(), FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  record(event: AuditEvent): void {
    if (event.action === 'pull' && event.detail === undefined) {
      const key = `${event.actor}\u0000${event.resource}\u0000${event.outcome}`;
      const same = this.pulls.get(key);
      if (same) {
        same.detail.count++;
        return;
      }
      const coalesced = { ...event, detail: { count: 1 } };
      this.pulls.set(key, coalesced);
      this.buffer.push(coalesced);
    } else {
      this.buffer.push(event);
    }
    if (this.buffer.length >= MAX_BUFFER) void this.flush();
  }

  /** Writes everything recorded so far. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.buffer.length === 0) return;
      const batch = this.buffer;
      this.buffer = [];
      this.pulls.clear();
      try {
        await this.store.append(batch);
      } catch (err) {
        // Keep the events for the next attempt rather than losing them.
        this.buffer = batch.concat(this.buffer).slice(-10 * MAX_BUFFER);
        this.log.warn({ err, pending: this.buffer.length }, 'audit log write failed; will retry');
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
