import type { FastifyBaseLogger } from 'fastify';
import type { CronSchedule } from './cron.js';

export interface ScheduledJob {
  kind: string;
  schedule: CronSchedule;
  payload: Record<string, unknown>;
}

/** Enqueues one job; `dedupeKey` names the tick so that replicas enqueue it once between them. */
export type Enqueue = (kind: string, payload: Record<string, unknown>, dedupeKey: string) => Promise<void>;

// setTimeout's longest delay; later ticks are reached in several sleeps.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Turns cron ticks into queued jobs. Every replica runs one; each tick's job is
 * enqueued under a key derived from the tick time, so however many replicas fire,
 * the queue holds one job per tick, and any replica's worker may run it.
 */
export class CronScheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly entries: ScheduledJob[],
    private readonly enqueue: Enqueue,
    private readonly log: FastifyBaseLogger,
  ) {}

  start(): void {
    for (const entry of this.entries) this.arm(entry, entry.schedule.next(new Date()));
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private arm(entry: ScheduledJob, at: Date): void {
    if (this.stopped) return;
    const timer = setTimeout(() => void this.fire(entry, at), Math.min(Math.max(at.getTime() - Date.now(), 0), MAX_TIMER_MS));
    timer.unref();
    this.timers.set(entry.kind, timer);
  }

  private async fire(entry: ScheduledJob, at: Date): Promise<void> {
    if (Date.now() < at.getTime()) return this.arm(entry, at);
    try {
      await this.enqueue(entry.kind, entry.payload, `${entry.kind}@${at.toISOString()}`);
    } catch (err) {
      this.log.warn({ err, kind: entry.kind, tick: at.toISOString() }, 'scheduler: cannot enqueue the scheduled job; skipping this tick');
    }
    this.arm(entry, entry.schedule.next(new Date(Math.max(Date.now(), at.getTime()))));
  }
}
