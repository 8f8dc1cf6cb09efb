import { cp, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { inject } from 'vitest';
import { buildApp } from '../../src/app.js';
import { defaultJobsConfig, defaultLimitsConfig, type AuthConfig, type JobsConfig, type LimitsConfig, type ProxyConfig, type StorageConfig } from '../../src/config.js';
import type { JobsPluginOptions } from '../../src/plugins/jobs.js';
import type { ReplicationPluginOptions } from '../../src/plugins/replication.js';
import { RequestWatch } from './requests.js';

export interface RunningRegistry {
  app: FastifyInstance;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `127.0.0.1:<port>`, the form OCI clients take. */
  host: string;
  dataDir: string;
  /** When the registry has finished a request (see RequestWatch). */
  requests: RequestWatch;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** PostgreSQL DSN; PGlite in the data dir when absent. */
  databaseUrl?: string;
  /** Reuse a data dir (restart tests); a fresh temp dir otherwise. */
  dataDir?: string;
  port?: number;
  logLevel?: string;
  /** A ready pino logger (tests that read the log); one at `logLevel` otherwise. */
  logger?: FastifyBaseLogger;
  /** Auth settings; the default is mode `none` (an open registry). */
  auth?: Partial<AuthConfig>;
  /** Blob storage; the filesystem under the data dir by default. */
  storage?: StorageConfig;
  /** Background jobs, over the defaults (worker on, GC daily at 03:00 UTC). */
  jobs?: { worker?: boolean; pollIntervalMs?: number; gc?: Partial<JobsConfig['gc']>; uploads?: Partial<JobsConfig['uploads']> };
  /** Worker lease and retry tuning. */
  jobTuning?: Omit<JobsPluginOptions, 'jobs'>;
  /** Peers whose X-Forwarded-* headers are honoured (addresses or CIDR ranges). */
  trustedProxies?: string[];
  /** Upload and HTTP limits, over the defaults. */
  limits?: { uploads?: Partial<LimitsConfig['uploads']>; http?: Partial<LimitsConfig['http']> };
  /** Proxy-cache settings (spool directory, upstream timeouts). */
  proxy?: Partial<ProxyConfig>;
  /** Replication tuning (retry delays, chunk size, remote timeouts). */
  replication?: ReplicationPluginOptions;
}

export function limitsConfig(overrides: StartOptions['limits'] = {}): LimitsConfig {
  const defaults = defaultLimitsConfig();
  return { uploads: { ...defaults.uploads, ...overrides.uploads }, http: { ...defaults.http, ...overrides.http } };
}

export function jobsConfig(overrides: StartOptions['jobs'] = {}): JobsConfig {
  const defaults = defaultJobsConfig();
  return { ...defaults, ...overrides, gc: { ...defaults.gc, ...overrides.gc }, uploads: { ...defaults.uploads, ...overrides.uploads } };
}

/** Token auth as the tests use it: a generated key and a known admin password. */
export const TEST_ADMIN_PASSWORD = 'wharf-test-admin-password';
export function tokenAuth(overrides: Partial<AuthConfig> = {}): Partial<AuthConfig> {
  return { mode: 'token', adminPassword: TEST_ADMIN_PASSWORD, ...overrides };
}

export async function tempDir(prefix = 'wharf-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Starts the registry in this process on a loopback port. */
export async function startRegistry(options: StartOptions = {}): Promise<RunningRegistry> {
  const dataDir = options.dataDir ?? (await tempDir());
  if (!options.databaseUrl) await seedPglite(join(dataDir, 'metadata'));
  const app = await buildApp({
    config: {
      logLevel: options.logLevel ?? process.env.WHARF_TEST_LOG_LEVEL ?? 'warn',
      database: { ...(options.databaseUrl && { url: options.databaseUrl }), embeddedDir: join(dataDir, 'metadata') },
      storage: options.storage ?? { driver: 'filesystem', dir: join(dataDir, 'blobs') },
      auth: {
        mode: 'none',
        service: 'wharf-test',
        issuer: 'wharf-test-issuer',
        tokenKeyFile: join(dataDir, 'token-signing-key.pem'),
        generateKey: true,
        tokenTtlSeconds: 300,
        adminPasswordFile: join(dataDir, 'admin-password'),
        ...options.auth,
      },
      jobs: jobsConfig(options.jobs),
      ...(options.trustedProxies && { trustedProxies: options.trustedProxies }),
      limits: limitsConfig(options.limits),
      ...(options.proxy && { proxy: options.proxy }),
    },
    ...(options.jobTuning && { jobs: options.jobTuning }),
    ...(options.replication && { replication: options.replication }),
    ...(options.logger && { loggerInstance: options.logger }),
  });
  const requests = new RequestWatch(app);
  await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  const { port } = app.server.address() as { port: number };
  return {
    app,
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    dataDir,
    requests,
    stop: () => app.close(),
  };
}

/** Copies the run's migrated PGlite template into an empty metadata dir. */
async function seedPglite(dir: string): Promise<void> {
  if (await stat(dir).catch(() => undefined)) return;
  await cp(inject('pgliteTemplate'), dir, { recursive: true });
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
