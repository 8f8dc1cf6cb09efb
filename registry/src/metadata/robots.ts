import { randomUUID } from 'node:crypto';
import type { RobotPermission } from '../auth/policy.js';
import type { Sql } from './sql.js';

export interface Robot {
  id: string;
  name: string;
  projectId: string | null;
  description: string;
  secretHash: string;
  /** The secret the last rotation replaced, and until when it still authenticates (both null: no grace window). */
  previousSecretHash: string | null;
  graceEndsAt: Date | null;
  /** When `secretHash` was set: creation or the last rotation. */
  rotatedAt: Date;
  /** Who manages the robot declaratively (the operator: `<namespace>/<name>` of its RobotAccount). */
  managedBy: string | null;
  disabled: boolean;
  durationDays: number;
  expiresAt: Date | null;
  permissions: RobotPermission[];
  createdAt: Date;
  updatedAt: Date;
}

interface RobotRow {
  id: string;
  name: string;
  project_id: string | null;
  description: string;
  secret_hash: string;
  previous_secret_hash: string | null;
  previous_secret_expires_at: Date | null;
  secret_updated_at: Date;
  managed_by: string | null;
  disabled: boolean;
  duration_days: number;
  expires_at: Date | null;
  permissions: RobotPermission[];
  created_at: Date;
  updated_at: Date;
}

const toRobot = (r: RobotRow): Robot => ({
  id: r.id,
  name: r.name,
  projectId: r.project_id,
  description: r.description,
  secretHash: r.secret_hash,
  previousSecretHash: r.previous_secret_hash,
  graceEndsAt: r.previous_secret_expires_at,
  rotatedAt: r.secret_updated_at,
  managedBy: r.managed_by,
  disabled: r.disabled,
  durationDays: r.duration_days,
  expiresAt: r.expires_at,
  permissions: r.permissions,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export interface RobotSpec {
  description: string;
  disabled: boolean;
  durationDays: number;
  permissions: RobotPermission[];
  /** undefined leaves it unchanged; '' clears it. */
  managedBy?: string;
}

/** The secret hashes that authenticate `robot` at `now`: the current one, and the previous one during its grace window. */
export function acceptedSecretHashes(robot: Robot, now = new Date()): string[] {
  const { previousSecretHash: previous, graceEndsAt: until } = robot;
  return previous !== null && until !== null && until > now ? [robot.secretHash, previous] : [robot.secretHash];
}

/** Permissions as JSON with a fixed key order (jsonb keeps its own, so stored and given text differ). */
function permissionsText(permissions: RobotPermission[]): string {
  return JSON.stringify(permissions.map(({ namespace, access }) => ({ namespace, access: access.map(({ resource, action }) => ({ resource, action })) })));
}

export class RobotStore {
  constructor(private readonly sql: Sql) {}

  async get(name: string): Promise<Robot | undefined> {
    const rows = await this.sql.query<RobotRow>('SELECT * FROM robots WHERE name = $1', [name]);
    return rows[0] && toRobot(rows[0]);
  }

  /**
   * Creates the robot (with `secretHash`) or updates its spec. Expiry counts from creation;
   * changing the duration moves it. Returns whether it was created and whether anything changed.
   * Naming a manager while another one is recorded changes nothing and returns that other
   * manager instead.
   */
  async upsert(
    name: string,
    projectId: string | null,
    spec: RobotSpec,
    secretHash: string,
  ): Promise<{ robot: Robot; created: boolean; changed: boolean } | { managedByOther: string }> {
    return this.sql.transaction(async (tx) => {
      const existing = (await tx.query<RobotRow>('SELECT * FROM robots WHERE name = $1 FOR UPDATE', [name]))[0];
      const permissions = permissionsText(spec.permissions);
      if (!existing) {
        const rows = await tx.query<RobotRow>(
          `INSERT INTO robots (id, name, project_id, description, secret_hash, disabled, duration_days, expires_at, permissions, managed_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $7 = -1 THEN NULL ELSE now() + make_interval(days => $7) END, $8, NULLIF($9, ''))
           RETURNING *`,
          [randomUUID(), name, projectId, spec.description, secretHash, spec.disabled, spec.durationDays, permissions, spec.managedBy ?? null],
        );
        return { robot: toRobot(rows[0]!), created: true, changed: true };
      }
      if (spec.managedBy && existing.managed_by !== null && existing.managed_by !== spec.managedBy) return { managedByOther: existing.managed_by };
      const managedBy = spec.managedBy === undefined ? existing.managed_by : spec.managedBy || null;
      const changed =
        existing.description !== spec.description ||
        existing.disabled !== spec.disabled ||
        existing.duration_days !== spec.durationDays ||
        existing.managed_by !== managedBy ||
        permissionsText(existing.permissions) !== permissions;
      if (!changed) return { robot: toRobot(existing), created: false, changed: false };
      const rows = await tx.query<RobotRow>(
        `UPDATE robots SET description = $2, disabled = $3, duration_days = $4,
           expires_at = CASE WHEN $4 = -1 THEN NULL ELSE created_at + make_interval(days => $4) END,
           permissions = $5, managed_by = $6, updated_at = now()
         WHERE id = $1 RETURNING *`,
        [existing.id, spec.description, spec.disabled, spec.durationDays, permissions, managedBy],
      );
      return { robot: toRobot(rows[0]!), created: false, changed: true };
    });
  }

  /**
   * Replaces the secret. `grace` decides what happens to the secret it replaces: with a number
   * of seconds > 0 it keeps authenticating until then (evicting any earlier previous secret);
   * with 0 it stops at once, and so does any earlier previous secret; with 'keep-previous' it
   * stops at once while the previous secret and its window stay as they are (the replaced
   * secret was never handed out).
   */
  async setSecret(name: string, secretHash: string, grace: number | 'keep-previous'): Promise<Robot | undefined> {
    const rows =
      grace === 'keep-previous'
        ? await this.sql.query<RobotRow>('UPDATE robots SET secret_hash = $2, secret_updated_at = now(), updated_at = now() WHERE name = $1 RETURNING *', [name, secretHash])
        : await this.sql.query<RobotRow>(
            `UPDATE robots SET
               previous_secret_hash = CASE WHEN $3::int > 0 THEN secret_hash ELSE NULL END,
               previous_secret_expires_at = CASE WHEN $3::int > 0 THEN now() + make_interval(secs => $3::int) ELSE NULL END,
               secret_hash = $2, secret_updated_at = now(), updated_at = now()
             WHERE name = $1 RETURNING *`,
            [name, secretHash, grace],
          );
    return rows[0] && toRobot(rows[0]);
  }

  /**
   * A project's robots (or the system robots, `projectId` null) in name order after
   * `after`: one range scan of (project_id, name), the cursor always a bound (the first
   * page starts after '').
   */
  async list(projectId: string | null, page: { limit: number; after?: string }): Promise<Robot[]> {
    const after = page.after ?? '';
    const rows =
      projectId === null
        ? await this.sql.query<RobotRow>('SELECT * FROM robots WHERE project_id IS NULL AND name > $1 ORDER BY name LIMIT $2', [after, page.limit])
        : await this.sql.query<RobotRow>('SELECT * FROM robots WHERE project_id = $1 AND name > $2 ORDER BY name LIMIT $3', [projectId, after, page.limit]);
    return rows.map(toRobot);
  }

  async delete(name: string): Promise<boolean> {
    return (await this.sql.query('DELETE FROM robots WHERE name = $1 RETURNING id', [name])).length > 0;
  }
}
