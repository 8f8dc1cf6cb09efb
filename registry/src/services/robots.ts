import { actorOf, robotProject } from '../auth/identities.js';
import { generateRobotSecret, type PasswordHasher } from '../auth/passwords.js';
import { ROBOT_GRANTABLE, type Permission, type Principal, type RobotPermission } from '../auth/policy.js';
import type { Metadata } from '../metadata/index.js';
import type { Robot, RobotSpec } from '../metadata/robots.js';
import { ociError } from '../oci/errors.js';
import { requireInProject, requireSystem } from './access.js';
import type { AuditLog } from './audit.js';
import type { PageQuery } from './projects.js';
import { checkProjectName, checkRobotName, projectRobotName, systemRobotName } from './names.js';

/** A robot as the API shows it: never a secret hash. */
export type RobotView = Omit<Robot, 'secretHash' | 'previousSecretHash' | 'projectId'> & { project: string | null };

export interface RobotInput {
  description?: string;
  disabled?: boolean;
  durationDays?: number;
  /** Who manages the robot declaratively; '' clears it, absent leaves it. */
  managedBy?: string;
  /** `namespace` defaults to the robot's project. */
  permissions: (Omit<RobotPermission, 'namespace'> & { namespace?: string | undefined })[];
}

export interface RotateOptions {
  /** Set this secret instead of generating one. */
  secret?: string | undefined;
  graceSeconds?: number | undefined;
  keepPrevious?: boolean | undefined;
}

/** Where a robot lives: in a project (`robot$<project>+<name>`) or at system level (`robot$<name>`). */
export type RobotScope = { project: string } | { project: null };

const MIN_PROVIDED_SECRET = 16;
/** How long a rotated-out secret keeps working unless the caller says otherwise. */
export const DEFAULT_ROTATION_GRACE_SECONDS = 3600;
/** A week: long enough for any rollout, short enough that a forgotten old secret dies. */
export const MAX_ROTATION_GRACE_SECONDS = 604_800;

function view(robot: Robot, project: string | null): RobotView {
  const { secretHash: _secret, previousSecretHash: _previous, projectId: _projectId, ...shown } = robot;
  return { ...shown, project };
}

function validatePermissions(scope: RobotScope, permissions: RobotInput['permissions']): RobotPermission[] {
  return permissions.map((entry) => {
    const namespace = entry.namespace || scope.project || '';
    if (scope.project !== null && namespace !== scope.project) {
      throw ociError('INVALID_REQUEST', { namespace }, { message: `a robot of project "${scope.project}" can only hold permissions in that project, not in "${namespace}"` });
    }
    if (namespace !== '*') checkProjectName(namespace);
    for (const { resource, action } of entry.access) {
      if (!ROBOT_GRANTABLE.includes(`${resource}:${action}` as Permission)) {
        throw ociError('INVALID_REQUEST', { resource, action }, { message: `robots cannot be granted ${resource}:${action}; grantable: ${ROBOT_GRANTABLE.join(', ')}` });
      }
    }
    return { namespace, access: entry.access.map(({ resource, action }) => ({ resource, action })) };
  });
}

/** Robot accounts: create-or-update by name, secret shown once, rotation. */
export class RobotService {
  constructor(
    private readonly meta: Metadata,
    private readonly audit: AuditLog,
    private readonly passwords: PasswordHasher,
  ) {}

  /** Checks the caller may manage robots in `scope`; returns the project id (null for system robots). */
  private async authorize(principal: Principal, scope: RobotScope, permission: 'robot:read' | 'robot:write'): Promise<string | null> {
    if (scope.project === null) {
      requireSystem(principal, 'system-robot:write');
      return null;
    }
    return requireInProject(principal, scope.project, await this.meta.projects.get(scope.project), permission).id;
  }

  private fullName(scope: RobotScope, name: string): string {
    checkRobotName(name);
    return scope.project === null ? systemRobotName(name) : projectRobotName(scope.project, name);
  }

  private record(principal: Principal, action: string, name: string, detail?: Record<string, unknown>) {
    const project = robotProject(name);
    this.audit.record({ actor: actorOf(principal), action, resourceType: 'robot', resource: name, ...(project && { project }), outcome: 'success', ...(detail && { detail }) });
  }

  async list(principal: Principal, scope: RobotScope, page: PageQuery): Promise<{ items: RobotView[]; next?: string }> {
    const projectId = await this.authorize(principal, scope, 'robot:read');
    const rows = await this.meta.robots.list(projectId, { limit: page.limit + 1, ...(page.after !== undefined && { after: page.after }) });
    const items = rows.slice(0, page.limit).map((r) => view(r, scope.project));
    return rows.length > page.limit ? { items, next: items[items.length - 1]!.name } : { items };
  }

