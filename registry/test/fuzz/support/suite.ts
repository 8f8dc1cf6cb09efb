import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fuzzCases } from './arbitraries.js';
import type { FuzzCase } from './case.js';
import { RawClient } from './exchange.js';
import { explore } from './explore.js';
import { formatClasses } from './report.js';
import { dataPlaneRoutes, managementRoutes, type RouteSpec } from './routes.js';
import { CaseRunner } from './runner.js';
import { runBatch, stateDiff, type BatchStats } from './state.js';
import { FuzzTarget, type TargetOptions } from './target.js';

/** Settings from the environment: fixed in CI, larger on demand (docs/fuzzing.md). */
export function fuzzSettings(defaults: { runs: number; batches: number }) {
  const number = (name: string, fallback: number) => {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    return n;
  };
  return {
    seed: number('FUZZ_SEED', 16),
    runs: number('FUZZ_RUNS', defaults.runs),
    batches: number('FUZZ_BATCHES', defaults.batches),
    /** The route property stops generating after this long whatever FUZZ_RUNS says (a guard for slow machines). */
    timeLimitMs: number('FUZZ_TIME_LIMIT_S', 30) * 1000,
    /** The same for the state property and FUZZ_BATCHES. */
    stateTimeLimitMs: number('FUZZ_STATE_TIME_LIMIT_S', 20) * 1000,
    shrinkMs: number('FUZZ_SHRINK_S', 3) * 1000,
    maxShrunk: number('FUZZ_MAX_SHRUNK', 8),
    verbose: process.env.FUZZ_VERBOSE === '1',
  };
}

/**
 * Resident memory over the run, against the quiet reading after set-up (docs/fuzzing.md
 * gives the figures measured): what the process keeps once quiet again, and its peak.
 */
const RSS_KEPT_LIMIT = 64 * 1024 * 1024;
const RSS_PEAK_LIMIT = 128 * 1024 * 1024;
const QUIET_MS = 3000;
/** Runs of the route property between two restorations of the world. */
const RESTORE_EVERY = 100;
/** State failure classes shrunk (each batch replay costs two snapshots). */
const STATE_SHRUNK = 2;

/**
 * The property-based fuzz suite of issue 16 against one real registry process: every
 * documented route of /v2, /token and /api/v1 (read from the registry itself), plus
 * paths no route has, with generated names, digests, references, headers, queries and
 * bodies, sent as admin, ordinary user, robot, anonymous caller and forger.
 */
