import { randomUUID } from 'node:crypto';
import type { Sql } from './sql.js';

export type RunStatus = 'Pending' | 'InProgress' | 'Succeeded' | 'Failed' | 'Stopped';
export type Trigger = 'manual' | 'scheduled' | 'eventBased';

export interface ArtifactEventRef {
  type: 'pushed' | 'deleted';
  repository: string;
  digest?: string;
  tag?: string;
}

export interface TaskCounts {
  total: number;
  pending: number;
  inProgress: number;
  succeeded: number;
  failed: number;
  stopped: number;
}

export interface StoredExecution {
  id: string;
  seq: string;
  policyId: string;
  policyName: string;
  trigger: Trigger;
  event: ArtifactEventRef | null;
  status: RunStatus;
  planned: boolean;
  message: string;
  createdAt: Date;
  startedAt: Date | null;
  endedAt: Date | null;
  tasks: TaskCounts;
  artifacts: number;
  bytes: number;
}

export interface StoredTask {
  id: string;
  seq: string;
  executionId: string;
  key: string;
  operation: 'copy' | 'delete';
  srcRepository: string;
  srcDigest: string | null;
  tags: string[];
  dstRepository: string;
  status: RunStatus;
  attempts: number;
  bytes: number;
  checkpoint: unknown;
  message: string;
  createdAt: Date;
  startedAt: Date | null;
  endedAt: Date | null;
}

export interface NewTask {
  key: string;
  operation: 'copy' | 'delete';
  srcRepository: string;
  srcDigest?: string;
  tags: string[];
  dstRepository: string;
  /** A task that cannot run (planning found it impossible): stored Failed with this message. */
  failure?: string;
}

interface ExecutionRow {
  id: string;
  seq: string;
  policy_id: string;
  policy_name: string;
  trigger: Trigger;
  event: ArtifactEventRef | null;
  status: RunStatus;
  planned: boolean;
  message: string;
  created_at: Date;
  started_at: Date | null;
  ended_at: Date | null;
  total: string;
  pending: string;
  in_progress: string;
  succeeded: string;
  failed: string;
  stopped: string;
  artifacts: string;
  bytes: string;
}

interface TaskRow {
  id: string;
  seq: string;
  execution_id: string;
  key: string;
  operation: 'copy' | 'delete';
  src_repository: string;
  src_digest: string | null;
  tags: string[];
  dst_repository: string;
  status: RunStatus;
  attempts: number;
  bytes: string;
  checkpoint: unknown;
  message: string;
  created_at: Date;
  started_at: Date | null;
  ended_at: Date | null;
}

const EXECUTION_SELECT = `
  SELECT e.*, p.name AS policy_name,
    count(t.id) AS total,
    count(t.id) FILTER (WHERE t.status = 'Pending') AS pending,
    count(t.id) FILTER (WHERE t.status = 'InProgress') AS in_progress,
    count(t.id) FILTER (WHERE t.status = 'Succeeded') AS succeeded,
    count(t.id) FILTER (WHERE t.status = 'Failed') AS failed,
    count(t.id) FILTER (WHERE t.status = 'Stopped') AS stopped,
    count(t.id) FILTER (WHERE t.status = 'Succeeded' AND t.message NOT LIKE 'unchanged%' AND t.message NOT LIKE 'skipped%') AS artifacts,
    coalesce(sum(t.bytes), 0) AS bytes
  FROM replication_executions e
  JOIN replication_policies p ON p.id = e.policy_id
  LEFT JOIN replication_tasks t ON t.execution_id = e.id`;

const toExecution = (r: ExecutionRow): StoredExecution => ({
  id: r.id,
  seq: String(r.seq),
  policyId: r.policy_id,
  policyName: r.policy_name,
  trigger: r.trigger,
  event: r.event,
  status: r.status,
  planned: r.planned,
  message: r.message,
  createdAt: r.created_at,
  startedAt: r.started_at,
  endedAt: r.ended_at,
  tasks: { total: Number(r.total), pending: Number(r.pending), inProgress: Number(r.in_progress), succeeded: Number(r.succeeded), failed: Number(r.failed), stopped: Number(r.stopped) },
  artifacts: Number(r.artifacts),
  bytes: Number(r.bytes),
});

const toTask = (r: TaskRow): StoredTask => ({
  id: r.id,
  seq: String(r.seq),
  executionId: r.execution_id,
  key: r.key,
  operation: r.operation,
  srcRepository: r.src_repository,
  srcDigest: r.src_digest,
  tags: r.tags,
  dstRepository: r.dst_repository,
  status: r.status,
  attempts: r.attempts,
  bytes: Number(r.bytes),
  checkpoint: r.checkpoint,
  message: r.message,
  createdAt: r.created_at,
  startedAt: r.started_at,
  endedAt: r.ended_at,
});

