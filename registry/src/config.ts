import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { load as loadYaml } from 'js-yaml';
import { parseCron } from './jobs/cron.js';
import { caFileConflict } from './metadata/dsn.js';

/** Resolved registry configuration; see registry/CONFIG.md for every key. */
export interface RegistryConfig {
  host: string;
  port: number;
  dataDir: string;
  logLevel: string;
  database: { url?: string; caFile?: string; embeddedDir: string };
  storage: StorageConfig;
  auth: AuthConfig;
  jobs: JobsConfig;
  /** Peers (addresses or CIDR ranges) whose X-Forwarded-For/-Host/-Proto are believed; none by default. */
  trustedProxies: string[];
  limits: LimitsConfig;
  proxy: ProxyConfig;
  webhooks: WebhooksConfig;
  replication: ReplicationConfig;
}

/** Webhook delivery (docs/webhooks.md). */
export interface WebhooksConfig {
  /** Longest one delivery attempt may take. */
  timeoutMs: number;
  /** Attempts per delivery, the first included. */
  maxAttempts: number;
  /** Delay before the first retry, doubled per attempt. */
  retryDelaySeconds: number;
  /** Events are collected this long, then written as deliveries in one transaction. */
  batchWindowMs: number;
  /** Whether webhook targets may be loopback, private or link-local addresses (an administrator's choice). */
  allowPrivateTargets: boolean;
  /** Usage percentage of a project's quota whose crossing sends quota.warning. */
  quotaWarningPercent: number;
  /** host[:port] in Harbor payloads' resource_url; the address's host:port when unset. */
  registryHost?: string;
}

export function defaultWebhooksConfig(): WebhooksConfig {
  return { timeoutMs: 10_000, maxAttempts: 6, retryDelaySeconds: 10, batchWindowMs: 500, allowPrivateTargets: false, quotaWarningPercent: 85 };
}

/** Replication (docs/replication.md): how tasks send blobs and retry. */
export interface ReplicationConfig {
  /** Blobs larger than this are sent in chunks of this size; each chunk is a point a crashed copy resumes from. */
  chunkSizeBytes: number;
  /** Attempts of a task whose failures are transient (the remote is down, slow or throttling). */
  maxAttempts: number;
  /** Delay before the first retry; doubled per attempt, at most a minute. */
  retryBaseMs: number;
  /** Tasks (artifacts) one replica copies at once. */
  parallelTasks: number;
}

/** Pull-through caching (proxy-cache projects). */
export interface ProxyConfig {
  /** Local directory for blobs on their way from an upstream, which clients follow as they arrive. */
  spoolDir: string;
  /** Longest wait for an upstream's response headers (and a whole manifest). */
  responseTimeoutMs: number;
  /** Longest pause inside an upstream's blob body. */
  bodyIdleTimeoutMs: number;
  /** Blobs of GOT manifests fetched ahead of clients at once; 0 turns prefetching off. */
  prefetch: number;
  /** How long after a failed prefetch a manifest's next GET tries again (not a setting: tests shorten it). */
  prefetchRetryMs?: number;
}

/** What one client may hold or send: upload sizes and sessions, request timing, connections. */
export interface LimitsConfig {
  uploads: {
    /** Largest blob one upload may grow to, in bytes. */
    maxSize: number;
    /** Open upload sessions one principal (token subject; client address when anonymous) may hold; 0: no cap. */
    maxSessionsPerPrincipal: number;
    /** Open upload sessions one repository may hold; 0: no cap. */
    maxSessionsPerRepository: number;
  };
  http: {
    /** Time a client has to send a request's headers (also closes connections that send nothing). */
    headersTimeoutMs: number;
    /** A request body slower than this on average over `bodyRateWindowMs` is cut off (408); 0: off. */
    bodyMinBytesPerSecond: number;
    bodyRateWindowMs: number;
    /** Time from a request's start before its body's rate is judged. */
    bodyGraceMs: number;
    /** Connections one client address may hold open; 0: no cap. */
    maxConnectionsPerClient: number;
  };
}

export function defaultLimitsConfig(): LimitsConfig {
  return {
    uploads: { maxSize: 32 * 1024 ** 3, maxSessionsPerPrincipal: 128, maxSessionsPerRepository: 512 },
    http: { headersTimeoutMs: 30_000, bodyMinBytesPerSecond: 1024, bodyRateWindowMs: 30_000, bodyGraceMs: 30_000, maxConnectionsPerClient: 256 },
  };
}

