import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import type { Principal } from '../auth/policy.js';
import { actorOf } from '../auth/identities.js';
import type { ArtifactEvent } from '../events/artifact-events.js';
import type { JobQueue } from '../jobs/queue.js';
import type { JobContext, JobHandler } from '../jobs/worker.js';
import type { ArtifactEventRef, ExecutionStore, RunStatus, StoredExecution, StoredTask, Trigger } from '../metadata/replication-executions.js';
import type { ReplicationStore, StoredPolicy } from '../metadata/replication.js';
import { ociError, RegistryError } from '../oci/errors.js';
import { RemoteError } from '../remote/index.js';
import type { AuditLog } from '../services/audit.js';
import { requireReplicationAdmin } from './access.js';
import { copyArtifact } from './copy.js';
import type { DestinationEndpoint, SourceEndpoint, UploadCheckpoint } from './endpoints.js';
import { PolicyFilters } from './filters.js';
import { FlatteningError } from './flatten.js';
import { LocalEndpoint, ReplicationInputError, type LocalServices } from './local-endpoint.js';
import type { ReplicationMetrics } from './metrics.js';
import { planEvent, planTasks } from './plan.js';
import type { PolicySpec } from './policy.js';
import type { RegistryService } from './registries.js';
import { RemoteEndpoint } from './remote-endpoint.js';

export const ReplicationJobKinds = {
  /** Plans an execution into tasks; payload { executionId } or, for a schedule tick, { policyId }. */
  execution: 'replication.execution',
  /** Copies (or deletes) one artifact; payload { taskId }. */
  task: 'replication.task',
} as const;

export interface ReplicationSettings {
  /** Blobs larger than this are sent in chunks of this size, each one a resume point. */
  chunkSize: number;
  /** Attempts of a task (or a planning) whose failures are transient, before it fails. */
  maxAttempts: number;
  /** First retry delay; doubled per attempt up to retryMaxMs. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Tasks one replica runs at once (its job worker plus parallelTasks - 1 task-only workers). */
  parallelTasks: number;
  /** How often a running task checks whether its execution was stopped. */
  stopPollMs: number;
}

export const DEFAULT_REPLICATION_SETTINGS: ReplicationSettings = { chunkSize: 32 * 1024 * 1024, maxAttempts: 5, retryBaseMs: 2000, retryMaxMs: 60_000, parallelTasks: 4, stopPollMs: 1000 };

export interface ExecutionView {
  id: string;
  policy: string;
  trigger: Trigger;
  status: RunStatus;
  createdAt: Date;
  startedAt: Date | null;
  endedAt: Date | null;
  tasks: StoredExecution['tasks'];
  artifacts: number;
  bytes: number;
  message: string;
}

export interface TaskView {
  id: string;
  executionId: string;
  operation: 'copy' | 'delete';
  source: { repository: string; digest: string | null; tags: string[] };
  destination: { repository: string };
  status: RunStatus;
  attempts: number;
  bytes: number;
  createdAt: Date;
  startedAt: Date | null;
  endedAt: Date | null;
  message: string;
}

/** Called once when an execution ends (Succeeded, Failed or Stopped), on the replica that ended it. */
/**
 * Hears an execution that ended, with the local projects its tasks touched (the sources of a
 * push, the destinations of a pull): the projects whose webhooks hear about it.
 */
export type ExecutionFinishedListener = (execution: ExecutionView, localProjects: string[]) => void | Promise<void>;

/** Webhooks name at most this many tasks' projects; an execution's first page of tasks is read for them. */
const PROJECTS_FROM_TASKS = 1000;

export function executionView(e: StoredExecution): ExecutionView {
  return { id: e.id, policy: e.policyName, trigger: e.trigger, status: e.status, createdAt: e.createdAt, startedAt: e.startedAt, endedAt: e.endedAt, tasks: e.tasks, artifacts: e.artifacts, bytes: e.bytes, message: e.message };
}

