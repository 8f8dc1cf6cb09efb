import type { ImmutabilityPolicy } from '../lifecycle/immutability.js';
import type { RetentionCandidate } from '../lifecycle/retention-plan.js';
import type { RetentionPolicy } from '../lifecycle/retention-policy.js';
import { ACCESSORY_TAG_PATTERN, accessorySubject, isAccessoryTagOf } from './accessory-tags.js';
import type { Sql } from './sql.js';

/** Referrer artifact types that make their subject "signed" (docs/lifecycle.md). */
export const SIGNATURE_ARTIFACT_TYPES = [
  'application/vnd.dev.cosign.artifact.sig.v1+json',
  'application/vnd.cncf.notary.signature',
  'application/vnd.dev.sigstore.bundle.v0.3+json',
  'application/vnd.dev.sigstore.bundle+json;version=0.3',
];

export interface PullTime {
  repository: string;
  digest: string;
  at: Date;
}

/** Retention and immutability policies, pull times, and the queries retention plans from. */
export class LifecycleStore {
  constructor(private readonly sql: Sql) {}

  async retentionPolicy(project: string): Promise<RetentionPolicy | undefined> {
    const rows = await this.sql.query<{ rules: RetentionPolicy['rules']; schedule: string | null }>(
      'SELECT r.rules, r.schedule FROM retention_policies r JOIN projects p ON p.id = r.project_id WHERE p.name = $1',
      [project],
    );
    return rows[0] && { rules: rows[0].rules, schedule: rows[0].schedule };
  }

  /** Stores the policy; with `onlyIfAbsent` a policy already there is left as it is. */
  async setRetentionPolicy(projectId: string, policy: RetentionPolicy, onlyIfAbsent = false): Promise<void> {
    await this.sql.query(
      `INSERT INTO retention_policies (project_id, rules, schedule) VALUES ($1, $2, $3)
       ON CONFLICT (project_id) DO ${onlyIfAbsent ? 'NOTHING' : 'UPDATE SET rules = EXCLUDED.rules, schedule = EXCLUDED.schedule, updated_at = now()'}`,
      [projectId, JSON.stringify(policy.rules), policy.schedule],
    );
  }

  /** Every project with a retention schedule. */
  async retentionSchedules(): Promise<{ project: string; schedule: string }[]> {
    return this.sql.query<{ project: string; schedule: string }>(
      'SELECT p.name AS project, r.schedule FROM retention_policies r JOIN projects p ON p.id = r.project_id WHERE r.schedule IS NOT NULL ORDER BY p.name',
    );
  }

  async immutabilityPolicy(project: string): Promise<ImmutabilityPolicy | undefined> {
    const rows = await this.sql.query<{ rules: ImmutabilityPolicy['rules']; protect_signed: boolean }>(
      'SELECT i.rules, i.protect_signed FROM immutability_policies i JOIN projects p ON p.id = i.project_id WHERE p.name = $1',
      [project],
    );
    return rows[0] && { rules: rows[0].rules, protectSignedArtifacts: rows[0].protect_signed };
  }

  async setImmutabilityPolicy(projectId: string, policy: ImmutabilityPolicy): Promise<void> {
    await this.sql.query(
      `INSERT INTO immutability_policies (project_id, rules, protect_signed) VALUES ($1, $2, $3)
       ON CONFLICT (project_id) DO UPDATE SET rules = EXCLUDED.rules, protect_signed = EXCLUDED.protect_signed, updated_at = now()`,
      [projectId, JSON.stringify(policy.rules), policy.protectSignedArtifacts],
    );
  }

  /** Records a batch of pulls in one statement; a pull time only moves forward. */
  async recordPulls(pulls: PullTime[]): Promise<void> {
    if (pulls.length === 0) return;
    await this.sql.query(
      `UPDATE manifests m SET pulled_at = GREATEST(m.pulled_at, p.at)
       FROM (SELECT repository, digest, max(at) AS at FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS x (repository, digest, at) GROUP BY repository, digest) p
       WHERE m.repository = p.repository AND m.digest = p.digest`,
      [pulls.map((p) => p.repository), pulls.map((p) => p.digest), pulls.map((p) => p.at.toISOString())],
    );
  }

