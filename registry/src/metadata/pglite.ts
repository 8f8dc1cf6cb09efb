import { mkdir } from 'node:fs/promises';
import { PGlite, types } from '@electric-sql/pglite';
import type { Queryable, Sql } from './sql.js';

const parsers = { [types.INT8]: (value: string) => Number(value) };

/**
 * One connection inside the registry process: PostgreSQL's defaults (128 MB of shared
 * buffers) would triple the process's memory for no benefit at this scale.
 */
const EMBEDDED_SETTINGS = ['shared_buffers=16MB', 'wal_buffers=512kB', 'max_connections=5'];

/** The embedded default: PostgreSQL compiled to WebAssembly, persisted in `dataDir`. */
export async function openPglite(dataDir: string): Promise<Sql> {
  await mkdir(dataDir, { recursive: true });
  const db = await PGlite.create({ dataDir, parsers, postgresqlconf: EMBEDDED_SETTINGS });
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
