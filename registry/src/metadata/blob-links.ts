import type { RepositoryStore } from './repositories.js';
import type { Queryable, Sql } from './sql.js';

/** A check run inside the linking transaction before a blob becomes visible in a repository. */
export type Admission = (tx: Queryable, repository: string, digest: string, size: number) => Promise<void>;

/** Seconds after which a garbage collector's deletion mark counts as abandoned (its collector died). */
export const DELETION_MARK_STALE_SECONDS = 60;

/** Garbage collection is deleting this blob's storage object; the push must be retried. */
export class BlobDeletingError extends Error {
  readonly code = 'BLOB_DELETING';
  constructor(readonly digest: string) {
    super(`blob ${digest} is being garbage-collected; retry the upload`);
    this.name = 'BlobDeletingError';
  }
}

/** The repository's project was deleted while a blob for it was on its way (a proxy-cache fill). */
export class ProjectGoneError extends Error {
  readonly code = 'PROJECT_GONE';
  constructor(readonly repository: string) {
    super(`the project of ${repository} was deleted while the blob was being stored; nothing was linked`);
    this.name = 'ProjectGoneError';
  }
}

/** Which blobs exist, and in which repositories each is visible. */
export class BlobLinkStore {
  constructor(
    private readonly sql: Sql,
    private readonly repositories: RepositoryStore,
  ) {}

  /**
   * Announces that a push is about to write the blob's storage object: creates the
   * row or refreshes `pushed_at` (restarting garbage collection's grace window).
   * Returns the reservation time to hand to `link`, or undefined while a collector is
   * deleting the object; the caller then waits and retries, so that the new object is
   * never written just before the collector's delete lands. A row refreshed less than
   * `reuseSeconds` ago is only read, so that a popular layer pushed by many clients at
   * once does not have every push write (and lock) the same row; the grace window then
   * counts from up to that long before this push. It commits without waiting for the
   * WAL flush: the row is visible to collectors at once, and the link that follows
   * commits synchronously, which flushes the reservation with it. A database crash in
   * between loses both, and the push fails before anything is acknowledged. Pushes run
   * it in a transaction of its own; inside another (`db`, which tests use to order
   * concurrent statements), the setting relaxes that transaction's commit as well.
   */
  async reserve(digest: string, size: number, reuseSeconds = 0, db: Queryable = this.sql): Promise<Date | undefined> {
    // now() is when this transaction began: when a concurrent push inserted the row
    // after that (this statement waited on it), the reservation still covers that row.
    const rows = await db.query<{ reserved_at: Date }>(
      `WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)), fresh AS (
         SELECT date_trunc('milliseconds', greatest(now(), created_at)) AS reserved_at FROM blobs
         WHERE digest = $1 AND deleting_since IS NULL AND pushed_at > now() - make_interval(secs => $4)
       ), upserted AS (
         INSERT INTO blobs (digest, size) SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM fresh)
         ON CONFLICT (digest) DO UPDATE SET pushed_at = now(), deleting_since = NULL
           WHERE blobs.deleting_since IS NULL OR blobs.deleting_since < now() - make_interval(secs => $3)
         RETURNING date_trunc('milliseconds', greatest(now(), blobs.created_at)) AS reserved_at
       )
       SELECT reserved_at FROM relaxed, (SELECT reserved_at FROM fresh UNION ALL SELECT reserved_at FROM upserted) reservation`,
      [digest, size, DELETION_MARK_STALE_SECONDS, reuseSeconds],
    );
    return rows[0]?.reserved_at;
  }

  /**
   * The common case of `link`, in one statement: links a reserved blob into
   * `repository` and deletes the upload session `closeUpload` with it, when the
   * repository's project has no storage limit (admission has nothing to check).
   * `limited`: nothing was done, the caller must use `link` with its admission check.
   * `lost`: a collector marked or removed the row since `reservedAt` (see `link`).
   * `no-project`: with `requireProject`, the repository's project does not exist (it was
   * deleted while the blob was on its way); its row is locked otherwise, so a deletion
   * waits for the link and then removes it with the rest.
   */
  async linkReserved(repository: string, digest: string, reservedAt: Date, closeUpload?: string, requireProject = false): Promise<'linked' | 'limited' | 'lost' | 'no-project'> {
    const [row] = await this.sql.query<{ limited: boolean; linked: boolean; missing: boolean }>(
      `WITH owner AS (
         SELECT 1 FROM projects WHERE $5::boolean AND name = split_part($1::text, '/', 1) FOR SHARE
       ), missing AS (
         SELECT 1 WHERE $5::boolean AND NOT EXISTS (SELECT 1 FROM owner)
       ), limited AS (
         SELECT 1 FROM projects WHERE name = split_part($1::text, '/', 1) AND storage_limit >= 0
       ), blob AS (
         SELECT digest FROM blobs
         WHERE digest = $2 AND deleting_since IS NULL AND date_trunc('milliseconds', created_at) <= $3::timestamptz
           AND NOT EXISTS (SELECT 1 FROM limited) AND NOT EXISTS (SELECT 1 FROM missing)
         FOR SHARE
       ), repository AS (
         INSERT INTO repositories (name) SELECT $1 FROM blob ON CONFLICT (name) DO NOTHING
       ), link AS (
         INSERT INTO repository_blobs (repository, digest) SELECT $1, digest FROM blob
         ON CONFLICT (repository, digest) DO UPDATE SET created_at = now()
         RETURNING 1
       ), closed AS (
         DELETE FROM uploads WHERE id = $4::uuid AND EXISTS (SELECT 1 FROM link)
       )
       SELECT EXISTS (SELECT 1 FROM limited) AS limited, EXISTS (SELECT 1 FROM link) AS linked, EXISTS (SELECT 1 FROM missing) AS missing`,
      [repository, digest, reservedAt, closeUpload ?? null, requireProject],
    );
    return row!.missing ? 'no-project' : row!.limited ? 'limited' : row!.linked ? 'linked' : 'lost';
  }

