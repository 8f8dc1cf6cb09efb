import type { Sql } from './sql.js';

export interface ManifestKey {
  repository: string;
  digest: string;
}

export interface ManifestCandidate extends ManifestKey {
  size: number;
}

export interface LinkKey {
  repository: string;
  digest: string;
}

export interface BlobCandidate {
  digest: string;
  size: number;
}

/** What a dry run pretends is already gone. */
export interface Assumed {
  manifests?: ManifestKey[];
  links?: LinkKey[];
}

export type Verdict = 'deleted' | 'kept' | 'gone' | 'busy';

export interface BlobMark {
  digest: string;
  size: number;
  mark: Date;
}

export interface ProjectUsage {
  project: string;
  usedBytes: number;
  /** -1 (unlimited) also for projects without a row (repositories pushed with auth off). */
  limitBytes: number;
}

const columns = <T, K extends keyof T>(items: T[] | undefined, key: K) => (items ?? []).map((i) => i[key]);

/**
 * The SQL of garbage collection. Candidate queries are plain reads; every deletion is
 * its own short transaction that locks the row and re-checks, with fresh statements,
 * that nothing references it any more, so a push that races the collector either
 * wins (and the row is kept) or finds the row gone (and writes it again).
 */
export class GcStore {
  constructor(private readonly sql: Sql) {}

  /**
   * Manifests no root reaches. Roots: tagged manifests and manifests younger than
   * `cutoff`; edges: an index to its children, a subject to its referrers.
   */
  async unreachableManifests(cutoff: Date): Promise<ManifestCandidate[]> {
    return this.sql.query<ManifestCandidate>(
      `WITH RECURSIVE edges (repository, source, target) AS (
         SELECT repository, manifest, child FROM manifest_references WHERE kind = 'manifest'
         UNION ALL
         SELECT repository, subject, digest FROM manifests WHERE subject IS NOT NULL
       ),
       live (repository, digest) AS (
         SELECT repository, digest FROM tags
         UNION
         SELECT repository, digest FROM manifests WHERE created_at >= $1
         UNION
         SELECT e.repository, e.target FROM edges e JOIN live l ON l.repository = e.repository AND l.digest = e.source
       )
       SELECT m.repository, m.digest, octet_length(m.content)::int8 AS size FROM manifests m
       WHERE NOT EXISTS (SELECT 1 FROM live l WHERE l.repository = m.repository AND l.digest = m.digest)
       ORDER BY m.repository, m.digest`,
      [cutoff],
    );
  }

