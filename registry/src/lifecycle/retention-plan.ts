import { selectsRepository, selectsTag } from './selectors.js';
import { ruleLabel } from './immutability.js';
import type { RetentionPolicy, RetentionRule } from './retention-policy.js';

/** One tag (or one untagged artifact, tag null) that retention decides about. */
export interface RetentionCandidate {
  repository: string;
  tag: string | null;
  digest: string;
  /** When the tag was last pushed (for an untagged artifact: when the manifest was). */
  pushedAt: Date;
  /** When the artifact was last pulled; null when never. */
  pulledAt: Date | null;
  /** Label of the immutability rule that protects the tag, if any. */
  immutableBy?: string;
  /** Whether the artifact is signed and the project protects signed artifacts. */
  protectedSigned?: boolean;
}

export interface RetentionDecision {
  repository: string;
  tag: string | null;
  digest: string;
  reason: string;
}

export interface RetentionPlan {
  kept: RetentionDecision[];
  deleted: RetentionDecision[];
}

const DAY_MS = 24 * 3600 * 1000;
const newestFirst = (a: Date | null, b: Date | null) => (b?.getTime() ?? -Infinity) - (a?.getTime() ?? -Infinity);
const byKey = (a: RetentionCandidate, b: RetentionCandidate) => (a.tag ?? a.digest) < (b.tag ?? b.digest) ? -1 : (a.tag ?? a.digest) > (b.tag ?? b.digest) ? 1 : 0;

/** Those of `selected` (one repository's, matched by `rule`) that the rule's template retains, with why. Pure. */
function retainedBy(rule: RetentionRule, label: string, selected: RetentionCandidate[], now: Date): Map<RetentionCandidate, string> {
  const retained = new Map<RetentionCandidate, string>();
  const keep = (list: RetentionCandidate[], why: string) => list.forEach((c) => retained.set(c, `${why} (rule ${label})`));
  switch (rule.template) {
    case 'always':
      keep(selected, 'always');
      break;
    case 'latestPushedK':
      keep([...selected].sort((a, b) => newestFirst(a.pushedAt, b.pushedAt) || byKey(a, b)).slice(0, rule.count ?? 0), `among the ${rule.count} most recently pushed`);
      break;
    case 'latestPulledN':
      keep(
        [...selected].sort((a, b) => newestFirst(a.pulledAt, b.pulledAt) || newestFirst(a.pushedAt, b.pushedAt) || byKey(a, b)).slice(0, rule.count ?? 0),
        `among the ${rule.count} most recently pulled`,
      );
      break;
    case 'nDaysSinceLastPush': {
      const since = now.getTime() - (rule.days ?? 0) * DAY_MS;
      keep(selected.filter((c) => c.pushedAt.getTime() >= since), `pushed within ${rule.days} days`);
      break;
    }
    case 'nDaysSinceLastPull': {
      // Never pulled counts from the push, so a fresh push is not deleted before anyone could pull it.
      const since = now.getTime() - (rule.days ?? 0) * DAY_MS;
      keep(selected.filter((c) => (c.pulledAt ?? c.pushedAt).getTime() >= since), `pulled (or, never pulled, pushed) within ${rule.days} days`);
      break;
    }
  }
  return retained;
}

/**
 * Harbor's retention semantics. A repository that no enabled rule selects is left
 * alone. In a selected repository every candidate is decided: rules combine with OR,
 * so a candidate any rule retains is kept, and what no rule retains is deleted.
 * Counts are per repository. Immutable tags and protected signed artifacts are
 * always kept. Pure and deterministic.
 */
export function planRetention(policy: RetentionPolicy, candidates: RetentionCandidate[], now: Date): RetentionPlan {
  const plan: RetentionPlan = { kept: [], deleted: [] };
  const rules = policy.rules.map((rule, index) => ({ rule, label: ruleLabel({}, index) })).filter((r) => !r.rule.disabled);
  const byRepository = new Map<string, RetentionCandidate[]>();
  for (const c of candidates) byRepository.set(c.repository, [...(byRepository.get(c.repository) ?? []), c]);
  for (const [repository, list] of [...byRepository].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const applicable = rules.filter((r) => selectsRepository(r.rule, repository));
    if (applicable.length === 0) continue;
    const reasons = new Map<RetentionCandidate, string>();
    for (const { rule, label } of applicable) {
      const selected = list.filter((c) => (c.tag === null ? rule.untagged === true : selectsTag(rule, c.tag)));
      for (const [c, why] of retainedBy(rule, label, selected, now)) if (!reasons.has(c)) reasons.set(c, why);
    }
    for (const c of [...list].sort(byKey)) {
      const decision = { repository, tag: c.tag, digest: c.digest };
      if (c.immutableBy) plan.kept.push({ ...decision, reason: `immutable (immutability rule ${c.immutableBy})` });
      else if (c.protectedSigned) plan.kept.push({ ...decision, reason: 'signed, and the project protects signed artifacts' });
      else if (reasons.has(c)) plan.kept.push({ ...decision, reason: reasons.get(c)! });
      else plan.deleted.push({ ...decision, reason: 'no rule retains it' });
    }
  }
  return plan;
}
