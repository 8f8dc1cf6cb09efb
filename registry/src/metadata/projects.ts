import { randomUUID } from 'node:crypto';
import type { Role } from '../auth/policy.js';
import type { Queryable, Sql } from './sql.js';

export interface Project {
  id: string;
  name: string;
  public: boolean;
  storageLimit: number;
  /** Who manages the project declaratively (e.g. the operator's `<namespace>/<name>`), or null. */
  managedBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface GroupMember {
  group: string;
  role: Role;
}

export interface ProjectUsage {
  usedBytes: number;
  repositories: number;
}

export interface Member {
  userId: string;
  username: string;
  role: Role;
}

interface ProjectRow {
  id: string;
  name: string;
  public: boolean;
  storage_limit: number;
  managed_by: string | null;
  created_at: Date;
  updated_at: Date;
}

const toProject = (r: ProjectRow): Project => ({ id: r.id, name: r.name, public: r.public, storageLimit: r.storage_limit, managedBy: r.managed_by, createdAt: r.created_at, updatedAt: r.updated_at });

/** Some projects: the public ones (when `public`) and those named. */
export interface VisibleProjects {
  public: boolean;
  names: ReadonlySet<string>;
}

export interface ProjectSpec {
  public?: boolean;
  storageLimit?: number;
  /** undefined leaves it unchanged; '' clears it. */
  managedBy?: string;
}

export class ProjectStore {
  constructor(private readonly sql: Sql) {}

  async get(name: string, db: Queryable = this.sql): Promise<Project | undefined> {
    const rows = await db.query<ProjectRow>('SELECT * FROM projects WHERE name = $1', [name]);
    return rows[0] && toProject(rows[0]);
  }

  /** Locks the project row until the transaction ends (serializes quota checks). */
  async lock(tx: Queryable, name: string): Promise<Project | undefined> {
    const rows = await tx.query<ProjectRow>('SELECT * FROM projects WHERE name = $1 FOR UPDATE', [name]);
    return rows[0] && toProject(rows[0]);
  }

  /**
   * Creates the project or updates the given fields; `created` tells which. Naming a manager
   * while another one is recorded changes nothing and returns that other manager instead.
   */
  async upsert(name: string, spec: ProjectSpec): Promise<{ project: Project; created: boolean } | { managedByOther: string }> {
    const rows = await this.sql.query<ProjectRow & { inserted: boolean }>(
      // $4 is cast: inferred from COALESCE's literal -1 it would be int4, and limits above 2 GiB would not fit.
      `INSERT INTO projects (id, name, public, storage_limit, managed_by) VALUES ($1, $2, COALESCE($3, false), COALESCE($4::int8, -1), NULLIF($5, ''))
       ON CONFLICT (name) DO UPDATE SET
         public = COALESCE($3, projects.public),
         storage_limit = COALESCE($4::int8, projects.storage_limit),
         managed_by = CASE WHEN $5::text IS NULL THEN projects.managed_by ELSE NULLIF($5, '') END,
         updated_at = CASE WHEN projects.public IS DISTINCT FROM COALESCE($3, projects.public)
                             OR projects.storage_limit IS DISTINCT FROM COALESCE($4::int8, projects.storage_limit)
                             OR ($5::text IS NOT NULL AND projects.managed_by IS DISTINCT FROM NULLIF($5, ''))
                           THEN now() ELSE projects.updated_at END
       WHERE $5::text IS NULL OR $5 = '' OR projects.managed_by IS NULL OR projects.managed_by = $5
       RETURNING *, (xmax = 0) AS inserted`,
      [randomUUID(), name, spec.public ?? null, spec.storageLimit ?? null, spec.managedBy ?? null],
    );
    if (!rows[0]) return { managedByOther: (await this.get(name))?.managedBy ?? '' };
    return { project: toProject(rows[0]), created: rows[0].inserted };
  }