export function taskView(t: StoredTask): TaskView {
  return {
    id: t.id,
    executionId: t.executionId,
    operation: t.operation,
    source: { repository: t.srcRepository, digest: t.srcDigest, tags: t.tags },
    destination: { repository: t.dstRepository },
    status: t.status,
    attempts: t.attempts,
    bytes: t.bytes,
    createdAt: t.createdAt,
    startedAt: t.startedAt,
    endedAt: t.endedAt,
    message: t.message,
  };
}

export interface ReplicationDeps {
  store: ReplicationStore;
  executions: ExecutionStore;
  registries: RegistryService;
  queue: JobQueue;
  local: LocalServices;
  audit: AuditLog;
  metrics: ReplicationMetrics;
  log: FastifyBaseLogger;
  settings: ReplicationSettings;
}

class StoppedError extends Error {
  constructor() {
    super('the execution was stopped');
    this.name = 'StoppedError';
  }
}

/** Whether trying again later may help. */
export function isTransient(err: unknown): boolean {
  if (err instanceof RemoteError) return err.transient;
  if (err instanceof ReplicationInputError || err instanceof FlatteningError) return false;
  if (err instanceof RegistryError) return ['UNAVAILABLE', 'TOOMANYREQUESTS'].includes(err.code);
  // Sockets, streams, the database: everything else is worth another attempt (attempts are bounded).
  return true;
}

function messageOf(err: unknown): string {
  return (err as Error)?.message ?? String(err);
}

/**
 * Executions: started by hand, by a schedule tick or by an artifact event; planned into
 * tasks by one job, each task run by its own job, on any replica. State lives in the
 * database (see ExecutionStore); an upload interrupted by a crash resumes from its
 * checkpoint when the task's job runs again.
 */
export class ReplicationService {
  private readonly listeners = new Set<ExecutionFinishedListener>();
  private readonly localEndpoints = new Map<string, LocalEndpoint>();
  private readonly remoteEndpoints = new WeakMap<object, RemoteEndpoint>();

  constructor(private readonly d: ReplicationDeps) {}

