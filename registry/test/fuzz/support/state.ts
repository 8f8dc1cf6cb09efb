import { isDeepStrictEqual } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FuzzCase } from './case.js';
import { Invariant, surfaceOf } from './invariants.js';
import type { CaseRunner, Finding } from './runner.js';
import type { FuzzTarget } from './target.js';

const MUTATING = new Set(['PUT', 'POST', 'PATCH', 'DELETE']);

/** The parts of two snapshots that differ, each with its value before and after. */
export function stateDiff(before: Record<string, unknown>, after: Record<string, unknown>): { keys: string[]; text: string } {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((k) => !isDeepStrictEqual(before[k], after[k]));
  const show = (x: unknown) => (JSON.stringify(x) ?? 'absent').slice(0, 600);
  const text = keys.map((k) => `${k}:\n      before ${show(before[k])}\n      after  ${show(after[k])}`).join('\n');
  return { keys, text };
}

export interface BatchStats {
  /** Batches of only refused (or read-only) requests, whose state was compared. */
  compared: number;
  /** Batches where some change was accepted, so state could rightly differ. */
  withAcceptedChange: number;
}

/**
 * Sends a batch between two snapshots. If no request in it was an accepted change
 * (a PUT, POST, PATCH or DELETE answered below 400, /token aside, which changes
 * nothing), the snapshots must be equal. Effects that land just after a response
 * (a file removed asynchronously) get a few hundred milliseconds to settle.
 */
export async function runBatch(target: FuzzTarget, runner: CaseRunner, batch: FuzzCase[], stats: BatchStats): Promise<Finding[]> {
  await target.restore();
  const before = await target.snapshot();
  const sent: NonNullable<Finding['batch']> = [];
  const findings: Finding[] = [];
  let accepted = false;
  for (const c of batch) {
    const outcome = await runner.run(c);
    sent.push({ exchange: outcome.exchange, ...(outcome.authorizationNote && { authorizationNote: outcome.authorizationNote }) });
    const status = outcome.exchange.status;
    if (status !== undefined && status < 400 && MUTATING.has(c.method) && surfaceOf(c) !== 'token') accepted = true;
    // A scoped case's token request is a POST to /token: no state either way.
  }
  if (accepted) {
    stats.withAcceptedChange++;
    return findings;
  }
  stats.compared++;
  let after = await target.snapshot();
  for (let settle = 0; settle < 3 && !isDeepStrictEqual(before, after); settle++) {
    await sleep(300);
    after = await target.snapshot();
  }
  if (!isDeepStrictEqual(before, after)) {
    const diff = stateDiff(before, after);
    const last = sent[sent.length - 1]!;
    findings.push({
      invariant: Invariant.stateChanged,
      detail: `changed: ${diff.keys.join(', ')}\n${diff.text}`,
      exchange: last.exchange,
      case: batch[batch.length - 1]!,
      batch: sent,
    });
  }
  return findings;
}
