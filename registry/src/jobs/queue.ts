import type { Job, JobStore, NewJob } from '../metadata/jobs.js';
import type { Queryable } from '../metadata/sql.js';

/** Enqueues jobs and nudges this process's worker, if it runs one, to look at once. */
export class JobQueue {
  private readonly nudges: (() => void)[] = [];

  constructor(private readonly store: JobStore) {}

  /** Called after every enqueue (the local workers' wake). */
  onEnqueued(nudge: () => void): void {
    this.nudges.push(nudge);
  }

  private nudge(): void {
    for (const nudge of this.nudges) nudge();
  }

  async enqueue(job: NewJob): Promise<{ job: Job; created: boolean }> {
    const result = await this.store.enqueue(job);
    if (result.created) this.nudge();
    return result;
  }

  /**
   * Enqueues many jobs in one statement. Inside a transaction (`db`), call wake() once
   * it has committed: the worker cannot see the jobs before.
   */
  async enqueueMany(jobs: readonly Omit<NewJob, 'dedupeKey'>[], db?: Queryable): Promise<void> {
    await this.store.enqueueMany(jobs, db);
    if (!db) this.nudge();
  }

  /** Nudges this process's worker to look for work now. */
  wake(): void {
    this.nudge();
  }

  get(id: string): Promise<Job | undefined> {
    return this.store.get(id);
  }

  list(kind: string, limit: number, project?: string): Promise<Job[]> {
    return this.store.list(kind, limit, project);
  }
}