  /**
   * Projects in name order after `after`, `limit` at most: all of them, or only those
   * `visible` lists (public ones if it says so, and those named). The cursor is always an
   * index bound (the first page starts after ''); the visible ones merge two range scans,
   * of the public projects and of the named ones, each stopping at the page size.
   */
  async list(page: { limit: number; after?: string; visible?: VisibleProjects }): Promise<Project[]> {
    const after = page.after ?? '';
    const rows = page.visible
      ? await this.sql.query<ProjectRow>(
          `SELECT * FROM (
             (SELECT * FROM projects WHERE public AND $4 AND name > $1 ORDER BY name LIMIT $2)
             UNION ALL
             (SELECT * FROM projects WHERE NOT (public AND $4) AND name = ANY($3::text[]) AND name > $1 ORDER BY name LIMIT $2)
           ) AS visible ORDER BY name LIMIT $2`,
          [after, page.limit, [...page.visible.names], page.visible.public],
        )
      : await this.sql.query<ProjectRow>('SELECT * FROM projects WHERE name > $1 ORDER BY name LIMIT $2', [after, page.limit]);
    return rows.map(toProject);
  }

  /**
   * Deletes the project. Without `withContent`, only an empty one (`'not-empty'` when manifests or
   * blobs remain); with it, its repositories, manifests, tags and blob links go too, in the same
   * transaction, and garbage collection reclaims the blobs no other repository links.
   */
  async delete(name: string, withContent = false): Promise<'deleted' | 'missing' | 'not-empty'> {
    return this.sql.transaction(async (tx) => {
      const project = await this.lock(tx, name);
      if (!project) return 'missing';
      if (!withContent) {
        const content = await tx.query(
          `SELECT 1 FROM repositories r WHERE r.project = $1 AND (
             EXISTS (SELECT 1 FROM manifests m WHERE m.repository = r.name) OR EXISTS (SELECT 1 FROM repository_blobs b WHERE b.repository = r.name))
           LIMIT 1`,
          [name],
        );
        if (content.length > 0) return 'not-empty';
      }
      await tx.query('DELETE FROM repositories WHERE project = $1', [name]);
      await tx.query('DELETE FROM projects WHERE id = $1', [project.id]);
      return 'deleted';
    });
  }

  /**
   * Bytes used and repositories held by each of `names` (a page of projects), in one statement: a
   * page of projects costs one round trip, not two per project.
   */
  async usageOf(names: readonly string[]): Promise<Map<string, ProjectUsage>> {
    const rows = await this.sql.query<{ name: string; used: number; repositories: number }>(
      `WITH repos AS (SELECT name, project FROM repositories WHERE project = ANY($1::text[])),
            counts AS (SELECT project, count(*)::int4 AS n FROM repos GROUP BY project),
            used AS (SELECT x.project, SUM(b.size)::int8 AS used
                       FROM (SELECT DISTINCT r.project, rb.digest FROM repos r JOIN repository_blobs rb ON rb.repository = r.name) x
                       JOIN blobs b ON b.digest = x.digest GROUP BY x.project)
       SELECT p.name, COALESCE(u.used, 0)::int8 AS used, COALESCE(c.n, 0)::int4 AS repositories
         FROM unnest($1::text[]) AS p(name) LEFT JOIN counts c ON c.project = p.name LEFT JOIN used u ON u.project = p.name`,
      [names],
    );
    return new Map(rows.map((r) => [r.name, { usedBytes: Number(r.used), repositories: r.repositories }]));
  }

  /** Bytes used by the project: each distinct blob linked in any of its repositories, once. */
  async usage(name: string, db: Queryable = this.sql): Promise<number> {
    const rows = await db.query<{ used: number }>(
      `SELECT COALESCE(SUM(b.size), 0)::int8 AS used FROM blobs b
       WHERE b.digest IN (SELECT rb.digest FROM repository_blobs rb JOIN repositories r ON r.name = rb.repository WHERE r.project = $1)`,
      [name],
    );
    return rows[0]?.used ?? 0;
  }

