import { randomUUID } from 'node:crypto';
import type { Sql } from './sql.js';

export interface User {
  id: string;
  username: string;
  admin: boolean;
  passwordHash: string;
  createdAt: Date;
  updatedAt: Date;
}

interface UserRow {
  id: string;
  username: string;
  admin: boolean;
  password_hash: string;
  created_at: Date;
  updated_at: Date;
}

const toUser = (r: UserRow): User => ({ id: r.id, username: r.username, admin: r.admin, passwordHash: r.password_hash, createdAt: r.created_at, updatedAt: r.updated_at });

export class UserStore {
  constructor(private readonly sql: Sql) {}

  async get(username: string): Promise<User | undefined> {
    const rows = await this.sql.query<UserRow>('SELECT * FROM users WHERE username = $1', [username]);
    return rows[0] && toUser(rows[0]);
  }

  /** Creates the user or updates the given fields. A new user needs a password hash. */
  async upsert(username: string, fields: { passwordHash?: string; admin?: boolean }): Promise<{ user: User; created: boolean }> {
    const rows = await this.sql.query<UserRow & { inserted: boolean }>(
      `INSERT INTO users (id, username, password_hash, admin) VALUES ($1, $2, $3, COALESCE($4, false))
       ON CONFLICT (username) DO UPDATE SET
         password_hash = COALESCE($5, users.password_hash),
         admin = COALESCE($4, users.admin),
         updated_at = CASE WHEN $5::text IS NOT NULL OR users.admin IS DISTINCT FROM COALESCE($4, users.admin) THEN now() ELSE users.updated_at END
       RETURNING *, (xmax = 0) AS inserted`,
      [randomUUID(), username, fields.passwordHash ?? '!', fields.admin ?? null, fields.passwordHash ?? null],
    );
    return { user: toUser(rows[0]!), created: rows[0]!.inserted };
  }

  /** Users in name order after `after` (an index bound: the first page starts after ''). */
  async list(page: { limit: number; after?: string }): Promise<User[]> {
    const rows = await this.sql.query<UserRow>('SELECT * FROM users WHERE username > $1 ORDER BY username LIMIT $2', [page.after ?? '', page.limit]);
    return rows.map(toUser);
  }

  /** Whether an administrator other than `username` exists. */
  async anotherAdmin(username: string): Promise<boolean> {
    return (await this.sql.query('SELECT 1 FROM users WHERE admin AND username <> $1 LIMIT 1', [username])).length > 0;
  }

  async delete(username: string): Promise<boolean> {
    return (await this.sql.query('DELETE FROM users WHERE username = $1 RETURNING id', [username])).length > 0;
  }
}
