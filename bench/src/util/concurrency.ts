/**
 * Runs `task(0..count-1)` with at most `concurrency` in flight, each worker taking
 * the next index as soon as it is free, until the indexes run out or `stop()` says
 * so (checked before each new index). After a failure no new index is started; the
 * first failure is thrown once every worker has stopped.
 */
export async function runConcurrently(count: number, concurrency: number, task: (index: number) => Promise<void>, stop: () => boolean = () => false): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < count && !stop()) {
      const index = next++;
      try {
        await task(index);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const settled = await Promise.allSettled(Array.from({ length: Math.min(concurrency, count) }, worker));
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) throw failure.reason;
}
