import { performance } from 'node:perf_hooks';
import { runConcurrently } from '../util/concurrency.js';
import { quantile } from '../util/stats.js';

export interface PushRun {
  pushes: number;
  pushesPerS: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * Times `count` pushes run `concurrency` at a time: wall time from the first start
 * to the last finish, and each push's latency. Everything a push needs must be
 * prepared before this is called, so no client-side hashing is timed.
 */
export async function timePushes(count: number, concurrency: number, push: (index: number) => Promise<void>): Promise<PushRun> {
  const latencies: number[] = [];
  const start = performance.now();
  await runConcurrently(count, concurrency, async (index) => {
    const t0 = performance.now();
    await push(index);
    latencies.push(performance.now() - t0);
  });
  const elapsedS = (performance.now() - start) / 1000;
  return { pushes: count, pushesPerS: count / elapsedS, p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99) };
}
