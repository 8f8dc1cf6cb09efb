import { mkdir } from 'node:fs/promises';
import { PGlite, types } from '@electric-sql/pglite';
import type { Queryable, Sql } from './sql.js';

const parsers = { [types.INT8]: (value: string) => Number(value) };

/** The embedded default: PostgreSQL compiled to WebAssembly, persisted in `dataDir`. */
export async function openPglite(dataDir: string): Promise<Sql> {
  await mkdir(dataDir, { recursive: true });
  const db = await PGlite.create({ dataDir, parsers });
  const wrap = (q: { query: PGlite['query'] }): Queryable => ({
    async query<Row>(text: string, params?: readonly unknown[]) {
      const result = await q.query<Row>(text, params as unknown[] | undefined);
      return result.rows;
    },
  });
  const base = wrap(db);
  return {
    driver: 'pglite',
    query: base.query,
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    close: () => db.close(),
  };
}
