import { lstat, mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostTablesOf, isOwnFile, isWharfFile, renderHostsToml, type MirroredHost, type WharfEndpoint } from './hosts-toml.js';

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
  /**
   * The Registry (`<namespace>/<name>`) the files are written for. Files of another
   * Registry's agent on the same node are never changed or removed (a conflict instead).
   */
  owner?: string;
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
  /** Hosts whose file another Registry's agent wrote: left to it. */
  conflicts: string[];
  /** Host directories this pass could not bring in line, with why; the other hosts were. */
  failed: { path: string; error: string }[];
}

function emptyReport(spegel: boolean): SyncReport {
  return { written: [], backedUp: [], removed: [], restored: [], spegel, conflicts: [], failed: [] };
}

/** Runs one host directory's step; a failure is reported and the pass goes on with the next host. */
async function step(report: SyncReport, path: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (err) {
    report.failed.push({ path, error: (err as Error).message });
  }
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

/** A directory itself, not a symbolic link to one: the agent never writes outside config_path. */
async function isRealDirectory(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => undefined))?.isDirectory() ?? false;
}

async function exists(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => undefined)) !== undefined;
}

function tempOf(path: string): string {
  return `${path}.wharf-tmp`;
}

/**
 * Written beside, then renamed over: containerd never reads half a file. The temporary
 * file is created anew (`wx`): whatever was left at its name, a symbolic link included,
 * is removed first and never written through.
 */
async function writeAtomically(path: string, content: string): Promise<void> {
  const temp = tempOf(path);
  await rm(temp, { force: true });
  await writeFile(temp, content, { mode: 0o644, flag: 'wx' });
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
  const { configPath, hosts, endpoint, mode, owner } = options;
  await mkdir(configPath, { recursive: true });
  const spegel = await isDirectory(join(configPath, SPEGEL_BACKUP_DIR));
  const report = emptyReport(spegel);
  const wanted = new Set(hosts.map((h) => h.host));
  const base = spegel ? join(configPath, SPEGEL_BACKUP_DIR) : configPath;
  for (const host of hosts) {
    const dir = spegel ? join(SPEGEL_BACKUP_DIR, host.host) : host.host;
    await step(report, dir, async () => {
      await place(configPath, dir, host, endpoint, mode, owner, report);
      if (!spegel) return;
      // Spegel's own live file stays Spegel's; one that is missing or Wharf's is (re)written.
      const live = await readText(join(configPath, host.host, HOSTS_FILE));
      if (live === undefined || isOwnFile(live, owner)) await place(configPath, host.host, host, endpoint, mode, owner, report);
    });
  }
  for (const dir of spegel ? [base, configPath] : [configPath]) {
    for (const name of await hostDirs(dir)) {
      if (wanted.has(name)) continue;
      const rel = dir === configPath ? name : join(SPEGEL_BACKUP_DIR, name);
      await step(report, rel, () => removeFrom(configPath, rel, owner, report));
    }
  }
  return report;
}

/** Removes every file Wharf wrote (for `owner`) under `configPath`, restoring originals (the DaemonSet goes away). */
export async function cleanHostsDir(configPath: string, owner?: string): Promise<SyncReport> {
  const report = emptyReport(await isDirectory(join(configPath, SPEGEL_BACKUP_DIR)));
  for (const name of await hostDirs(configPath)) await step(report, name, () => removeFrom(configPath, name, owner, report));
  for (const name of await hostDirs(join(configPath, SPEGEL_BACKUP_DIR))) {
    const rel = join(SPEGEL_BACKUP_DIR, name);
    await step(report, rel, () => removeFrom(configPath, rel, owner, report));
  }
  return report;
}

/** Writes Wharf's file in `<configPath>/<dir>`, setting a foreign one aside first. */
async function place(configPath: string, dir: string, host: MirroredHost, endpoint: WharfEndpoint, mode: WriteMode, owner: string | undefined, report: SyncReport): Promise<void> {
  const directory = join(configPath, dir);
  const file = join(directory, HOSTS_FILE);
  await mkdir(directory, { recursive: true });
  if (!(await isRealDirectory(directory))) throw new Error(`${directory} is not a directory (a symbolic link or a file); Wharf leaves it alone`);
  const current = await readText(file);
  if (current !== undefined && isWharfFile(current) && !isOwnFile(current, owner)) {
    report.conflicts.push(join(dir, HOSTS_FILE));
    return;
  }
  if (current !== undefined && !isWharfFile(current)) {
    if (await exists(join(directory, ORIGINAL_FILE))) {
      throw new Error(`${file} is not Wharf's, and ${ORIGINAL_FILE} already holds an earlier original; resolve by hand (Wharf never overwrites either)`);
    }
    await rename(file, join(directory, ORIGINAL_FILE));
    report.backedUp.push(join(dir, HOSTS_FILE));
  }
  const original = mode === 'prepend' ? await readText(join(directory, ORIGINAL_FILE)) : undefined;
  const content = renderHostsToml(host, endpoint, { ...(owner && { owner }), ...(original !== undefined && { keep: hostTablesOf(original, endpoint.url) }) });
  if (current === content) return;
  await writeAtomically(file, content);
  report.written.push(join(dir, HOSTS_FILE));
}

/**
 * Takes Wharf's file (`owner`'s) out of `<configPath>/<dir>`: the original set aside is
 * renamed back over it in one step, or it is removed; then a directory left empty goes.
 * An original whose hosts.toml is missing (a pass killed between its two renames) is
 * restored too. Another Registry's file, and a foreign one, are left alone.
 */
async function removeFrom(configPath: string, dir: string, owner: string | undefined, report: SyncReport): Promise<void> {
  const directory = join(configPath, dir);
  if (!(await isRealDirectory(directory))) return;
  const file = join(directory, HOSTS_FILE);
  // Wharf writes regular files only: anything else there is someone else's.
  const found = await lstat(file).catch(() => undefined);
  if (found && !found.isFile()) return;
  const current = await readText(file);
  if (current !== undefined && !isOwnFile(current, owner)) return;
  await rm(tempOf(file), { force: true });
  if (await exists(join(directory, ORIGINAL_FILE))) {
    await rename(join(directory, ORIGINAL_FILE), file);
    if (current !== undefined) report.removed.push(join(dir, HOSTS_FILE));
    report.restored.push(join(dir, HOSTS_FILE));
  } else if (current !== undefined) {
    await rm(file);
    report.removed.push(join(dir, HOSTS_FILE));
  }
  await rmdir(directory).catch(() => undefined);
}
