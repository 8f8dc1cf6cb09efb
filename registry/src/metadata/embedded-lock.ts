import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { link, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
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

/** Linux: a process's start time (/proc/<pid>/stat field 22); undefined without /proc or the process. */
export function startTimeOf(pid: number): string | undefined {
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

/** How long a process that replaced a stale lock waits before it checks that the lock stayed its own. */
const TAKEOVER_SETTLE_MS = 50;

/**
 * Takes `<dataDir>.lock` for this process: two processes on one PGlite directory would
 * each write PostgreSQL's files without seeing the other's, and corrupt them. Refuses
 * (EmbeddedDatabaseInUseError) only when a live process on this host holds it. A lock
 * left by a process that died, or written on another host or container (a pod restarted
 * elsewhere on the same volume, whose liveness cannot be checked from here), is taken
 * over: a stale lock must never keep the registry down. Returns the release.
 *
 * The lock appears whole or not at all (a hard link to a file already written), and a
 * stale one is replaced in one step (a rename over it) and then checked after a moment:
 * of several processes that take one stale lock over at once, the last rename wins and
 * the others, finding a live holder, refuse.
 */
export async function lockEmbeddedDatabase(dataDir: string): Promise<() => Promise<void>> {
  const path = `${dataDir}.lock`;
  const started = startTimeOf(process.pid);
  const me: Holder = { pid: process.pid, hostname: hostname(), ...(started !== undefined && { started }) };
  const content = `${JSON.stringify(me)}\n`;
  const mine = `${path}.${process.pid}-${randomBytes(4).toString('hex')}`;
  const release = async () => {
    // Only our own: a process that took a lock it thought stale keeps it.
    if ((await readLock(path).catch(() => undefined)) === content) await rm(path, { force: true });
  };
  try {
    for (let attempt = 0; attempt < 8; attempt++) {
      await writeFile(mine, content);
      try {
        await link(mine, path);
        return release;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const seen = await readLock(path);
      if (seen === undefined) continue;
      const holder = parseHolder(seen);
      if (holder && holder.pid !== process.pid && holder.hostname === me.hostname && isAlive(holder)) throw new EmbeddedDatabaseInUseError(dataDir, holder);
      // Stale: replaced only if it is still what was judged.
      if ((await readLock(path)) !== seen) continue;
      await rename(mine, path);
      await sleep(TAKEOVER_SETTLE_MS);
      if ((await readLock(path)) === content) return release;
    }
    throw new Error(`could not take the embedded database's lock ${path}: other processes kept replacing it`);
  } finally {
    await rm(mine, { force: true });
  }
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
