import type { RepositoryStore } from './repositories.js';
import type { Queryable, Sql } from './sql.js';

/** A check run inside the linking transaction before a blob becomes visible in a repository. */
export type Admission = (tx: Queryable, repository: string, digest: string, size: number) => Promise<void>;

/** Which blobs exist, and in which repositories each is visible. */
export class BlobLinkStore {
  constructor(
    private readonly sql: Sql,
    private readonly repositories: RepositoryStore,
  ) {}

  /**
   * Records a blob now present in storage and links it into `repository`. `admit` runs
   * first in the same transaction and may refuse (quota).
   */
  async link(repository: string, digest: string, size: number, admit?: Admission): Promise<void> {
    await this.sql.transaction(async (tx) => {
      await admit?.(tx, repository, digest, size);
      await this.repositories.ensure(repository, tx);
      await tx.query('INSERT INTO blobs (digest, size) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING', [digest, size]);
      await tx.query('INSERT INTO repository_blobs (repository, digest) VALUES ($1, $2) ON CONFLICT DO NOTHING', [repository, digest]);
    });
  }

  /** Links a blob already visible in `from` into `repository`; returns its size, or undefined if `from` lacks it. */
  async mount(repository: string, from: string, digest: string, admit?: Admission): Promise<number | undefined> {
    return this.sql.transaction(async (tx) => {
      const size = await this.linkedSize(from, digest, tx, true);
      if (size === undefined) return undefined;
      await admit?.(tx, repository, digest, size);
      await this.repositories.ensure(repository, tx);
      await tx.query('INSERT INTO repository_blobs (repository, digest) VALUES ($1, $2) ON CONFLICT DO NOTHING', [repository, digest]);
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

  async unlink(repository: string, digest: string): Promise<boolean> {
    const rows = await this.sql.query('DELETE FROM repository_blobs WHERE repository = $1 AND digest = $2 RETURNING digest', [repository, digest]);
    return rows.length > 0;
  }

  /** The subset of `digests` linked in `repository`, locked against concurrent unlinking until the transaction ends. */
  async lockLinked(tx: Queryable, repository: string, digests: string[]): Promise<Set<string>> {
    if (digests.length === 0) return new Set();
    const rows = await tx.query<{ digest: string }>(
      'SELECT digest FROM repository_blobs WHERE repository = $1 AND digest = ANY($2::text[]) ORDER BY digest FOR SHARE',
      [repository, digests],
    );
    return new Set(rows.map((r) => r.digest));
  }
}
