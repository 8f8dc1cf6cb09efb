// One process per embedded (PGlite) database: the lock beside its directory, on its own and
// with real registry processes.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedDatabaseInUseError, lockEmbeddedDatabase, startTimeOf } from '../src/metadata/embedded-lock.js';
import { spawnRegistry } from './support/process.js';
import { removeDir, tempDir } from './support/registry.js';

/** The build's module, run by the child processes (make test builds before it tests). */
const LOCK_MODULE = resolve('dist/registry/src/metadata/embedded-lock.js');

let work: string;
let sleeper: ChildProcess;

beforeAll(async () => {
  work = await tempDir('wharf-embedded-lock-');
  sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
  await new Promise((resolve) => sleeper.once('spawn', resolve));
});

afterAll(async () => {
  sleeper?.kill('SIGKILL');
  if (work) await removeDir(work);
});

describe('the embedded database lock', () => {
  it('refuses while another live process on this host holds it, naming that process', async () => {
    const dir = join(work, 'held');
    await writeFile(`${dir}.lock`, JSON.stringify({ pid: sleeper.pid, hostname: hostname(), started: startTimeOf(sleeper.pid!)! }));
    const err = await lockEmbeddedDatabase(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbeddedDatabaseInUseError);
    expect((err as Error).message).toContain(`in use by process ${sleeper.pid} on this host`);
    expect((err as Error).message).toContain('--database-url');
    // Refused, and the holder's lock is left as it was.
    expect(JSON.parse(await readFile(`${dir}.lock`, 'utf8')).pid).toBe(sleeper.pid);
  });

  it('takes over a lock whose process is gone, whose pid now belongs to another process, or that was written on another host', async () => {
    const gone = spawn('true');
    await new Promise((resolve) => gone.once('exit', resolve));
    const stale = [
      { pid: gone.pid, hostname: hostname() },
      { pid: sleeper.pid, hostname: hostname(), started: '1' },
      { pid: sleeper.pid, hostname: 'registry-7d9f-old-pod', started: startTimeOf(sleeper.pid!)! },
      'not json',
    ];
    for (const [i, holder] of stale.entries()) {
      const dir = join(work, `stale-${i}`);
      await writeFile(`${dir}.lock`, typeof holder === 'string' ? holder : JSON.stringify(holder));
      const release = await lockEmbeddedDatabase(dir);
      expect(JSON.parse(await readFile(`${dir}.lock`, 'utf8')).pid).toBe(process.pid);
      await release();
      await expect(readFile(`${dir}.lock`, 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
    }
  });

  it('releases only its own lock', async () => {
    const dir = join(work, 'taken');
    const release = await lockEmbeddedDatabase(dir);
    const other = JSON.stringify({ pid: sleeper.pid, hostname: 'elsewhere' });
    await writeFile(`${dir}.lock`, other);
    await release();
    expect(await readFile(`${dir}.lock`, 'utf8')).toBe(other);
  });

  it('refuses, naming it, a lock it cannot read (a directory), and leaves it in place', async () => {
    const dir = join(work, 'odd');
    await mkdir(`${dir}.lock`);
    await expect(lockEmbeddedDatabase(dir)).rejects.toThrow(/cannot read the embedded database's lock .*odd\.lock \(EISDIR\); if no registry runs on this data directory, remove it/);
    expect((await stat(`${dir}.lock`)).isDirectory()).toBe(true);
  });

  it('lets exactly one of three processes that find the same stale lock, or none, at once take it', async () => {
    const script = `const { lockEmbeddedDatabase } = await import(process.argv[1]);
      try { await lockEmbeddedDatabase(process.argv[2]); console.log('locked'); await new Promise((r) => setTimeout(r, 1500)); }
      catch (err) { console.log(err.code === 'EMBEDDED_DATABASE_IN_USE' ? 'refused' : 'error ' + err.message); }`;
    const dir = join(work, 'race');
    const gone = spawn('true');
    await new Promise((resolve) => gone.once('exit', resolve));
    await writeFile(`${dir}.lock`, JSON.stringify({ pid: gone.pid, hostname: hostname() }));
    // Each round's winner exits holding the lock, which is the next round's stale one; every
    // third round starts with no lock at all, and one with an empty (garbage) one.
    for (let round = 0; round < 9; round++) {
      if (round % 3 === 1) await rm(`${dir}.lock`, { force: true });
      if (round === 5) await writeFile(`${dir}.lock`, '');
      const outcomes = await Promise.all(
        [0, 1, 2].map(
          () =>
            new Promise<string>((resolve, reject) => {
              const child = spawn(process.execPath, ['--input-type=module', '-e', script, LOCK_MODULE, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
              let out = '';
              child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
              child.once('error', reject);
              child.once('exit', () => resolve(out.trim()));
            }),
        ),
      );
      expect(outcomes.sort(), `round ${round}`).toEqual(['locked', 'refused', 'refused']);
    }
  });

  it('keeps a second registry process off a data directory in use, and lets one start after the first was killed', async () => {
    const dataDir = join(work, 'registry');
    const env = { WHARF_AUTH_MODE: 'none' };
    const first = await spawnRegistry({ dataDir, env, readyTimeoutMs: 120_000 });
    try {
      await expect(spawnRegistry({ dataDir, env, readyTimeoutMs: 60_000 })).rejects.toThrow(new RegExp(`in use by process ${first.child.pid} on this host`));
      first.child.kill('SIGKILL');
      await first.exited;
      // The killed process left its lock; it is stale now.
      expect(JSON.parse(await readFile(join(dataDir, 'metadata.lock'), 'utf8')).pid).toBe(first.child.pid);
      const second = await spawnRegistry({ dataDir, env, readyTimeoutMs: 120_000 });
      expect((await fetch(`${second.url}/v2/`)).status).toBe(200);
      expect((await second.stop()).code).toBe(0);
      await expect(readFile(join(dataDir, 'metadata.lock'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await first.stop();
    }
  });
});
