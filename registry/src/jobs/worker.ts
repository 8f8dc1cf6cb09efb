import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { FastifyBaseLogger } from 'fastify';
import type { Job, JobStore } from '../metadata/jobs.js';

export interface JobContext {
  job: Job;
  /** Aborted when the worker stops or loses the job's lease. */
  signal: AbortSignal;
  /** Progress to store with the next lease renewal (visible through the job's status). */
  progress(value: unknown): void;
}

export interface JobHandler {
  run(payload: Record<string, unknown>, context: JobContext): Promise<unknown>;
  /** At most one job of this kind runs at a time across all replicas (best effort; handlers stay safe in parallel). */
  exclusive?: boolean;
  /** This kind's delay before a retry, in seconds, doubled per attempt (the worker's default otherwise). */
  retryDelaySeconds?: number;
}

export interface JobOutcome {
  kind: string;
  outcome: 'succeeded' | 'failed' | 'retrying' | 'released';
  seconds: number;
}

export interface WorkerOptions {
  /** Milliseconds between polls when the queue is empty. */
  pollIntervalMs: number;
  leaseSeconds?: number;
  /** Delay before retrying a failed attempt, in seconds; doubled per attempt. */
  retryDelaySeconds?: number;
  log: FastifyBaseLogger;
  onOutcome?: (outcome: JobOutcome) => void;
}

/**
 * Runs jobs from the queue, one at a time, until stopped. Any number of workers (in
 * any number of replicas) may run against one database: claims use SKIP LOCKED and a
 * lease, renewed while the job runs, so a job whose worker died runs again elsewhere.
 */
export class JobWorker {
  readonly id = `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
  private readonly leaseSeconds: number;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private running: { job: Job; controller: AbortController } | undefined;

  constructor(
    private readonly store: JobStore,
    private readonly handlers: ReadonlyMap<string, JobHandler>,
    private readonly options: WorkerOptions,
  ) {
    this.leaseSeconds = options.leaseSeconds ?? 60;
  }

  start(): void {
    this.loop ??= this.poll();
  }

  /** Looks for work now instead of at the next poll (after a local enqueue). */
  wake(): void {
    this.wakeUp?.();
  }

  /** Stops claiming, aborts the running job and hands it back to the queue, then resolves. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.running?.controller.abort(new Error('worker stopping'));
    this.wake();
    await this.loop;
  }

  private async poll(): Promise<void> {
    const kinds = [...this.handlers.keys()];
    const exclusive = kinds.filter((k) => this.handlers.get(k)!.exclusive);
    let failures = 0;
    while (!this.stopping) {
      let job: Job | undefined;
      try {
        job = await this.store.claim({ workerId: this.id, kinds, leaseSeconds: this.leaseSeconds, exclusive });
        failures = 0;
      } catch (err) {
        failures++;
        this.options.log.warn({ err, failures }, 'job queue: cannot claim work; retrying');
      }
      if (job) {
        await this.execute(job);
        continue;
      }
      // Back off while the database is unreachable, up to ten poll intervals.
      await this.sleep(this.options.pollIntervalMs * Math.min(2 ** failures, 10));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = done;
    });
  }

  private async execute(job: Job): Promise<void> {
    const log = this.options.log.child({ job: job.id, kind: job.kind, attempt: job.attempts });
    const started = Date.now();
    const report = (outcome: JobOutcome['outcome']) => this.options.onOutcome?.({ kind: job.kind, outcome, seconds: (Date.now() - started) / 1000 });
    const handler = this.handlers.get(job.kind)!;
    if (job.attempts > job.maxAttempts) {
      // Claimed again after its lease ran out as many times as it may be attempted.
      await this.settle(log, () => this.store.fail(job.id, this.id, `gave up after ${job.maxAttempts} attempts whose worker stopped renewing the lease`, undefined));
      report('failed');
      return;
    }
    const controller = new AbortController();
    this.running = { job, controller };
    let progress: unknown;
    let leaseDeadline = Date.now() + this.leaseSeconds * 1000;
    const heartbeat = setInterval(() => {
      this.store.renew(job.id, this.id, this.leaseSeconds, progress).then(
        (held) => {
          if (held) leaseDeadline = Date.now() + this.leaseSeconds * 1000;
          else controller.abort(new Error('lease lost to another worker'));
        },
        (err: unknown) => {
          log.warn({ err }, 'job queue: cannot renew the lease');
          // Past the lease another worker may take the job; stop rather than run twice.
          if (Date.now() > leaseDeadline - 1000) controller.abort(new Error('lease expired while the database was unreachable'));
        },
      );
    }, (this.leaseSeconds * 1000) / 3);
    try {
      log.info('job started');
      const result = await handler.run(job.payload, { job, signal: controller.signal, progress: (value) => void (progress = value) });
      await this.settle(log, () => this.store.complete(job.id, this.id, result));
      log.info({ ms: Date.now() - started }, 'job succeeded');
      report('succeeded');
    } catch (err) {
      if (this.stopping && controller.signal.aborted) {
        await this.settle(log, () => this.store.release(job.id, this.id));
        log.info('job handed back to the queue: worker stopping');
        report('released');
        return;
      }
      const retry = job.attempts < job.maxAttempts ? (handler.retryDelaySeconds ?? this.options.retryDelaySeconds ?? 30) * 2 ** (job.attempts - 1) : undefined;
      log.warn({ err, retryInSeconds: retry }, 'job failed');
      await this.settle(log, () => this.store.fail(job.id, this.id, (err as Error).message ?? String(err), retry));
      report(retry === undefined ? 'failed' : 'retrying');
    } finally {
      clearInterval(heartbeat);
      this.running = undefined;
    }
  }

  /** Records a job's end; if the database is away the lease simply runs out and the job runs again. */
  private async settle(log: FastifyBaseLogger, write: () => Promise<boolean>): Promise<void> {
    try {
      if (!(await write())) log.warn('job queue: the job was no longer leased to this worker');
    } catch (err) {
      log.warn({ err }, 'job queue: cannot record the outcome; the job will run again after its lease');
    }
  }
}
