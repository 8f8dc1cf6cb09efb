import { setTimeout as sleep } from 'node:timers/promises';
import type { ManagementClient } from '../support/auth.js';

export interface Decision {
  repository: string;
  tag: string | null;
  digest: string;
  reason: string;
}

export interface RetentionReport {
  project: string;
  dryRun: boolean;
  kept: Decision[];
  deleted: Decision[];
  manifestsDeleted: { repository: string; digest: string }[];
  skipped: Decision[];
}

/** Queues a retention run of `project` through the management API and waits for its report. */
export async function retentionRun(api: ManagementClient, project: string, dryRun: boolean, timeoutMs = 60_000): Promise<RetentionReport> {
  let run = await api.ok('POST', `/projects/${project}/retention/runs`, { dryRun });
  const deadline = Date.now() + timeoutMs;
  while (run.state === 'queued' || run.state === 'running') {
    if (Date.now() > deadline) throw new Error(`retention run ${run.id} still ${run.state} after ${timeoutMs} ms`);
    await sleep(50);
    run = await api.ok('GET', `/projects/${project}/retention/runs/${run.id}`);
  }
  if (run.state !== 'succeeded') throw new Error(`retention run ${run.id} ${run.state}: ${run.error}`);
  return run.report as RetentionReport;
}

/** Tag names of `decisions` (untagged ones as `@<digest>`), sorted. */
export const tagsOf = (decisions: Decision[]) => decisions.map((d) => d.tag ?? `@${d.digest}`).sort();
