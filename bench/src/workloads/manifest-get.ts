import { MEDIA_TYPE } from '../oci/content.js';
import { runWrk, wrkErrors } from '../load/wrk.js';

export interface ManifestGetOptions {
  durationS: number;
  connections: number;
  threads: number;
  workDir: string;
}

/** GET of one manifest by tag from `connections` keep-alive connections (wrk): requests per second and p99. */
export async function manifestGet(url: string, options: ManifestGetOptions): Promise<{ rps: number; p99Ms: number }> {
  const result = await runWrk({
    url,
    threads: options.threads,
    connections: options.connections,
    durationS: options.durationS,
    headers: { Accept: MEDIA_TYPE.manifest },
    workDir: options.workDir,
  });
  const errors = wrkErrors(result);
  if (errors) throw new Error(`manifest GET: ${errors} (${result.requests} requests)`);
  return { rps: result.requests / result.durationS, p99Ms: result.latencyMs.p99 };
}
