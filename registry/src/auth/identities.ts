import type { Metadata } from '../metadata/index.js';
import { acceptedSecretHashes, type Robot } from '../metadata/robots.js';
import type { PasswordHasher } from './passwords.js';
import type { Principal } from './policy.js';
import type { VerifiedCredentials } from './verified-credentials.js';

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

/** Turns credentials or token subjects into principals, reading current state every time. */
export class IdentityService {
  constructor(
    private readonly meta: Metadata,
    private readonly passwords: PasswordHasher,
    private readonly verified: VerifiedCredentials,
  ) {}

  /**
   * Every way to fail costs the same (unknown user or robot, wrong secret, a secret a
   * person chose or one that was generated): one scrypt derivation (PasswordHasher.verify).
   * A disabled or expired robot is refused only after its secret checked out.
   */
  async authenticate(username: string, secret: string): Promise<Authentication> {
    if (isRobotName(username)) {
      const robot = await this.meta.robots.get(username);
      const valid = await this.secretMatches(username, secret, robot ? acceptedSecretHashes(robot) : []);
      if (!robot || !valid) return { ok: false, reason: 'invalid robot credentials' };
      const unusable = robotUnusable(robot);
      if (unusable) return { ok: false, reason: unusable };
      return { ok: true, principal: this.robotPrincipal(robot) };
    }
    const user = await this.meta.users.get(username);
    const valid = await this.secretMatches(username, secret, user ? [user.passwordHash] : []);
    if (!user || !valid) return { ok: false, reason: 'invalid username or password' };
    return { ok: true, principal: { kind: 'user', id: user.id, name: user.username, admin: user.admin, roles: await this.meta.projects.rolesOf(user.id) } };
  }

  /** Whether `secret` matches one of the `accepted` hashes (none: no such account). */
  private async secretMatches(username: string, secret: string, accepted: readonly string[]): Promise<boolean> {
    if (accepted.length > 0 && this.verified.has(username, secret, accepted)) return true;
    const matched = await this.passwords.match(secret, accepted);
    if (matched !== undefined) this.verified.add(username, secret, matched);
    return matched !== undefined;
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
