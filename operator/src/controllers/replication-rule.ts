// The ReplicationRule reconciler: a ReplicationRule → a remote registry plus a replication policy
// in its Registry, both named `<namespace>.<name>`, through the management API. One pass:
//   get the rule (gone → done); being deleted → finalize; else ensure the finalizer;
//   try { find the Registry → connect → read the credentials Secret → apply the remote registry
//         (again when the credentials' digest changed) → apply the policy → start an execution
//         when wharf.dev/run has a new value → read the last execution (Event when it failed) }
//   finally { conditions and status }.
// Execution progress is polled: while the last execution runs the rule is requeued every few
// seconds (the runtime's requeue, no loop of its own); see pollAfterMs.
import type { Logger } from 'pino';
import type { LastExecution, ReplicationRuleStatus } from '../api/replicationrule.js';
import type { KubeClient } from '../kube/client.js';
import { RESOURCES } from '../kube/resources.js';
import { objectKey, type KubeObject } from '../kube/types.js';
import { must, type RegistryClient } from '../registry-client/client.js';
import type { Registry } from '../resources/registry/index.js';
import {
  credentialsDigest,
  lastExecutionStatus,
  newlyFailed,
  pendingRunRequest,
  policyDifferences,
  pollAfterMs,
  remoteRegistryDifferences,
  remoteRegistryMarker,
  renderPolicy,
  renderRemoteRegistry,
  replicationName,
  summaryMessage,
  type Credentials,
  type LiveExecution,
  type LivePolicy,
  type LiveRemoteRegistry,
  type ReplicationRuleObject,
} from '../resources/replication-rule/render.js';
import type { ReconcileResult, Reconciler } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import { addFinalizer, hasFinalizer, removeFinalizer } from '../runtime/finalizers.js';
import type { Informer } from '../runtime/informer.js';
import { UserError } from '../runtime/user-error.js';
import { reconcileWithStatus } from './content-status.js';
import { readSecret, secretKey, type RegistryConnections } from './registry-connection.js';

export const REPLICATION_RULE_FINALIZER = 'wharf.dev/replication-rule';

export interface ReplicationRuleCaches {
  rules: Informer<ReplicationRuleObject>;
  registries: Informer<Registry>;
}

export interface ReplicationRuleReconcilerOptions {
  /** How often a Stalled rule (missing Registry or Secret) is looked at again. */
  recheckMs: number;
}

export class ReplicationRuleReconciler implements Reconciler {
  /**
   * What this process last wrote for each rule (by uid): the wharf.dev/run value it ran for and
   * the digest of the credentials it sent. The status records both, but the cache may still hold
   * the status from before for the next reconcile; this keeps that one from running the request
   * twice or sending the credentials again.
   */
  private readonly written = new Map<string, { run?: string; digest?: string }>();

  constructor(
    private readonly client: KubeClient,
    private readonly caches: ReplicationRuleCaches,
    private readonly connections: RegistryConnections,
    private readonly events: EventRecorder,
    private readonly options: ReplicationRuleReconcilerOptions,
    private readonly log: Logger,
  ) {}

  async reconcile(key: string, signal: AbortSignal): Promise<ReconcileResult> {
    const cached = this.caches.rules.get(key);
    if (!cached) return {};
    if (cached.metadata.deletionTimestamp) return this.finalize(cached, signal);
    const current = hasFinalizer(cached, REPLICATION_RULE_FINALIZER) ? cached : await addFinalizer(this.client, RESOURCES.ReplicationRule, cached, REPLICATION_RULE_FINALIZER, signal);
    return reconcileWithStatus<ReplicationRuleStatus>({
      client: this.client,
      resource: RESOURCES.ReplicationRule,
      object: current,
      events: this.events,
      recheckMs: this.options.recheckMs,
      signal,
      work: () => this.sync(current, signal),
    });
  }

  private registryFor(obj: ReplicationRuleObject): Registry {
    const name = obj.spec.registryRef.name;
    const registry = this.caches.registries.get(`${obj.metadata.namespace}/${name}`);
    if (!registry) throw new UserError('RegistryNotFound', `Registry ${name} not found in namespace ${obj.metadata.namespace}`);
    return registry;
  }

  private async credentials(obj: ReplicationRuleObject, signal: AbortSignal): Promise<Credentials | undefined> {
    const ref = obj.spec.remote.credentialsSecretRef;
    if (!ref) return undefined;
    const secret = await readSecret(this.client, obj.metadata.namespace!, ref.name, 'remote registry credentials', signal);
    return { username: secretKey(secret, 'username'), password: secretKey(secret, 'password') };
  }

