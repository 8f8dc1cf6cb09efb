import { ACCESSORY_TAG_PATTERN, accessorySubject } from './accessory-tags.js';
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

export interface TagKey {
  repository: string;
  name: string;
}

/** A cosign accessory tag (`sha256-<hex>.sig|.att|.sbom`) whose subject is gone. */
export interface OrphanedAccessoryTag extends TagKey {
  digest: string;
  updatedAt: Date;
  /** The subject itself is absent (not only an orphan that is still there). */
  subjectAbsent: boolean;
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
 * The SQL of garbage collection. Candidate queries are plain reads; each batch of
 * deletions is one short transaction that locks the rows (SKIP LOCKED) and then
 * re-checks, with a fresh statement, that nothing references them any more. A push
 * that races the collector either commits first (its row lock or reference is seen
 * and the row is kept) or waits on the lock and then finds the row gone (and writes
 * it again).
 */
export class GcStore {
  constructor(private readonly sql: Sql) {}

  /**
   * Manifests no root reaches. Roots: tagged manifests (tags in `ignoredTags`, which a
   * dry run assumes deleted, do not count) and manifests younger than `cutoff`; edges:
   * an index to its children, a subject to its referrers.
   */
  async unreachableManifests(cutoff: Date, ignoredTags: TagKey[] = []): Promise<ManifestCandidate[]> {
    return this.sql.query<ManifestCandidate>(
      `WITH RECURSIVE edges (repository, source, target) AS (
         SELECT repository, manifest, child FROM manifest_references WHERE kind = 'manifest'
         UNION ALL
         SELECT repository, subject, digest FROM manifests WHERE subject IS NOT NULL
       ),
       live (repository, digest) AS (
         SELECT t.repository, t.digest FROM tags t
         WHERE NOT EXISTS (SELECT 1 FROM unnest($2::text[], $3::text[]) AS x (repository, name) WHERE x.repository = t.repository AND x.name = t.name)
         UNION
         SELECT repository, digest FROM manifests WHERE created_at >= $1
         UNION
         SELECT e.repository, e.target FROM edges e JOIN live l ON l.repository = e.repository AND l.digest = e.source
       )
       SELECT m.repository, m.digest, octet_length(m.content)::int8 AS size FROM manifests m
       WHERE NOT EXISTS (SELECT 1 FROM live l WHERE l.repository = m.repository AND l.digest = m.digest)
       ORDER BY m.repository, m.digest`,
      [cutoff, columns(ignoredTags, 'repository'), columns(ignoredTags, 'name')],
    );
  }

  /**
   * Manifests that hang off a subject no longer in their repository, directly or through
   * other such manifests: OCI referrers (by `subject`) and the manifests cosign accessory
   * tags name (`sha256-<hex>.sig` names a manifest attached to `sha256:<hex>`). What
   * deleting a subject leaves behind; garbage collection removes those that are also
   * unreachable (once their accessory tags are gone) even without deleteUntagged.
   */
  async orphanedReferrers(): Promise<Set<string>> {
    const rows = await this.sql.query<ManifestKey>(
      `${ORPHANS}
       SELECT repository, digest FROM orphans`,
      [ACCESSORY_TAG_PATTERN],
    );
    return new Set(rows.map((r) => `${r.repository}@${r.digest}`));
  }

  /**
   * Cosign accessory tags whose subject is absent from their repository, or is itself an
   * orphan (an accessory of an accessory), older than `cutoff`.
   */
  async orphanedAccessoryTags(cutoff: Date): Promise<OrphanedAccessoryTag[]> {
    const rows = await this.sql.query<{ repository: string; name: string; digest: string; updated_at: Date; subject_absent: boolean }>(
      `${ORPHANS}
       SELECT t.repository, t.name, t.digest, t.updated_at,
              NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository = t.repository AND s.digest = ${accessorySubject('t.name')}) AS subject_absent
       FROM tags t
       WHERE t.name ~ $1 AND t.updated_at < $2
         AND (NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository = t.repository AND s.digest = ${accessorySubject('t.name')})
              OR EXISTS (SELECT 1 FROM orphans o WHERE o.repository = t.repository AND o.digest = ${accessorySubject('t.name')}))
       ORDER BY t.repository, t.name`,
      [ACCESSORY_TAG_PATTERN, cutoff],
    );
    return rows.map((r) => ({ repository: r.repository, name: r.name, digest: r.digest, updatedAt: new Date(r.updated_at), subjectAbsent: r.subject_absent }));
  }

