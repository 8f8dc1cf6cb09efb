import { actorOf } from '../auth/identities.js';
import type { Principal } from '../auth/policy.js';
import { CronError, parseCron } from '../jobs/cron.js';
import type { ReplicationStore, StoredPolicy } from '../metadata/replication.js';
import { ociError } from '../oci/errors.js';
import type { AuditLog } from '../services/audit.js';
import { requireReplicationAdmin } from './access.js';
import type { Flattening } from './flatten.js';
import type { Policy, PolicySpec, ReplicationMode, ResourceKind, TriggerType } from './policy.js';
import { checkName } from './registries.js';

export interface PolicyInputBody {
  description?: string;
  mode: ReplicationMode;
  registry: string;
  filters?: {
    name?: { matches?: string[]; excludes?: string[] };
    tag?: { matches?: string[]; excludes?: string[] };
    label?: { matches?: string[]; excludes?: string[] };
    resource?: ResourceKind;
  };
  destination?: { namespace?: string; flattening?: Flattening };
  trigger?: { type: TriggerType; cron?: string };
  replicateDeletion?: boolean;
  override?: boolean;
  enabled?: boolean;
  bandwidthLimitKiBps?: number;
  copyReferrers?: boolean;
}

const pattern = (f?: { matches?: string[]; excludes?: string[] }) => ({ matches: f?.matches ?? [], excludes: f?.excludes ?? [] });

/** The stored spec of an API body, defaults filled in; throws INVALID_REQUEST for settings that cannot work. */
export function policySpec(input: PolicyInputBody): PolicySpec {
  const trigger = input.trigger ?? { type: 'manual' as const };
  if (trigger.type === 'scheduled') {
    if (!trigger.cron) throw ociError('INVALID_REQUEST', { trigger }, { message: 'a scheduled trigger needs a cron expression (UTC)' });
    try {
      parseCron(trigger.cron);
    } catch (err) {
      if (err instanceof CronError) throw ociError('INVALID_REQUEST', { cron: trigger.cron }, { message: err.message });
      throw err;
    }
  } else if (trigger.cron) {
    throw ociError('INVALID_REQUEST', { trigger }, { message: `a ${trigger.type} trigger takes no cron expression` });
  }
  if (trigger.type === 'eventBased' && input.mode === 'pull') {
    throw ociError('INVALID_REQUEST', { trigger }, { message: 'event-based triggers need push mode: the events are this registry\'s pushes and deletes' });
  }
  const namespace = (input.destination?.namespace ?? '').replace(/^\/+|\/+$/g, '');
  if (namespace && !/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(namespace)) {
    throw ociError('INVALID_REQUEST', { namespace }, { message: 'destination.namespace must be repository path components' });
  }
  return {
    description: input.description ?? '',
    mode: input.mode,
    filters: { name: pattern(input.filters?.name), tag: pattern(input.filters?.tag), label: pattern(input.filters?.label), resource: input.filters?.resource ?? 'all' },
    destination: { namespace, flattening: input.destination?.flattening ?? 'one' },
    trigger: trigger.type === 'scheduled' ? { type: 'scheduled', cron: trigger.cron! } : { type: trigger.type },
    replicateDeletion: input.replicateDeletion ?? false,
    override: input.override ?? true,
    enabled: input.enabled ?? true,
    bandwidthLimitKiBps: input.bandwidthLimitKiBps ?? 0,
    copyReferrers: input.copyReferrers ?? true,
  };
}

export function toPolicy(stored: StoredPolicy<PolicySpec>): Policy {
  return { ...stored.spec, id: stored.id, name: stored.name, registry: stored.registryName, registryId: stored.registryId, createdAt: stored.createdAt, updatedAt: stored.updatedAt };
}

/** Replication policies (create or update by name). */
export class PolicyService {
  constructor(
    private readonly store: ReplicationStore,
    private readonly audit: AuditLog,
    /** Stops the policy's open executions before it goes. */
    private readonly stopOpen: (policyId: string) => Promise<void>,
  ) {}

  async list(principal: Principal, page: { limit: number; after?: string }): Promise<{ items: Policy[]; next?: string }> {
    requireReplicationAdmin(principal);
    const rows = await this.store.policies<PolicySpec>({ limit: page.limit + 1, ...(page.after !== undefined && { after: page.after }) });
    const items = rows.slice(0, page.limit).map(toPolicy);
    return rows.length > page.limit ? { items, next: items[items.length - 1]!.name } : { items };
  }

  async get(principal: Principal, name: string): Promise<Policy> {
    requireReplicationAdmin(principal);
    return toPolicy(await this.require(name));
  }

  async require(name: string): Promise<StoredPolicy<PolicySpec>> {
    const policy = await this.store.policy<PolicySpec>(name);
    if (!policy) throw ociError('RESOURCE_NOT_FOUND', { policy: name.slice(0, 100) }, { message: `replication policy "${name.slice(0, 100)}" not found` });
    return policy;
  }

  async put(principal: Principal, name: string, input: PolicyInputBody): Promise<{ policy: Policy; created: boolean }> {
    requireReplicationAdmin(principal);
    checkName('policy', name);
    const spec = policySpec(input);
    const registry = await this.store.registry(input.registry);
    if (!registry) throw ociError('INVALID_REQUEST', { registry: input.registry.slice(0, 100) }, { message: `registry "${input.registry.slice(0, 100)}" does not exist; create it under /api/v1/registries first` });
    const { policy, created } = await this.store.putPolicy(name, registry.id, spec);
    this.audit.record({ actor: actorOf(principal), action: created ? 'create' : 'update', resourceType: 'replication-policy', resource: name, outcome: 'success', detail: { mode: spec.mode, registry: input.registry } });
    return { policy: toPolicy(policy), created };
  }

  async delete(principal: Principal, name: string): Promise<void> {
    requireReplicationAdmin(principal);
    const policy = await this.require(name);
    await this.stopOpen(policy.id);
    if (!(await this.store.deletePolicy(name))) throw ociError('RESOURCE_NOT_FOUND', { policy: name }, { message: `replication policy "${name}" not found` });
    this.audit.record({ actor: actorOf(principal), action: 'delete', resourceType: 'replication-policy', resource: name, outcome: 'success' });
  }
}
