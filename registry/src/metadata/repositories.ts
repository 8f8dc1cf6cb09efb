import type { Queryable } from './sql.js';

export interface Page {
  n?: number;
  last?: string;
  /** Only repositories of these projects. */
  projects?: string[];
}

/**
 * The repositories of the given projects after $2, in byte order, $3 at most. Project p
 * holds the repository named p and those in [p/, p0) ('0' follows '/'): disjoint spans
 * of the name index, whatever the projects. The spans are walked in order, one range
 * scan each, and the walk stops once the page is full (the incremental sort needs each
 * span's rows only); spans that end before the cursor are skipped. So a page costs a
 * few index descents per visible project before it, plus the page, however many
 * repositories other projects hold. (p || chr(1) ends the one-name span of p: no name
 * lies between p and p followed by U+0001.)
 */
const IN_PROJECTS = `SELECT r.name
  FROM (SELECT low, high FROM (
          SELECT p AS low, p || chr(1) AS high FROM unnest($1::text[]) AS p
          UNION ALL
          SELECT p || '/', p || '0' FROM unnest($1::text[]) AS p
        ) AS spans
        WHERE high > $2 COLLATE "C"
        ORDER BY low COLLATE "C") AS span
  CROSS JOIN LATERAL (
    SELECT name FROM repositories WHERE name >= span.low AND name < span.high AND name > $2 ORDER BY name LIMIT $3
  ) AS r
  ORDER BY span.low COLLATE "C", r.name
  LIMIT $3`;

export class RepositoryStore {
  constructor(private readonly db: Queryable) {}

  async ensure(name: string, db: Queryable = this.db): Promise<void> {
    await db.query('INSERT INTO repositories (name) VALUES ($1) ON CONFLICT (name) DO NOTHING', [name]);
  }

  async exists(name: string): Promise<boolean> {
    const rows = await this.db.query('SELECT 1 FROM repositories WHERE name = $1', [name]);
    return rows.length > 0;
  }

  /**
   * Repository names in byte order after `last`; `n` rows at most (all when undefined).
   * The cursor is always an index bound (the first page starts after '', which sorts
   * before every name), so a page is one range scan whatever plan is cached.
   */
  async list(page: Page = {}): Promise<string[]> {
    const after = page.last ?? '';
    const rows = page.projects
      ? await this.db.query<{ name: string }>(IN_PROJECTS, [page.projects, after, page.n ?? null])
      : await this.db.query<{ name: string }>('SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2', [after, page.n ?? null]);
    return rows.map((r) => r.name);
  }
}