export function fuzzSuite(label: string, options: () => Promise<TargetOptions>, defaults: { runs: number; batches: number }): void {
  const settings = fuzzSettings(defaults);
  describe(`fuzzing every route of /v2, /token and /api/v1 on ${label} (seed ${settings.seed})`, () => {
    let target: FuzzTarget;
    let client: RawClient;
    let runner: CaseRunner;
    let routes: RouteSpec[];
    let cases: fc.Arbitrary<FuzzCase>;
    const rss: { at: string; bytes: number }[] = [];
    const sampleRss = async (at: string) => rss.push({ at, bytes: await target.rssBytes() });
    /** After a few quiet seconds the registry has run its idle collection: what is left is what it keeps. */
    const sampleQuietRss = async (at: string) => {
      await sleep(QUIET_MS);
      await sampleRss(`${at}, quiet`);
    };

    beforeAll(async () => {
      target = await FuzzTarget.start(await options());
      const openapi = await (await fetch(`${target.url}/api/v1/openapi.json`)).json();
      routes = [...(await dataPlaneRoutes()), ...managementRoutes(openapi as Parameters<typeof managementRoutes>[0])];
      // The fuzz sends from 127.0.0.2, so per-client login throttling aimed at it leaves the harness (127.0.0.1) alone.
      client = new RawClient(target.url, '127.0.0.2');
      const tokenRoute = routes.find((r) => r.template === '/token' && r.method === 'POST')!;
      runner = new CaseRunner(target, client, tokenRoute);
      cases = fuzzCases(target.vocabulary, routes);
      await sampleQuietRss('after set-up');
    });

    afterAll(async () => {
      await client?.close();
      await target?.stop();
    });

    it('answers every request without a 5xx, errors in the documented shape, refusing forged credentials and anonymous changes', async () => {
      let sinceSample = 0;
      const exploration = await explore(
        cases,
        async (c) => {
          const outcome = await runner.run(c);
          // An accepted request may take away what the others rely on (an administrator
          // deleting the admin account): put it back now and then.
          if (++sinceSample === RESTORE_EVERY) {
            sinceSample = 0;
            await sampleRss('during the route fuzz');
            await target.restore();
          }
          return outcome.findings;
        },
        { ...settings, numRuns: settings.runs, reset: () => target.restore() },
      );
      await sampleRss('after the route fuzz');
      if (settings.verbose) {
        console.log(coverageTable(runner.coverage));
        console.log([...runner.timing.entries()].map(([k, t]) => `${k}: ${t.n} cases, ${(t.ms / t.n).toFixed(1)} ms each`).join('\n'));
      }
      const context = `in ${exploration.runs} runs (seed ${settings.seed}${exploration.interrupted ? `, stopped by the ${settings.timeLimitMs / 1000} s limit` : ''})`;
      if (exploration.interrupted) console.warn(`route fuzz: only ${exploration.runs} of ${settings.runs} runs fitted in FUZZ_TIME_LIMIT_S=${settings.timeLimitMs / 1000}`);
      expect(exploration.classes.map((c) => c.key), formatClasses(exploration.classes, context)).toEqual([]);
      // Not vacuous: every documented route was exercised, and many requests got through.
      const missing = routes.filter((r) => !runner.coverage.has(`${r.method} ${r.template}`)).map((r) => `${r.method} ${r.template}`);
      expect(missing, 'routes the fuzz never reached').toEqual([]);
      const statuses = [...runner.coverage.values()].flatMap((m) => [...m.entries()]);
      const total = statuses.reduce((n, [, k]) => n + k, 0);
      const succeeded = statuses.filter(([s]) => typeof s === 'number' && s < 400).reduce((n, [, k]) => n + k, 0);
      expect(succeeded / total, 'share of requests answered below 400').toBeGreaterThan(0.1);
    }, settings.timeLimitMs + settings.maxShrunk * settings.shrinkMs + 120_000);

    it('changes nothing on a refused request (projects, members, robots, users, quotas, repositories, tags, referrers, uploads, blob files)', async () => {
      // The snapshot is not blind: an accepted change shows.
      await target.restore();
      const before = await target.snapshot();
      await target.controlChange();
      expect(stateDiff(before, await target.snapshot()).keys).toEqual(expect.arrayContaining(['projects', 'files']));

      const stats: BatchStats = { compared: 0, withAcceptedChange: 0 };
      const batches = fc.array(cases, { minLength: 1, maxLength: 6 });
      const exploration = await explore(batches, (batch) => runBatch(target, runner, batch, stats), { ...settings, reset: () => target.restore(), numRuns: settings.batches, timeLimitMs: settings.stateTimeLimitMs, maxShrunk: STATE_SHRUNK, shrinkMs: settings.shrinkMs * 5 });
      await sampleQuietRss('after the state fuzz');
      if (settings.verbose) console.log(`state batches: ${stats.compared} compared, ${stats.withAcceptedChange} with an accepted change`);
      const context = `in ${exploration.runs} batches (seed ${settings.seed}; ${stats.compared} compared, ${stats.withAcceptedChange} with an accepted change)`;
      if (exploration.interrupted) console.warn(`state fuzz: only ${exploration.runs} of ${settings.batches} batches fitted in FUZZ_STATE_TIME_LIMIT_S=${settings.stateTimeLimitMs / 1000}`);
      expect(exploration.classes.map((c) => c.key), formatClasses(exploration.classes, context)).toEqual([]);
      expect(stats.compared, `batches whose state was compared (${context})`).toBeGreaterThanOrEqual(Math.ceil(exploration.runs / 3));
    }, settings.stateTimeLimitMs + STATE_SHRUNK * settings.shrinkMs * 5 + 120_000);

    it('stays alive, with resident memory bounded', async () => {
      expect(await target.alive()).toBe(true);
      const report = rss.map((s) => `${s.at}: ${(s.bytes / 2 ** 20).toFixed(1)} MiB`).join(', ');
      if (settings.verbose) console.log(`RSS ${report}`);
      const first = rss[0]!.bytes;
      const last = rss[rss.length - 1]!;
      expect(last.at, 'the last sample is the quiet one after the state fuzz').toMatch(/quiet$/);
      expect(last.bytes - first, `RSS kept after the run, over the start (${report})`).toBeLessThan(RSS_KEPT_LIMIT);
      expect(Math.max(...rss.map((s) => s.bytes)) - first, `RSS peak over the start (${report})`).toBeLessThan(RSS_PEAK_LIMIT);
    });
  });
}

function coverageTable(coverage: Map<string, Map<number | string, number>>): string {
  return [...coverage.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([route, statuses]) => `${route.padEnd(70)} ${[...statuses.entries()].sort().map(([s, n]) => `${s}×${n}`).join(' ')}`)
    .join('\n');
}