  async get(principal: Principal, scope: RobotScope, name: string): Promise<RobotView> {
    await this.authorize(principal, scope, 'robot:read');
    const robot = await this.meta.robots.get(this.fullName(scope, name));
    if (!robot) throw ociError('RESOURCE_NOT_FOUND', { robot: name }, { message: `robot "${name}" not found` });
    return view(robot, scope.project);
  }

  /** Creates (returning the generated secret once) or updates the robot. Idempotent. */
  async put(principal: Principal, scope: RobotScope, name: string, input: RobotInput): Promise<{ robot: RobotView; created: boolean; secret?: string }> {
    const projectId = await this.authorize(principal, scope, 'robot:write');
    const fullName = this.fullName(scope, name);
    const spec: RobotSpec = {
      description: input.description ?? '',
      disabled: input.disabled ?? false,
      durationDays: input.durationDays ?? -1,
      permissions: validatePermissions(scope, input.permissions),
      ...(input.managedBy !== undefined && { managedBy: input.managedBy }),
    };
    if (spec.durationDays !== -1 && (!Number.isInteger(spec.durationDays) || spec.durationDays < 1)) {
      throw ociError('INVALID_REQUEST', { durationDays: spec.durationDays }, { message: 'durationDays must be -1 (never expires) or a positive number of days' });
    }
    const secret = generateRobotSecret();
    const result = await this.meta.robots.upsert(fullName, projectId, spec, await this.passwords.hashRobotSecret(secret, true));
    if ('managedByOther' in result) {
      throw ociError('CONFLICT', { robot: fullName, managedBy: result.managedByOther }, { message: `robot "${fullName}" is managed by ${JSON.stringify(result.managedByOther)}` });
    }
    const { robot, created, changed } = result;
    if (changed) {
      this.record(principal, created ? 'create' : 'update', fullName, {
        disabled: spec.disabled,
        durationDays: spec.durationDays,
        permissions: spec.permissions,
        ...(spec.managedBy !== undefined && { managedBy: spec.managedBy }),
      });
    }
    return created ? { robot: view(robot, scope.project), created, secret } : { robot: view(robot, scope.project), created };
  }

  /**
   * Issues a new secret, or sets the one given. The old secret keeps working for `graceSeconds`
   * (default an hour), so that every copy of it can be replaced first; 0 cuts it off at once
   * (a leaked secret). A secret replaced by an earlier rotation stops working now either way,
   * except with `keepPrevious`: then only the current secret is replaced (it stops at once) and
   * the previous one keeps its window. That is for a caller that lost the secret of its last
   * rotation before storing it, while its copies still hold the secret before that.
   */
  async rotate(principal: Principal, scope: RobotScope, name: string, options: RotateOptions = {}): Promise<{ robot: RobotView; secret: string }> {
    await this.authorize(principal, scope, 'robot:write');
    const fullName = this.fullName(scope, name);
    const { secret: provided, graceSeconds, keepPrevious = false } = options;
    if (provided !== undefined && (provided.length < MIN_PROVIDED_SECRET || provided.length > 128)) {
      throw ociError('INVALID_REQUEST', undefined, { message: `a provided secret must be ${MIN_PROVIDED_SECRET} to 128 characters long` });
    }
    if (keepPrevious && graceSeconds !== undefined) {
      throw ociError('INVALID_REQUEST', undefined, { message: 'keepPrevious keeps the previous secret\'s window; it cannot be combined with graceSeconds' });
    }
    const grace = graceSeconds ?? DEFAULT_ROTATION_GRACE_SECONDS;
    if (!Number.isInteger(grace) || grace < 0 || grace > MAX_ROTATION_GRACE_SECONDS) {
      throw ociError('INVALID_REQUEST', { graceSeconds: grace }, { message: `graceSeconds must be an integer from 0 to ${MAX_ROTATION_GRACE_SECONDS}` });
    }
    const secret = provided ?? generateRobotSecret();
    const robot = await this.meta.robots.setSecret(fullName, await this.passwords.hashRobotSecret(secret, provided === undefined), keepPrevious ? 'keep-previous' : grace);
    if (!robot) throw ociError('RESOURCE_NOT_FOUND', { robot: name }, { message: `robot "${name}" not found` });
    this.record(principal, 'rotate', fullName, { provided: provided !== undefined, ...(keepPrevious ? { keepPrevious } : { graceSeconds: grace }) });
    return { robot: view(robot, scope.project), secret };
  }

  async delete(principal: Principal, scope: RobotScope, name: string): Promise<void> {
    await this.authorize(principal, scope, 'robot:write');
    const fullName = this.fullName(scope, name);
    if (!(await this.meta.robots.delete(fullName))) throw ociError('RESOURCE_NOT_FOUND', { robot: name }, { message: `robot "${name}" not found` });
    this.record(principal, 'delete', fullName);
  }
}
