import type { Metadata } from '../metadata/index.js';
import type { Robot } from '../metadata/robots.js';
import { hashPassword, verifyPassword, verifyRobotSecret } from './passwords.js';
import type { Principal } from './policy.js';

export type Authentication = { ok: true; principal: Principal } | { ok: false; reason: string };

const ROBOT_PREFIX = 'robot$';

/** `robot$<project>+<name>` → project; `robot$<name>` → null (a system robot). */
export function robotProject(name: string): string | null {
  const body = name.slice(ROBOT_PREFIX.length);
  const plus = body.indexOf('+');
  return plus === -1 ? null : body.slice(0, plus);
}

export function isRobotName(name: string): boolean {
  return name.startsWith(ROBOT_PREFIX);
}

/** Why a robot may not sign in right now, if it may not. */
export function robotUnusable(robot: Robot, now = new Date()): string | undefined {
  if (robot.disabled) return 'robot account is disabled';
  if (robot.expiresAt && robot.expiresAt <= now) return 'robot account has expired';
  return undefined;
}

// Compared against when the user does not exist, so a failed login costs the same either way.
const decoyHash = hashPassword('wharf decoy password');

/** Turns credentials or token subjects into principals, reading current state every time. */
export class IdentityService {
  constructor(private readonly meta: Metadata) {}

  async authenticate(username: string, secret: string): Promise<Authentication> {
    if (isRobotName(username)) {
      const robot = await this.meta.robots.get(username);
      if (!robot || !(await verifyRobotSecret(secret, robot.secretHash))) return { ok: false, reason: 'invalid robot credentials' };
      const unusable = robotUnusable(robot);
      if (unusable) return { ok: false, reason: unusable };
      return { ok: true, principal: this.robotPrincipal(robot) };
    }
    const user = await this.meta.users.get(username);
    const valid = await verifyPassword(secret, user?.passwordHash ?? (await decoyHash));
    if (!user || !valid) return { ok: false, reason: 'invalid username or password' };
    return { ok: true, principal: { kind: 'user', id: user.id, name: user.username, admin: user.admin, roles: await this.meta.projects.rolesOf(user.id) } };
  }

  /** The principal a token was issued to, as it stands now; anonymous when it no longer exists or may not sign in. */
  async principalFor(subject: string | undefined): Promise<Principal> {
    if (!subject) return { kind: 'anonymous' };
    if (isRobotName(subject)) {
      const robot = await this.meta.robots.get(subject);
      return robot && !robotUnusable(robot) ? this.robotPrincipal(robot) : { kind: 'anonymous' };
    }
    const user = await this.meta.users.get(subject);
    if (!user) return { kind: 'anonymous' };
    return { kind: 'user', id: user.id, name: user.username, admin: user.admin, roles: await this.meta.projects.rolesOf(user.id) };
  }

  private robotPrincipal(robot: Robot): Principal {
    return { kind: 'robot', id: robot.id, name: robot.name, project: robotProject(robot.name), permissions: robot.permissions };
  }
}

export function subjectOf(principal: Principal): string | undefined {
  return principal.kind === 'anonymous' ? undefined : principal.name;
}

export function actorOf(principal: Principal): string {
  return principal.kind === 'anonymous' ? 'anonymous' : principal.name;
}
