import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { parseCron } from '../../src/jobs/cron.js';
import { CronScheduler } from '../../src/jobs/scheduler.js';
import { JobWorker, type JobHandler } from '../../src/jobs/worker.js';
import { JobStore } from '../../src/metadata/jobs.js';
import { migrate } from '../../src/metadata/migrate.js';
import { openPg } from '../../src/metadata/pg.js';
import { openPglite } from '../../src/metadata/pglite.js';
import type { Sql } from '../../src/metadata/sql.js';
import { createTestDatabase } from '../support/pg.js';
import { removeDir, tempDir } from '../support/registry.js';

const log = pino({ level: 'silent' });

interface Database {
  open(): Promise<Sql>;
  cleanup(): Promise<void>;
}

const drivers: { name: string; database: () => Promise<Database> }[] = [
  {
    name: 'embedded PGlite',
    database: async () => {
      const dir = await tempDir();
      await cp(inject('pgliteTemplate'), join(dir, 'db'), { recursive: true });
      return { open: () => openPglite(join(dir, 'db')), cleanup: () => removeDir(dir) };
    },
  },
  {
    name: 'PostgreSQL',
    database: async () => {
      const url = await createTestDatabase(inject('pgAdminUrl'));
      const sql = await openPg(url);
      await migrate(sql);
      await sql.close();
      return { open: () => openPg(url), cleanup: async () => undefined };
    },
  },
];

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function worker(store: JobStore, handlers: Record<string, JobHandler>, options: { leaseSeconds?: number; retryDelaySeconds?: number } = {}): JobWorker {
  return new JobWorker(store, new Map(Object.entries(handlers)), { pollIntervalMs: 50, log, ...options });
}

describe.each(drivers)('job queue on $name', ({ database }) => {
  let db: Database;
  let sql: Sql;
  let store: JobStore;
  const workers: JobWorker[] = [];

  afterAll(async () => {
    for (const w of workers) await w.stop();
    await sql?.close();
    await db?.cleanup();
  });

  const start = (handlers: Record<string, JobHandler>, options?: { leaseSeconds?: number; retryDelaySeconds?: number }) => {
    const w = worker(store, handlers, options);
    workers.push(w);
    w.start();
    return w;
  };

  it('runs a job once and records its result; a dedupe key enqueues at most one job', async () => {
    db = await database();
    sql = await db.open();
    store = new JobStore(sql);
    const first = await store.enqueue({ kind: 'echo', payload: { n: 1 }, dedupeKey: 'echo@1' });
    const again = await store.enqueue({ kind: 'echo', payload: { n: 2 }, dedupeKey: 'echo@1' });
    expect(first.created).toBe(true);
    expect(again).toMatchObject({ created: false, job: { id: first.job.id, payload: { n: 1 } } });
    const runs: unknown[] = [];
    const w = start({ echo: { run: async (payload) => (runs.push(payload), { doubled: (payload.n as number) * 2 }) } });
    const done = await until('the job to succeed', async () => ((await store.get(first.job.id))?.state === 'succeeded' ? store.get(first.job.id) : undefined));
    expect(done).toMatchObject({ attempts: 1, result: { doubled: 2 }, error: null });
    expect(runs).toEqual([{ n: 1 }]);
    await w.stop();
  });

  it('retries a failed attempt after a delay, then fails for good after maxAttempts', async () => {
    let calls = 0;
    const w = start({ flaky: { run: async () => (++calls === 1 ? Promise.reject(new Error('first attempt breaks')) : 'ok') }, broken: { run: async () => Promise.reject(new Error('always')) } }, { retryDelaySeconds: 0.2 });
    const flaky = (await store.enqueue({ kind: 'flaky' })).job;
    const broken = (await store.enqueue({ kind: 'broken', maxAttempts: 2 })).job;
    expect(await until('flaky to succeed', async () => ((await store.get(flaky.id))?.state === 'succeeded' ? store.get(flaky.id) : undefined))).toMatchObject({ attempts: 2, result: 'ok' });
    expect(await until('broken to fail', async () => ((await store.get(broken.id))?.state === 'failed' ? store.get(broken.id) : undefined))).toMatchObject({ attempts: 2, error: 'always' });
    await w.stop();
  });

  it("runs a job again when its worker died (the lease expired), and gives up once attempts run out", async () => {
    const orphan = (await store.enqueue({ kind: 'resume' })).job;
    // A worker that claims and then dies: it never renews the lease.
    expect(await store.claim({ workerId: 'dead-worker', kinds: ['resume'], leaseSeconds: 1 })).toMatchObject({ id: orphan.id, state: 'running' });
    const doomed = (await store.enqueue({ kind: 'doomed', maxAttempts: 1 })).job;
    expect(await store.claim({ workerId: 'dead-worker', kinds: ['doomed'], leaseSeconds: 1 })).toMatchObject({ id: doomed.id });
    const ran: string[] = [];
    const w = start({ resume: { run: async (_p, ctx) => void ran.push(ctx.job.id) }, doomed: { run: async () => void ran.push('doomed') } });
    expect(await until('the orphan to be taken over', async () => ((await store.get(orphan.id))?.state === 'succeeded' ? store.get(orphan.id) : undefined))).toMatchObject({
      attempts: 2,
      lockedBy: w.id,
    });
    expect(await until('the doomed job to fail', async () => ((await store.get(doomed.id))?.state === 'failed' ? store.get(doomed.id) : undefined))).toMatchObject({
      error: expect.stringContaining('gave up after 1 attempts'),
    });
    expect(ran).toEqual([orphan.id]);
    await w.stop();
  });

  it('renews the lease of a long job, so nobody else takes it while it runs', async () => {
    let running = 0;
    let overlaps = 0;
    const slow: JobHandler = {
      run: async (_p, ctx) => {
        if (++running > 1) overlaps++;
        await sleep(4000, undefined, { signal: ctx.signal }).finally(() => running--);
        return 'done';
      },
    };
    // Renewed every second; without renewals the other worker would take the job after 3 s.
    start({ slow }, { leaseSeconds: 3 });
    start({ slow }, { leaseSeconds: 3 });
    const job = (await store.enqueue({ kind: 'slow' })).job;
    expect(await until('the slow job', async () => ((await store.get(job.id))?.state === 'succeeded' ? store.get(job.id) : undefined))).toMatchObject({ attempts: 1 });
    expect(overlaps).toBe(0);
  });

  it('on stop, aborts the running job and hands it back without counting the attempt; it survives a restart', async () => {
    let started = false;
    const w = start({ long: { run: async (_p, ctx) => ((started = true), await sleep(60_000, undefined, { signal: ctx.signal })) } });
    const job = (await store.enqueue({ kind: 'long', payload: { big: true } })).job;
    await until('the long job to start', async () => (started ? true : undefined));
    await w.stop();
    expect(await store.get(job.id)).toMatchObject({ state: 'queued', attempts: 0, lockedBy: null });

    await sql.close();
    sql = await db.open();
    store = new JobStore(sql);
    start({ long: { run: async (payload) => payload } });
    expect(await until('the job after a restart', async () => ((await store.get(job.id))?.state === 'succeeded' ? store.get(job.id) : undefined))).toMatchObject({ attempts: 1, result: { big: true } });
  });

  it('counts jobs by kind and state, and prunes finished ones', async () => {
    const counts = await store.counts();
    expect(counts).toEqual(expect.arrayContaining([{ kind: 'echo', state: 'succeeded', count: 1 }, { kind: 'broken', state: 'failed', count: 1 }]));
    expect(await store.prune(3600)).toBe(0);
    await sleep(1100);
    expect(await store.prune(1)).toBeGreaterThanOrEqual(5);
    expect((await store.counts()).filter((c) => c.state === 'succeeded' || c.state === 'failed')).toEqual([]);
  });
});

