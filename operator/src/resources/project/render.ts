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
