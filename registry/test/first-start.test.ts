// The first start on an empty data directory, where the embedded database runs initdb (several
// CPU-seconds, far more on a throttled pod):
//   - the port opens before the database: /healthz answers 200 (alive, starting), /readyz and the
//     API 503 with a Retry-After, so a Kubernetes startup probe passes while readiness holds
//     traffic back; then the registry becomes ready on the same port;
//   - a first start killed during initdb (OOM, a deleted pod) leaves no half-initialized
//     database behind: the next start initializes it and serves.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from './support/ports.js';
import { spawnRegistry } from './support/process.js';

const MAIN = resolve('dist/registry/src/main.js');
const dirs: string[] = [];
const stops: (() => void)[] = [];

afterEach(() => {
  for (const stop of stops.splice(0)) stop();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Starts the registry in its own process group (so that its initdb child can be killed with it). */
async function startDetached(dataDir: string) {
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN, '--addr', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    env: { PATH: process.env.PATH ?? '', WHARF_LOG_LEVEL: 'info', WHARF_ADMIN_PASSWORD: 'first-start-admin' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => void (output = (output + c.toString()).slice(-65536)));
  child.stderr!.on('data', (c: Buffer) => void (output = (output + c.toString()).slice(-65536)));
  const exited = new Promise((done) => child.once('exit', done));
  const killGroup = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  stops.push(killGroup);
  return { child, url: `http://127.0.0.1:${port}`, output: () => output, exited, killGroup };
}

async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, output: () => string, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${output()}`);
    await sleep(50);
  }
}

const answer = (url: string) => fetch(url, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);

describe('the first start on an empty data directory', () => {
  it('opens the port before the database: /healthz 200, /readyz and the API 503 until the registry is ready', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wharf-first-start-'));
    dirs.push(dataDir);
    const registry = await startDetached(dataDir);
    const readyz = await until('the port to open', () => answer(`${registry.url}/readyz`), registry.output);
    // initdb takes seconds; the port opened well before it could end.
    expect(existsSync(join(dataDir, 'metadata', 'PG_VERSION'))).toBe(false);
    expect(readyz.status).toBe(503);
    expect(await readyz.json()).toMatchObject({ status: 'starting' });
    const healthz = await answer(`${registry.url}/healthz`);
    expect(healthz?.status).toBe(200);
    const api = await answer(`${registry.url}/v2/`);
    expect(api?.status).toBe(503);
    expect(api?.headers.get('retry-after')).toBe('5');
    expect(await api?.json()).toEqual({ errors: [{ code: 'UNAVAILABLE', message: 'the registry is starting; retry later' }] });

    await until('/readyz 200', async () => ((await answer(`${registry.url}/readyz`))?.status === 200 ? true : undefined), registry.output);
    expect(existsSync(join(dataDir, 'metadata', 'PG_VERSION'))).toBe(true);
    const v2 = await answer(`${registry.url}/v2/`);
    expect(v2?.status).toBe(401);
    expect(registry.output()).toContain('wharf registry listening');
  }, 180_000);

  it('a first start killed during initdb leaves no half-initialized database: the next start initializes it', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'wharf-first-start-'));
    dirs.push(dataDir);
    const first = await startDetached(dataDir);
    // initdb has begun writing (PG_VERSION is among its first files) when the process group is killed.
    await until('initdb to begin writing', () => (existsSync(join(dataDir, 'metadata.initdb', 'PG_VERSION')) ? true : undefined), first.output);
    first.killGroup();
    await first.exited;
    expect(existsSync(join(dataDir, 'metadata', 'PG_VERSION'))).toBe(false);

    const second = await spawnRegistry({ dataDir, env: { WHARF_ADMIN_PASSWORD: 'first-start-admin' }, readyTimeoutMs: 150_000 });
    try {
      expect(existsSync(join(dataDir, 'metadata', 'PG_VERSION'))).toBe(true);
      expect(existsSync(join(dataDir, 'metadata.initdb'))).toBe(false);
      // The database answers: the admin (its password set on this start) lists projects.
      const catalog = await fetch(`${second.url}/api/v1/projects`, { headers: { Authorization: `Basic ${Buffer.from('admin:first-start-admin').toString('base64')}` } });
      expect(catalog.status).toBe(200);
    } finally {
      await second.stop();
    }
  }, 300_000);
});