  private async sync(obj: ReplicationRuleObject, signal: AbortSignal) {
    const name = replicationName(obj);
    const api = await this.connections.client(this.registryFor(obj), signal);
    const credentials = await this.credentials(obj, signal);
    const digest = credentialsDigest(api.connection.password, credentials);
    const written = this.written.get(obj.metadata.uid!) ?? {};
    this.written.set(obj.metadata.uid!, written);
    const remote = await this.applyRemoteRegistry(api, obj, name, credentials, digest, written.digest ?? obj.status?.credentialsDigest, signal);
    written.digest = digest;
    await this.applyPolicy(api, obj, name, signal);
    const fields: Partial<ReplicationRuleStatus> = { remoteRegistry: name, policy: name, credentialsDigest: digest };

    const request = pendingRunRequest(obj, written.run);
    if (request !== undefined) {
      await this.run(api, obj, name, request, written, signal);
      fields.lastRunRequest = request;
    }

    const last = await this.lastExecution(api, name, signal);
    if (last) fields.lastExecution = last;
    if (newlyFailed(obj.status?.lastExecution, last)) await this.reportFailure(api, obj, last!, signal);
    const requeueAfterMs = pollAfterMs(obj.spec, last);
    return {
      fields,
      summary: { state: 'ready' as const, reason: 'Synced', message: summaryMessage(name, last, remote.health ?? undefined) },
      ...(requeueAfterMs !== undefined && { requeueAfterMs }),
    };
  }

  /** Creates or updates the remote registry; the credentials go with every write, and a write happens when anything, or their digest, differs. */
  private async applyRemoteRegistry(
    api: RegistryClient,
    obj: ReplicationRuleObject,
    name: string,
    credentials: Credentials | undefined,
    digest: string,
    sentDigest: string | undefined,
    signal: AbortSignal,
  ): Promise<LiveRemoteRegistry> {
    const path = { name };
    const got = await api.api.GET('/api/v1/registries/{name}', { params: { path }, signal });
    const live = got.response.status === 404 ? undefined : (must(`get remote registry ${name}`, got) as LiveRemoteRegistry);
    if (live && live.description !== remoteRegistryMarker(obj) && obj.status?.remoteRegistry !== name) {
      throw new UserError('RemoteRegistryExists', `the registry already has a remote registry named ${name} that this object did not create; delete or rename it`);
    }
    const desired = renderRemoteRegistry(obj, credentials);
    const changes = live ? remoteRegistryDifferences(live, desired, sentDigest !== digest) : [];
    if (live && changes.length === 0) return live;
    const put = await api.api.PUT('/api/v1/registries/{name}', { params: { path }, body: desired, signal });
    const saved = must(`put remote registry ${name}`, put) as LiveRemoteRegistry;
    await this.events.record(obj, 'Normal', live ? 'Updated' : 'Created', live ? `Updated remote registry ${name}: ${changes.join('; ')}` : `Created remote registry ${name} (${desired.url})`);
    return saved;
  }

  private async applyPolicy(api: RegistryClient, obj: ReplicationRuleObject, name: string, signal: AbortSignal): Promise<void> {
    const path = { name };
    const got = await api.api.GET('/api/v1/replication/policies/{name}', { params: { path }, signal });
    const live = got.response.status === 404 ? undefined : (must(`get policy ${name}`, got) as LivePolicy);
    if (live && live.registry !== name) {
      throw new UserError('PolicyExists', `the registry already has a replication policy named ${name} that this object did not create (it uses remote registry ${String(live.registry)})`);
    }
    const desired = renderPolicy(obj, name);
    const changes = live ? policyDifferences(live, desired) : [];
    if (live && changes.length === 0) return;
    must(`put policy ${name}`, await api.api.PUT('/api/v1/replication/policies/{name}', { params: { path }, body: desired, signal }));
    await this.events.record(obj, 'Normal', live ? 'Updated' : 'Created', live ? `Updated policy ${name}: ${changes.join(', ')}` : `Created policy ${name}`);
  }

