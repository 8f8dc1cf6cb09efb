import { actorOf } from '../auth/identities.js';
import type { Principal } from '../auth/policy.js';
import { JobKinds } from '../jobs/kinds.js';
import type { JobQueue } from '../jobs/queue.js';
import type { RetentionFinishedListener, RetentionRunner } from '../jobs/retention.js';
import { checkImmutabilityPolicy, EMPTY_IMMUTABILITY, type ImmutabilityPolicy } from '../lifecycle/immutability.js';
import { checkRetentionPolicy, EMPTY_RETENTION, type RetentionPolicy } from '../lifecycle/retention-policy.js';
import type { Job, JobState } from '../metadata/jobs.js';
import type { Metadata } from '../metadata/index.js';
import { ociError } from '../oci/errors.js';
import { requireInProject } from './access.js';
import type { AuditLog } from './audit.js';

export interface RetentionRunView {
  id: string;
  project: string;
  state: JobState;
  dryRun: boolean;
  trigger: string;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  error?: string;
  /** When succeeded: the RetentionReport (kept and deleted, each with the reason). */
  report?: unknown;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function runView(job: Job): RetentionRunView {
  const run: RetentionRunView = {
    id: job.id,
    project: String(job.payload.project),
    state: job.state,
    dryRun: job.payload.dryRun === true,
    trigger: String(job.payload.trigger ?? 'manual'),
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
  };
  if (job.error) run.error = job.error;
  if (job.result !== null && job.result !== undefined) run.report = job.result;
  return run;
}

/** Retention and immutability policies of a project, and retention runs, as the management API sees them. */
export class LifecycleService {
  constructor(
    private readonly meta: Metadata,
    private readonly queue: JobQueue,
    private readonly runner: RetentionRunner,
    private readonly audit: AuditLog,
  ) {}

  /** The seam for "retention finished" webhooks: called with every finished run's report. */
  onRetentionFinished(listener: RetentionFinishedListener): () => void {
    return this.runner.onRetentionFinished(listener);
  }

  private async project(principal: Principal, name: string, permission: 'project:read' | 'project:update') {
    return requireInProject(principal, name, await this.meta.projects.get(name), permission);
  }

  private record(principal: Principal, action: string, resourceType: string, project: string, detail: Record<string, unknown>) {
    this.audit.record({ actor: actorOf(principal), action, resourceType, resource: project, project, outcome: 'success', detail });
  }

  async retention(principal: Principal, name: string): Promise<RetentionPolicy> {
    await this.project(principal, name, 'project:read');
    return (await this.meta.lifecycle.retentionPolicy(name)) ?? EMPTY_RETENTION;
  }

  async setRetention(principal: Principal, name: string, policy: RetentionPolicy): Promise<RetentionPolicy> {
    const project = await this.project(principal, name, 'project:update');
    checkRetentionPolicy(policy);
    await this.meta.lifecycle.setRetentionPolicy(project.id, policy);
    this.record(principal, 'update', 'retention', name, { rules: policy.rules.length, schedule: policy.schedule });
    return policy;
  }

  async startRun(principal: Principal, name: string, dryRun: boolean): Promise<RetentionRunView> {
    await this.project(principal, name, 'project:update');
    const { job } = await this.queue.enqueue({ kind: JobKinds.retention, payload: { project: name, dryRun, trigger: 'manual', actor: actorOf(principal) } });
    this.record(principal, 'create', 'retention-run', name, { run: job.id, dryRun });
    return runView(job);
  }

  async runs(principal: Principal, name: string, limit: number): Promise<RetentionRunView[]> {
    await this.project(principal, name, 'project:read');
    return (await this.queue.list(JobKinds.retention, limit, name)).map(runView);
  }

  async run(principal: Principal, name: string, id: string): Promise<RetentionRunView> {
    await this.project(principal, name, 'project:read');
    const job = UUID.test(id) ? await this.queue.get(id) : undefined;
    if (!job || job.kind !== JobKinds.retention || job.payload.project !== name) {
      throw ociError('RESOURCE_NOT_FOUND', { run: id.slice(0, 100) }, { message: `retention run "${id.slice(0, 100)}" not found in project "${name}"` });
    }
    return runView(job);
  }

  async immutability(principal: Principal, name: string): Promise<ImmutabilityPolicy> {
    await this.project(principal, name, 'project:read');
    return (await this.meta.lifecycle.immutabilityPolicy(name)) ?? EMPTY_IMMUTABILITY;
  }

  async setImmutability(principal: Principal, name: string, policy: ImmutabilityPolicy): Promise<ImmutabilityPolicy> {
    const project = await this.project(principal, name, 'project:update');
    checkImmutabilityPolicy(policy);
    await this.meta.lifecycle.setImmutabilityPolicy(project.id, policy);
    this.record(principal, 'update', 'immutability', name, { rules: policy.rules.length, protectSignedArtifacts: policy.protectSignedArtifacts });
    return policy;
  }
}
