// A registry stopped during its first start (while the embedded database's initdb runs in a
// child process) takes the child along, and the next start succeeds.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnRegistry } from './support/process.js';
import { freePort } from './support/ports.js';
import { removeDir, tempDir } from './support/registry.js';

let work: string;

beforeAll(async () => {
  work = await tempDir('wharf-stop-starting-');
});

afterAll(async () => {
  if (work) await removeDir(work);
});

function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('stopped while starting', () => {
  it('kills the initdb child on SIGTERM, and the next start on the same data directory succeeds', async () => {
    const dataDir = join(work, 'data');
    const port = await freePort();
    const registry = spawn(process.execPath, [resolve('dist/registry/src/main.js'), '--addr', `127.0.0.1:${port}`, '--data-dir', dataDir, '--auth', 'none'], { stdio: 'ignore' });
    const exited = new Promise((done) => registry.once('exit', done));
    let initdb: number | undefined;
    for (let i = 0; i < 200 && initdb === undefined; i++) {
      initdb = childrenOf(registry.pid!).find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--liftoff-only'));
      if (initdb === undefined) await sleep(50);
    }
    expect(initdb, 'the initdb child appeared').toBeDefined();
    registry.kill('SIGTERM');
    await exited;
    for (let i = 0; i < 40 && alive(initdb!); i++) await sleep(50);
    expect(alive(initdb!)).toBe(false);
    const next = await spawnRegistry({ dataDir, env: { WHARF_AUTH_MODE: 'none' }, readyTimeoutMs: 120_000 });
    try {
      expect((await fetch(`${next.url}/v2/`)).status).toBe(200);
    } finally {
      await next.stop();
    }
  });
});
