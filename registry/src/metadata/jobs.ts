import { randomUUID } from 'node:crypto';
import type { Queryable, Sql } from './sql.js';

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed';

export interface Job {
  id: string;
  kind: string;
  payload: Record<string, unknown>;
  dedupeKey: string | null;
  state: JobState;
  attempts: number;
  maxAttempts: number;
  runAt: Date;
  lockedBy: string | null;
  leaseUntil: Date | null;
  progress: unknown;
  result: unknown;
  error: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

interface JobRow {
  id: string;
  kind: string;
  payload: Record<string, unknown>;
  dedupe_key: string | null;
  state: JobState;
  attempts: number;
  max_attempts: number;
  run_at: Date;
  locked_by: string | null;
  lease_until: Date | null;
  progress: unknown;
  result: unknown;
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

const toJob = (r: JobRow): Job => ({
  id: r.id,
  kind: r.kind,
  payload: r.payload,
  dedupeKey: r.dedupe_key,
  state: r.state,
  attempts: r.attempts,
  maxAttempts: r.max_attempts,
  runAt: r.run_at,
  lockedBy: r.locked_by,
  leaseUntil: r.lease_until,
  progress: r.progress,
  result: r.result,
  error: r.error,
  createdAt: r.created_at,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
});

export interface NewJob {
  kind: string;
  payload?: Record<string, unknown>;
  /** At most one job ever exists per key; enqueueing it again returns the existing job. */
  dedupeKey?: string;
  maxAttempts?: number;
  /** Seconds from now before the job may run. */
  delaySeconds?: number;
}

export interface ClaimOptions {
  workerId: string;
  kinds: string[];
  leaseSeconds: number;
  /** Kinds of which at most one job runs at a time across all workers (best effort). */
  exclusive?: string[];
}

const json = (value: unknown) => (value === undefined ? null : JSON.stringify(value));

/**
 * The job queue table. Every method is one statement, so no transaction is ever held
 * open while a job does its work; the embedded driver's single connection stays free.
 */
export class JobStore {
  constructor(private readonly sql: Sql) {}

  async enqueue(job: NewJob): Promise<{ job: Job; created: boolean }> {
    const rows = await this.sql.query<JobRow>(
      `INSERT INTO jobs (id, kind, payload, dedupe_key, max_attempts, run_at)
       VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
       ON CONFLICT (dedupe_key) DO NOTHING RETURNING *`,
      [randomUUID(), job.kind, JSON.stringify(job.payload ?? {}), job.dedupeKey ?? null, job.maxAttempts ?? 3, job.delaySeconds ?? 0],
    );
    if (rows[0]) return { job: toJob(rows[0]), created: true };
    const existing = await this.sql.query<JobRow>('SELECT * FROM jobs WHERE dedupe_key = $1', [job.dedupeKey]);
    return { job: toJob(existing[0]!), created: false };
  }

  /** Inserts many jobs (without dedupe keys) in one statement, in `db` when it is the caller's transaction. */
  async enqueueMany(jobs: readonly Omit<NewJob, 'dedupeKey'>[], db: Queryable = this.sql): Promise<void> {
    if (jobs.length === 0) return;
    await db.query(
      `INSERT INTO jobs (id, kind, payload, max_attempts, run_at)
       SELECT id, kind, payload, max_attempts, now() + make_interval(secs => delay)
       FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::int[], $5::float8[]) AS j(id, kind, payload, max_attempts, delay)`,
      [jobs.map(() => randomUUID()), jobs.map((j) => j.kind), jobs.map((j) => JSON.stringify(j.payload ?? {})), jobs.map((j) => j.maxAttempts ?? 3), jobs.map((j) => j.delaySeconds ?? 0)],
    );
  }

  async get(id: string): Promise<Job | undefined> {
    const rows = await this.sql.query<JobRow>('SELECT * FROM jobs WHERE id = $1', [id]);
    return rows[0] && toJob(rows[0]);
  }

  /** Newest first; with `project`, only jobs whose payload names that project. */
  async list(kind: string, limit: number, project?: string): Promise<Job[]> {
    const rows = await this.sql.query<JobRow>(
      "SELECT * FROM jobs WHERE kind = $1 AND ($3::text IS NULL OR payload->>'project' = $3) ORDER BY created_at DESC, id LIMIT $2",
      [kind, limit, project ?? null],
    );
    return rows.map(toJob);
  }