/** Background jobs: the worker, garbage collection and the upload purge. */
export interface JobsConfig {
  /** Run a job worker (and the cron scheduler) in this process. */
  worker: boolean;
  pollIntervalMs: number;
  /** Pull times (for retention) are collected in memory and written this often. */
  pullFlushMs: number;
  gc: {
    /** Cron schedule (UTC) of automatic runs; undefined means on demand only. */
    schedule?: string;
    graceSeconds: number;
    /** Whether scheduled runs also delete untagged manifests. */
    deleteUntagged: boolean;
  };
  uploads: {
    /** Upload sessions idle for longer are purged. */
    purgeAfterSeconds: number;
    /** Cron schedule (UTC) of the purge; undefined means only with garbage collection. */
    purgeSchedule?: string;
  };
}

export function defaultJobsConfig(): JobsConfig {
  return { worker: true, pollIntervalMs: 2000, pullFlushMs: 10_000, gc: { schedule: '0 3 * * *', graceSeconds: 3600, deleteUntagged: false }, uploads: { purgeAfterSeconds: 86400, purgeSchedule: '@hourly' } };
}

export interface AuthConfig {
  /** `token`: every /v2 request needs a token from /token. `none`: open registry (local development, benchmarks). */
  mode: 'token' | 'none';
  /** Token audience and `service` challenge parameter. */
  service: string;
  issuer: string;
  /** Token endpoint URL for the challenge; derived from the request's Host when unset. */
  realm?: string;
  tokenKeyFile: string;
  /** Generate the key when the file is missing (only for the default path inside the data dir). */
  generateKey: boolean;
  tokenTtlSeconds: number;
  /** Bootstrap admin password; when unset a random one is generated once and written to `adminPasswordFile`. */
  adminPassword?: string;
  adminPasswordFile: string;
  /** Absent: defaultLoginConfig(). */
  login?: LoginConfig;
}

/** Password logins: hashing threads, throttling and the cache of verified credentials (docs/security-login.md). */
export interface LoginConfig {
  /** Threads that run scrypt, apart from libuv's pool (which file I/O uses). */
  hashThreads: number;
  /** Logins that may wait for a hashing thread; more are answered 429 at once. */
  hashQueue: number;
  /** Failed logins one client address (an IPv6 /64) may make at once, earned back over the window; 0: no limit. */
  perClient: { failures: number; windowSeconds: number };
  /** Failed logins one account name may take at once from clients that have not signed in to it lately; 0: no limit. */
  perAccount: { failures: number; windowSeconds: number };
  /** How long a successful verification is reused; 0 turns the cache off. */
  cacheTtlSeconds: number;
  /** How long a 429 for a throttled login is held before it is sent; 0 sends it at once. */
  refusalDelaySeconds: number;
}

export function defaultLoginConfig(cpus = availableParallelism()): LoginConfig {
  return {
    hashThreads: Math.max(1, Math.min(4, Math.floor(cpus / 2))),
    hashQueue: 32,
    perClient: { failures: 30, windowSeconds: 60 },
    perAccount: { failures: 10, windowSeconds: 600 },
    cacheTtlSeconds: 300,
    refusalDelaySeconds: 1,
  };
}

export type StorageConfig = { driver: 'filesystem'; dir: string } | { driver: 's3'; s3: S3StorageConfig };