describe('job queue with many replicas on PostgreSQL', () => {
  const pools: Sql[] = [];
  const workers: JobWorker[] = [];
  afterAll(async () => {
    for (const w of workers) await w.stop();
    for (const p of pools) await p.close();
  });

  it('four workers with their own pools run each of 60 jobs exactly once (SKIP LOCKED)', async () => {
    const url = await createTestDatabase(inject('pgAdminUrl'));
    for (let i = 0; i < 4; i++) pools.push(await openPg(url));
    await migrate(pools[0]!);
    const runs = new Map<string, string[]>();
    for (const pool of pools) {
      const store = new JobStore(pool);
      const w = worker(store, {
        work: {
          run: async (payload, ctx) => {
            runs.set(payload.n as string, [...(runs.get(payload.n as string) ?? []), ctx.job.lockedBy!]);
            await sleep(5);
          },
        },
      });
      workers.push(w);
      w.start();
    }
    const store = new JobStore(pools[0]!);
    await Promise.all(Array.from({ length: 60 }, (_, n) => store.enqueue({ kind: 'work', payload: { n: String(n) } })));
    await until('every job', async () => ((await store.counts()).find((c) => c.state === 'succeeded')?.count === 60 ? true : undefined), 30_000);
    expect(runs.size).toBe(60);
    expect([...runs.values()].every((by) => by.length === 1)).toBe(true);
    // The work was shared out.
    expect(new Set([...runs.values()].map((by) => by[0])).size).toBeGreaterThan(1);
  });

  it('two replicas scheduling the same cron entry enqueue one job per tick', async () => {
    const url = await createTestDatabase(inject('pgAdminUrl'));
    const a = await openPg(url);
    const b = await openPg(url);
    pools.push(a, b);
    await migrate(a);
    // Enqueue attempts per tick (dedupe key), counted once the enqueue has finished.
    const attempts = new Map<string, number>();
    const inFlight = new Set<Promise<void>>();
    const schedulers = [a, b].map((pool) => {
      const store = new JobStore(pool);
      return new CronScheduler(
        [{ kind: 'tick', schedule: parseCron('* * * * * *'), payload: {} }],
        async (kind, payload, dedupeKey) => {
          const enqueue = store.enqueue({ kind, payload, dedupeKey }).then(() => void attempts.set(dedupeKey!, (attempts.get(dedupeKey!) ?? 0) + 1));
          inFlight.add(enqueue);
          await enqueue.finally(() => inFlight.delete(enqueue));
        },
        log,
      );
    });
    for (const s of schedulers) s.start();
    // Until three ticks were each enqueued by both replicas.
    await until('three ticks enqueued by both replicas', async () => ([...attempts.values()].filter((n) => n >= 2).length >= 3 ? true : undefined), 30_000);
    for (const s of schedulers) s.stop();
    await Promise.all(inFlight);
    const jobs = await new JobStore(a).list('tick', 100);
    // Exactly one job for each tick either replica enqueued.
    expect(jobs.map((j) => j.dedupeKey).sort()).toEqual([...attempts.keys()].sort());
    expect(jobs.every((j) => /^tick@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/.test(j.dedupeKey!))).toBe(true);
  });
});