/**
 * Executions and their tasks. Every state change is one conditional statement, so that
 * any number of replicas may work on one execution: a task is finished once, and the
 * execution is finished by whichever replica finishes its last open task.
 */
export class ExecutionStore {
  constructor(private readonly sql: Sql) {}

  async create(policyId: string, trigger: Trigger, event?: ArtifactEventRef, id: string = randomUUID()): Promise<StoredExecution> {
    await this.sql.query(`INSERT INTO replication_executions (id, policy_id, trigger, event) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`, [
      id,
      policyId,
      trigger,
      event ? JSON.stringify(event) : null,
    ]);
    return (await this.get(id))!;
  }

  async get(id: string): Promise<StoredExecution | undefined> {
    if (!isUuid(id)) return undefined;
    const rows = await this.sql.query<ExecutionRow>(`${EXECUTION_SELECT} WHERE e.id = $1 GROUP BY e.id, p.name`, [id]);
    return rows[0] && toExecution(rows[0]);
  }

  /** Newest first; `after` is the `seq` of the previous page's last item. */
  async list(page: { limit: number; after?: string; policyId?: string }): Promise<StoredExecution[]> {
    const rows = await this.sql.query<ExecutionRow>(
      `${EXECUTION_SELECT} WHERE ($1::uuid IS NULL OR e.policy_id = $1) AND ($2::int8 IS NULL OR e.seq < $2)
       GROUP BY e.id, p.name ORDER BY e.seq DESC LIMIT $3`,
      [page.policyId ?? null, page.after ?? null, page.limit],
    );
    return rows.map(toExecution);
  }

  /** Pending → InProgress; false when the execution is already stopped or finished. */
  async begin(id: string): Promise<boolean> {
    const rows = await this.sql.query(
      `UPDATE replication_executions SET status = 'InProgress', started_at = coalesce(started_at, now()) WHERE id = $1 AND status IN ('Pending', 'InProgress') RETURNING id`,
      [id],
    );
    return rows.length > 0;
  }

  /** Adds tasks; tasks whose key the execution already has are left as they are. Returns every task of the execution that is still Pending. */
  async addTasks(executionId: string, tasks: NewTask[]): Promise<StoredTask[]> {
    for (let i = 0; i < tasks.length; i += 500) {
      const batch = tasks.slice(i, i + 500);
      await this.sql.query(
        `INSERT INTO replication_tasks (id, execution_id, key, operation, src_repository, src_digest, tags, dst_repository, status, message, ended_at)
         SELECT t.id::uuid, $1, t.key, t.operation, t.src_repository, t.src_digest, t.tags, t.dst_repository,
                CASE WHEN t.failure IS NULL THEN 'Pending' ELSE 'Failed' END, coalesce(t.failure, ''), CASE WHEN t.failure IS NULL THEN NULL ELSE now() END
         FROM jsonb_to_recordset($2::jsonb) AS t(id text, key text, operation text, src_repository text, src_digest text, tags text[], dst_repository text, failure text)
         ON CONFLICT (execution_id, key) DO NOTHING`,
        [
          executionId,
          JSON.stringify(
            batch.map((t) => ({ id: randomUUID(), key: t.key, operation: t.operation, src_repository: t.srcRepository, src_digest: t.srcDigest ?? null, tags: t.tags, dst_repository: t.dstRepository, failure: t.failure ?? null })),
          ),
        ],
      );
    }
    await this.sql.query('UPDATE replication_executions SET planned = true WHERE id = $1', [executionId]);
    const rows = await this.sql.query<TaskRow>(`SELECT * FROM replication_tasks WHERE execution_id = $1 AND status = 'Pending' ORDER BY seq`, [executionId]);
    return rows.map(toTask);
  }

  async task(id: string): Promise<StoredTask | undefined> {
    if (!isUuid(id)) return undefined;
    const rows = await this.sql.query<TaskRow>('SELECT * FROM replication_tasks WHERE id = $1', [id]);
    return rows[0] && toTask(rows[0]);
  }

  async tasks(executionId: string, page: { limit: number; after?: string; status?: RunStatus }): Promise<StoredTask[]> {
    const rows = await this.sql.query<TaskRow>(
      `SELECT * FROM replication_tasks WHERE execution_id = $1 AND ($2::int8 IS NULL OR seq > $2) AND ($3::text IS NULL OR status = $3) ORDER BY seq LIMIT $4`,
      [executionId, page.after ?? null, page.status ?? null, page.limit],
    );
    return rows.map(toTask);
  }