  /**
   * Takes the oldest due job (queued, or running with an expired lease: its worker
   * died) and leases it to `workerId`. SKIP LOCKED lets many workers claim at once
   * without waiting on each other or taking the same job.
   */
  async claim(options: ClaimOptions): Promise<Job | undefined> {
    const rows = await this.sql.query<JobRow>(
      `UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $1,
         lease_until = now() + make_interval(secs => $3), started_at = now(), error = NULL
       WHERE id = (
         SELECT j.id FROM jobs j
         WHERE j.kind = ANY($2::text[])
           AND ((j.state = 'queued' AND j.run_at <= now()) OR (j.state = 'running' AND j.lease_until < now()))
           AND NOT (j.kind = ANY($4::text[]) AND EXISTS (
             SELECT 1 FROM jobs r WHERE r.kind = j.kind AND r.state = 'running' AND r.lease_until >= now() AND r.id <> j.id))
         ORDER BY j.run_at, j.created_at
         LIMIT 1
         FOR UPDATE SKIP LOCKED
       )
       RETURNING *`,
      [options.workerId, options.kinds, options.leaseSeconds, options.exclusive ?? []],
    );
    return rows[0] && toJob(rows[0]);
  }

  /** Extends the lease and records progress; false when the lease was lost to another worker. */
  async renew(id: string, workerId: string, leaseSeconds: number, progress?: unknown): Promise<boolean> {
    const rows = await this.sql.query(
      `UPDATE jobs SET lease_until = now() + make_interval(secs => $3), progress = COALESCE($4::jsonb, progress)
       WHERE id = $1 AND locked_by = $2 AND state = 'running' RETURNING id`,
      [id, workerId, leaseSeconds, json(progress)],
    );
    return rows.length > 0;
  }

  async complete(id: string, workerId: string, result: unknown): Promise<boolean> {
    const rows = await this.sql.query(
      `UPDATE jobs SET state = 'succeeded', result = $3::jsonb, progress = NULL, lease_until = NULL, finished_at = now()
       WHERE id = $1 AND locked_by = $2 AND state = 'running' RETURNING id`,
      [id, workerId, json(result)],
    );
    return rows.length > 0;
  }

  /** Records a failed attempt: queued again after `retryInSeconds`, or failed for good when undefined. */
  async fail(id: string, workerId: string, error: string, retryInSeconds: number | undefined): Promise<boolean> {
    const rows = await this.sql.query(
      retryInSeconds === undefined
        ? `UPDATE jobs SET state = 'failed', error = $3, lease_until = NULL, finished_at = now()
           WHERE id = $1 AND locked_by = $2 AND state = 'running' RETURNING id`
        : `UPDATE jobs SET state = 'queued', error = $3, lease_until = NULL, locked_by = NULL, run_at = now() + make_interval(secs => $4)
           WHERE id = $1 AND locked_by = $2 AND state = 'running' RETURNING id`,
      retryInSeconds === undefined ? [id, workerId, error] : [id, workerId, error, retryInSeconds],
    );
    return rows.length > 0;
  }

  /** Hands a job back without counting the attempt (the worker is shutting down). */
  async release(id: string, workerId: string): Promise<boolean> {
    const rows = await this.sql.query(
      `UPDATE jobs SET state = 'queued', attempts = greatest(attempts - 1, 0), lease_until = NULL, locked_by = NULL, run_at = now()
       WHERE id = $1 AND locked_by = $2 AND state = 'running' RETURNING id`,
      [id, workerId],
    );
    return rows.length > 0;
  }

  /** Jobs per kind and state, for metrics. */
  async counts(): Promise<{ kind: string; state: JobState; count: number }[]> {
    return this.sql.query('SELECT kind, state, count(*)::int8 AS count FROM jobs GROUP BY kind, state ORDER BY kind, state');
  }

  /** Deletes finished jobs older than `olderThanSeconds`; returns how many. */
  async prune(olderThanSeconds: number): Promise<number> {
    const rows = await this.sql.query(
      `DELETE FROM jobs WHERE state IN ('succeeded', 'failed') AND finished_at < now() - make_interval(secs => $1) RETURNING id`,
      [olderThanSeconds],
    );
    return rows.length;
  }
}
