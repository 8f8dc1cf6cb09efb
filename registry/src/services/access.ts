import { can, isSystemAdmin, seesProject, type Permission, type Principal, type SystemPermission } from '../auth/policy.js';
import type { Project } from '../metadata/projects.js';
import { ociError } from '../oci/errors.js';

export function notSignedIn() {
  return ociError('UNAUTHORIZED', undefined, { message: 'sign in (Basic credentials or a bearer token) to do this', headers: { 'WWW-Authenticate': 'Basic realm="wharf"' } });
}

/** Whether `principal` may learn that `project` exists (an absent project: nobody). */
export function visibleTo(principal: Principal, project: Project | undefined): project is Project {
  return project !== undefined && seesProject(principal, project);
}

/**
 * Returns the project when `principal` holds `permission` in it. A project the principal
 * cannot see gets the same answer as one that does not exist, so names do not leak:
 * 404 when signed in, 401 (sign in) when anonymous.
 */
export function requireInProject(principal: Principal, name: string, project: Project | undefined, permission: Permission): Project {
  if (!visibleTo(principal, project)) {
    if (principal.kind === 'anonymous') throw notSignedIn();
    throw ociError('RESOURCE_NOT_FOUND', { project: name }, { message: `project "${name}" not found` });
  }
  if (!can(principal, project, permission)) {
    if (principal.kind === 'anonymous') throw notSignedIn();
    throw ociError('DENIED', { project: name, permission }, { message: `${permission} on project "${name}" is not allowed for ${principal.name}` });
  }
  return project;
}

export function requireSystem(principal: Principal, permission: SystemPermission): void {
  if (isSystemAdmin(principal)) return;
  if (principal.kind === 'anonymous') throw notSignedIn();
  throw ociError('DENIED', { permission }, { message: `${permission} needs a system administrator` });
}
