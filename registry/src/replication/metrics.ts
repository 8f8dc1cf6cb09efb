import { Counter, Histogram, type Registry } from 'prom-client';

/** Replication figures of this replica. */
export class ReplicationMetrics {
  private readonly bytes: Counter<'policy' | 'mode'>;
  private readonly tasks: Counter<'policy' | 'outcome'>;
  private readonly lag: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    this.bytes = new Counter({ name: 'wharf_replication_bytes_total', help: 'Blob bytes copied by replication', labelNames: ['policy', 'mode'], registers });
    this.tasks = new Counter({ name: 'wharf_replication_tasks_total', help: 'Replication tasks finished, by outcome (succeeded, failed, stopped)', labelNames: ['policy', 'outcome'], registers });
    this.lag = new Histogram({
      name: 'wharf_replication_queue_lag_seconds',
      help: 'Time from a replication task being queued to its first start',
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    });
  }

  copied(policy: string, mode: string, bytes: number): void {
    if (bytes > 0) this.bytes.inc({ policy, mode }, bytes);
  }

  finished(policy: string, outcome: 'succeeded' | 'failed' | 'stopped'): void {
    this.tasks.inc({ policy, outcome });
  }

  started(queuedAt: Date): void {
    this.lag.observe(Math.max(0, (Date.now() - queuedAt.getTime()) / 1000));
  }
}
