import type { FastifyBaseLogger } from 'fastify';
import type { AuditEvent, AuditStore } from '../metadata/audit.js';

const FLUSH_INTERVAL_MS = 1000;
const MAX_BUFFER = 500;

/**
 * Records audit events. Writes are batched off the request path (pulls are frequent);
 * the buffer is flushed every second, when it fills, and on shutdown.
 */
export class AuditLog {
  private buffer: AuditEvent[] = [];
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
    this.buffer.push(event);
    if (this.buffer.length >= MAX_BUFFER) void this.flush();
  }

  /** Writes everything recorded so far. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.buffer.length === 0) return;
      const batch = this.buffer;
      this.buffer = [];
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