export interface S3StorageConfig {
  /** Unset means AWS's own endpoint for `region`. */
  endpoint?: string;
  bucket: string;
  region: string;
  forcePathStyle: boolean;
  /** Both unset means the SDK's default credential chain (AWS_* env, web identity, instance metadata). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Answer blob GETs with a redirect to a presigned URL instead of streaming through the registry. */
  redirect: boolean;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

interface FileConfig {
  trustedProxies?: string | string[];
  auth?: {
    mode?: string;
    service?: string;
    issuer?: string;
    realm?: string;
    tokenKeyFile?: string;
    tokenTtlSeconds?: number | string;
    adminPasswordFile?: string;
    login?: {
      hashThreads?: number | string;
      hashQueue?: number | string;
      clientFailures?: number | string;
      clientWindow?: number | string;
      accountFailures?: number | string;
      accountWindow?: number | string;
      cacheTtl?: number | string;
      refusalDelay?: number | string;
    };
  };
  addr?: string;
  dataDir?: string;
  logLevel?: string;
  database?: { url?: string; caFile?: string };
  gc?: { schedule?: string; grace?: string | number; deleteUntagged?: boolean | string };
  uploads?: {
    purgeAfter?: string | number;
    purgeSchedule?: string;
    maxSize?: string | number;
    maxSessionsPerPrincipal?: string | number;
    maxSessionsPerRepository?: string | number;
  };
  http?: {
    headersTimeout?: string | number;
    bodyMinRate?: string | number;
    bodyRateWindow?: string | number;
    bodyGrace?: string | number;
    maxConnectionsPerClient?: string | number;
  };
  jobs?: { worker?: boolean | string; pollInterval?: string | number; pullFlushInterval?: string | number };
  proxy?: { spoolDir?: string; responseTimeout?: string | number; bodyIdleTimeout?: string | number; prefetch?: string | number };
  webhooks?: {
    timeout?: string | number;
    maxAttempts?: string | number;
    retryDelay?: string | number;
    batchWindow?: string | number;
    allowPrivateTargets?: boolean | string;
    quotaWarningPercent?: string | number;
    registryHost?: string;
  };
  replication?: { chunkSize?: string | number; maxAttempts?: string | number; retryDelay?: string | number; parallelTasks?: string | number };
  storage?: {
    driver?: string;
    filesystem?: { dir?: string };
    s3?: { endpoint?: string; bucket?: string; region?: string; forcePathStyle?: boolean | string; redirect?: boolean | string };
  };
}

export function parseAddr(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`invalid listen address ${JSON.stringify(addr)}: expected host:port`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function readFileConfig(path: string | undefined): FileConfig {
  if (!path) return {};
  let doc: unknown;
  try {
    doc = loadYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  if (doc === undefined || doc === null) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config file ${path} must hold a YAML mapping`);
  return doc as FileConfig;
}

function parseBoolean(name: string, value: boolean | string | undefined, fallback: boolean): boolean {
  if (value === undefined || typeof value === 'boolean') return value ?? fallback;
  if (/^(true|1|yes)$/i.test(value)) return true;
  if (/^(false|0|no)$/i.test(value)) return false;
  throw new ConfigError(`${name} must be true or false, not ${JSON.stringify(value)}`);
}

const DURATION_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** `90`, `90s`, `15m`, `1h`, `7d` (a bare number is seconds) to seconds. */
export function parseDuration(name: string, value: string | number): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(String(value).trim());
  if (!m) throw new ConfigError(`${name} must be a duration such as 30s, 15m, 1h or 7d, not ${JSON.stringify(value)}`);
  return Number(m[1]) * DURATION_UNITS[m[2] ?? 's']!;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  ki: 1024, kib: 1024, mi: 1024 ** 2, mib: 1024 ** 2, gi: 1024 ** 3, gib: 1024 ** 3, ti: 1024 ** 4, tib: 1024 ** 4,
};

/** `1048576`, `512KiB`, `10GiB` or `10Gi` (binary), `5GB` (decimal) to bytes. */
export function parseByteSize(name: string, value: string | number): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(String(value).trim());
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  const bytes = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes)) throw new ConfigError(`${name} must be a size such as 1048576, 512KiB, 10GiB or 10Gi, not ${JSON.stringify(value)}`);
  return bytes;
}

function cronOrOff(name: string, value: string): string | undefined {
  if (/^(off|none|never|)$/i.test(value.trim())) return undefined;
  try {
    parseCron(value).next(new Date());
  } catch (err) {
    throw new ConfigError(`${name}: ${(err as Error).message}`);
  }
  return value.trim();
}

function jobsConfig(file: FileConfig, env: NodeJS.ProcessEnv): JobsConfig {
  const defaults = defaultJobsConfig();
  const pick = <T>(envName: string, fromFile: T | undefined): string | T | undefined => (env[envName] || undefined) ?? fromFile;
  const schedule = (name: string, envName: string, fromFile: string | undefined, fallback: string | undefined) => {
    const value = pick(envName, fromFile);
    return value === undefined ? fallback : cronOrOff(name, value);
  };
  const duration = (name: string, envName: string, fromFile: string | number | undefined, fallback: number, min: number) => {
    const value = pick(envName, fromFile);
    const seconds = value === undefined ? fallback : parseDuration(name, value);
    if (seconds < min) throw new ConfigError(`${name} must be at least ${min} seconds`);
    return seconds;
  };
  const gcSchedule = schedule('gc.schedule (WHARF_GC_SCHEDULE)', 'WHARF_GC_SCHEDULE', file.gc?.schedule, defaults.gc.schedule);
  const purgeSchedule = schedule('uploads.purgeSchedule (WHARF_UPLOAD_PURGE_SCHEDULE)', 'WHARF_UPLOAD_PURGE_SCHEDULE', file.uploads?.purgeSchedule, defaults.uploads.purgeSchedule);
  return {
    worker: parseBoolean('WHARF_JOBS_WORKER', pick('WHARF_JOBS_WORKER', file.jobs?.worker), defaults.worker),
    pollIntervalMs: duration('jobs.pollInterval (WHARF_JOBS_POLL_INTERVAL)', 'WHARF_JOBS_POLL_INTERVAL', file.jobs?.pollInterval, defaults.pollIntervalMs / 1000, 0.05) * 1000,
    pullFlushMs: duration('jobs.pullFlushInterval (WHARF_PULL_FLUSH_INTERVAL)', 'WHARF_PULL_FLUSH_INTERVAL', file.jobs?.pullFlushInterval, defaults.pullFlushMs / 1000, 0.01) * 1000,
    gc: {
      ...(gcSchedule && { schedule: gcSchedule }),
      graceSeconds: duration('gc.grace (WHARF_GC_GRACE)', 'WHARF_GC_GRACE', file.gc?.grace, defaults.gc.graceSeconds, 0),
      deleteUntagged: parseBoolean('WHARF_GC_DELETE_UNTAGGED', pick('WHARF_GC_DELETE_UNTAGGED', file.gc?.deleteUntagged), defaults.gc.deleteUntagged),
    },
    uploads: {
      purgeAfterSeconds: duration('uploads.purgeAfter (WHARF_UPLOAD_PURGE_AFTER)', 'WHARF_UPLOAD_PURGE_AFTER', file.uploads?.purgeAfter, defaults.uploads.purgeAfterSeconds, 0),
      ...(purgeSchedule && { purgeSchedule }),
    },
  };
}

function limitsConfig(file: FileConfig, env: NodeJS.ProcessEnv): LimitsConfig {
  const defaults = defaultLimitsConfig();
  const pick = <T>(envName: string, fromFile: T | undefined): string | T | undefined => (env[envName] || undefined) ?? fromFile;
  const count = (name: string, envName: string, fromFile: string | number | undefined, fallback: number) => {
    const value = pick(envName, fromFile);
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isSafeInteger(n) || n < 0) throw new ConfigError(`${name} (${envName}) must be a whole number, 0 for no cap, not ${JSON.stringify(value)}`);
    return n;
  };
  const size = (name: string, envName: string, fromFile: string | number | undefined, fallback: number, min: number) => {
    const value = pick(envName, fromFile);
    const bytes = value === undefined ? fallback : parseByteSize(`${name} (${envName})`, value);
    if (bytes < min) throw new ConfigError(`${name} (${envName}) must be at least ${min} bytes`);
    return bytes;
  };
  const millis = (name: string, envName: string, fromFile: string | number | undefined, fallback: number, min: number) => {
    const value = pick(envName, fromFile);
    const ms = value === undefined ? fallback : Math.round(parseDuration(`${name} (${envName})`, value) * 1000);
    if (ms < min) throw new ConfigError(`${name} (${envName}) must be at least ${min} ms`);
    return ms;
  };
  const u = file.uploads ?? {};
  const h = file.http ?? {};
  return {
    uploads: {
      maxSize: size('uploads.maxSize', 'WHARF_UPLOAD_MAX_SIZE', u.maxSize, defaults.uploads.maxSize, 1),
      maxSessionsPerPrincipal: count('uploads.maxSessionsPerPrincipal', 'WHARF_UPLOAD_MAX_SESSIONS_PER_PRINCIPAL', u.maxSessionsPerPrincipal, defaults.uploads.maxSessionsPerPrincipal),
      maxSessionsPerRepository: count('uploads.maxSessionsPerRepository', 'WHARF_UPLOAD_MAX_SESSIONS_PER_REPOSITORY', u.maxSessionsPerRepository, defaults.uploads.maxSessionsPerRepository),
    },
    http: {
      headersTimeoutMs: millis('http.headersTimeout', 'WHARF_HTTP_HEADERS_TIMEOUT', h.headersTimeout, defaults.http.headersTimeoutMs, 100),
      bodyMinBytesPerSecond: size('http.bodyMinRate', 'WHARF_HTTP_BODY_MIN_RATE', h.bodyMinRate, defaults.http.bodyMinBytesPerSecond, 0),
      bodyRateWindowMs: millis('http.bodyRateWindow', 'WHARF_HTTP_BODY_RATE_WINDOW', h.bodyRateWindow, defaults.http.bodyRateWindowMs, 100),
      bodyGraceMs: millis('http.bodyGrace', 'WHARF_HTTP_BODY_GRACE', h.bodyGrace, defaults.http.bodyGraceMs, 0),
      maxConnectionsPerClient: count('http.maxConnectionsPerClient', 'WHARF_HTTP_MAX_CONNECTIONS_PER_CLIENT', h.maxConnectionsPerClient, defaults.http.maxConnectionsPerClient),
    },
  };
}

function s3Config(file: FileConfig, env: NodeJS.ProcessEnv): S3StorageConfig {
  const s3 = file.storage?.s3 ?? {};
  const pick = (envName: string, fromFile: string | undefined) => (env[envName] || undefined) ?? fromFile;
  const bucket = pick('WHARF_S3_BUCKET', s3.bucket);
  if (!bucket) throw new ConfigError('the s3 storage driver needs a bucket (storage.s3.bucket or WHARF_S3_BUCKET)');
  const endpoint = pick('WHARF_S3_ENDPOINT', s3.endpoint);
  if (endpoint !== undefined && !/^https?:\/\/[^/]/.test(endpoint)) {
    throw new ConfigError(`invalid S3 endpoint ${JSON.stringify(endpoint)}: expected an http:// or https:// URL`);
  }
  const accessKeyId = env.WHARF_S3_ACCESS_KEY_ID || undefined;
  const secretAccessKey = env.WHARF_S3_SECRET_ACCESS_KEY || undefined;
  if (!accessKeyId !== !secretAccessKey) {
    throw new ConfigError('set both WHARF_S3_ACCESS_KEY_ID and WHARF_S3_SECRET_ACCESS_KEY, or neither to use the default AWS credential chain');
  }
  return {
    ...(endpoint && { endpoint }),
    bucket,
    region: pick('WHARF_S3_REGION', s3.region) ?? 'us-east-1',
    forcePathStyle: parseBoolean('WHARF_S3_FORCE_PATH_STYLE', env.WHARF_S3_FORCE_PATH_STYLE || s3.forcePathStyle, true),
    ...(accessKeyId && secretAccessKey && { accessKeyId, secretAccessKey }),
    redirect: parseBoolean('WHARF_S3_REDIRECT', env.WHARF_S3_REDIRECT || s3.redirect, false),
  };
}

function proxyConfig(file: FileConfig, env: NodeJS.ProcessEnv, dataDir: string): ProxyConfig {
  const proxy = file.proxy ?? {};
  const pick = <T>(envName: string, fromFile: T | undefined): string | T | undefined => (env[envName] || undefined) ?? fromFile;
  const millis = (name: string, envName: string, fromFile: string | number | undefined, fallback: number) => {
    const value = pick(envName, fromFile);
    const ms = value === undefined ? fallback : Math.round(parseDuration(`${name} (${envName})`, value) * 1000);
    if (ms < 100 || ms > 3_600_000) throw new ConfigError(`${name} (${envName}) must be from 100 ms to 1 h`);
    return ms;
  };
  return {
    spoolDir: resolve(pick('WHARF_PROXY_SPOOL_DIR', proxy.spoolDir) ?? join(dataDir, 'proxy-spool')),
    responseTimeoutMs: millis('proxy.responseTimeout', 'WHARF_PROXY_RESPONSE_TIMEOUT', proxy.responseTimeout, 15_000),
    bodyIdleTimeoutMs: millis('proxy.bodyIdleTimeout', 'WHARF_PROXY_BODY_IDLE_TIMEOUT', proxy.bodyIdleTimeout, 30_000),
    prefetch: prefetchLimit(pick('WHARF_PROXY_PREFETCH', proxy.prefetch)),
  };
}

function prefetchLimit(value: unknown): number {
  if (value === undefined) return DEFAULT_PREFETCH;
  // Decimal digits only: Number() would take "", " ", null, "0x8" or true for numbers.
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 64) throw new ConfigError(`proxy.prefetch (WHARF_PROXY_PREFETCH) must be a whole number from 0 (off) to 64, not ${JSON.stringify(value)}`);
  return n;
}

/**
 * Blobs prefetched at once by default: enough to have a typical image's layers in flight
 * together. Over a 50 MiB/s link with 20 ms per request, a cold pull of 40 small layers
 * went from 0.65× a direct pull without prefetch to about 0.75× with 4 and 0.85–0.9× with 8
 * (docs/proxy-cache.md, "Blobs fetched ahead of the client").
 */
export const DEFAULT_PREFETCH = 8;

function webhooksConfig(file: FileConfig, env: NodeJS.ProcessEnv, host: string, port: number): WebhooksConfig {
  const hooks = file.webhooks ?? {};
  const defaults = defaultWebhooksConfig();
  const pick = <T>(envName: string, fromFile: T | undefined): string | T | undefined => (env[envName] || undefined) ?? fromFile;
  const seconds = (name: string, envName: string, fromFile: string | number | undefined, fallback: number, min: number, max: number) => {
    const value = pick(envName, fromFile);
    const s = value === undefined ? fallback : parseDuration(`${name} (${envName})`, value);
    if (s < min || s > max) throw new ConfigError(`${name} (${envName}) must be from ${min} s to ${max} s`);
    return s;
  };
  const integer = (name: string, envName: string, fromFile: string | number | undefined, fallback: number, min: number, max: number) => {
    const value = pick(envName, fromFile);
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} (${envName}) must be a whole number from ${min} to ${max}`);
    return n;
  };
  const registryHost = pick('WHARF_WEBHOOKS_REGISTRY_HOST', hooks.registryHost) ?? `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    timeoutMs: Math.round(seconds('webhooks.timeout', 'WHARF_WEBHOOKS_TIMEOUT', hooks.timeout, defaults.timeoutMs / 1000, 0.1, 300) * 1000),
    maxAttempts: integer('webhooks.maxAttempts', 'WHARF_WEBHOOKS_MAX_ATTEMPTS', hooks.maxAttempts, defaults.maxAttempts, 1, 20),
    retryDelaySeconds: seconds('webhooks.retryDelay', 'WHARF_WEBHOOKS_RETRY_DELAY', hooks.retryDelay, defaults.retryDelaySeconds, 0.01, 3600),
    batchWindowMs: Math.round(seconds('webhooks.batchWindow', 'WHARF_WEBHOOKS_BATCH_WINDOW', hooks.batchWindow, defaults.batchWindowMs / 1000, 0.01, 60) * 1000),
    allowPrivateTargets: parseBoolean('WHARF_WEBHOOKS_ALLOW_PRIVATE_TARGETS', pick('WHARF_WEBHOOKS_ALLOW_PRIVATE_TARGETS', hooks.allowPrivateTargets), defaults.allowPrivateTargets),
    quotaWarningPercent: integer('webhooks.quotaWarningPercent', 'WHARF_WEBHOOKS_QUOTA_WARNING_PERCENT', hooks.quotaWarningPercent, defaults.quotaWarningPercent, 1, 100),
    registryHost,
  };
}

