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

/** `pgConnections` caps the PostgreSQL pool (1 keeps every statement and its cached plan on one session). */
export function metadataDrivers(options: { pgConnections?: number } = {}): MetadataDriver[] {
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
        return { sql, cleanup: async () => undefined };
      },
    },
  ];
}
