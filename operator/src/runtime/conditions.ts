// kstatus-compatible conditions (Ready, Reconciling, Stalled) on meta/v1 Condition lists.
// lastTransitionTime changes only when a condition's status changes, so recomputing identical
// conditions yields an identical status (and no write).
import type { Condition } from '../api/schema.js';
import { metaTime } from './time.js';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

export function findCondition(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/** Returns a new list with `input` set, keeping lastTransitionTime when the status is unchanged. */
export function setCondition(list: readonly Condition[] | undefined, input: ConditionInput, observedGeneration: number | undefined, now = new Date()): Condition[] {
  const previous = findCondition(list, input.type);
  const next: Condition = {
    type: input.type,
    status: input.status,
    observedGeneration,
    lastTransitionTime: previous && previous.status === input.status ? previous.lastTransitionTime : metaTime(now),
    reason: input.reason,
    message: input.message.slice(0, 32768),
  };
  if (observedGeneration === undefined) delete next.observedGeneration;
  const out = (list ?? []).filter((c) => c.type !== input.type);
  out.push(next);
  return sortConditions(out);
}

export function removeCondition(list: readonly Condition[] | undefined, type: string): Condition[] {
  return (list ?? []).filter((c) => c.type !== type);
}

const ORDER = ['Ready', 'Reconciling', 'Stalled'];
function sortConditions(list: Condition[]): Condition[] {
  const rank = (t: string) => (ORDER.includes(t) ? ORDER.indexOf(t) : ORDER.length);
  return list.sort((a, b) => rank(a.type) - rank(b.type) || a.type.localeCompare(b.type));
}

/**
 * The kstatus trio from one summary of where reconciliation stands:
 * - ready: the desired state is realised;
 * - progressing: work is under way (Reconciling=True);
 * - stalled: no progress without a change from the user (Stalled=True).
 * Exactly one of them holds.
 */
export type Summary =
  | { state: 'ready'; reason: string; message: string }
  | { state: 'progressing'; reason: string; message: string }
  | { state: 'stalled'; reason: string; message: string };

export function applySummary(list: readonly Condition[] | undefined, summary: Summary, generation: number | undefined, now = new Date()): Condition[] {
  let out = setCondition(
    list,
    { type: 'Ready', status: summary.state === 'ready' ? 'True' : 'False', reason: summary.reason, message: summary.message },
    generation,
    now,
  );
  out = summary.state === 'progressing'
    ? setCondition(out, { type: 'Reconciling', status: 'True', reason: summary.reason, message: summary.message }, generation, now)
    : removeCondition(out, 'Reconciling');
  out = summary.state === 'stalled'
    ? setCondition(out, { type: 'Stalled', status: 'True', reason: summary.reason, message: summary.message }, generation, now)
    : removeCondition(out, 'Stalled');
  return out;
}
