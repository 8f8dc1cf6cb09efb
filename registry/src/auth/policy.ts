/**
 * The permission matrix: who may do what in a project. One pure module; the README's
 * table is generated from `ROLE_PERMISSIONS`.
 */
export const ROLES = ['projectAdmin', 'maintainer', 'developer', 'guest', 'limitedGuest'] as const;
export type Role = (typeof ROLES)[number];

export const PERMISSIONS = [
  'repository:pull',
  'repository:push',
  'repository:delete',
  'project:read',
  'project:update',
  'project:delete',
  'member:read',
  'member:write',
  'robot:read',
  'robot:write',
  'quota:read',
  'audit:read',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** Permissions that only system administrators hold, whatever their role in a project. */
export const SYSTEM_PERMISSIONS = ['quota:write', 'project:create', 'user:read', 'user:write', 'system-robot:write', 'audit:read-all', 'gc:run'] as const;
export type SystemPermission = (typeof SYSTEM_PERMISSIONS)[number];

export const ROLE_PERMISSIONS: Readonly<Record<Role, readonly Permission[]>> = {
  projectAdmin: PERMISSIONS,
  maintainer: ['repository:pull', 'repository:push', 'repository:delete', 'project:read', 'member:read', 'robot:read', 'quota:read', 'audit:read'],
  developer: ['repository:pull', 'repository:push', 'project:read', 'member:read', 'quota:read', 'audit:read'],
  guest: ['repository:pull', 'project:read', 'member:read', 'quota:read', 'audit:read'],
  limitedGuest: ['repository:pull', 'project:read'],
};

/** What anyone, signed in or not, may do in a public project. */
export const PUBLIC_PERMISSIONS: readonly Permission[] = ['repository:pull', 'project:read'];

/** Robot permission entries: resource/action pairs on one project or on every project (`*`). */
export interface RobotPermission {
  namespace: string;
  access: { resource: string; action: string }[];
}

/** The resource/action pairs a robot may be given. */
export const ROBOT_GRANTABLE: readonly Permission[] = ['repository:pull', 'repository:push', 'repository:delete', 'project:read', 'member:read', 'robot:read', 'quota:read', 'audit:read'];

export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'user'; id: string; name: string; admin: boolean; roles: ReadonlyMap<string, Role> }
  | { kind: 'robot'; id: string; name: string; project: string | null; permissions: readonly RobotPermission[] };

export interface ProjectFacts {
  name: string;
  public: boolean;
}

/** Every permission `principal` holds in `project`. Pure. */
export function permissionsIn(principal: Principal, project: ProjectFacts): Set<Permission> {
  const granted = new Set<Permission>(project.public ? PUBLIC_PERMISSIONS : []);
  if (principal.kind === 'user') {
    if (principal.admin) return new Set(PERMISSIONS);
    const role = principal.roles.get(project.name);
    for (const p of role ? ROLE_PERMISSIONS[role] : []) granted.add(p);
  } else if (principal.kind === 'robot') {
    for (const entry of principal.permissions) {
      const applies = entry.namespace === project.name || (entry.namespace === '*' && principal.project === null);
      if (!applies) continue;
      for (const { resource, action } of entry.access) {
        const p = `${resource}:${action}` as Permission;
        if (ROBOT_GRANTABLE.includes(p)) granted.add(p);
      }
    }
  }
  return granted;
}

/**
 * Whether `principal` may know that `project` exists: it holds some permission in it. To
 * everyone else a project is indistinguishable from one that does not exist.
 */
export function seesProject(principal: Principal, project: ProjectFacts): boolean {
  return permissionsIn(principal, project).size > 0;
}

export function can(principal: Principal, project: ProjectFacts, permission: Permission): boolean {
  return permissionsIn(principal, project).has(permission);
}

export function isSystemAdmin(principal: Principal): boolean {
  return principal.kind === 'user' && principal.admin;
}

/** The distribution token actions `principal` may receive on a repository of `project`. */
export function repositoryActions(principal: Principal, project: ProjectFacts | undefined): Set<string> {
  if (!project) return new Set();
  const held = permissionsIn(principal, project);
  const actions = new Set<string>();
  for (const action of ['pull', 'push', 'delete'] as const) if (held.has(`repository:${action}`)) actions.add(action);
  return actions;
}

/**
 * The projects where `principal` holds `permission`, for listings that filter in the
 * database: 'all', or whether public projects qualify and the names of the others
 * (each checked with `can`, so this is the same rule, enumerated).
 */
export function projectsWith(principal: Principal, permission: Permission): 'all' | { public: boolean; names: Set<string> } {
  const held = (name: string) => can(principal, { name, public: false }, permission);
  if (isSystemAdmin(principal)) return 'all';
  // A system robot's '*' entry applies to every project (permissionsIn).
  if (principal.kind === 'robot' && principal.project === null && principal.permissions.some((e) => e.namespace === '*') && held('*')) return 'all';
  const named = principal.kind === 'user' ? [...principal.roles.keys()] : principal.kind === 'robot' ? principal.permissions.map((e) => e.namespace) : [];
  return { public: PUBLIC_PERMISSIONS.includes(permission), names: new Set(named.filter((name) => name !== '*' && held(name))) };
}
