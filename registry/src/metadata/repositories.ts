import type { Queryable } from './sql.js';

export interface Page {
  n?: number;
  last?: string;
  /** Only repositories of these projects. */
  projects?: string[];
}

export class RepositoryStore {
  constructor(private readonly db: Queryable) {}

  async ensure(name: string, db: Queryable = this.db): Promise<void> {
    await db.query('INSERT INTO repositories (name) VALUES ($1) ON CONFLICT (name) DO NOTHING', [name]);
  }

  async exists(name: string): Promise<boolean> {
    const rows = await this.db.query('SELECT 1 FROM repositories WHERE name = $1', [name]);
    return rows.length > 0;
  }

  /** Repository names in byte order after `last`; `n` rows at most (all when undefined). */
  async list(page: Page = {}): Promise<string[]> {
    const rows = await this.db.query<{ name: string }>(
      'SELECT name FROM repositories WHERE ($1::text IS NULL OR name > $1) AND ($3::text[] IS NULL OR project = ANY($3)) ORDER BY name LIMIT $2',
      [page.last ?? null, page.n ?? null, page.projects ?? null],
    );
    return rows.map((r) => r.name);
  }
}
