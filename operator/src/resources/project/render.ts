// What a Project object asks of the registry, and how the registry's current state differs from
// it. Pure functions: the controller reads, calls these, and writes.
import type { ProjectSpec } from '../../api/project.js';
import type { KubeObject } from '../../kube/types.js';
import { parseQuantity } from '../../runtime/quantity.js';
import { UserError } from '../../runtime/user-error.js';

export interface ProjectObject extends KubeObject {
  spec: ProjectSpec;
  status?: import('../../api/project.js').ProjectStatus;
}

export type Role = 'projectAdmin' | 'maintainer' | 'developer' | 'guest' | 'limitedGuest';

export interface DesiredProject {
  name: string;
  public: boolean;
  /** Bytes; -1 unlimited. */
  storageLimit: number;
  /** What the registry records as the project's manager. */
  managedBy: string;
  users: Map<string, Role>;
  groups: Map<string, Role>;
}

/** The registry's side, as read through the management API. */
export interface LiveProject {
  public: boolean;
  storageLimit: number;
  managedBy: string | null;
  proxyCache: LiveProxyCache | null;
  users: Map<string, Role>;
  groups: Map<string, Role>;
}

/** The manager string recorded in the registry for a Project object. */
export function projectManager(obj: KubeObject): string {
  return `${obj.metadata.namespace}/${obj.metadata.name}`;
}

export function projectName(obj: ProjectObject): string {
  return obj.spec.projectName ?? obj.metadata.name;
}

/** A Kubernetes quantity as whole bytes; unset is unlimited (-1). */
export function quotaBytes(storage: string | number | undefined): number {
  if (storage === undefined) return -1;
  const bytes = parseQuantity(String(storage));
  if (bytes === undefined || bytes < 0 || !Number.isSafeInteger(Math.ceil(bytes))) {
    throw new UserError('InvalidQuota', `quota.storage ${JSON.stringify(storage)} is not a non-negative quantity of bytes`);
  }
  return Math.ceil(bytes);
}

export function renderProject(obj: ProjectObject): DesiredProject {
  const users = new Map<string, Role>();
  const groups = new Map<string, Role>();
  for (const m of obj.spec.members ?? []) (m.kind === 'Group' ? groups : users).set(m.name, m.role);
  return {
    name: projectName(obj),
    public: obj.spec.visibility === 'public',
    storageLimit: quotaBytes(obj.spec.quota?.storage),
    managedBy: projectManager(obj),
    users,
    groups,
  };
}

/** Differences between the registry and the desired state, one human-readable line each, in a stable order. */
export function projectDifferences(live: LiveProject, desired: DesiredProject): string[] {
  const out: string[] = [];
  if (live.public !== desired.public) out.push(`visibility ${live.public ? 'public' : 'private'} → ${desired.public ? 'public' : 'private'}`);
  if (live.storageLimit !== desired.storageLimit) out.push(`storage limit ${live.storageLimit} → ${desired.storageLimit} bytes`);
  out.push(...roleDifferences('user', live.users, desired.users), ...roleDifferences('group', live.groups, desired.groups));
  return out;
}

function roleDifferences(kind: string, live: Map<string, Role>, desired: Map<string, Role>): string[] {
  const out: string[] = [];
  for (const [name, role] of [...desired].sort(([a], [b]) => a.localeCompare(b))) {
    const had = live.get(name);
    if (had === undefined) out.push(`${kind} ${name} added as ${role}`);
    else if (had !== role) out.push(`${kind} ${name} role ${had} → ${role}`);
  }
  for (const name of [...live.keys()].sort()) if (!desired.has(name)) out.push(`${kind} ${name} (${live.get(name)}) removed`);
  return out;
}

/** The upstream credentials read from `credentialsSecretRef`; `version` names the Secret's state (uid/resourceVersion). */
export interface UpstreamCredentials {
  username: string;
  password: string;
  version: string;
}

export interface DesiredProxyCache {
  provider: NonNullable<ProjectSpec['proxyCache']>['provider'];
  url: string;
  insecure: boolean;
  /** Lower case, deduplicated and sorted (the registry's set). */
  mirrorOf: string[];
  manifestTTLSeconds: number;
  credentials?: UpstreamCredentials;
}

/** `proxyCache` as the registry shows it (never the password, only whether one is stored). */
export interface LiveProxyCache {
  provider: string;
  url: string;
  insecure: boolean;
  mirrorOf: string[];
  manifestTTLSeconds: number;
  username?: string;
  passwordSet: boolean;
}

/** The URL as the registry stores it: origin and path without a trailing slash. */
function normalizeUrl(value: string): string {
  try {
    const url = new URL(value);
    return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
  } catch {
    return value;
  }
}

function hostSet(hosts: readonly string[] | undefined): string[] {
  return [...new Set((hosts ?? []).map((h) => h.trim().toLowerCase()))].sort();
}

/** The proxy-cache settings a Project asks for (null: an ordinary project). */
export function renderProxyCache(spec: ProjectSpec['proxyCache'], credentials: UpstreamCredentials | undefined): DesiredProxyCache | null {
  if (!spec) return null;
  return {
    provider: spec.provider,
    url: normalizeUrl(spec.url),
    insecure: spec.insecure ?? false,
    mirrorOf: hostSet(spec.mirrorOf),
    manifestTTLSeconds: spec.manifestTTLSeconds ?? 300,
    ...(credentials && { credentials }),
  };
}

/**
 * What must be sent for the proxy-cache settings, one line each (never a secret value); empty
 * when the registry already has them. The password is write-only, so it counts as sent when the
 * registry holds one and `sentVersion` (recorded in the Project's status after the last write)
 * names the credentials Secret's current version.
 */
export function proxyCacheDifferences(live: LiveProxyCache | null, desired: DesiredProxyCache | null, sentVersion: string | undefined): string[] {
  if (!desired) return live ? ['proxy cache removed'] : [];
  if (!live) return [`proxy cache of ${desired.url} set`];
  const out: string[] = [];
  if (live.provider !== desired.provider) out.push(`proxy provider ${live.provider} → ${desired.provider}`);
  if (live.url !== desired.url) out.push(`proxy upstream ${live.url} → ${desired.url}`);
  if (live.insecure !== desired.insecure) out.push(`proxy insecure ${live.insecure} → ${desired.insecure}`);
  const liveHosts = hostSet(live.mirrorOf);
  if (liveHosts.join(',') !== desired.mirrorOf.join(',')) out.push(`mirrorOf [${liveHosts.join(', ')}] → [${desired.mirrorOf.join(', ')}]`);
  if (live.manifestTTLSeconds !== desired.manifestTTLSeconds) out.push(`manifest TTL ${live.manifestTTLSeconds}s → ${desired.manifestTTLSeconds}s`);
  const creds = desired.credentials;
  if (!creds) {
    if (live.username !== undefined || live.passwordSet) out.push('upstream credentials removed');
  } else if (live.username !== creds.username) {
    out.push(`upstream username ${live.username ?? '(none)'} → ${creds.username}`);
  } else if (!live.passwordSet) {
    out.push('upstream password set');
  } else if (sentVersion !== creds.version) {
    out.push('upstream password sent again (the credentials Secret changed)');
  }
  return out;
}

/** The `proxyCache` body of a project PUT: the password goes with every write that has credentials. */
export function proxyCacheBody(desired: DesiredProxyCache | null) {
  if (!desired) return null;
  const { credentials, ...settings } = desired;
  return { ...settings, ...(credentials && { username: credentials.username, password: credentials.password }) };
}
