import type { FastifyBaseLogger } from 'fastify';
import { parseCron } from '../jobs/cron.js';
import type { JobQueue } from '../jobs/queue.js';
import type { ReplicationStore } from '../metadata/replication.js';
import { ReplicationJobKinds } from './executions.js';
import type { PolicySpec } from './policy.js';

/**
 * Scheduled policies: every few seconds, each tick of a policy's cron expression (UTC)
 * that has passed is queued as a job under a key naming the policy and the tick, so
 * that however many replicas see it, one execution runs. Policies change at run time,
 * so they are read each time (there are few).
 */
export class ReplicationScheduler {
  private timer: NodeJS.Timeout | undefined;
  private checkedUpTo = new Date();

  constructor(
    private readonly store: ReplicationStore,
    private readonly queue: JobQueue,
    private readonly log: FastifyBaseLogger,
    private readonly intervalMs = 5000,
  ) {}

  start(): void {
    this.checkedUpTo = new Date();
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async tick(now = new Date()): Promise<void> {
    const from = this.checkedUpTo;
    try {
      for (const policy of await this.store.allPolicies<PolicySpec>()) {
        const { trigger, enabled } = policy.spec;
        if (!enabled || trigger.type !== 'scheduled' || !trigger.cron) continue;
        const next = parseCron(trigger.cron).next(from);
        if (next > now) continue;
        await this.queue.enqueue({ kind: ReplicationJobKinds.execution, payload: { policyId: policy.id }, dedupeKey: `replication-schedule:${policy.id}@${next.toISOString()}`, maxAttempts: 10 });
      }
      this.checkedUpTo = now;
    } catch (err) {
      this.log.warn({ err }, 'replication: cannot queue scheduled executions; trying again');
    }
  }
}