  /**
   * Deletes the manifest if it is still unreachable on its own: older than `cutoff`,
   * untagged, no parent index left, and its subject (if any) absent. Unreachable
   * parents and subjects are deleted first, so the caller repeats until nothing moves.
   */
  async deleteManifest(key: ManifestKey, cutoff: Date): Promise<Verdict> {
    return this.sql.transaction(async (tx) => {
      const [row] = await tx.query<{ created_at: Date; subject: string | null }>(
        'SELECT created_at, subject FROM manifests WHERE repository = $1 AND digest = $2 FOR UPDATE',
        [key.repository, key.digest],
      );
      if (!row) return 'gone';
      if (row.created_at >= cutoff) return 'kept';
      const [held] = await tx.query<{ held: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM tags WHERE repository = $1 AND digest = $2)
             OR EXISTS (SELECT 1 FROM manifest_references WHERE repository = $1 AND child = $2 AND kind = 'manifest')
             OR EXISTS (SELECT 1 FROM manifests WHERE repository = $1 AND digest = $3) AS held`,
        [key.repository, key.digest, row.subject],
      );
      if (held!.held) return 'kept';
      await tx.query('DELETE FROM manifests WHERE repository = $1 AND digest = $2', [key.repository, key.digest]);
      return 'deleted';
    });
  }

  /** Blob links older than `cutoff` that no manifest of their repository references, in key order after `after`. */
  async unreferencedLinks(cutoff: Date, after: LinkKey | undefined, limit: number, assumed: Assumed = {}): Promise<LinkKey[]> {
    return this.sql.query<LinkKey>(
      `SELECT l.repository, l.digest FROM repository_blobs l
       WHERE l.created_at < $1
         AND ($2::text IS NULL OR (l.repository, l.digest) > ($2::text COLLATE "C", $3::text))
         AND NOT EXISTS (
           SELECT 1 FROM manifest_references r
           WHERE r.repository = l.repository AND r.child = l.digest AND r.kind = 'blob'
             AND NOT EXISTS (SELECT 1 FROM unnest($5::text[], $6::text[]) AS x (repository, digest) WHERE x.repository = r.repository AND x.digest = r.manifest))
       ORDER BY l.repository, l.digest
       LIMIT $4`,
      [cutoff, after?.repository ?? null, after?.digest ?? null, limit, columns(assumed.manifests, 'repository'), columns(assumed.manifests, 'digest')],
    );
  }

  async deleteLink(key: LinkKey, cutoff: Date): Promise<Verdict> {
    return this.sql.transaction(async (tx) => {
      const [row] = await tx.query<{ created_at: Date }>('SELECT created_at FROM repository_blobs WHERE repository = $1 AND digest = $2 FOR UPDATE', [key.repository, key.digest]);
      if (!row) return 'gone';
      if (row.created_at >= cutoff) return 'kept';
      const refs = await tx.query("SELECT 1 FROM manifest_references WHERE repository = $1 AND child = $2 AND kind = 'blob' LIMIT 1", [key.repository, key.digest]);
      if (refs.length > 0) return 'kept';
      await tx.query('DELETE FROM repository_blobs WHERE repository = $1 AND digest = $2', [key.repository, key.digest]);
      return 'deleted';
    });
  }

  /** Blob rows pushed before `cutoff` with no link and no manifest reference, in digest order after `after`. */
  async unreferencedBlobs(cutoff: Date, after: string | undefined, limit: number, assumed: Assumed = {}): Promise<BlobCandidate[]> {
    return this.sql.query<BlobCandidate>(
      `SELECT b.digest, b.size FROM blobs b
       WHERE b.pushed_at < $1 AND ($2::text IS NULL OR b.digest > $2)
         AND NOT EXISTS (
           SELECT 1 FROM repository_blobs l WHERE l.digest = b.digest
             AND NOT EXISTS (SELECT 1 FROM unnest($4::text[], $5::text[]) AS x (repository, digest) WHERE x.repository = l.repository AND x.digest = l.digest))
         AND NOT EXISTS (
           SELECT 1 FROM manifest_references r WHERE r.child = b.digest AND r.kind = 'blob'
             AND NOT EXISTS (SELECT 1 FROM unnest($6::text[], $7::text[]) AS x (repository, digest) WHERE x.repository = r.repository AND x.digest = r.manifest))
       ORDER BY b.digest
       LIMIT $3`,
      [cutoff, after ?? null, limit, columns(assumed.links, 'repository'), columns(assumed.links, 'digest'), columns(assumed.manifests, 'repository'), columns(assumed.manifests, 'digest')],
    );
  }

  /**
   * Marks an unreferenced blob as being deleted, after re-checking under the row lock.
   * From then on a push of the digest waits (see BlobLinkStore.reserve) until
   * `finishBlobDeletion` removes the row, so it cannot write the object just before
   * the collector deletes it. A mark older than `staleSeconds` belongs to a collector
   * that died and is taken over.
   */
  async markBlob(digest: string, cutoff: Date, staleSeconds: number): Promise<{ verdict: Verdict; mark?: BlobMark }> {
    return this.sql.transaction(async (tx) => {
      const [row] = await tx.query<{ size: number; pushed_at: Date; fresh_mark: boolean }>(
        `SELECT size, pushed_at, (deleting_since IS NOT NULL AND deleting_since >= now() - make_interval(secs => $2)) AS fresh_mark
         FROM blobs WHERE digest = $1 FOR UPDATE`,
        [digest, staleSeconds],
      );
      if (!row) return { verdict: 'gone' };
      if (row.pushed_at >= cutoff) return { verdict: 'kept' };
      if (row.fresh_mark) return { verdict: 'busy' };
      const [held] = await tx.query<{ held: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM repository_blobs WHERE digest = $1)
             OR EXISTS (SELECT 1 FROM manifest_references WHERE child = $1 AND kind = 'blob') AS held`,
        [digest],
      );
      if (held!.held) return { verdict: 'kept' };
      const [marked] = await tx.query<{ mark: Date }>(
        "UPDATE blobs SET deleting_since = date_trunc('milliseconds', now()) WHERE digest = $1 RETURNING deleting_since AS mark",
        [digest],
      );
      return { verdict: 'deleted', mark: { digest, size: row.size, mark: marked!.mark } };
    });
  }

  /**
   * Claims a storage object that has no blob row: inserts a row already marked as
   * being deleted, so pushes of the digest wait as for markBlob. Undefined when a
   * row exists (a push got there first).
   */
  async markOrphan(digest: string, size: number): Promise<BlobMark | undefined> {
    const rows = await this.sql.query<{ mark: Date }>(
      `INSERT INTO blobs (digest, size, deleting_since) VALUES ($1, $2, date_trunc('milliseconds', now()))
       ON CONFLICT (digest) DO NOTHING RETURNING deleting_since AS mark`,
      [digest, size],
    );
    return rows[0] && { digest, size, mark: rows[0].mark };
  }

  /** Removes the row after its storage object is gone; false if a push took the mark over meanwhile. */
  async finishBlobDeletion(mark: BlobMark): Promise<boolean> {
    const rows = await this.sql.query('DELETE FROM blobs WHERE digest = $1 AND deleting_since = $2 RETURNING digest', [mark.digest, mark.mark]);
    return rows.length > 0;
  }

  /** Gives up a mark (the storage delete failed, or the object turned out to be fresh). */
  async unmarkBlob(mark: BlobMark): Promise<void> {
    await this.sql.query('UPDATE blobs SET deleting_since = NULL WHERE digest = $1 AND deleting_since = $2', [mark.digest, mark.mark]);
  }

  /** The subset of `digests` that have a blob row. */
  async existingBlobs(digests: string[]): Promise<Set<string>> {
    if (digests.length === 0) return new Set();
    const rows = await this.sql.query<{ digest: string }>('SELECT digest FROM blobs WHERE digest = ANY($1::text[])', [digests]);
    return new Set(rows.map((r) => r.digest));
  }

  /** Storage used by every project (distinct blobs linked in its repositories), as quotas count it. */
  async usageByProject(): Promise<ProjectUsage[]> {
    return this.sql.query<ProjectUsage>(
      `WITH linked AS (
         SELECT DISTINCT r.project, rb.digest FROM repository_blobs rb JOIN repositories r ON r.name = rb.repository
       ),
       used AS (
         SELECT l.project, SUM(b.size)::int8 AS bytes FROM linked l JOIN blobs b ON b.digest = l.digest GROUP BY l.project
       ),
       names AS (SELECT name FROM projects UNION SELECT project FROM repositories)
       SELECT n.name AS project, COALESCE(u.bytes, 0)::int8 AS "usedBytes", COALESCE(p.storage_limit, -1)::int8 AS "limitBytes"
       FROM names n LEFT JOIN used u ON u.project = n.name LEFT JOIN projects p ON p.name = n.name
       ORDER BY n.name`,
    );
  }
}
