import type { UploadState } from '../storage/blob-store.js';
import type { Queryable } from './sql.js';

export interface UploadSession {
  id: string;
  repository: string;
  size: number;
  state: UploadState;
  createdAt: Date;
  updatedAt: Date;
  /**
   * The storage limit of the repository's project, read with the session (null: no
   * project row); absent when it was not read. Spares the quota precheck a query.
   */
  projectStorageLimit?: number | null;
}

interface UploadRow {
  id: string;
  repository: string;
  size: number;
  state: UploadState;
  created_at: Date;
  updated_at: Date;
  project_storage_limit?: number | null;
}

const toSession = (r: UploadRow): UploadSession => ({
  id: r.id,
  repository: r.repository,
  size: r.size,
  state: r.state,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  ...(r.project_storage_limit !== undefined && { projectStorageLimit: r.project_storage_limit }),
});

/** Who opens a session, and how many open sessions it and the repository may hold (0: no cap). */
export interface SessionCaps {
  principal: string;
  perPrincipal: number;
  perRepository: number;
}

export class UploadStore {
  constructor(private readonly db: Queryable) {}

  /**
   * Opens a session, unless the repository or the principal already holds as many open
   * sessions as `caps` allow; returns which cap refused it, if one did. Counting and
   * inserting are one statement; two sessions opened at the same instant may both see
   * the same count, so a cap can be passed by the number of simultaneous opens.
   *
   * It commits without waiting for the WAL flush (synchronous_commit off for this
   * statement only): a session holds no bytes yet, so a database crash in the next
   * fraction of a second costs the client a BLOB_UPLOAD_UNKNOWN and a new POST, never
   * content. Everything that records bytes or links commits synchronously.
   */
  async create(id: string, repository: string, state: UploadState, caps: SessionCaps): Promise<'principal' | 'repository' | undefined> {
    const values = [id, repository, JSON.stringify(state), caps.principal];
    if (caps.perPrincipal === 0 && caps.perRepository === 0) {
      await this.db.query(
        `WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))
         INSERT INTO uploads (id, repository, state, principal) SELECT $1::uuid, $2::text, $3::jsonb, $4::text FROM relaxed`,
        values,
      );
      return undefined;
    }
    const rows = await this.db.query<{ created: boolean; in_repository: number; of_principal: number }>(
      `WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)),
       held AS (
         SELECT (SELECT count(*) FROM uploads WHERE $6::int8 > 0 AND repository = $2::text) AS in_repository,
                (SELECT count(*) FROM uploads WHERE $5::int8 > 0 AND principal = $4::text) AS of_principal
       ),
       created AS (
         INSERT INTO uploads (id, repository, state, principal)
         SELECT $1::uuid, $2::text, $3::jsonb, $4::text FROM relaxed, held
         WHERE ($6::int8 = 0 OR held.in_repository < $6::int8) AND ($5::int8 = 0 OR held.of_principal < $5::int8)
         RETURNING id
       )
       SELECT EXISTS (SELECT 1 FROM created) AS created, in_repository, of_principal FROM held`,
      [...values, caps.perPrincipal, caps.perRepository],
    );
    const row = rows[0]!;
    if (row.created) return undefined;
    return caps.perRepository > 0 && row.in_repository >= caps.perRepository ? 'repository' : 'principal';
  }

  /** The session, with its project's storage limit. */
  async get(id: string, repository: string): Promise<UploadSession | undefined> {
    const rows = await this.db.query<UploadRow>(
      `SELECT u.*, p.storage_limit AS project_storage_limit FROM uploads u
       LEFT JOIN projects p ON p.name = split_part(u.repository, '/', 1)
       WHERE u.id = $1 AND u.repository = $2`,
      [id, repository],
    );
    return rows[0] && toSession(rows[0]);
  }

  /** Moves the session from `fromSize` to `toSize`; false if another request moved it first. */
  async advance(id: string, fromSize: number, toSize: number, state: UploadState): Promise<boolean> {
    const rows = await this.db.query(
      'UPDATE uploads SET size = $3, state = $4, updated_at = now() WHERE id = $1 AND size = $2 RETURNING id',
      [id, fromSize, toSize, JSON.stringify(state)],
    );
    return rows.length > 0;
  }

  async delete(id: string, db: Queryable = this.db): Promise<boolean> {
    const rows = await db.query('DELETE FROM uploads WHERE id = $1 RETURNING id', [id]);
    return rows.length > 0;
  }

  /** Sessions not touched since `before`, oldest first. */
  async stale(before: Date, limit: number): Promise<UploadSession[]> {
    const rows = await this.db.query<UploadRow>('SELECT * FROM uploads WHERE updated_at < $1 ORDER BY updated_at LIMIT $2', [before, limit]);
    return rows.map(toSession);
  }

  /** Open upload sessions, across all replicas. */
  async count(): Promise<number> {
    const rows = await this.db.query<{ n: number }>('SELECT count(*)::int8 AS n FROM uploads');
    return rows[0]?.n ?? 0;
  }

  async exists(id: string): Promise<boolean> {
    return (await this.db.query('SELECT 1 FROM uploads WHERE id = $1', [id])).length > 0;
  }
}
