import { actorOf } from '../auth/identities.js';
import type { Principal } from '../auth/policy.js';
import type { Job, JobState } from '../metadata/jobs.js';
import { ociError } from '../oci/errors.js';
import { JobKinds } from '../jobs/kinds.js';
import type { JobQueue } from '../jobs/queue.js';
import { requireSystem } from './access.js';
import type { AuditLog } from './audit.js';

export interface GcRequest {
  dryRun?: boolean;
  deleteUntagged?: boolean;
}

export interface GcRunView {
  id: string;
  state: JobState;
  dryRun: boolean;
  deleteUntagged: boolean;
  attempts: number;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  error?: string;
  /** While running: the report so far. */
  progress?: unknown;
  /** When succeeded: the GcReport. */
  report?: unknown;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function view(job: Job): GcRunView {
  const run: GcRunView = {
    id: job.id,
    state: job.state,
    dryRun: job.payload.dryRun === true,
    deleteUntagged: job.payload.deleteUntagged === true,
    attempts: job.attempts,
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
  };
  if (job.error) run.error = job.error;
  if (job.progress !== null && job.progress !== undefined) run.progress = job.progress;
  if (job.result !== null && job.result !== undefined) run.report = job.result;
  return run;
}

/** Garbage collection on demand, for system administrators: queue a run, watch it. */
export class GcService {
  constructor(
    private readonly queue: JobQueue,
    private readonly audit: AuditLog,
  ) {}

  async start(principal: Principal, request: GcRequest): Promise<GcRunView> {
    requireSystem(principal, 'gc:run');
    const payload = { dryRun: request.dryRun ?? false, deleteUntagged: request.deleteUntagged ?? false };
    const { job } = await this.queue.enqueue({ kind: JobKinds.gc, payload });
    this.audit.record({ actor: actorOf(principal), action: 'create', resourceType: 'gc', resource: job.id, outcome: 'success', detail: payload });
    return view(job);
  }

  async get(principal: Principal, id: string): Promise<GcRunView> {
    requireSystem(principal, 'gc:run');
    const job = UUID.test(id) ? await this.queue.get(id) : undefined;
    if (!job || job.kind !== JobKinds.gc) throw ociError('RESOURCE_NOT_FOUND', { gc: id.slice(0, 100) }, { message: `garbage collection run "${id.slice(0, 100)}" not found` });
    return view(job);
  }

  /** The most recent runs, newest first. */
  async list(principal: Principal, limit: number): Promise<GcRunView[]> {
    requireSystem(principal, 'gc:run');
    return (await this.queue.list(JobKinds.gc, limit)).map(view);
  }
}