  /**
   * Deletes those of `tags` that still name the same digest, were not written again
   * since, and whose subject is still absent (re-checked in the statement: a re-push of
   * the tag, which locks its row, is seen and the tag kept). Returns the deleted tags.
   */
  async deleteAccessoryTags(tags: OrphanedAccessoryTag[], cutoff: Date): Promise<TagKey[]> {
    if (tags.length === 0) return [];
    return this.sql.query<TagKey>(
      `DELETE FROM tags t USING unnest($1::text[], $2::text[], $3::text[]) AS k (repository, name, digest)
       WHERE t.repository = k.repository AND t.name = k.name AND t.digest = k.digest AND t.updated_at < $4
         AND NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository = t.repository AND s.digest = ${accessorySubject('t.name')})
       RETURNING t.repository, t.name`,
      [columns(tags, 'repository'), columns(tags, 'name'), columns(tags, 'digest'), cutoff],
    );
  }

  /**
   * Deletes those of `keys` that are still unreachable on their own: older than
   * `cutoff`, untagged, no parent index left, and their subject (if any) absent.
   * Rows are locked first (SKIP LOCKED: a row a push holds is left for the next run),
   * then re-checked by a fresh statement, which sees every push that committed before
   * the lock. Unreachable parents and subjects go first, so the caller repeats until
   * a pass deletes nothing. Returns the deleted keys.
   */
  async deleteManifests(keys: ManifestKey[], cutoff: Date): Promise<ManifestKey[]> {
    if (keys.length === 0) return [];
    return this.sql.transaction(async (tx) => {
      const locked = await tx.query<ManifestKey>(
        `SELECT m.repository, m.digest FROM manifests m
         JOIN unnest($1::text[], $2::text[]) AS k (repository, digest) ON m.repository = k.repository AND m.digest = k.digest
         WHERE m.created_at < $3
         ORDER BY m.repository, m.digest FOR UPDATE OF m SKIP LOCKED`,
        [columns(keys, 'repository'), columns(keys, 'digest'), cutoff],
      );
      if (locked.length === 0) return [];
      return tx.query<ManifestKey>(
        `DELETE FROM manifests m USING unnest($1::text[], $2::text[]) AS k (repository, digest)
         WHERE m.repository = k.repository AND m.digest = k.digest
           AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository = m.repository AND t.digest = m.digest)
           AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.repository = m.repository AND r.child = m.digest AND r.kind = 'manifest')
           AND NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository = m.repository AND s.digest = m.subject)
         RETURNING m.repository, m.digest`,
        [columns(locked, 'repository'), columns(locked, 'digest')],
      );
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

  /** Deletes those of `keys` still older than `cutoff` and unreferenced (locked, then re-checked); returns them. */
  async deleteLinks(keys: LinkKey[], cutoff: Date): Promise<LinkKey[]> {
    if (keys.length === 0) return [];
    return this.sql.transaction(async (tx) => {
      const locked = await tx.query<LinkKey>(
        `SELECT l.repository, l.digest FROM repository_blobs l
         JOIN unnest($1::text[], $2::text[]) AS k (repository, digest) ON l.repository = k.repository AND l.digest = k.digest
         WHERE l.created_at < $3
         ORDER BY l.repository, l.digest FOR UPDATE OF l SKIP LOCKED`,
        [columns(keys, 'repository'), columns(keys, 'digest'), cutoff],
      );
      if (locked.length === 0) return [];
      return tx.query<LinkKey>(
        `DELETE FROM repository_blobs l USING unnest($1::text[], $2::text[]) AS k (repository, digest)
         WHERE l.repository = k.repository AND l.digest = k.digest
           AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.repository = l.repository AND r.child = l.digest AND r.kind = 'blob')
         RETURNING l.repository, l.digest`,
        [columns(locked, 'repository'), columns(locked, 'digest')],
      );
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
   * Marks those of `digests` that are still unreferenced as being deleted: the rows are
   * locked (SKIP LOCKED: a push holding one keeps it), then re-checked by a fresh
   * statement. From then on a push of a marked digest waits (BlobLinkStore.reserve)
   * until `finishBlobDeletions` removes the row, so it cannot write the object just
   * before the collector deletes it. A mark older than `staleSeconds` belongs to a
   * collector that died and is taken over.
   */
  async markBlobs(digests: string[], cutoff: Date, staleSeconds: number): Promise<BlobMark[]> {
    if (digests.length === 0) return [];
    return this.sql.transaction(async (tx) => {
      const locked = await tx.query<{ digest: string }>(
        `SELECT digest FROM blobs
         WHERE digest = ANY($1::text[]) AND pushed_at < $2
           AND (deleting_since IS NULL OR deleting_since < now() - make_interval(secs => $3))
         ORDER BY digest FOR UPDATE SKIP LOCKED`,
        [digests, cutoff, staleSeconds],
      );
      if (locked.length === 0) return [];
      return tx.query<BlobMark>(
        `UPDATE blobs b SET deleting_since = date_trunc('milliseconds', now())
         WHERE b.digest = ANY($1::text[])
           AND NOT EXISTS (SELECT 1 FROM repository_blobs l WHERE l.digest = b.digest)
           AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.child = b.digest AND r.kind = 'blob')
         RETURNING b.digest, b.size, b.deleting_since AS mark`,
        [locked.map((r) => r.digest)],
      );
    });
  }

  /**
   * Claims storage objects that have no blob row: inserts rows already marked as being
   * deleted, so pushes of those digests wait as for markBlobs. Objects that gained a
   * row meanwhile (a push got there first) are left out.
   */
  async markOrphans(objects: BlobCandidate[]): Promise<BlobMark[]> {
    if (objects.length === 0) return [];
    return this.sql.query<BlobMark>(
      `INSERT INTO blobs (digest, size, deleting_since)
       SELECT o.digest, o.size, date_trunc('milliseconds', now()) FROM unnest($1::text[], $2::int8[]) AS o (digest, size)
       ON CONFLICT (digest) DO NOTHING RETURNING digest, size, deleting_since AS mark`,
      [columns(objects, 'digest'), columns(objects, 'size')],
    );
  }

  /** Removes the rows whose storage objects are gone; rows whose mark a push took over stay. */
  async finishBlobDeletions(marks: BlobMark[]): Promise<number> {
    if (marks.length === 0) return 0;
    const rows = await this.sql.query(
      `DELETE FROM blobs b USING unnest($1::text[], $2::timestamptz[]) AS m (digest, mark)
       WHERE b.digest = m.digest AND b.deleting_since = m.mark RETURNING b.digest`,
      [columns(marks, 'digest'), columns(marks, 'mark')],
    );
    return rows.length;
  }

  /** Gives up marks (the storage delete failed). */
  async unmarkBlobs(marks: BlobMark[]): Promise<void> {
    if (marks.length === 0) return;
    await this.sql.query(
      `UPDATE blobs b SET deleting_since = NULL FROM unnest($1::text[], $2::timestamptz[]) AS m (digest, mark)
       WHERE b.digest = m.digest AND b.deleting_since = m.mark`,
      [columns(marks, 'digest'), columns(marks, 'mark')],
    );
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

/**
 * $1 the accessory tag pattern. `attached`: every manifest attached to a parent digest,
 * by OCI subject or by cosign accessory tag; `orphans`: those whose parent is absent,
 * and, recursively, what is attached to an orphan.
 */
const ORPHANS = `WITH RECURSIVE attached (repository, parent, digest) AS (
  SELECT repository, subject, digest FROM manifests WHERE subject IS NOT NULL
  UNION ALL
  SELECT repository, ${accessorySubject('name')}, digest FROM tags WHERE name ~ $1
),
orphans (repository, digest) AS (
  SELECT a.repository, a.digest FROM attached a
  WHERE NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository = a.repository AND s.digest = a.parent)
  UNION
  SELECT a.repository, a.digest FROM orphans o JOIN attached a ON a.repository = o.repository AND a.parent = o.digest
)`;
