import { performance } from 'node:perf_hooks';
import { runConcurrently } from '../util/concurrency.js';
import { quantile } from '../util/stats.js';

export interface PushRun {
  pushes: number;
  pushesPerS: number;
  p50Ms: number;
  p99Ms: number;
}

export interface PushLimit {
  /** How many pushes are prepared: the run never does more. */
  pushes: number;
  /** When set, no push starts after this many seconds; the ones in flight finish and count. */
  durationS?: number;
}

/**
 * Times pushes run `concurrency` at a time: wall time from the first start to the
 * last finish, and each push's latency. Everything a push needs must be prepared
 * before this is called, so no client-side hashing is timed.
 */
export async function timePushes(limit: PushLimit, concurrency: number, push: (index: number) => Promise<void>): Promise<PushRun> {
  const latencies: number[] = [];
  const start = performance.now();
  const deadline = limit.durationS === undefined ? Infinity : start + limit.durationS * 1000;
  await runConcurrently(
    limit.pushes,
    concurrency,
    async (index) => {
      const t0 = performance.now();
      await push(index);
      latencies.push(performance.now() - t0);
    },
    () => performance.now() >= deadline,
  );
  const elapsedS = (performance.now() - start) / 1000;
  return { pushes: latencies.length, pushesPerS: latencies.length / elapsedS, p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99) };
}
