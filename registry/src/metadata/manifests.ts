import type { Sql } from './sql.js';

export interface StoredManifest {
  digest: string;
  mediaType: string;
  size: number;
  subject: string | null;
  content?: Buffer;
}

export interface ManifestRecord {
  repository: string;
  digest: string;
  mediaType: string;
  content: Uint8Array;
  artifactType?: string;
  subject?: string;
  annotations?: Record<string, string>;
  blobs: string[];
  manifests: string[];
  tag?: string;
  /** The tag is immutable: it may be created, or re-pushed at the same digest, but not moved (put only). */
  tagLocked?: boolean;
}

export interface Referrer {
  digest: string;
  mediaType: string;
  size: number;
  artifactType: string | null;
  annotations: Record<string, string> | null;
}

interface ManifestRow {
  digest: string;
  media_type: string;
  size: number;
  subject: string | null;
  content?: Uint8Array;
}

function toManifest(row: ManifestRow | undefined): StoredManifest | undefined {
  if (!row) return undefined;
  const m: StoredManifest = { digest: row.digest, mediaType: row.media_type, size: row.size, subject: row.subject };
  if (row.content) m.content = Buffer.from(row.content.buffer, row.content.byteOffset, row.content.byteLength);
  return m;
}

const columns = (withContent: boolean) => `m.digest, m.media_type, octet_length(m.content)::int8 AS size, m.subject${withContent ? ', m.content' : ''}`;

export class ManifestStore {
  constructor(private readonly sql: Sql) {}

  async byDigest(repository: string, digest: string, withContent: boolean): Promise<StoredManifest | undefined> {
    const rows = await this.sql.query<ManifestRow>(`SELECT ${columns(withContent)} FROM manifests m WHERE m.repository = $1 AND m.digest = $2`, [repository, digest]);
    return toManifest(rows[0]);
  }

  /**
   * What a blob request for `digest` finds in `repository`, in one round trip: the size of
   * a linked blob, or else the manifest of that digest (readable through the blobs
   * endpoint too). With `askReferenced` (a proxy-cache project), a miss also says whether
   * a manifest of the repository names the digest as a blob.
   */
  async blobOrManifest(repository: string, digest: string, withContent: boolean, askReferenced = false): Promise<{ linkedSize: number } | { manifest: StoredManifest } | { referenced: boolean }> {
    const rows = await this.sql.query<ManifestRow & { found: 'blob' | 'manifest' | 'reference' }>(
      `SELECT 'blob' AS found, b.digest, NULL::text AS media_type, b.size, NULL::text AS subject${withContent ? ', NULL::bytea AS content' : ''}
         FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest WHERE rb.repository = $1 AND rb.digest = $2
       UNION ALL
       SELECT 'manifest', ${columns(withContent)} FROM manifests m WHERE m.repository = $1 AND m.digest = $2${
         askReferenced
           ? `
       UNION ALL
       (SELECT 'reference', r.child, NULL, NULL, NULL${withContent ? ', NULL' : ''} FROM manifest_references r WHERE r.repository = $1 AND r.child = $2 AND r.kind = 'blob' LIMIT 1)`
           : ''
       }
       ORDER BY found LIMIT 1`, // blob, then manifest, then reference
      [repository, digest],
    );
    const row = rows[0];
    if (row?.found === 'blob') return { linkedSize: row.size };
    if (row?.found === 'manifest') return { manifest: toManifest(row)! };
    return { referenced: row !== undefined };
  }

  async byTag(repository: string, tag: string, withContent: boolean): Promise<StoredManifest | undefined> {
    const rows = await this.sql.query<ManifestRow>(
      `SELECT ${columns(withContent)} FROM tags t JOIN manifests m ON m.repository = t.repository AND m.digest = t.digest
       WHERE t.repository = $1 AND t.name = $2`,
      [repository, tag],
    );
    return toManifest(rows[0]);
  }

  /**
   * Stores a manifest, its references and optionally a tag, in one statement, if every
   * blob and child manifest it names is in the repository; returns those missing (and
   * then writes nothing). The present ones are locked (FOR SHARE) until the statement
   * ends, so a concurrent unlink or garbage collection cannot leave the manifest
   * dangling. Idempotent for identical content. An existing manifest row is locked
   * too (DO UPDATE ... WHERE false writes nothing), so a collector deleting it
   * concurrently either finishes first (and the row is inserted anew) or sees the new
   * tag or references and keeps it. A locked tag (`tagLocked`) that names another
   * digest is left as it is, atomically, and the result says `tagRefused`.
   */
  async put(record: ManifestRecord): Promise<{ missing: string[]; previousTagDigest?: string; tagRefused?: true }> {
    const blobs = [...new Set(record.blobs)];
    const children = [...new Set(record.manifests)];
    const rows = await this.sql.query<{ digest: string; kind: 'present' | 'previous' | 'refused' }>(
      `WITH present_blobs AS (
         SELECT digest FROM repository_blobs WHERE repository = $1 AND digest = ANY($8::text[]) ORDER BY digest FOR SHARE
       ), present_children AS (
         SELECT digest FROM manifests WHERE repository = $1 AND digest = ANY($9::text[]) ORDER BY digest FOR SHARE
       ), complete AS (
         SELECT 1 WHERE (SELECT count(*) FROM present_blobs) = cardinality($8::text[])
                    AND (SELECT count(*) FROM present_children) = cardinality($9::text[])
       ), repository AS (
         INSERT INTO repositories (name) SELECT $1 FROM complete ON CONFLICT (name) DO NOTHING
       ), manifest AS (
         INSERT INTO manifests (repository, digest, media_type, content, artifact_type, subject, annotations)
         SELECT $1, $2, $3, $4, $5, $6, $7 FROM complete
         ON CONFLICT (repository, digest) DO UPDATE SET media_type = manifests.media_type WHERE false
       ), refs AS (
         INSERT INTO manifest_references (repository, manifest, child, kind)
         SELECT $1, $2, r.child, r.kind
         FROM complete, unnest($8::text[] || $9::text[], array_fill('blob'::text, ARRAY[cardinality($8::text[])]) || array_fill('manifest'::text, ARRAY[cardinality($9::text[])])) AS r(child, kind)
         ON CONFLICT DO NOTHING
       ), tag AS (
         INSERT INTO tags (repository, name, digest) SELECT $1, $10, $2 FROM complete WHERE $10::text IS NOT NULL
         ON CONFLICT (repository, name) DO UPDATE SET digest = EXCLUDED.digest, updated_at = now() WHERE NOT $11::boolean OR tags.digest = EXCLUDED.digest
         RETURNING 1
       )
       SELECT digest, 'present' AS kind FROM present_blobs UNION ALL SELECT digest, 'present' FROM present_children
       -- The statement's snapshot predates the tag upsert: this is where the tag pointed before (tag.created webhooks).
       UNION ALL SELECT digest, 'previous' FROM tags WHERE repository = $1 AND name = $10
       UNION ALL SELECT NULL, 'refused' FROM complete WHERE $10::text IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tag)`,
      [...manifestParameters(record, blobs, children), record.tagLocked === true],
    );
    const present = new Set(rows.filter((r) => r.kind === 'present').map((r) => r.digest));
    const previousTagDigest = rows.find((r) => r.kind === 'previous')?.digest;
    const missing = [...blobs, ...children].filter((d) => !present.has(d));
    return { missing, ...(previousTagDigest !== undefined && { previousTagDigest }), ...(rows.some((r) => r.kind === 'refused') && { tagRefused: true as const }) };
  }