/** The realm goes into every challenge as given, so it must be a plain absolute http(s) URL. */
function checkRealm(realm: string): void {
  let url: URL | undefined;
  try {
    url = new URL(realm);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !/^[\x21-\x7e]+$/.test(realm) || /["\\]/.test(realm)) {
    throw new ConfigError(`auth.realm (WHARF_AUTH_REALM) must be an absolute http:// or https:// URL without spaces, quotes or backslashes, not ${JSON.stringify(realm)}`);
  }
}

/** `10.0.0.1`, `10.0.0.0/8`, `fd00::/8`: what a trusted proxy entry may be. */
function parseTrustedProxies(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const entries = (Array.isArray(value) ? value.map(String) : String(value).split(',')).map((e) => e.trim()).filter((e) => e.length > 0);
  for (const entry of entries) {
    const [address = '', prefix, ...rest] = entry.split('/');
    const family = isIP(address);
    const bits = family === 4 ? 32 : 128;
    const validPrefix = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits);
    if (family === 0 || !validPrefix || rest.length > 0) {
      throw new ConfigError(`trustedProxies (WHARF_TRUSTED_PROXIES): ${JSON.stringify(entry)} is not an IP address or CIDR range such as 10.0.0.0/8`);
    }
  }
  return entries;
}

function loginConfig(file: FileConfig, env: NodeJS.ProcessEnv): LoginConfig {
  const defaults = defaultLoginConfig();
  const login = file.auth?.login ?? {};
  const pick = (envName: string, fromFile: number | string | undefined) => (env[envName] || undefined) ?? fromFile;
  const integer = (name: string, envName: string, fromFile: number | string | undefined, fallback: number, min: number, max: number) => {
    const value = pick(envName, fromFile);
    const text = String(value ?? fallback).trim();
    const n = /^\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`auth.login.${name} (${envName}) must be an integer from ${min} to ${max}, not ${JSON.stringify(value)}`);
    return n;
  };
  const seconds = (name: string, envName: string, fromFile: number | string | undefined, fallback: number, min: number, max = 86400) => {
    const value = pick(envName, fromFile);
    const s = value === undefined ? fallback : parseDuration(`auth.login.${name} (${envName})`, value);
    if (s < min || s > max) throw new ConfigError(`auth.login.${name} (${envName}) must be from ${min} to ${max} seconds`);
    return s;
  };
  return {
    hashThreads: integer('hashThreads', 'WHARF_LOGIN_HASH_THREADS', login.hashThreads, defaults.hashThreads, 1, 64),
    hashQueue: integer('hashQueue', 'WHARF_LOGIN_HASH_QUEUE', login.hashQueue, defaults.hashQueue, 0, 100_000),
    perClient: {
      failures: integer('clientFailures', 'WHARF_LOGIN_CLIENT_FAILURES', login.clientFailures, defaults.perClient.failures, 0, 1_000_000),
      windowSeconds: seconds('clientWindow', 'WHARF_LOGIN_CLIENT_WINDOW', login.clientWindow, defaults.perClient.windowSeconds, 1),
    },
    perAccount: {
      failures: integer('accountFailures', 'WHARF_LOGIN_ACCOUNT_FAILURES', login.accountFailures, defaults.perAccount.failures, 0, 1_000_000),
      windowSeconds: seconds('accountWindow', 'WHARF_LOGIN_ACCOUNT_WINDOW', login.accountWindow, defaults.perAccount.windowSeconds, 1),
    },
    cacheTtlSeconds: seconds('cacheTtl', 'WHARF_LOGIN_CACHE_TTL', login.cacheTtl, defaults.cacheTtlSeconds, 0),
    refusalDelaySeconds: seconds('refusalDelay', 'WHARF_LOGIN_REFUSAL_DELAY', login.refusalDelay, defaults.refusalDelaySeconds, 0, 60),
  };
}