  /**
   * Starts an execution for a new wharf.dev/run value, then records the value in status at once
   * (a merge patch), so a restart does not run it again. A crash between the two runs it once
   * more after the restart: a second run copies only what the first did not.
   */
  private async run(api: RegistryClient, obj: ReplicationRuleObject, name: string, request: string, written: { run?: string }, signal: AbortSignal): Promise<void> {
    if (obj.spec.enabled === false) {
      await this.events.record(obj, 'Warning', 'RunSkipped', `wharf.dev/run=${request} ignored: the rule is disabled`);
    } else {
      const started = must('start execution', await api.api.POST('/api/v1/replication/executions', { body: { policy: name }, signal })) as LiveExecution;
      this.log.info({ policy: name, execution: started.id, request }, 'started replication execution');
      await this.events.record(obj, 'Normal', 'ExecutionStarted', `Started execution ${started.id} (wharf.dev/run=${request})`);
    }
    written.run = request;
    await this.client.mergePatch(RESOURCES.ReplicationRule, obj.metadata.namespace, obj.metadata.name, { status: { lastRunRequest: request } }, { subresource: 'status', signal });
  }

  private async lastExecution(api: RegistryClient, name: string, signal: AbortSignal): Promise<LastExecution | undefined> {
    const page = must('list executions', await api.api.GET('/api/v1/replication/executions', { params: { query: { policy: name, limit: 1 } }, signal }));
    const newest = page.items[0] as LiveExecution | undefined;
    return newest ? lastExecutionStatus(newest) : undefined;
  }

  /** A Warning Event for a failed execution, with the first failed task's message. */
  private async reportFailure(api: RegistryClient, obj: ReplicationRuleObject, last: LastExecution, signal: AbortSignal): Promise<void> {
    const tasks = must('list failed tasks', await api.api.GET('/api/v1/replication/executions/{id}/tasks', { params: { path: { id: last.id }, query: { status: 'Failed', limit: 1 } }, signal }));
    const first = tasks.items[0];
    const artifact = first && `${first.source.repository}${first.source.tags[0] ? `:${first.source.tags[0]}` : first.source.digest ? `@${first.source.digest}` : ''}`;
    const detail = first ? `; first: ${artifact}: ${first.message}` : last.message ? `: ${last.message}` : '';
    await this.events.record(obj, 'Warning', 'ExecutionFailed', `Execution ${last.id} failed: ${last.failedTasks} of ${last.tasks} tasks failed${detail}`);
  }

  /**
   * Deletion: the policy (the registry stops its running executions), then the remote registry —
   * only when they are this object's (the remote registry carries its marker). A Registry that is
   * gone has nothing left to clean.
   */
  private async finalize(obj: ReplicationRuleObject, signal: AbortSignal): Promise<ReconcileResult> {
    if (!hasFinalizer(obj, REPLICATION_RULE_FINALIZER)) return {};
    const registry = this.caches.registries.get(`${obj.metadata.namespace}/${obj.spec.registryRef.name}`);
    const name = replicationName(obj);
    if (registry && !registry.metadata.deletionTimestamp) {
      const api = await this.connections.client(registry, signal);
      const path = { name };
      const got = await api.api.GET('/api/v1/registries/{name}', { params: { path }, signal });
      const remote = got.response.status === 404 ? undefined : (must(`get remote registry ${name}`, got) as LiveRemoteRegistry);
      if (remote?.description === remoteRegistryMarker(obj) || (remote && obj.status?.remoteRegistry === name)) {
        const policy = await api.api.DELETE('/api/v1/replication/policies/{name}', { params: { path }, signal });
        if (policy.response.status !== 404) must(`delete policy ${name}`, policy);
        const deleted = await api.api.DELETE('/api/v1/registries/{name}', { params: { path }, signal });
        if (deleted.response.status !== 404) must(`delete remote registry ${name}`, deleted);
        this.log.info({ policy: name }, 'replication rule finalized');
      }
    }
    this.written.delete(obj.metadata.uid!);
    await removeFinalizer(this.client, RESOURCES.ReplicationRule, obj, REPLICATION_RULE_FINALIZER, signal);
    return {};
  }
}

/**
 * Keys of the rules whose remote credentials are in this Secret. Wired to the metadata-only Secret
 * informer the Registries use (registry-references.ts): a change queues the rule, whose reconcile
 * reads the Secret and sends the credentials again when their digest changed.
 */
export function rulesReferencingSecret(rules: Informer<ReplicationRuleObject>, secret: KubeObject): string[] {
  return rules
    .list(secret.metadata.namespace)
    .filter((r) => r.spec.remote.credentialsSecretRef?.name === secret.metadata.name)
    .map(objectKey);
}
