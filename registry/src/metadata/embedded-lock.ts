import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { link, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';

interface Holder {
  pid: number;
  hostname: string;
  /** The process's start time (Linux: /proc/<pid>/stat field 22), so that a reused pid is not taken for the holder. */
  started?: string;
}

/** Another live process on this host has the embedded database open. */
export class EmbeddedDatabaseInUseError extends Error {
  readonly code = 'EMBEDDED_DATABASE_IN_USE';
  constructor(dataDir: string, holder: Holder) {
    super(
      `the embedded database in ${dataDir} is in use by process ${holder.pid} on this host; ` +
        'it serves one process: stop that one, give this one another --data-dir, or run several replicas on PostgreSQL (--database-url)',
    );
    this.name = 'EmbeddedDatabaseInUseError';
  }
}

function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function isAlive(holder: Holder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // Where /proc exists, the pid must still belong to the process that wrote the lock.
  const started = startTimeOf(holder.pid);
  return holder.started === undefined || started === undefined || started === holder.started;
}

function parseHolder(text: string): Holder | undefined {
  try {
    const value = JSON.parse(text) as Partial<Holder>;
    return typeof value.pid === 'number' && typeof value.hostname === 'string' ? (value as Holder) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Takes `<dataDir>.lock` for this process: two processes on one PGlite directory would
 * each write PostgreSQL's files without seeing the other's, and corrupt them. Refuses
 * (EmbeddedDatabaseInUseError) only when a live process on this host holds it. A lock
 * left by a process that died, or written on another host or container (a pod restarted
 * elsewhere on the same volume, whose liveness cannot be checked from here), is taken
 * over: a stale lock must never keep the registry down. Returns the release.
 */
export async function lockEmbeddedDatabase(dataDir: string): Promise<() => Promise<void>> {
  const path = `${dataDir}.lock`;
  const me: Holder = { pid: process.pid, hostname: hostname(), ...(startTimeOf(process.pid) !== undefined && { started: startTimeOf(process.pid)! }) };
  const content = `${JSON.stringify(me)}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(path, content, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw err;
    }
    const seen = await readLock(path);
    if (seen === undefined) continue;
    const holder = parseHolder(seen);
    if (holder && holder.pid !== process.pid && holder.hostname === me.hostname && isAlive(holder)) throw new EmbeddedDatabaseInUseError(dataDir, holder);
    await setAside(path, seen);
  }
  return async () => {
    // Only our own: a process that took a lock it thought stale keeps it.
    if ((await readFile(path, 'utf8').catch(() => '')) === content) await rm(path, { force: true });
  };
}

/** The lock's text; undefined when it is gone. One that cannot be read is not guessed at. */
async function readLock(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new Error(`cannot read the embedded database's lock ${path} (${code ?? (err as Error).message}); if no registry runs on this data directory, remove it`, { cause: err });
  }
}

/**
 * Removes the stale lock that read as `seen`. It is moved aside first and checked, so that
 * of two processes taking over one stale lock at once, neither deletes the lock the other
 * has just written in its place: what was moved goes back if it is not what was judged.
 */
async function setAside(path: string, seen: string): Promise<void> {
  const aside = `${path}.${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if ((await readFile(aside, 'utf8').catch(() => '')) !== seen) await link(aside, path).catch(() => undefined);
  await rm(aside, { force: true });
}
