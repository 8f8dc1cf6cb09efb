import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { load as loadYaml } from 'js-yaml';

/** Resolved registry configuration; see registry/CONFIG.md for every key. */
export interface RegistryConfig {
  host: string;
  port: number;
  dataDir: string;
  logLevel: string;
  database: { url?: string; embeddedDir: string };
  storage: { driver: 'filesystem'; dir: string };
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

interface FileConfig {
  addr?: string;
  dataDir?: string;
  logLevel?: string;
  database?: { url?: string };
  storage?: { driver?: string; filesystem?: { dir?: string } };
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
    },
    strict: true,
  });
  const file = readFileConfig(values.config ?? env.WHARF_CONFIG_FILE);
  const pick = (flag: string | undefined, envName: string, fromFile: string | undefined, fallback?: string) =>
    flag ?? (env[envName] || undefined) ?? fromFile ?? fallback;

  const dataDir = resolve(pick(values['data-dir'], 'WHARF_DATA_DIR', file.dataDir, './data')!);
  const { host, port } = parseAddr(pick(values.addr, 'WHARF_ADDR', file.addr, '127.0.0.1:5000')!);
  const driver = pick(values['storage-driver'], 'WHARF_STORAGE_DRIVER', file.storage?.driver, 'filesystem');
  if (driver !== 'filesystem') throw new ConfigError(`unknown storage driver ${JSON.stringify(driver)}: expected filesystem`);
  const databaseUrl = pick(values['database-url'], 'WHARF_DATABASE_URL', file.database?.url);
  return {
    host,
    port,
    dataDir,
    logLevel: pick(values['log-level'], 'WHARF_LOG_LEVEL', file.logLevel, 'info')!,
    database: { ...(databaseUrl && { url: databaseUrl }), embeddedDir: join(dataDir, 'metadata') },
    storage: { driver, dir: resolve(pick(values['storage-dir'], 'WHARF_STORAGE_DIR', file.storage?.filesystem?.dir, join(dataDir, 'blobs'))!) },
  };
}
