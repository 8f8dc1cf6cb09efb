import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { startMinio, type RunningMinio } from './support/minio.js';
import { buildImage, randomBlob, RegistryClient, type Image } from './support/oci.js';
import { createTestDatabase } from './support/pg.js';
import { startDedicatedPostgres, type DedicatedPostgres } from './support/postgres.js';
import { spawnRegistry, type RegistryProcess } from './support/process.js';
import { removeDir, tempDir } from './support/registry.js';

type Op = 'push-blob' | 'get-blob' | 'get-manifest' | 'tags' | 'readyz' | 'healthz';
type Phase = 'healthy' | 'storage-down' | 'both-down' | 'database-back' | 'recovered';

interface Outcome {
  /** The phase when the request started and when it ended; checks per phase use requests within one. */
  phase: Phase;
  endPhase: Phase;
  op: Op;
  status: number;
  ms: number;
  code?: string;
  retryAfter?: string | null;
  error?: string;
}

const OPS: Op[] = ['push-blob', 'get-blob', 'get-manifest', 'tags', 'readyz', 'healthz'];
const NEEDS_STORAGE = new Set<Op>(['push-blob', 'get-blob', 'readyz']);

describe('faults under load: MinIO, then PostgreSQL, stop and come back (registry process on PostgreSQL + S3)', () => {
  let minio: RunningMinio;
  let postgres: DedicatedPostgres;
  let registry: RegistryProcess;
  let dataDir: string;
  let seed: Image;
  const internalErrors: string[] = [];

  beforeAll(async () => {
    [minio, postgres] = await Promise.all([startMinio(inject('toolsBin')), startDedicatedPostgres()]);
    dataDir = await tempDir('wharf-faults-');
    registry = await spawnRegistry({
      dataDir,
      env: {
        WHARF_DATABASE_URL: await createTestDatabase(postgres.adminUrl),
        WHARF_STORAGE_DRIVER: 's3',
        WHARF_S3_ENDPOINT: minio.endpoint,
        WHARF_S3_REGION: minio.region,
        WHARF_S3_BUCKET: await minio.createBucket(),
        WHARF_S3_ACCESS_KEY_ID: minio.accessKeyId,
        WHARF_S3_SECRET_ACCESS_KEY: minio.secretAccessKey,
        WHARF_AUTH_MODE: 'none',
        WHARF_GC_SCHEDULE: 'off',
        WHARF_JOBS_POLL_INTERVAL: '200ms',
        // Errors are logged, so that an unexpected 5xx shows its cause (kept below: the output's tail is mostly 503s).
        WHARF_LOG_LEVEL: 'error',
      },
    });
    let partial = '';
    registry.child.stdout!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop()!;
      internalErrors.push(...lines.filter((line) => line.includes('"code":"INTERNAL"')));
    });
    seed = await buildImage({ layers: 1 });
    await new RegistryClient(registry.url).pushImage('faults/app', 'v1', seed);
  });

  afterAll(async () => {
    await registry?.stop();
    await minio?.close();
    await postgres?.close();
    if (dataDir) await removeDir(dataDir);
  });

  it('answers 503 UNAVAILABLE with an error body during each outage, never hangs or crashes, and recovers without a restart', async () => {
    let phase: Phase = 'healthy';
    let running = true;
    const outcomes: Outcome[] = [];
    const layer = seed.layers[0]!;

    const request = async (op: Op): Promise<Response> => {
      const base = registry.url;
      const signal = AbortSignal.timeout(30_000);
      switch (op) {
        case 'push-blob': {
          const blob = randomBlob(2000);
          return fetch(`${base}/v2/faults/load/blobs/uploads/?digest=${blob.digest}`, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: blob.data, signal });
        }
        case 'get-blob':
          return fetch(`${base}/v2/faults/app/blobs/${layer.digest}`, { signal });
        case 'get-manifest':
          return fetch(`${base}/v2/faults/app/manifests/v1`, { headers: { Accept: seed.mediaType }, signal });
        case 'tags':
          return fetch(`${base}/v2/faults/app/tags/list`, { signal });
        case 'readyz':
          return fetch(`${base}/readyz`, { signal });
        case 'healthz':
          return fetch(`${base}/healthz`, { signal });
      }
    };

    const load = async (worker: number) => {
      for (let i = worker; running; i++) {
        const op = OPS[i % OPS.length]!;
        const at = phase;
        const started = Date.now();
        try {
          const res = await request(op);
          const body = await res.text();
          let code: string | undefined;
          try {
            code = (JSON.parse(body) as { errors?: { code: string }[] }).errors?.[0]?.code;
          } catch {
            code = undefined;
          }
          outcomes.push({ phase: at, endPhase: phase, op, status: res.status, ms: Date.now() - started, retryAfter: res.headers.get('retry-after'), ...(code && { code }) });
        } catch (err) {
          outcomes.push({ phase: at, endPhase: phase, op, status: 0, ms: Date.now() - started, error: String((err as Error).cause ?? err) });
        }
        await sleep(20);
      }
    };
    const workers = Array.from({ length: 6 }, (_, w) => load(w));
    const during = (p: Phase) => outcomes.filter((o) => o.phase === p && o.endPhase === p);
    const count = (p: Phase, which: (o: Outcome) => boolean) => during(p).filter(which).length;
    const eachOp = (p: Phase, ops: Op[], n: number) => ops.every((op) => count(p, (o) => o.op === op) >= n);
    // Each phase lasts until its requests have shown what the checks below look at, not for a
    // fixed time: every check then has requests to look at, however slow the machine.
    const until = (what: string, enough: () => boolean) => vi.waitFor(() => expect(enough(), what).toBe(true), { timeout: 60_000, interval: 50 });

    await until('every kind of request answered while healthy', () => eachOp('healthy', OPS, 2));
    phase = 'storage-down';
    await minio.stop();
    await until('storage down: refusals, and answers from the database', () => count('storage-down', (o) => NEEDS_STORAGE.has(o.op) && o.status === 503) > 3 && eachOp('storage-down', OPS.filter((op) => !NEEDS_STORAGE.has(op)), 2));
    phase = 'both-down';
    await postgres.stop();
    await until('both down: refusals, and liveness answers', () => count('both-down', (o) => o.op !== 'healthz' && o.status === 503) > 5 && eachOp('both-down', ['healthz'], 2));
    await postgres.start();
    phase = 'database-back';
    await until('database back: manifests and tags answered', () => count('database-back', (o) => (o.op === 'get-manifest' || o.op === 'tags') && o.status === 200) > 2);
    await minio.start();
    // Back without a restart.
    await vi.waitFor(async () => expect((await fetch(`${registry.url}/readyz`)).status, 'readyz after both services returned').toBe(200), { timeout: 30_000, interval: 200 });
    phase = 'recovered';
    await until('every kind of request answered after recovery', () => eachOp('recovered', OPS, 3));
    running = false;
    await Promise.all(workers);

    expect(registry.child.exitCode, registry.output()).toBeNull();
    // Never a dropped connection, a hang (the client gives up after 30 s: status 0), or an unexpected status.
    expect(outcomes.filter((o) => o.status === 0)).toEqual([]);
    // A 5xx other than 503 is logged by the registry with its cause: show it with the outcome.
    for (const o of outcomes) expect([200, 201, 503], `${JSON.stringify(o)}\n${internalErrors.join('\n')}`).toContain(o.status);
    for (const o of outcomes.filter((x) => x.status === 503 && x.op !== 'readyz')) {
      expect(o, 'a 503 carries the UNAVAILABLE error body and Retry-After').toMatchObject({ code: 'UNAVAILABLE', retryAfter: expect.any(String) });
    }

    expect(during('healthy').filter((o) => o.status >= 300)).toEqual([]);
    // Storage down: what needs it is refused, what only needs the database still works.
    expect(during('storage-down').filter((o) => NEEDS_STORAGE.has(o.op) && o.status === 503).length).toBeGreaterThan(3);
    expect(during('storage-down').filter((o) => !NEEDS_STORAGE.has(o.op) && o.status !== 200)).toEqual([]);
    // Both down: only the liveness probe answers 200.
    const bothDown = during('both-down');
    expect(bothDown.filter((o) => o.op !== 'healthz' && o.status === 503).length).toBeGreaterThan(5);
    expect(bothDown.filter((o) => o.op === 'healthz' && o.status !== 200)).toEqual([]);
    // Database back, storage still away: manifests and tags work again.
    expect(during('database-back').filter((o) => (o.op === 'get-manifest' || o.op === 'tags') && o.status === 200).length).toBeGreaterThan(2);
    // Everything works again, and the content from before the outages is intact.
    expect(during('recovered').filter((o) => o.status >= 300)).toEqual([]);
    const client = new RegistryClient(registry.url);
    expect((await client.getBlob('faults/app', layer.digest)).equals(layer.data)).toBe(true);
    const slowest = (p: Phase) => Math.max(0, ...during(p).map((o) => o.ms));
    console.log(
      `faults: ${outcomes.length} requests; 503s: storage down ${during('storage-down').filter((o) => o.status === 503).length}, both down ${during('both-down').filter((o) => o.status === 503).length}; slowest ms: storage down ${slowest('storage-down')}, both down ${slowest('both-down')}, database back ${slowest('database-back')}`,
    );
  }, 300_000);
});