  /**
   * Stores a manifest fetched by a proxy-cache project, with its references and
   * optionally a tag, whether or not its blobs and child manifests are here yet: they
   * are fetched when first asked for. The references make the blobs, once linked,
   * ordinary content that garbage collection keeps while the manifest lives.
   */
  async putCached(record: ManifestRecord): Promise<void> {
    const blobs = [...new Set(record.blobs)];
    const children = [...new Set(record.manifests)];
    await this.sql.query(
      `WITH repository AS (
         INSERT INTO repositories (name) VALUES ($1) ON CONFLICT (name) DO NOTHING
       ), manifest AS (
         INSERT INTO manifests (repository, digest, media_type, content, artifact_type, subject, annotations)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (repository, digest) DO UPDATE SET media_type = manifests.media_type WHERE false
       ), refs AS (
         INSERT INTO manifest_references (repository, manifest, child, kind)
         SELECT $1, $2, r.child, r.kind
         FROM unnest($8::text[] || $9::text[], array_fill('blob'::text, ARRAY[cardinality($8::text[])]) || array_fill('manifest'::text, ARRAY[cardinality($9::text[])])) AS r(child, kind)
         ON CONFLICT DO NOTHING
       ), tag AS (
         INSERT INTO tags (repository, name, digest) SELECT $1, $10, $2 WHERE $10::text IS NOT NULL
         ON CONFLICT (repository, name) DO UPDATE SET digest = EXCLUDED.digest, updated_at = now()
       )
       SELECT 1`,
      manifestParameters(record, blobs, children),
    );
  }

  /** Deletes a manifest with its tags and references; false when it was not there. */
  async delete(repository: string, digest: string): Promise<boolean> {
    const rows = await this.sql.query('DELETE FROM manifests WHERE repository = $1 AND digest = $2 RETURNING digest', [repository, digest]);
    return rows.length > 0;
  }

  async deleteTag(repository: string, tag: string): Promise<boolean> {
    const rows = await this.sql.query('DELETE FROM tags WHERE repository = $1 AND name = $2 RETURNING name', [repository, tag]);
    return rows.length > 0;
  }

  /**
   * Tags in byte order after `last`; `n` at most (all when undefined). One range scan of
   * the primary key whatever the plan cached for the statement: the cursor is always a
   * bound (the first page starts after '', which sorts before every tag).
   */
  async listTags(repository: string, page: { n?: number; last?: string }): Promise<string[]> {
    const rows = await this.sql.query<{ name: string }>('SELECT name FROM tags WHERE repository = $1 AND name > $2 ORDER BY name LIMIT $3', [repository, page.last ?? '', page.n ?? null]);
    return rows.map((r) => r.name);
  }

  async referrers(repository: string, subject: string, artifactType?: string): Promise<Referrer[]> {
    const rows = await this.sql.query<{ digest: string; media_type: string; size: number; artifact_type: string | null; annotations: Record<string, string> | null }>(
      `SELECT digest, media_type, octet_length(content)::int8 AS size, artifact_type, annotations
       FROM manifests WHERE repository = $1 AND subject = $2 AND ($3::text IS NULL OR artifact_type = $3)
       ORDER BY created_at, digest`,
      [repository, subject, artifactType ?? null],
    );
    return rows.map((r) => ({ digest: r.digest, mediaType: r.media_type, size: r.size, artifactType: r.artifact_type, annotations: r.annotations }));
  }
}

/** $1..$10 of the statements that store a manifest: repository, digest, media type, content, artifact type, subject, annotations, blobs, child manifests, tag. */
function manifestParameters(record: ManifestRecord, blobs: string[], children: string[]): unknown[] {
  return [
    record.repository,
    record.digest,
    record.mediaType,
    record.content,
    record.artifactType ?? null,
    record.subject ?? null,
    record.annotations ? JSON.stringify(record.annotations) : null,
    blobs,
    children,
    record.tag ?? null,
  ];
}