function authConfig(file: FileConfig, env: NodeJS.ProcessEnv, flagMode: string | undefined, dataDir: string): AuthConfig {
  const auth = file.auth ?? {};
  const pick = (envName: string, fromFile: string | undefined) => (env[envName] || undefined) ?? fromFile;
  const mode = flagMode ?? pick('WHARF_AUTH_MODE', auth.mode) ?? 'token';
  if (mode !== 'token' && mode !== 'none') throw new ConfigError(`unknown auth mode ${JSON.stringify(mode)}: expected token or none`);
  const configuredKey = pick('WHARF_TOKEN_KEY_FILE', auth.tokenKeyFile);
  const ttl = Number(pick('WHARF_TOKEN_TTL_SECONDS', auth.tokenTtlSeconds === undefined ? undefined : String(auth.tokenTtlSeconds)) ?? 300);
  if (!Number.isInteger(ttl) || ttl < 30 || ttl > 3600) throw new ConfigError(`token lifetime must be 30..3600 seconds, not ${ttl}`);
  const realm = pick('WHARF_AUTH_REALM', auth.realm);
  if (realm !== undefined) checkRealm(realm);
  let adminPassword = env.WHARF_ADMIN_PASSWORD || undefined;
  const passwordFile = pick('WHARF_ADMIN_PASSWORD_FILE', auth.adminPasswordFile);
  if (!adminPassword && passwordFile) {
    try {
      adminPassword = readFileSync(passwordFile, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`cannot read the admin password file ${passwordFile}: ${(err as Error).message}`);
    }
    if (!adminPassword) throw new ConfigError(`the admin password file ${passwordFile} is empty`);
  }
  return {
    mode,
    service: pick('WHARF_AUTH_SERVICE', auth.service) ?? 'wharf',
    issuer: pick('WHARF_AUTH_ISSUER', auth.issuer) ?? 'wharf-token-service',
    ...(realm && { realm }),
    tokenKeyFile: resolve(configuredKey ?? join(dataDir, 'token-signing-key.pem')),
    generateKey: configuredKey === undefined,
    tokenTtlSeconds: ttl,
    ...(adminPassword && { adminPassword }),
    adminPasswordFile: join(dataDir, 'admin-password'),
    login: loginConfig(file, env),
  };
}

