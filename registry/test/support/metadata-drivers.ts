// Both metadata drivers, each opened on a fresh migrated database: the PGlite template copied into
// a temporary directory, or a new database on the run's PostgreSQL server.
import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { inject } from 'vitest';
import { migrate } from '../../src/metadata/migrate.js';
import { openPg } from '../../src/metadata/pg.js';
import { openPglite } from '../../src/metadata/pglite.js';
import type { Sql } from '../../src/metadata/sql.js';
import { createTestDatabase } from './pg.js';
import { removeDir, tempDir } from './registry.js';

export interface MetadataDriver {
  name: 'pglite' | 'pg';
  open: () => Promise<{ sql: Sql; cleanup: () => Promise<void> }>;
}

/**
 * `pgConnections` caps the PostgreSQL pool (1 keeps every statement and its cached plan on one
 * session). `noAutovacuum` turns autovacuum off for every table, so that statistics change only
 * when the test runs ANALYZE: a background ANALYZE at a moment that depends on the machine's
 * load would otherwise decide which plans a test sees.
 */
export function metadataDrivers(options: { pgConnections?: number; noAutovacuum?: boolean } = {}): MetadataDriver[] {
  return [
    {
      name: 'pglite',
      open: async () => {
        const dir = await tempDir();
        await cp(inject('pgliteTemplate'), join(dir, 'db'), { recursive: true });
        const sql = await openPglite(join(dir, 'db'));
        await migrate(sql);
        return { sql, cleanup: async () => removeDir(dir) };
      },
    },
    {
      name: 'pg',
      open: async () => {
        const sql = await openPg(await createTestDatabase(inject('pgAdminUrl')), options.pgConnections === undefined ? undefined : { max: options.pgConnections });
        await migrate(sql);
        if (options.noAutovacuum) {
          const tables = await sql.query<{ name: string }>("SELECT quote_ident(tablename) AS name FROM pg_tables WHERE schemaname = 'public'");
          for (const { name } of tables) await sql.query(`ALTER TABLE ${name} SET (autovacuum_enabled = false)`);
        }
        return { sql, cleanup: async () => undefined };
      },
    },
  ];
}