  /**
   * What retention decides about in `project`: every tag (cosign accessory tags of a
   * present subject follow the subject instead), and every untagged artifact that is not
   * an index's child nor a referrer of a present subject.
   */
  async retentionCandidates(project: string): Promise<RetentionCandidate[]> {
    const rows = await this.sql.query<{ repository: string; tag: string | null; digest: string; pushed_at: Date; pulled_at: Date | null }>(
      `SELECT t.repository, t.name AS tag, t.digest, t.updated_at AS pushed_at, m.pulled_at
       FROM tags t JOIN repositories r ON r.name = t.repository JOIN manifests m ON m.repository = t.repository AND m.digest = t.digest
       WHERE r.project = $1
         AND NOT (t.name ~ $2 AND EXISTS (SELECT 1 FROM manifests s WHERE s.repository = t.repository AND s.digest = ${accessorySubject('t.name')}))
       UNION ALL
       SELECT m.repository, NULL, m.digest, m.created_at, m.pulled_at
       FROM manifests m JOIN repositories r ON r.name = m.repository
       WHERE r.project = $1
         AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository = m.repository AND t.digest = m.digest)
         AND NOT EXISTS (SELECT 1 FROM manifest_references x WHERE x.repository = m.repository AND x.child = m.digest AND x.kind = 'manifest')
         AND (m.subject IS NULL OR NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository = m.repository AND s.digest = m.subject))`,
      [project, ACCESSORY_TAG_PATTERN],
    );
    return rows.map((r) => ({ repository: r.repository, tag: r.tag, digest: r.digest, pushedAt: new Date(r.pushed_at), pulledAt: r.pulled_at && new Date(r.pulled_at) }));
  }

  /** Those of `digests` in `repository` that are signed: a signature referrer, or a cosign `.sig` tag. */
  async signed(repository: string, digests: string[]): Promise<Set<string>> {
    if (digests.length === 0) return new Set();
    const rows = await this.sql.query<{ digest: string }>(
      `SELECT s.digest FROM unnest($2::text[]) AS s (digest)
       WHERE EXISTS (SELECT 1 FROM manifests r WHERE r.repository = $1 AND r.subject = s.digest AND r.artifact_type = ANY($3::text[]))
          OR EXISTS (SELECT 1 FROM tags t WHERE t.repository = $1 AND ${isAccessoryTagOf('t.name', 's.digest', ['sig'])})`,
      [repository, [...new Set(digests)], SIGNATURE_ARTIFACT_TYPES],
    );
    return new Set(rows.map((r) => r.digest));
  }

  /** Tags of `repository` that name one of `digests`. */
  async tagsOf(repository: string, digests: string[]): Promise<{ tag: string; digest: string }[]> {
    return this.sql.query<{ tag: string; digest: string }>('SELECT name AS tag, digest FROM tags WHERE repository = $1 AND digest = ANY($2::text[]) ORDER BY name', [repository, digests]);
  }

  /** `digest` and, recursively, its referrers and cosign accessories (tag scheme) in `repository`. */
  async withReferrers(repository: string, digest: string): Promise<string[]> {
    const rows = await this.sql.query<{ digest: string }>(`${REFERRER_CLOSURE} SELECT digest FROM doomed`, [repository, digest]);
    return rows.map((r) => r.digest);
  }

  /**
   * Deletes a manifest with its referrers, recursively (their tags and references go
   * with them); with `onlyIfUntagged`, only when the manifest has no tag and no index
   * names it. Returns the deleted digests (none when there was nothing to delete).
   */
  async deleteWithReferrers(repository: string, digest: string, onlyIfUntagged = false): Promise<string[]> {
    const rows = await this.sql.query<{ digest: string }>(
      `${REFERRER_CLOSURE}
       DELETE FROM manifests m USING doomed d
       WHERE m.repository = $1 AND m.digest = d.digest
         AND (NOT $3::boolean OR (
           NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository = $1 AND t.digest = $2)
           AND NOT EXISTS (SELECT 1 FROM manifest_references x WHERE x.repository = $1 AND x.child = $2 AND x.kind = 'manifest')))
       RETURNING m.digest`,
      [repository, digest, onlyIfUntagged],
    );
    return rows.map((r) => r.digest);
  }

  /** Deletes `tag` if it still names `digest` (retention decided on that). */
  async deleteTagAt(repository: string, tag: string, digest: string): Promise<boolean> {
    const rows = await this.sql.query('DELETE FROM tags WHERE repository = $1 AND name = $2 AND digest = $3 RETURNING name', [repository, tag, digest]);
    return rows.length > 0;
  }
}

/** $1 repository, $2 digest: the manifest and everything that refers to it, by subject or by cosign's tag scheme. */
const REFERRER_CLOSURE = `WITH RECURSIVE doomed (digest) AS (
  SELECT digest FROM manifests WHERE repository = $1 AND digest = $2
  UNION
  SELECT m.digest FROM doomed d JOIN manifests m ON m.repository = $1
    AND (m.subject = d.digest OR m.digest IN (
      SELECT t.digest FROM tags t WHERE t.repository = $1 AND ${isAccessoryTagOf('t.name', 'd.digest')}))
)`;