/** The CA file for PostgreSQL's TLS: it needs a DSN that can use it, and must hold a PEM certificate. */
function databaseCaFileOf(databaseUrl: string | undefined, caFile: string | undefined): string | undefined {
  if (caFile === undefined) return undefined;
  const name = 'database.caFile (WHARF_DATABASE_CA_FILE)';
  if (!databaseUrl) throw new ConfigError(`${name} needs database.url: the embedded database has no TLS`);
  const conflict = caFileConflict(databaseUrl);
  if (conflict) throw new ConfigError(`${name} cannot be used: ${conflict}`);
  let pem: string;
  try {
    pem = readFileSync(caFile, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${name} ${caFile}: ${(err as Error).message}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`${name} ${caFile} holds no PEM certificate`);
  return resolve(caFile);
}

/** Defaults < YAML file < environment < flags. Pure apart from reading the named config file. */
export function loadConfig(argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): RegistryConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      addr: { type: 'string' },
      'data-dir': { type: 'string' },
      'log-level': { type: 'string' },
      'database-url': { type: 'string' },
      'storage-driver': { type: 'string' },
      'storage-dir': { type: 'string' },
      auth: { type: 'string' },
    },
    strict: true,
  });
  const file = readFileConfig(values.config ?? env.WHARF_CONFIG_FILE);
  const pick = (flag: string | undefined, envName: string, fromFile: string | undefined, fallback?: string) =>
    flag ?? (env[envName] || undefined) ?? fromFile ?? fallback;

  const dataDir = resolve(pick(values['data-dir'], 'WHARF_DATA_DIR', file.dataDir, './data')!);
  const { host, port } = parseAddr(pick(values.addr, 'WHARF_ADDR', file.addr, '127.0.0.1:5000')!);
  const driver = pick(values['storage-driver'], 'WHARF_STORAGE_DRIVER', file.storage?.driver, 'filesystem');
  if (driver !== 'filesystem' && driver !== 's3') throw new ConfigError(`unknown storage driver ${JSON.stringify(driver)}: expected filesystem or s3`);
  const databaseUrl = pick(values['database-url'], 'WHARF_DATABASE_URL', file.database?.url);
  const databaseCaFile = databaseCaFileOf(databaseUrl, pick(undefined, 'WHARF_DATABASE_CA_FILE', file.database?.caFile));
  return {
    host,
    port,
    dataDir,
    logLevel: pick(values['log-level'], 'WHARF_LOG_LEVEL', file.logLevel, 'info')!,
    database: { ...(databaseUrl && { url: databaseUrl }), ...(databaseCaFile && { caFile: databaseCaFile }), embeddedDir: join(dataDir, 'metadata') },
    storage:
      driver === 's3'
        ? { driver, s3: s3Config(file, env) }
        : { driver, dir: resolve(pick(values['storage-dir'], 'WHARF_STORAGE_DIR', file.storage?.filesystem?.dir, join(dataDir, 'blobs'))!) },
    auth: authConfig(file, env, values.auth, dataDir),
    jobs: jobsConfig(file, env),
    trustedProxies: parseTrustedProxies(env.WHARF_TRUSTED_PROXIES || file.trustedProxies),
    limits: limitsConfig(file, env),
    proxy: proxyConfig(file, env, dataDir),
    webhooks: webhooksConfig(file, env, host, port),
    replication: replicationConfig(file, env),
  };
}

