import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';

export interface RunningRegistry {
  app: FastifyInstance;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `127.0.0.1:<port>`, the form OCI clients take. */
  host: string;
  dataDir: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** PostgreSQL DSN; PGlite in the data dir when absent. */
  databaseUrl?: string;
  /** Reuse a data dir (restart tests); a fresh temp dir otherwise. */
  dataDir?: string;
  port?: number;
  logLevel?: string;
}

export async function tempDir(prefix = 'wharf-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Starts the registry in this process on a loopback port. */
export async function startRegistry(options: StartOptions = {}): Promise<RunningRegistry> {
  const dataDir = options.dataDir ?? (await tempDir());
  const app = await buildApp({
    config: {
      logLevel: options.logLevel ?? process.env.WHARF_TEST_LOG_LEVEL ?? 'warn',
      database: { ...(options.databaseUrl && { url: options.databaseUrl }), embeddedDir: join(dataDir, 'metadata') },
      storage: { driver: 'filesystem', dir: join(dataDir, 'blobs') },
    },
  });
  await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  const { port } = app.server.address() as { port: number };
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    dataDir,
    stop: () => app.close(),
  };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
