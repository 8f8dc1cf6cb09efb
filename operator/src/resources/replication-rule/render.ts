// What a ReplicationRule asks of the registry — one remote registry and one replication policy,
// both named after the object — how the registry's current state differs from it, and what the
// status says about the policy's last execution. Pure functions: the controller reads, calls
// these, and writes. Wire shapes: docs/replication.md.
import { createHash, createHmac } from 'node:crypto';
import type { ExecutionPhase, LastExecution, ReplicationRuleSpec } from '../../api/replicationrule.js';
import type { ReplicationRuleObject } from '../../api/types.js';
import type { KubeObject } from '../../kube/types.js';
import { stableStringify } from '../../runtime/apply.js';

export type { ReplicationRuleObject };

/** Setting it to a new value starts an execution (of a rule with any trigger). */
export const RUN_ANNOTATION = 'wharf.dev/run';

/** Names the registry accepts for a remote registry or a policy. */
const MAX_NAME = 63;
const NAME_PATTERN = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

/**
 * The name of the remote registry and of the policy in the registry: `<namespace>.<name>` (a
 * namespace has no dot, so no two objects share it). When that is longer than the registry's 63
 * characters or not in its grammar (`a--b`), a readable prefix plus 12 hex digits of a hash of
 * `<namespace>/<name>` instead.
 */
export function replicationName(obj: KubeObject): string {
  const plain = `${obj.metadata.namespace}.${obj.metadata.name}`;
  if (plain.length <= MAX_NAME && NAME_PATTERN.test(plain)) return plain;
  const hash = createHash('sha256').update(`${obj.metadata.namespace}/${obj.metadata.name}`).digest('hex').slice(0, 12);
  const prefix = plain.replace(/[._-]{2,}/g, '-').slice(0, MAX_NAME - hash.length - 1).replace(/[._-]+$/, '');
  return `${prefix}-${hash}`;
}

/** What the registry records as the remote registry's description: it marks the registry as this object's. */
export function remoteRegistryMarker(obj: KubeObject): string {
  return `Managed by ReplicationRule ${obj.metadata.namespace}/${obj.metadata.name}`;
}

export interface Credentials {
  username: string;
  password: string;
}

/** The body of `PUT /api/v1/registries/{name}`. */
export interface DesiredRemoteRegistry {
  provider: ReplicationRuleSpec['remote']['provider'];
  url: string;
  insecure: boolean;
  description: string;
  /** Absent when the rule has no credentials (anonymous: the registry stores none). */
  username?: string;
  /** Empty when anonymous, which clears a stored one. */
  password: string;
}

/** The registry's answer to `GET /api/v1/registries/{name}`, as far as it is compared. */
export interface LiveRemoteRegistry {
  provider: string;
  url: string;
  insecure: boolean;
  description?: string;
  username?: string | null;
  passwordSet: boolean;
  health?: { status: string; message?: string | null };
}

export function renderRemoteRegistry(obj: ReplicationRuleObject, credentials: Credentials | undefined): DesiredRemoteRegistry {
  const r = obj.spec.remote;
  return {
    provider: r.provider,
    url: r.url.replace(/\/+$/, ''), // as the registry stores it
    insecure: r.insecure,
    description: remoteRegistryMarker(obj),
    ...(credentials && { username: credentials.username }),
    password: credentials?.password ?? '',
  };
}

/**
 * A keyed digest of the credentials, kept in status so that a changed Secret is sent again (the
 * registry never returns a password). Keyed with a secret the operator holds (the Registry's
 * management password), so the status, which more people can read than the Secret, gives no way
 * to test guesses of a weak password offline.
 */
export function credentialsDigest(key: string, credentials: Credentials | undefined): string {
  const h = createHmac('sha256', key);
  if (credentials) h.update(credentials.username).update('\0').update(credentials.password);
  else h.update('\0anonymous');
  return h.digest('hex');
}

