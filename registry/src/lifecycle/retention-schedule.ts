import type { FastifyBaseLogger } from 'fastify';
import { parseCron } from '../jobs/cron.js';

/**
 * The scheduled retention runs due in (from, to]: one per project whose cron schedule
 * fires in the window (the latest tick, if several). Pure; a schedule that no longer
 * parses is skipped.
 */
export function dueRetentionRuns(schedules: { project: string; schedule: string }[], from: Date, to: Date): { project: string; tick: Date }[] {
  const due: { project: string; tick: Date }[] = [];
  for (const { project, schedule } of schedules) {
    let cron;
    try {
      cron = parseCron(schedule);
    } catch {
      continue;
    }
    let tick: Date | undefined;
    for (let next = cron.next(from); next.getTime() <= to.getTime(); next = cron.next(next)) tick = next;
    if (tick) due.push({ project, tick });
  }
  return due;
}

/**
 * Per-project retention schedules live in the database and change at any time, so
 * instead of one timer per schedule this checks them every `checkMs` and enqueues the
 * runs that came due. Each run is enqueued under a key naming its tick, so replicas
 * that all check enqueue it once between them.
 */
export class RetentionScheduler {
  private timer: NodeJS.Timeout | undefined;
  private last = new Date();

  constructor(
    private readonly schedules: () => Promise<{ project: string; schedule: string }[]>,
    private readonly enqueue: (project: string, tick: Date) => Promise<void>,
    private readonly checkMs: number,
    private readonly log: FastifyBaseLogger,
  ) {}

  start(): void {
    this.last = new Date();
    this.timer = setInterval(() => void this.check(), this.checkMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async check(now = new Date()): Promise<void> {
    const from = this.last;
    this.last = now;
    try {
      for (const { project, tick } of dueRetentionRuns(await this.schedules(), from, now)) await this.enqueue(project, tick);
    } catch (err) {
      this.log.warn({ err }, 'retention scheduler: cannot enqueue scheduled runs; they run at their next tick');
    }
  }
}
