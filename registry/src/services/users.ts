import { actorOf } from '../auth/identities.js';
import type { PasswordHasher } from '../auth/passwords.js';
import type { Principal } from '../auth/policy.js';
import type { Metadata } from '../metadata/index.js';
import type { User } from '../metadata/users.js';
import { ociError } from '../oci/errors.js';
import { requireSystem } from './access.js';
import type { AuditLog } from './audit.js';
import { checkUsername } from './names.js';
import type { PageQuery } from './projects.js';

export interface UserView {
  id: string;
  username: string;
  admin: boolean;
  createdAt: Date;
  updatedAt: Date;
}

const MIN_PASSWORD = 12;

const view = (u: User): UserView => ({ id: u.id, username: u.username, admin: u.admin, createdAt: u.createdAt, updatedAt: u.updatedAt });

/** Local users. Administrators manage everyone; a user may change their own password. */
export class UserService {
  constructor(
    private readonly meta: Metadata,
    private readonly audit: AuditLog,
    private readonly passwords: PasswordHasher,
  ) {}

  async list(principal: Principal, page: PageQuery): Promise<{ items: UserView[]; next?: string }> {
    requireSystem(principal, 'user:read');
    const rows = await this.meta.users.list({ limit: page.limit + 1, ...(page.after !== undefined && { after: page.after }) });
    const items = rows.slice(0, page.limit).map(view);
    return rows.length > page.limit ? { items, next: items[items.length - 1]!.username } : { items };
  }

  async get(principal: Principal, username: string): Promise<UserView> {
    if (!(principal.kind === 'user' && principal.name === username)) requireSystem(principal, 'user:read');
    const user = await this.meta.users.get(username);
    if (!user) throw ociError('RESOURCE_NOT_FOUND', { user: username }, { message: `user "${username}" not found` });
    return view(user);
  }

  async put(principal: Principal, username: string, input: { password?: string; currentPassword?: string; admin?: boolean }): Promise<{ user: UserView; created: boolean }> {
    checkUsername(username);
    const self = principal.kind === 'user' && principal.name === username;
    if (!(self && input.admin === undefined)) requireSystem(principal, 'user:write');
    const existing = await this.meta.users.get(username);
    if (self && input.password !== undefined) await this.checkCurrentPassword(username, existing, input.currentPassword);
    if (input.password !== undefined && input.password.length < MIN_PASSWORD) {
      throw ociError('INVALID_REQUEST', undefined, { message: `passwords must be at least ${MIN_PASSWORD} characters` });
    }
    if (!existing && input.password === undefined) throw ociError('INVALID_REQUEST', undefined, { message: 'a new user needs a password' });
    if (existing?.admin && input.admin === false) await this.keepOneAdmin(username);
    // Re-sending the current password changes nothing, so a declarative caller stays idempotent.
    const newPassword = input.password !== undefined && !(existing && (await this.passwords.verify(input.password, existing.passwordHash)));
    const { user, created } = await this.meta.users.upsert(username, {
      ...(newPassword && { passwordHash: await this.passwords.hash(input.password!) }),
      ...(input.admin !== undefined && { admin: input.admin }),
    });
    if (created || user.updatedAt.getTime() !== existing?.updatedAt.getTime()) {
      this.audit.record({ actor: actorOf(principal), action: created ? 'create' : 'update', resourceType: 'user', resource: username, outcome: 'success', detail: { admin: user.admin, passwordChanged: newPassword } });
    }
    return { user: view(user), created };
  }

  async delete(principal: Principal, username: string): Promise<void> {
    requireSystem(principal, 'user:write');
    const existing = await this.meta.users.get(username);
    if (existing?.admin) await this.keepOneAdmin(username);
    if (!(await this.meta.users.delete(username))) throw ociError('RESOURCE_NOT_FOUND', { user: username }, { message: `user "${username}" not found` });
    this.audit.record({ actor: actorOf(principal), action: 'delete', resourceType: 'user', resource: username, outcome: 'success' });
  }

  /**
   * Your own password changes only with the current one, whatever the credentials of the
   * request: a stolen session or token must not become the account. Even re-sending the
   * current password needs it, so the call is no oracle for guesses.
   */
  private async checkCurrentPassword(username: string, existing: User | undefined, current: string | undefined): Promise<void> {
    if (current === undefined) {
      throw ociError('INVALID_REQUEST', { field: 'currentPassword' }, { message: 'changing your own password needs your current password in currentPassword' });
    }
    if (await this.passwords.verify(current, existing?.passwordHash)) return;
    this.audit.record({ actor: username, action: 'update', resourceType: 'user', resource: username, outcome: 'failure', detail: { reason: 'wrong current password' } });
    throw ociError('DENIED', { field: 'currentPassword' }, { message: 'currentPassword is not your current password' });
  }

  private async keepOneAdmin(username: string): Promise<void> {
    if (!(await this.meta.users.anotherAdmin(username))) throw ociError('CONFLICT', { user: username }, { message: `"${username}" is the last administrator` });
  }
}
