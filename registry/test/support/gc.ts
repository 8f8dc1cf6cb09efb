import { setTimeout as sleep } from 'node:timers/promises';
import type { GcReport } from '../../src/jobs/gc.js';

export interface GcRun {
  id: string;
  state: 'queued' | 'running' | 'succeeded' | 'failed';
  error?: string;
  progress?: GcReport;
  report?: GcReport;
}

/** Queues a garbage collection run through the management API and waits for its end. */
export async function runGc(base: string, body: { dryRun?: boolean; deleteUntagged?: boolean } = {}, authorization?: string, timeoutMs = 60_000): Promise<GcRun> {
  const headers = { 'Content-Type': 'application/json', ...(authorization && { Authorization: authorization }) };
  const queued = await fetch(`${base}/api/v1/gc`, { method: 'POST', headers, body: JSON.stringify(body) });
  if (queued.status !== 202) throw new Error(`POST /api/v1/gc → ${queued.status} ${await queued.text()}`);
  let run = (await queued.json()) as GcRun;
  const deadline = Date.now() + timeoutMs;
  while (run.state === 'queued' || run.state === 'running') {
    if (Date.now() > deadline) throw new Error(`garbage collection ${run.id} still ${run.state} after ${timeoutMs} ms; progress: ${JSON.stringify(run.progress)}`);
    await sleep(50);
    const res = await fetch(`${base}/api/v1/gc/${run.id}`, { headers });
    if (res.status !== 200) throw new Error(`GET /api/v1/gc/${run.id} → ${res.status} ${await res.text()}`);
    run = (await res.json()) as GcRun;
  }
  return run;
}

/** Like runGc, but fails unless the run succeeded; returns its report. */
export async function gcReport(base: string, body: { dryRun?: boolean; deleteUntagged?: boolean } = {}, authorization?: string): Promise<GcReport> {
  const run = await runGc(base, body, authorization);
  if (run.state !== 'succeeded' || !run.report) throw new Error(`garbage collection ${run.id} ${run.state}: ${run.error ?? 'no report'}`);
  return run.report;
}