  /** Whether `digest` is already linked somewhere in the project (it then costs nothing more). */
  async holdsBlob(tx: Queryable, name: string, digest: string): Promise<boolean> {
    const rows = await tx.query('SELECT 1 FROM repository_blobs rb JOIN repositories r ON r.name = rb.repository WHERE r.project = $1 AND rb.digest = $2 LIMIT 1', [name, digest]);
    return rows.length > 0;
  }

  /**
   * The project's members by username. Each name is a primary-key lookup (a subquery, not
   * a join whose cached plan could hash the whole users table).
   */
  async members(projectId: string): Promise<Member[]> {
    const rows = await this.sql.query<{ user_id: string; username: string; role: Role }>(
      'SELECT m.user_id, (SELECT u.username FROM users u WHERE u.id = m.user_id) AS username, m.role FROM members m WHERE m.project_id = $1 ORDER BY username',
      [projectId],
    );
    return rows.map((r) => ({ userId: r.user_id, username: r.username, role: r.role }));
  }

  async setMember(projectId: string, userId: string, role: Role): Promise<{ created: boolean; changed: boolean }> {
    return this.setRole('members', 'user_id', projectId, userId, role);
  }

  async removeMember(projectId: string, userId: string): Promise<boolean> {
    return (await this.sql.query('DELETE FROM members WHERE project_id = $1 AND user_id = $2 RETURNING user_id', [projectId, userId])).length > 0;
  }

  async groups(projectId: string): Promise<GroupMember[]> {
    const rows = await this.sql.query<{ group_name: string; role: Role }>('SELECT group_name, role FROM group_members WHERE project_id = $1 ORDER BY group_name', [projectId]);
    return rows.map((r) => ({ group: r.group_name, role: r.role }));
  }

  async setGroup(projectId: string, group: string, role: Role): Promise<{ created: boolean; changed: boolean }> {
    return this.setRole('group_members', 'group_name', projectId, group, role);
  }

  /** Grants `role` to a user or group of the project; idempotent, `updated_at` moves only on a change. */
  private async setRole(table: 'members' | 'group_members', column: 'user_id' | 'group_name', projectId: string, key: string, role: Role): Promise<{ created: boolean; changed: boolean }> {
    const rows = await this.sql.query<{ inserted: boolean; previous: string | null }>(
      `WITH previous AS (SELECT role FROM ${table} WHERE project_id = $1 AND ${column} = $2)
       INSERT INTO ${table} (project_id, ${column}, role) VALUES ($1, $2, $3)
       ON CONFLICT (project_id, ${column}) DO UPDATE SET role = EXCLUDED.role,
         updated_at = CASE WHEN ${table}.role = EXCLUDED.role THEN ${table}.updated_at ELSE now() END
       RETURNING (xmax = 0) AS inserted, (SELECT role FROM previous) AS previous`,
      [projectId, key, role],
    );
    const row = rows[0]!;
    return { created: row.inserted, changed: row.inserted || row.previous !== role };
  }

  async removeGroup(projectId: string, group: string): Promise<boolean> {
    return (await this.sql.query('DELETE FROM group_members WHERE project_id = $1 AND group_name = $2 RETURNING group_name', [projectId, group])).length > 0;
  }

  /** The user's role in every project where they are a member. */
  async rolesOf(userId: string): Promise<Map<string, Role>> {
    const rows = await this.sql.query<{ name: string; role: Role }>('SELECT p.name, m.role FROM members m JOIN projects p ON p.id = m.project_id WHERE m.user_id = $1', [userId]);
    return new Map(rows.map((r) => [r.name, r.role]));
  }

  async publicNames(): Promise<string[]> {
    return (await this.sql.query<{ name: string }>('SELECT name FROM projects WHERE public')).map((r) => r.name);
  }
}