  /**
   * Records a blob now present in storage and links it into `repository`, deleting
   * the upload session `closeUpload` in the same transaction. `admit` runs first and
   * may refuse (quota). With `reservedAt` (from `reserve`), throws BlobDeletingError
   * when a collector marked or removed the row since: the push outlasted the grace
   * window and its object may be gone.
   */
  async link(repository: string, digest: string, size: number, admit?: Admission, reservedAt?: Date, closeUpload?: string, requireProject = false): Promise<void> {
    await this.sql.transaction(async (tx) => {
      // FOR UPDATE, the lock the admission takes next: two links that each held a share lock and
      // then asked for that one would deadlock.
      if (requireProject && (await tx.query("SELECT 1 FROM projects WHERE name = split_part($1::text, '/', 1) FOR UPDATE", [repository])).length === 0) throw new ProjectGoneError(repository);
      await admit?.(tx, repository, digest, size);
      await this.repositories.ensure(repository, tx);
      if (!reservedAt) await tx.query('INSERT INTO blobs (digest, size) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING', [digest, size]);
      const [row] = await tx.query<{ lost: boolean }>(
        "SELECT deleting_since IS NOT NULL OR date_trunc('milliseconds', created_at) > $2::timestamptz IS TRUE AS lost FROM blobs WHERE digest = $1 FOR SHARE",
        [digest, reservedAt ?? null],
      );
      if (!row || row.lost) throw new BlobDeletingError(digest);
      // Linking again refreshes created_at: the grace window counts from the last link.
      await tx.query('INSERT INTO repository_blobs (repository, digest) VALUES ($1, $2) ON CONFLICT (repository, digest) DO UPDATE SET created_at = now()', [repository, digest]);
      if (closeUpload) await tx.query('DELETE FROM uploads WHERE id = $1', [closeUpload]);
    });
  }

  /** Links a blob already visible in `from` into `repository`; returns its size, or undefined if `from` lacks it. */
  async mount(repository: string, from: string, digest: string, admit?: Admission): Promise<number | undefined> {
    return this.sql.transaction(async (tx) => {
      const size = await this.linkedSize(from, digest, tx, true);
      if (size === undefined) return undefined;
      await admit?.(tx, repository, digest, size);
      await this.repositories.ensure(repository, tx);
      await tx.query('INSERT INTO repository_blobs (repository, digest) VALUES ($1, $2) ON CONFLICT (repository, digest) DO UPDATE SET created_at = now()', [repository, digest]);
      return size;
    });
  }

  /** Size of the blob if it is linked in `repository`. */
  async linkedSize(repository: string, digest: string, db: Queryable = this.sql, lock = false): Promise<number | undefined> {
    const rows = await db.query<{ size: number }>(
      `SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
       WHERE rb.repository = $1 AND rb.digest = $2${lock ? ' FOR SHARE OF rb' : ''}`,
      [repository, digest],
    );
    return rows[0]?.size;
  }

  /** Whether the blob is linked in any repository of `project`. */
  async linkedInProject(project: string, digest: string): Promise<boolean> {
    const rows = await this.sql.query('SELECT 1 FROM repository_blobs WHERE digest = $1 AND starts_with(repository, $2) LIMIT 1', [digest, `${project}/`]);
    return rows.length > 0;
  }

  /** Which of `digests` are linked in `repository`. */
  async linkedAmong(repository: string, digests: string[]): Promise<Set<string>> {
    const rows = await this.sql.query<{ digest: string }>('SELECT digest FROM repository_blobs WHERE repository = $1 AND digest = ANY($2::text[])', [repository, digests]);
    return new Set(rows.map((row) => row.digest));
  }

  async unlink(repository: string, digest: string): Promise<boolean> {
    const rows = await this.sql.query('DELETE FROM repository_blobs WHERE repository = $1 AND digest = $2 RETURNING digest', [repository, digest]);
    return rows.length > 0;
  }
}
