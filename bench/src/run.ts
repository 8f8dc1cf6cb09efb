import { dropPageCache, flushDirtyPages, load1 } from './machine.js';
import type { BenchOptions } from './options.js';
import type { Results, WorkloadId } from './report/results.js';
import { processTreePss, RssSampler } from './rss.js';
import type { PreparedTarget } from './setup.js';
import { blobPull, readOnce } from './workloads/blob-pull.js';
import { manifestGet } from './workloads/manifest-get.js';
import { monolithicPush } from './workloads/monolithic-push.js';
import { smallPush } from './workloads/small-push.js';

export const WORKLOADS: readonly WorkloadId[] = ['blobPull', 'monolithicPush', 'smallPush', 'manifestGet'];

export interface RunContext {
  options: BenchOptions;
  results: Results;
  /** Scratch space for wrk's script. */
  workDir: string;
  log: (line: string) => void;
  /** Set once the log has said that the page cache cannot be dropped. */
  warnedNoDrop?: boolean;
}

/** `round` is 1-based; 0 is the untimed warm-up, which records nothing but memory. */
async function measure(ctx: RunContext, p: PreparedTarget, workload: WorkloadId, round: number): Promise<string> {
  const { options: o, results } = ctx;
  const id = p.target.id;
  const warm = round === 0;
  const scale = (n: number) => (warm ? Math.max(o.monolithicPush.concurrency, Math.ceil(n / 5)) : n);
  const seconds = (s: number) => (warm ? Math.min(2, s) : s);
  switch (workload) {
    case 'blobPull': {
      // The page cache was dropped after the previous workload; read the blob back into it untimed.
      await readOnce(p.blobUrl);
      const { mibPerS } = await blobPull(p.blobUrl, { ...o.blobPull, durationS: seconds(o.blobPull.durationS), workDir: ctx.workDir });
      if (!warm) results.record(id, 'blobPull', round, mibPerS);
      return `${mibPerS.toFixed(1)} MiB/s`;
    }
    case 'monolithicPush': {
      const run = await monolithicPush(p.target.origin, p.uploadShape!, {
        ...o.monolithicPush,
        pushes: scale(o.monolithicPush.pushes),
        repo: 'bench/push',
        tagPrefix: warm ? 'warmup' : `round${round}`,
      });
      if (!warm) results.record(id, 'monolithicPush', round, run.pushesPerS);
      return `${run.pushesPerS.toFixed(2)} pushes/s (p50 ${run.p50Ms.toFixed(0)} ms, p99 ${run.p99Ms.toFixed(0)} ms)`;
    }
    case 'smallPush': {
      const run = await smallPush(p.target.origin, { ...o.smallPush, durationS: seconds(o.smallPush.durationS), repoPrefix: 'bench' });
      if (!warm) results.record(id, 'smallPush', round, run.pushesPerS);
      return `${run.pushesPerS.toFixed(1)} pushes/s (${run.pushes} pushes, p50 ${run.p50Ms.toFixed(0)} ms, p99 ${run.p99Ms.toFixed(0)} ms)`;
    }
    case 'manifestGet': {
      const { rps, p99Ms } = await manifestGet(p.manifestUrl!, { ...o.manifestGet, durationS: seconds(o.manifestGet.durationS), workDir: ctx.workDir });
      if (!warm) {
        results.record(id, 'manifestRps', round, rps);
        results.record(id, 'manifestP99', round, p99Ms);
      }
      return `${rps.toFixed(0)} requests/s, p99 ${p99Ms.toFixed(1)} ms`;
    }
  }
}

/** Runs one workload on one target while sampling its memory; a failure is recorded, not thrown. */
async function runOne(ctx: RunContext, p: PreparedTarget, workload: WorkloadId, round: number): Promise<void> {
  const sampler = p.target.pid === undefined ? undefined : new RssSampler(p.target.pid).start();
  try {
    const summary = await measure(ctx, p, workload, round);
    ctx.log(`  ${workload} · ${p.target.label}: ${summary}`);
  } catch (err) {
    const message = (err as Error).message;
    ctx.results.fail(p.target.id, workload, message);
    ctx.log(`  ${workload} · ${p.target.label}: FAILED ${message}`);
  } finally {
    const peak = sampler?.stop();
    if (peak) ctx.results.peakRss(p.target.id, workload, peak);
    // Read once, after the timed window: one reading of a PostgreSQL server's 19 processes
    // costs 9 ms of CPU, which sampled every 50 ms took a fifth of a core from the run.
    const companion = p.target.companion;
    const companionPss = companion ? processTreePss(companion.pid) : undefined;
    if (companion && companionPss !== undefined) ctx.results.companionPeak(p.target.id, companion.label, companionPss);
  }
  const flush = await flushDirtyPages();
  if (flush.ms >= FLUSH_LOG_MS) ctx.log(`    then flushed ${(flush.dirtyBytes / 2 ** 20).toFixed(0)} MiB of dirty pages in ${(flush.ms / 1000).toFixed(1)} s (untimed)`);
  if (!(await dropPageCache()) && !ctx.warnedNoDrop) {
    ctx.warnedNoDrop = true;
    ctx.log('    cannot drop the page cache (needs root): later targets write into colder memory; push figures are less comparable');
  }
}

/** Flushes shorter than this are not worth a log line. */
const FLUSH_LOG_MS = 250;

function applies(p: PreparedTarget, workload: WorkloadId): boolean {
  return p.target.kind === 'registry' || workload === 'blobPull';
}

/**
 * The targets' order in round `round`: rotated, so that no target always goes first,
 * and reversed in every other round, so that no target always follows the same one.
 */
export function roundOrder<T>(items: readonly T[], round: number): T[] {
  const n = Math.max(1, items.length);
  const first = ((round % n) + n) % n;
  const rotate = (list: readonly T[], k: number) => [...list.slice(k), ...list.slice(0, k)];
  return Math.abs(round % 2) === 0 ? rotate([...items].reverse(), n - 1 - first) : rotate(items, first);
}

/**
 * The optional warm-up, then `rounds` rounds; in each, every workload runs on every
 * target in turn before the next workload starts, so each workload's figures for all
 * targets come from the same few minutes. Returns the 1-minute load before each round.
 */
export async function runRounds(ctx: RunContext, targets: readonly PreparedTarget[]): Promise<number[]> {
  const loads: number[] = [];
  const rounds = ctx.options.warmup ? [0] : [];
  for (let r = 1; r <= ctx.options.rounds; r++) rounds.push(r);
  for (const round of rounds) {
    if (round > 0) loads.push(load1());
    ctx.log(round === 0 ? 'warm-up (untimed)' : `round ${round}/${ctx.options.rounds} (load ${load1().toFixed(2)})`);
    for (const workload of WORKLOADS.filter((w) => !ctx.options.workloads || ctx.options.workloads.includes(w))) {
      for (const p of roundOrder(targets, round)) {
        if (!applies(p, workload) || ctx.results.failure(p.target.id, workload)) continue;
        await runOne(ctx, p, workload, round);
      }
    }
  }
  return loads;
}