/** Differences between the registry's remote registry and the desired one, one line each. */
export function remoteRegistryDifferences(live: LiveRemoteRegistry, desired: DesiredRemoteRegistry, credentialsChanged: boolean): string[] {
  const out: string[] = [];
  if (live.provider !== desired.provider) out.push(`provider ${live.provider} → ${desired.provider}`);
  if (live.url !== desired.url) out.push(`url ${live.url} → ${desired.url}`);
  if (live.insecure !== desired.insecure) out.push(`insecure ${live.insecure} → ${desired.insecure}`);
  if ((live.description ?? '') !== desired.description) out.push('description');
  if ((live.username ?? '') !== (desired.username ?? '')) out.push(`username ${JSON.stringify(live.username ?? '')} → ${JSON.stringify(desired.username ?? '')}`);
  if (live.passwordSet !== desired.password.length > 0) out.push(desired.password ? 'password set' : 'password removed');
  else if (credentialsChanged) out.push('credentials from the Secret changed');
  return out;
}

export interface PatternFilter {
  matches: string[];
  excludes: string[];
}

/** The body of `PUT /api/v1/replication/policies/{name}`. */
export interface DesiredPolicy {
  description: string;
  mode: 'push' | 'pull';
  registry: string;
  filters: { name: PatternFilter; tag: PatternFilter; label: PatternFilter; resource: 'image' | 'artifact' | 'all' };
  destination: { namespace: string; flattening: ReplicationRuleSpec['destination']['flattening'] };
  trigger: { type: 'manual' } | { type: 'eventBased' } | { type: 'scheduled'; cron: string };
  replicateDeletion: boolean;
  override: boolean;
  enabled: boolean;
  bandwidthLimitKiBps: number;
  copyReferrers: boolean;
}

function patternFilter(spec: ReplicationRuleSpec, type: 'name' | 'tag' | 'label'): PatternFilter {
  const of = (decoration: 'matches' | 'excludes') => (spec.filters ?? []).filter((f) => f.type === type && (f.decoration ?? 'matches') === decoration).map((f) => f.value);
  return { matches: of('matches'), excludes: of('excludes') };
}

export function renderPolicy(obj: ReplicationRuleObject, registryName: string): DesiredPolicy {
  const spec = obj.spec;
  const resource = spec.filters?.find((f) => f.type === 'resource')?.value;
  const t = spec.trigger ?? { type: 'manual' };
  const trigger: DesiredPolicy['trigger'] = t.type === 'scheduled' ? { type: 'scheduled', cron: t.schedule ?? '' } : { type: t.type };
  return {
    description: spec.description ?? '',
    mode: spec.mode,
    registry: registryName,
    filters: {
      name: patternFilter(spec, 'name'),
      tag: patternFilter(spec, 'tag'),
      label: patternFilter(spec, 'label'),
      resource: resource === 'image' || resource === 'artifact' ? resource : 'all',
    },
    destination: { namespace: spec.destination?.project ?? '', flattening: spec.destination?.flattening ?? 'one' },
    trigger,
    replicateDeletion: spec.replicateDeletion ?? false,
    override: spec.override ?? true,
    enabled: spec.enabled ?? true,
    bandwidthLimitKiBps: spec.bandwidthLimitKiBps ?? 0,
    copyReferrers: spec.copyReferrers ?? true,
  };
}

/** The policy fields that are compared, from the registry's answer (extra fields such as id and timestamps are ignored). */
export type LivePolicy = { [K in keyof DesiredPolicy]?: unknown } & Record<string, unknown>;

const sortedFilter = (f: unknown) => {
  const p = (f ?? {}) as Partial<PatternFilter>;
  return { matches: [...(p.matches ?? [])].sort(), excludes: [...(p.excludes ?? [])].sort() };
};

function comparable(p: LivePolicy | DesiredPolicy): Record<string, unknown> {
  const filters = (p.filters ?? {}) as Record<string, unknown>;
  const trigger = (p.trigger ?? {}) as { type?: string; cron?: string | null };
  return {
    description: p.description ?? '',
    mode: p.mode,
    registry: p.registry,
    filters: { name: sortedFilter(filters.name), tag: sortedFilter(filters.tag), label: sortedFilter(filters.label), resource: filters.resource ?? 'all' },
    destination: p.destination,
    trigger: trigger.type === 'scheduled' ? { type: 'scheduled', cron: trigger.cron } : { type: trigger.type },
    replicateDeletion: p.replicateDeletion,
    override: p.override,
    enabled: p.enabled,
    bandwidthLimitKiBps: p.bandwidthLimitKiBps ?? 0,
    copyReferrers: p.copyReferrers,
  };
}

