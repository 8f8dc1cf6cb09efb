import type { FastifyBaseLogger } from 'fastify';
import { parseCron } from './cron.js';

/** A cron schedule kept in the database (a project's retention, a replication policy), named by `key`. */
export interface StoredSchedule {
  key: string;
  schedule: string;
}

/**
 * The ticks due in (from, to]: one per schedule that fired in the window (its latest tick,
 * if several). Pure; a schedule that no longer parses is skipped.
 */
export function dueTicks(schedules: StoredSchedule[], from: Date, to: Date): { key: string; tick: Date }[] {
  const due: { key: string; tick: Date }[] = [];
  for (const { key, schedule } of schedules) {
    let cron;
    try {
      cron = parseCron(schedule);
    } catch {
      continue;
    }
    let tick: Date | undefined;
    for (let next = cron.next(from); next.getTime() <= to.getTime(); next = cron.next(next)) tick = next;
    if (tick) due.push({ key, tick });
  }
  return due;
}

/**
 * Schedules that live in the database change at any time, so instead of one timer per
 * schedule this reads them every `checkMs` and enqueues the ticks that came due. The caller
 * enqueues each under a key naming its tick, so replicas that all check enqueue it once
 * between them. A check that fails leaves its window to the next one: no tick is lost to a
 * database hiccup.
 */
export class StoredScheduleChecker {
  private timer: NodeJS.Timeout | undefined;
  private last = new Date();

  constructor(
    private readonly schedules: () => Promise<StoredSchedule[]>,
    private readonly enqueue: (key: string, tick: Date) => Promise<void>,
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
    try {
      for (const { key, tick } of dueTicks(await this.schedules(), this.last, now)) await this.enqueue(key, tick);
      this.last = now;
    } catch (err) {
      this.log.warn({ err }, 'cannot enqueue scheduled runs; trying again at the next check');
    }
  }
}