  async log(taskId: string): Promise<string | undefined> {
    if (!isUuid(taskId)) return undefined;
    const rows = await this.sql.query<{ log: string }>('SELECT log FROM replication_tasks WHERE id = $1', [taskId]);
    return rows[0]?.log;
  }

  /** Pending/InProgress → InProgress, counting the attempt; undefined when the task is finished or its execution stopped. */
  async startTask(id: string): Promise<StoredTask | undefined> {
    const rows = await this.sql.query<TaskRow>(
      `UPDATE replication_tasks t SET status = 'InProgress', attempts = t.attempts + 1, started_at = coalesce(t.started_at, now())
       FROM replication_executions e
       WHERE t.id = $1 AND e.id = t.execution_id AND t.status IN ('Pending', 'InProgress') AND e.status IN ('Pending', 'InProgress')
       RETURNING t.*`,
      [id],
    );
    return rows[0] && toTask(rows[0]);
  }

  async appendLog(id: string, lines: string): Promise<void> {
    await this.sql.query('UPDATE replication_tasks SET log = log || $2 WHERE id = $1', [id, lines]);
  }

  async checkpoint(id: string, checkpoint: unknown, bytes: number): Promise<void> {
    await this.sql.query('UPDATE replication_tasks SET checkpoint = $2::jsonb, bytes = $3 WHERE id = $1', [id, checkpoint === undefined ? null : JSON.stringify(checkpoint), bytes]);
  }

  /** Records a task's end, once; false when it had already ended (stopped meanwhile). */
  async finishTask(id: string, status: 'Succeeded' | 'Failed' | 'Stopped' | 'Pending', bytes: number, message: string): Promise<boolean> {
    const rows = await this.sql.query(
      `UPDATE replication_tasks SET status = $2, bytes = $3, message = $4, checkpoint = CASE WHEN $2 = 'Pending' THEN checkpoint ELSE NULL END,
         ended_at = CASE WHEN $2 = 'Pending' THEN NULL ELSE now() END
       WHERE id = $1 AND status IN ('Pending', 'InProgress') RETURNING id`,
      [id, status, bytes, message],
    );
    return rows.length > 0;
  }

  /** Whether the execution may go on (it was not stopped). */
  async running(executionId: string): Promise<boolean> {
    const rows = await this.sql.query('SELECT 1 FROM replication_executions WHERE id = $1 AND status IN (\'Pending\', \'InProgress\')', [executionId]);
    return rows.length > 0;
  }

  /**
   * Ends a planned execution whose tasks have all ended: Failed if one failed, else
   * Succeeded. Returns it only to the one caller whose statement ended it.
   */
  async finishIfDone(id: string, message = ''): Promise<StoredExecution | undefined> {
    const rows = await this.sql.query(
      `UPDATE replication_executions e SET ended_at = now(), message = $2,
         status = CASE WHEN EXISTS (SELECT 1 FROM replication_tasks t WHERE t.execution_id = e.id AND t.status = 'Failed') THEN 'Failed' ELSE 'Succeeded' END
       WHERE e.id = $1 AND e.planned AND e.status = 'InProgress'
         AND NOT EXISTS (SELECT 1 FROM replication_tasks t WHERE t.execution_id = e.id AND t.status IN ('Pending', 'InProgress'))
       RETURNING id`,
      [id, message],
    );
    return rows[0] ? this.get(id) : undefined;
  }

  /** Ends an execution that could not be planned. */
  async fail(id: string, message: string): Promise<StoredExecution | undefined> {
    const rows = await this.sql.query(`UPDATE replication_executions SET status = 'Failed', message = $2, ended_at = now() WHERE id = $1 AND status IN ('Pending', 'InProgress') RETURNING id`, [
      id,
      message,
    ]);
    return rows[0] ? this.get(id) : undefined;
  }

  /** Stops an execution and its tasks that have not started; a running task notices and stops. Returns it when this call stopped it. */
  async stop(id: string): Promise<StoredExecution | undefined> {
    const rows = await this.sql.query(`UPDATE replication_executions SET status = 'Stopped', ended_at = now(), message = 'stopped' WHERE id = $1 AND status IN ('Pending', 'InProgress') RETURNING id`, [id]);
    if (rows.length === 0) return undefined;
    await this.sql.query(`UPDATE replication_tasks SET status = 'Stopped', ended_at = now(), message = 'stopped before it started' WHERE execution_id = $1 AND status = 'Pending'`, [id]);
    return this.get(id);
  }

  /** Executions of the policy still open (to stop them when it is deleted). */
  async open(policyId: string): Promise<string[]> {
    const rows = await this.sql.query<{ id: string }>(`SELECT id FROM replication_executions WHERE policy_id = $1 AND status IN ('Pending', 'InProgress')`, [policyId]);
    return rows.map((r) => r.id);
  }
}

function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}
