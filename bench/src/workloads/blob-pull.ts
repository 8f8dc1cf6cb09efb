import { runWrk, wrkErrors } from '../load/wrk.js';

export interface BlobPullOptions {
  durationS: number;
  connections: number;
  threads: number;
  workDir: string;
}

/**
 * GETs one large blob over and over from `connections` keep-alive connections for
 * `durationS` seconds (wrk). Returns MiB/s received; partial responses at the end
 * count, so the figure is bytes over wall time.
 */
export async function blobPull(url: string, options: BlobPullOptions): Promise<{ mibPerS: number }> {
  const result = await runWrk({ url, threads: options.threads, connections: options.connections, durationS: options.durationS, workDir: options.workDir });
  const errors = wrkErrors(result);
  if (errors) throw new Error(`blob pull: ${errors} (${result.requests} requests)`);
  return { mibPerS: result.bytes / 2 ** 20 / result.durationS };
}

/** GETs `url` once and discards the body (untimed), failing unless the answer is 200. */
export async function readOnce(url: string): Promise<void> {
  const res = await fetch(url);
  if (res.status !== 200 || !res.body) throw new Error(`GET ${url}: status ${res.status}, expected 200`);
  for await (const _ of res.body);
}
