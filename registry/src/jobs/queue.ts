import type { Job, JobStore, NewJob } from '../metadata/jobs.js';

/** Enqueues jobs and nudges this process's worker, if it runs one, to look at once. */
export class JobQueue {
  private nudge: () => void = () => undefined;

  constructor(private readonly store: JobStore) {}

  /** Called after every enqueue (the local worker's wake). */
  onEnqueued(nudge: () => void): void {
    this.nudge = nudge;
  }

  async enqueue(job: NewJob): Promise<{ job: Job; created: boolean }> {
    const result = await this.store.enqueue(job);
    if (result.created) this.nudge();
    return result;
  }

  get(id: string): Promise<Job | undefined> {
    return this.store.get(id);
  }

  list(kind: string, limit: number, project?: string): Promise<Job[]> {
    return this.store.list(kind, limit, project);
  }
}