/** The names of the policy fields that differ, in a stable order. */
export function policyDifferences(live: LivePolicy, desired: DesiredPolicy): string[] {
  const a = comparable(live);
  const b = comparable(desired);
  return Object.keys(b).filter((k) => stableStringify(a[k]) !== stableStringify(b[k]));
}

/** The run request the object carries and has not been handled yet, if any. */
export function pendingRunRequest(obj: KubeObject & { status?: { lastRunRequest?: string } }, handledHere?: string): string | undefined {
  const requested = obj.metadata.annotations?.[RUN_ANNOTATION];
  if (requested === undefined || requested === obj.status?.lastRunRequest || requested === handledHere) return undefined;
  return requested;
}

/** An execution as the registry answers it (`GET /api/v1/replication/executions`). */
export interface LiveExecution {
  id: string;
  trigger?: string;
  status: string;
  startedAt?: string | null;
  endedAt?: string | null;
  tasks?: { total?: number; failed?: number };
  artifacts?: number;
  bytes?: number;
  message?: string | null;
}

const PHASES: readonly ExecutionPhase[] = ['Pending', 'InProgress', 'Succeeded', 'Failed', 'Stopped'];

export function lastExecutionStatus(e: LiveExecution): LastExecution {
  const phase = PHASES.find((p) => p === e.status);
  if (!phase) throw new Error(`the registry reports an unknown execution status ${JSON.stringify(e.status)}`);
  return {
    id: e.id,
    phase,
    ...(e.trigger && { trigger: e.trigger }),
    ...(e.startedAt && { startTime: e.startedAt }),
    ...(e.endedAt && { endTime: e.endedAt }),
    artifacts: e.artifacts ?? 0,
    bytes: e.bytes ?? 0,
    tasks: e.tasks?.total ?? 0,
    failedTasks: e.tasks?.failed ?? 0,
    ...(e.message && { message: e.message.slice(0, 4096) }),
  };
}

export const isRunning = (e: LastExecution | undefined): boolean => e?.phase === 'Pending' || e?.phase === 'InProgress';

/** Whether `current` is a failure the status did not show yet (so its Event is recorded once). */
export function newlyFailed(previous: LastExecution | undefined, current: LastExecution | undefined): boolean {
  return current?.phase === 'Failed' && !(previous?.id === current.id && previous.phase === 'Failed');
}

/** How often an execution is looked at while it runs. */
export const EXECUTION_POLL_MS = 5_000;
/** How often a scheduled or event-based rule looks for executions the registry started on its own. */
export const TRIGGER_POLL_MS = 60_000;

/**
 * When to look at the rule again: every few seconds while its last execution runs; every minute
 * for a rule the registry runs by itself (scheduled, eventBased); otherwise at the next change or
 * resync (a manual rule's executions are started here).
 */
export function pollAfterMs(spec: ReplicationRuleSpec, last: LastExecution | undefined): number | undefined {
  if (isRunning(last)) return EXECUTION_POLL_MS;
  if (spec.enabled !== false && spec.trigger?.type !== 'manual') return TRIGGER_POLL_MS;
  return undefined;
}

/** One line for the Ready condition. */
export function summaryMessage(name: string, last: LastExecution | undefined, remoteHealth?: { status: string; message?: string | null }): string {
  const parts = [`Remote registry and policy ${name} are in sync`];
  if (remoteHealth?.status === 'unhealthy') parts.push(`the remote registry is unhealthy${remoteHealth.message ? `: ${remoteHealth.message}` : ''}`);
  if (last) {
    const failed = last.failedTasks ? `, ${last.failedTasks} of ${last.tasks} tasks failed` : '';
    parts.push(`last execution ${last.id} ${last.phase} (${last.artifacts} artifacts, ${last.bytes} bytes${failed})`);
  } else {
    parts.push('no execution yet');
  }
  return parts.join('; ');
}
