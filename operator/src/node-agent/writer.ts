import { mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostTablesOf, isWharfFile, renderHostsToml, type MirroredHost, type WharfEndpoint } from './hosts-toml.js';

/**
 * What to do with a hosts.toml that is not Wharf's for a host Wharf mirrors: `replace`
 * sets it aside and writes Wharf's; `prepend` does the same, keeping its `[host]`
 * entries after Wharf's. Either way the original comes back when the host leaves.
 */
export type WriteMode = 'replace' | 'prepend';

export const HOSTS_FILE = 'hosts.toml';
/** Where a foreign hosts.toml waits while Wharf's stands in for it. */
export const ORIGINAL_FILE = 'hosts.toml.wharf-original';
/** Spegel keeps the files it found here (spegel pkg/oci/containerd/mirror.go) and rewrites the rest at every start. */
export const SPEGEL_BACKUP_DIR = '_backup';

export interface SyncOptions {
  /** containerd's config_path, e.g. /etc/containerd/certs.d. */
  configPath: string;
  hosts: MirroredHost[];
  endpoint: WharfEndpoint;
  mode: WriteMode;
}

export interface SyncReport {
  /** Files written or rewritten (paths relative to configPath). */
  written: string[];
  /** Foreign files set aside. */
  backedUp: string[];
  /** Wharf files removed, and originals put back. */
  removed: string[];
  restored: string[];
  /** Spegel's layout was found: Wharf's files went into `_backup/` (see docs). */
  spegel: boolean;
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

/** Written beside, then renamed over: containerd never reads half a file. */
async function writeAtomically(path: string, content: string): Promise<void> {
  const temp = `${path}.wharf-tmp`;
  await writeFile(temp, content, { mode: 0o644 });
  await rename(temp, path);
}

/** The directories under `base` that hold host configs (one per registry host). */
async function hostDirs(base: string): Promise<string[]> {
  const entries = await readdir(base, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory() && e.name !== SPEGEL_BACKUP_DIR).map((e) => e.name);
}

/**
 * Brings `configPath` in line with `hosts`: Wharf's hosts.toml for each host, and none
 * of Wharf's for hosts that left, their originals restored. Only files that carry
 * Wharf's marker are ever changed or removed; a foreign file is renamed aside, never
 * edited, and renamed back on removal. Idempotent.
 *
 * With Spegel's layout (a `_backup/` directory), Spegel owns the live files and rewrites
 * them at each start from what `_backup/` holds, prepending its own mirrors. Wharf's
 * file then goes into `_backup/<host>/`, so Spegel keeps Wharf as the fallback after
 * its peers; for a host Spegel does not configure, Wharf's file is also written live
 * (Spegel clears it at its next start, and the next sync writes it again).
 */
export async function syncHostsDir(options: SyncOptions): Promise<SyncReport> {
  const { configPath, hosts, endpoint, mode } = options;
  await mkdir(configPath, { recursive: true });
  const spegel = await isDirectory(join(configPath, SPEGEL_BACKUP_DIR));
  const report: SyncReport = { written: [], backedUp: [], removed: [], restored: [], spegel };
  const wanted = new Set(hosts.map((h) => h.host));
  const base = spegel ? join(configPath, SPEGEL_BACKUP_DIR) : configPath;
  for (const host of hosts) {
    await place(configPath, spegel ? join(SPEGEL_BACKUP_DIR, host.host) : host.host, host, endpoint, mode, report);
    if (spegel && (await readText(join(configPath, host.host, HOSTS_FILE))) === undefined) await place(configPath, host.host, host, endpoint, mode, report);
  }
  for (const dir of spegel ? [base, configPath] : [configPath]) {
    for (const name of await hostDirs(dir)) if (!wanted.has(name)) await removeFrom(configPath, dir === configPath ? name : join(SPEGEL_BACKUP_DIR, name), report);
  }
  return report;
}

/** Removes every file Wharf wrote under `configPath`, restoring originals (the DaemonSet goes away). */
export async function cleanHostsDir(configPath: string): Promise<SyncReport> {
  const report: SyncReport = { written: [], backedUp: [], removed: [], restored: [], spegel: await isDirectory(join(configPath, SPEGEL_BACKUP_DIR)) };
  for (const name of await hostDirs(configPath)) await removeFrom(configPath, name, report);
  for (const name of await hostDirs(join(configPath, SPEGEL_BACKUP_DIR))) await removeFrom(configPath, join(SPEGEL_BACKUP_DIR, name), report);
  return report;
}

/** Writes Wharf's file in `<configPath>/<dir>`, setting a foreign one aside first. */
async function place(configPath: string, dir: string, host: MirroredHost, endpoint: WharfEndpoint, mode: WriteMode, report: SyncReport): Promise<void> {
  const directory = join(configPath, dir);
  const file = join(directory, HOSTS_FILE);
  await mkdir(directory, { recursive: true });
  const current = await readText(file);
  if (current !== undefined && !isWharfFile(current)) {
    if ((await readText(join(directory, ORIGINAL_FILE))) !== undefined) {
      throw new Error(`${file} is not Wharf's, and ${ORIGINAL_FILE} already holds an earlier original; resolve by hand (Wharf never overwrites either)`);
    }
    await rename(file, join(directory, ORIGINAL_FILE));
    report.backedUp.push(join(dir, HOSTS_FILE));
  }
  const original = mode === 'prepend' ? await readText(join(directory, ORIGINAL_FILE)) : undefined;
  const content = renderHostsToml(host, endpoint, original === undefined ? {} : { keep: hostTablesOf(original) });
  if (current === content) return;
  await writeAtomically(file, content);
  report.written.push(join(dir, HOSTS_FILE));
}

/** Removes Wharf's file from `<configPath>/<dir>` (if it is Wharf's), restores an original, and a directory left empty. */
async function removeFrom(configPath: string, dir: string, report: SyncReport): Promise<void> {
  const directory = join(configPath, dir);
  const file = join(directory, HOSTS_FILE);
  const current = await readText(file);
  if (current === undefined || !isWharfFile(current)) return;
  await rm(file);
  report.removed.push(join(dir, HOSTS_FILE));
  if ((await readText(join(directory, ORIGINAL_FILE))) !== undefined) {
    await rename(join(directory, ORIGINAL_FILE), file);
    report.restored.push(join(dir, HOSTS_FILE));
  }
  await rmdir(directory).catch(() => undefined);
}