  /** The hook for webhooks: `listener` hears every execution that ends. Returns the unsubscribe function. */
  onExecutionFinished(listener: ExecutionFinishedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  handlers(): Map<string, JobHandler> {
    return new Map<string, JobHandler>([
      [ReplicationJobKinds.execution, { run: (payload, context) => this.runExecution(payload, context) }],
      [ReplicationJobKinds.task, { run: (payload, context) => this.runTask(payload, context) }],
    ]);
  }

  // --- API -------------------------------------------------------------------------

  async start(principal: Principal, policyName: string): Promise<ExecutionView> {
    requireReplicationAdmin(principal);
    const policy = await this.d.store.policy<PolicySpec>(policyName);
    if (!policy) throw ociError('RESOURCE_NOT_FOUND', { policy: policyName.slice(0, 100) }, { message: `replication policy "${policyName.slice(0, 100)}" not found` });
    if (!policy.spec.enabled) throw ociError('CONFLICT', { policy: policyName }, { message: `replication policy "${policyName}" is disabled; enable it to run it` });
    return executionView(await this.begin(policy, 'manual', undefined, actorOf(principal)));
  }

  async list(principal: Principal, query: { policy?: string; limit: number; after?: string }): Promise<{ items: ExecutionView[]; next?: string }> {
    requireReplicationAdmin(principal);
    let policyId: string | undefined;
    if (query.policy !== undefined) {
      const policy = await this.d.store.policy(query.policy);
      if (!policy) return { items: [] };
      policyId = policy.id;
    }
    if (query.after !== undefined && !/^\d{1,18}$/.test(query.after)) throw ociError('PAGINATION_INVALID', { after: query.after.slice(0, 50) }, { message: 'after must be the next value of a previous page' });
    const rows = await this.d.executions.list({ limit: query.limit + 1, ...(query.after !== undefined && { after: query.after }), ...(policyId && { policyId }) });
    const page = rows.slice(0, query.limit);
    return rows.length > query.limit ? { items: page.map(executionView), next: page[page.length - 1]!.seq } : { items: page.map(executionView) };
  }

  async get(principal: Principal, id: string): Promise<ExecutionView> {
    requireReplicationAdmin(principal);
    return executionView(await this.requireExecution(id));
  }

  async stop(principal: Principal, id: string): Promise<ExecutionView> {
    requireReplicationAdmin(principal);
    const execution = await this.requireExecution(id);
    const stopped = await this.d.executions.stop(execution.id);
    if (!stopped) return executionView((await this.d.executions.get(id))!);
    this.d.audit.record({ actor: actorOf(principal), action: 'stop', resourceType: 'replication-execution', resource: id, outcome: 'success', detail: { policy: execution.policyName } });
    await this.finished(stopped);
    return executionView(stopped);
  }

  async tasks(principal: Principal, id: string, query: { limit: number; after?: string; status?: RunStatus }): Promise<{ items: TaskView[]; next?: string }> {
    requireReplicationAdmin(principal);
    await this.requireExecution(id);
    if (query.after !== undefined && !/^\d{1,18}$/.test(query.after)) throw ociError('PAGINATION_INVALID', { after: query.after.slice(0, 50) }, { message: 'after must be the next value of a previous page' });
    const rows = await this.d.executions.tasks(id, { limit: query.limit + 1, ...(query.after !== undefined && { after: query.after }), ...(query.status && { status: query.status }) });
    const page = rows.slice(0, query.limit);
    return rows.length > query.limit ? { items: page.map(taskView), next: page[page.length - 1]!.seq } : { items: page.map(taskView) };
  }

  async taskLog(principal: Principal, id: string, taskId: string): Promise<string> {
    requireReplicationAdmin(principal);
    const task = await this.d.executions.task(taskId);
    if (!task || task.executionId !== id) throw ociError('RESOURCE_NOT_FOUND', { task: taskId.slice(0, 100) }, { message: `task "${taskId.slice(0, 100)}" of execution "${id.slice(0, 100)}" not found` });
    return (await this.d.executions.log(taskId)) ?? '';
  }

  /** Stops every open execution of a policy (it is being deleted). */
  async stopAll(policyId: string): Promise<void> {
    for (const id of await this.d.executions.open(policyId)) {
      const stopped = await this.d.executions.stop(id);
      if (stopped) await this.finished(stopped);
    }
  }

  // --- Triggers --------------------------------------------------------------------

  /** Creates an execution and queues its planning. */
  async begin(policy: StoredPolicy<PolicySpec>, trigger: Trigger, event: ArtifactEventRef | undefined, actor: string, id?: string): Promise<StoredExecution> {
    const execution = await this.d.executions.create(policy.id, trigger, event, id);
    await this.d.queue.enqueue({ kind: ReplicationJobKinds.execution, payload: { executionId: execution.id }, dedupeKey: `replication-execution:${execution.id}`, maxAttempts: 10 });
    this.d.audit.record({ actor, action: 'replication.execution.started', resourceType: 'replication-execution', resource: execution.id, outcome: 'success', detail: { policy: policy.name, trigger, ...(event && { event }) } });
    return execution;
  }

  /** Event-based push policies: a tag pushed (or, with replicateDeletion, a tag or manifest deleted) here starts an execution of that artifact. */
  async handleEvent(event: ArtifactEvent): Promise<void> {
    if (event.type === 'pulled' || event.actor.startsWith('replication:')) return;
    if (event.type === 'pushed' && event.tag === undefined) return;
    const policies = (await this.d.store.allPolicies<PolicySpec>()).filter(
      (p) => p.spec.enabled && p.spec.mode === 'push' && p.spec.trigger.type === 'eventBased' && (event.type === 'pushed' || p.spec.replicateDeletion),
    );
    for (const policy of policies) {
      const filters = new PolicyFilters(policy.spec.filters);
      if (!filters.name(event.repository) || (event.tag !== undefined && !filters.tag(event.tag))) continue;
      const ref: ArtifactEventRef = { type: event.type, repository: event.repository, ...(event.digest && { digest: event.digest }), ...(event.tag !== undefined && { tag: event.tag }) };
      await this.begin(policy, 'eventBased', ref, 'system:replication');
    }
  }

  // --- Jobs ------------------------------------------------------------------------

  private async runExecution(payload: Record<string, unknown>, context: JobContext): Promise<unknown> {
    let id = typeof payload.executionId === 'string' ? payload.executionId : undefined;
    if (!id && typeof payload.policyId === 'string') {
      // A schedule tick: the execution takes the job's id, so that a job run again finds it.
      const policy = await this.d.store.policyById<PolicySpec>(payload.policyId);
      if (!policy?.spec.enabled || policy.spec.trigger.type !== 'scheduled') return { skipped: 'policy gone, disabled or no longer scheduled' };
      const existing = await this.d.executions.get(context.job.id);
      id = (existing ?? (await this.begin(policy, 'scheduled', undefined, 'system:scheduler', context.job.id))).id;
      if (!existing) return { executionId: id };
    }
    if (!id) return { skipped: 'no execution' };
    if (!(await this.d.executions.begin(id))) return { executionId: id, skipped: 'stopped or finished' };
    const execution = (await this.d.executions.get(id))!;
    const policy = await this.d.store.policyById<PolicySpec>(execution.policyId);
    if (!policy) return { skipped: 'policy deleted' };
    let tasks: StoredTask[];
    if (execution.planned) {
      tasks = await this.d.executions.addTasks(id, []);
    } else {
      try {
        const planned = await this.withRetries(context.signal, async (signal) => {
          const { source } = await this.endpoints(policy);
          return execution.event ? planEvent(policy.spec, execution.event, source, signal) : planTasks(policy.spec, source, signal);
        });
        tasks = await this.d.executions.addTasks(id, planned);
      } catch (err) {
        if (context.signal.aborted) throw err;
        const failed = await this.d.executions.fail(id, `planning failed: ${messageOf(err)}`);
        if (failed) await this.finished(failed);
        return { executionId: id, failed: messageOf(err) };
      }
    }
    for (const task of tasks) {
      await this.d.queue.enqueue({ kind: ReplicationJobKinds.task, payload: { taskId: task.id }, dedupeKey: `replication-task:${task.id}`, maxAttempts: 10 });
    }
    await this.settle(id);
    return { executionId: id, tasks: tasks.length };
  }

  private async runTask(payload: Record<string, unknown>, context: JobContext): Promise<unknown> {
    const taskId = String(payload.taskId);
    const before = await this.d.executions.task(taskId);
    if (!before) return { skipped: 'task gone' };
    const task = await this.d.executions.startTask(taskId);
    if (!task) {
      await this.settle(before.executionId);
      return { skipped: 'task finished or execution stopped' };
    }
    if (before.attempts === 0) this.d.metrics.started(task.createdAt);
    const execution = (await this.d.executions.get(task.executionId))!;
    const policy = await this.d.store.policyById<PolicySpec>(execution.policyId);
    const log = new TaskLog(this.d.executions, taskId);
    if (!policy) {
      await this.d.executions.finishTask(taskId, 'Failed', task.bytes, 'the policy was deleted');
      return { failed: 'policy deleted' };
    }
    const controller = new AbortController();
    const onLost = () => controller.abort(context.signal.reason);
    context.signal.addEventListener('abort', onLost, { once: true });
    const watch = setInterval(() => {
      this.d.executions.running(task.executionId).then(
        (running) => void (running || controller.abort(new StoppedError())),
        () => undefined,
      );
    }, this.d.settings.stopPollMs);
    let bytes = task.bytes;
    let status: 'Succeeded' | 'Failed' | 'Stopped' = 'Succeeded';
    let message = '';
    try {
      log.line(task.attempts > 1 ? `run ${task.attempts} (resuming)` : `started: ${task.operation} ${task.srcRepository}${task.srcDigest ? `@${task.srcDigest}` : ''} → ${task.dstRepository}`);
      const outcome = await this.withRetries(controller.signal, (signal) => this.perform(task, policy, signal, log, (n) => void (bytes = n)), (attempt, err, waitMs) => {
        log.line(`attempt ${attempt} failed: ${messageOf(err)}${waitMs !== undefined ? `; retrying in ${(waitMs / 1000).toFixed(1)} s` : ''}`);
        void log.flush().catch(() => undefined);
      });
      bytes = outcome.bytes;
      message = outcome.message;
    } catch (err) {
      if (controller.signal.reason instanceof StoppedError) {
        status = 'Stopped';
        message = 'stopped';
      } else if (context.signal.aborted) {
        // The worker stops or lost the lease: the job runs again, and the task resumes.
        await log.flush();
        throw err;
      } else {
        status = 'Failed';
        message = messageOf(err);
      }
    } finally {
      clearInterval(watch);
      context.signal.removeEventListener('abort', onLost);
    }
    log.line(`${status.toLowerCase()}${message ? `: ${message}` : ''}`);
    await log.flush();
    await this.d.executions.finishTask(taskId, status, bytes, message);
    this.d.metrics.copied(policy.name, policy.spec.mode, bytes - task.bytes);
    this.d.metrics.finished(policy.name, status === 'Succeeded' ? 'succeeded' : status === 'Failed' ? 'failed' : 'stopped');
    await this.settle(task.executionId);
    return { status, bytes };
  }

  /** One attempt at a task. */
  private async perform(task: StoredTask, policy: StoredPolicy<PolicySpec>, signal: AbortSignal, log: TaskLog, progress: (bytes: number) => void): Promise<{ bytes: number; message: string }> {
    const { source, destination } = await this.endpoints(policy);
    if (task.operation === 'delete') {
      const reference = task.tags[0] ?? task.srcDigest!;
      const deleted = await destination.deleteManifest(task.dstRepository, reference, signal);
      log.line(deleted ? `deleted ${task.dstRepository}:${reference} at ${destination.label}` : `${task.dstRepository}:${reference} was not at ${destination.label}`);
      return { bytes: 0, message: deleted ? '' : 'unchanged: nothing to delete' };
    }
    const stored = (await this.d.executions.task(task.id))?.checkpoint as { uploads?: UploadCheckpoint[] } | null | undefined;
    const resume = new Map((stored?.uploads ?? []).map((u) => [u.digest, u] as const));
    const startBytes = (await this.d.executions.task(task.id))?.bytes ?? task.bytes;
    const result = await copyArtifact({
      source,
      destination,
      srcRepository: task.srcRepository,
      dstRepository: task.dstRepository,
      digest: task.srcDigest!,
      tags: task.tags,
      override: policy.spec.override,
      copyReferrers: policy.spec.copyReferrers,
      bandwidthBytesPerSecond: policy.spec.bandwidthLimitKiBps * 1024,
      chunkSize: this.d.settings.chunkSize,
      resume,
      saveCheckpoints: async (uploads, bytes) => {
        progress(startBytes + bytes);
        await this.d.executions.checkpoint(task.id, { uploads }, startBytes + bytes);
      },
      log: (line) => log.line(line),
      signal,
    });
    const bytes = startBytes + result.bytes;
    let message = '';
    if (result.skippedTags.length > 0) {
      message = `skipped: tag(s) ${result.skippedTags.map((s) => `${s.tag} (at ${s.destinationDigest})`).join(', ')} differ at the destination and override is off`;
    } else if (result.manifestsSent === 0 && result.unchangedTags.length === task.tags.length) {
      message = 'unchanged: already at the destination';
    }
    log.line(`copied ${result.bytes} blob bytes (${result.blobsSent} blobs sent, ${result.blobsMounted} mounted, ${result.blobsPresent} present), ${result.manifestsSent} manifests`);
    return { bytes, message };
  }

  private async endpoints(policy: StoredPolicy<PolicySpec>): Promise<{ source: SourceEndpoint; destination: DestinationEndpoint }> {
    const local = this.localEndpoint(policy.name);
    const remote = await this.remoteEndpoint(policy.registryId);
    return policy.spec.mode === 'push' ? { source: local, destination: remote } : { source: remote, destination: local };
  }

  /** The endpoint of a registry, over the client its current settings give. */
  private async remoteEndpoint(registryId: string): Promise<RemoteEndpoint> {
    const registry = await this.d.store.registryById(registryId);
    if (!registry) throw new ReplicationInputError("the policy's registry no longer exists");
    const client = this.d.registries.clientFor(registry);
    let endpoint = this.remoteEndpoints.get(client);
    if (!endpoint) {
      endpoint = new RemoteEndpoint(client);
      this.remoteEndpoints.set(client, endpoint);
    }
    return endpoint;
  }

  private localEndpoint(policyName: string): LocalEndpoint {
    let endpoint = this.localEndpoints.get(policyName);
    if (!endpoint) {
      endpoint = new LocalEndpoint(this.d.local, `replication:${policyName}`);
      this.localEndpoints.set(policyName, endpoint);
    }
    return endpoint;
  }

  /** Runs `attempt` until it succeeds, fails for good, or the attempts run out; waits with exponential backoff between. */
  private async withRetries<T>(signal: AbortSignal, attempt: (signal: AbortSignal) => Promise<T>, onFailure?: (n: number, err: unknown, waitMs: number | undefined) => void): Promise<T> {
    const { maxAttempts, retryBaseMs, retryMaxMs } = this.d.settings;
    for (let n = 1; ; n++) {
      try {
        signal.throwIfAborted();
        return await attempt(signal);
      } catch (err) {
        if (signal.aborted) throw signal.reason ?? err;
        const retry = isTransient(err) && n < maxAttempts;
        const waitMs = retry ? Math.min(retryMaxMs, retryBaseMs * 2 ** (n - 1)) : undefined;
        onFailure?.(n, err, waitMs);
        if (!retry) throw err;
        await sleep(waitMs!, undefined, { signal });
      }
    }
  }

  private async settle(executionId: string): Promise<void> {
    const finished = await this.d.executions.finishIfDone(executionId);
    if (finished) await this.finished(finished);
  }

  private async finished(execution: StoredExecution): Promise<void> {
    const view = executionView(execution);
    this.d.audit.record({
      actor: 'system:replication',
      action: 'replication.execution.finished',
      resourceType: 'replication-execution',
      resource: execution.id,
      outcome: execution.status === 'Succeeded' ? 'success' : 'failure',
      detail: { policy: execution.policyName, trigger: execution.trigger, status: execution.status, tasks: execution.tasks, artifacts: execution.artifacts, bytes: execution.bytes },
    });
    const projects = this.listeners.size > 0 ? await this.localProjects(execution) : [];
    for (const listener of this.listeners) {
      try {
        await listener(view, projects);
      } catch (err) {
        this.d.log.warn({ err, execution: execution.id }, 'replication: an execution-finished listener failed');
      }
    }
  }

  private async localProjects(execution: StoredExecution): Promise<string[]> {
    const policy = await this.d.store.policyById<PolicySpec>(execution.policyId);
    if (!policy) return [];
    const tasks = await this.d.executions.tasks(execution.id, { limit: PROJECTS_FROM_TASKS });
    const repositories = tasks.map((t) => (policy.spec.mode === 'push' ? t.srcRepository : t.dstRepository));
    return [...new Set(repositories.map((r) => r.split('/', 1)[0]!))];
  }

  private async requireExecution(id: string): Promise<StoredExecution> {
    const execution = await this.d.executions.get(id);
    if (!execution) throw ociError('RESOURCE_NOT_FOUND', { execution: id.slice(0, 100) }, { message: `replication execution "${id.slice(0, 100)}" not found` });
    return execution;
  }
}

/** A task's log, written to the database in batches. */
class TaskLog {
  private pending: string[] = [];
  private last = Date.now();

  constructor(
    private readonly store: ExecutionStore,
    private readonly taskId: string,
  ) {}

  line(text: string): void {
    this.pending.push(`${new Date().toISOString()} ${text}\n`);
    if (Date.now() - this.last > 2000) void this.flush().catch(() => undefined);
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const lines = this.pending.join('');
    this.pending = [];
    this.last = Date.now();
    await this.store.appendLog(this.taskId, lines);
  }
}