function replicationConfig(file: FileConfig, env: NodeJS.ProcessEnv): ReplicationConfig {
  const r = file.replication ?? {};
  const pick = <T>(envName: string, fromFile: T | undefined): string | T | undefined => (env[envName] || undefined) ?? fromFile;
  const chunk = pick('WHARF_REPLICATION_CHUNK_SIZE', r.chunkSize);
  const chunkSizeBytes = chunk === undefined ? 128 * 1024 * 1024 : parseByteSize('replication.chunkSize (WHARF_REPLICATION_CHUNK_SIZE)', chunk);
  if (chunkSizeBytes < 1024 * 1024 || chunkSizeBytes > 1024 ** 3) throw new ConfigError('replication.chunkSize (WHARF_REPLICATION_CHUNK_SIZE) must be from 1 MiB to 1 GiB');
  const attempts = pick('WHARF_REPLICATION_MAX_ATTEMPTS', r.maxAttempts);
  const maxAttempts = attempts === undefined ? 5 : Number(attempts);
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 100) throw new ConfigError('replication.maxAttempts (WHARF_REPLICATION_MAX_ATTEMPTS) must be an integer from 1 to 100');
  const delay = pick('WHARF_REPLICATION_RETRY_DELAY', r.retryDelay);
  const retryBaseMs = delay === undefined ? 2000 : Math.round(parseDuration('replication.retryDelay (WHARF_REPLICATION_RETRY_DELAY)', delay) * 1000);
  if (retryBaseMs < 100 || retryBaseMs > 600_000) throw new ConfigError('replication.retryDelay (WHARF_REPLICATION_RETRY_DELAY) must be from 100 ms to 10 min');
  const parallel = pick('WHARF_REPLICATION_PARALLEL_TASKS', r.parallelTasks);
  const parallelTasks = parallel === undefined ? 4 : Number(parallel);
  if (!Number.isInteger(parallelTasks) || parallelTasks < 1 || parallelTasks > 32) throw new ConfigError('replication.parallelTasks (WHARF_REPLICATION_PARALLEL_TASKS) must be an integer from 1 to 32');
  return { chunkSizeBytes, maxAttempts, retryBaseMs, parallelTasks };
}
