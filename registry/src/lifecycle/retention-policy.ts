import { CronError, parseCron } from '../jobs/cron.js';
import { ociError } from '../oci/errors.js';
import { checkSelectors, type Selectors } from './selectors.js';

/** Harbor's retention templates: two counts, two ages, and everything. */
export const RETENTION_TEMPLATES = ['latestPushedK', 'latestPulledN', 'nDaysSinceLastPush', 'nDaysSinceLastPull', 'always'] as const;
export type RetentionTemplate = (typeof RETENTION_TEMPLATES)[number];

export const COUNT_TEMPLATES: readonly RetentionTemplate[] = ['latestPushedK', 'latestPulledN'];
export const DAYS_TEMPLATES: readonly RetentionTemplate[] = ['nDaysSinceLastPush', 'nDaysSinceLastPull'];

export interface RetentionRule extends Selectors {
  template: RetentionTemplate;
  /** latestPushedK, latestPulledN: how many artifacts per repository. */
  count?: number;
  /** nDaysSinceLastPush, nDaysSinceLastPull: how many days back. */
  days?: number;
  /** Whether untagged artifacts are selected too (tag patterns do not apply to them). */
  untagged?: boolean;
  disabled?: boolean;
}

export interface RetentionPolicy {
  rules: RetentionRule[];
  /** Five-field cron expression (UTC) for scheduled runs; null for on-demand only. */
  schedule: string | null;
}

export const EMPTY_RETENTION: RetentionPolicy = { rules: [], schedule: null };

/** What a new proxy-cache project gets (as Harbor): keep what was pulled in the last 7 days. */
export function defaultProxyCacheRetention(): RetentionPolicy {
  return { rules: [{ template: 'nDaysSinceLastPull', days: 7, tagMatches: '**', repoMatches: '**', untagged: true }], schedule: '0 4 * * *' };
}

function invalid(field: string, message: string): never {
  throw ociError('INVALID_REQUEST', { field }, { message: `${field}: ${message}` });
}

/** Refuses a policy that cannot run: a parameter its template needs is missing, a pattern or the schedule does not parse. */
export function checkRetentionPolicy(policy: RetentionPolicy): void {
  if (policy.rules.length > 50) invalid('rules', 'at most 50 rules');
  policy.rules.forEach((rule, i) => {
    const where = `rules[${i}]`;
    if (!RETENTION_TEMPLATES.includes(rule.template)) invalid(`${where}.template`, `one of ${RETENTION_TEMPLATES.join(', ')}`);
    if (COUNT_TEMPLATES.includes(rule.template) && !(Number.isInteger(rule.count) && rule.count! >= 0)) invalid(`${where}.count`, `${rule.template} needs a count (an integer, 0 or more)`);
    if (DAYS_TEMPLATES.includes(rule.template) && !(Number.isInteger(rule.days) && rule.days! >= 0)) invalid(`${where}.days`, `${rule.template} needs days (an integer, 0 or more)`);
    checkSelectors(where, rule);
  });
  if (policy.schedule !== null) {
    try {
      parseCron(policy.schedule);
    } catch (err) {
      if (err instanceof CronError) invalid('schedule', err.message);
      throw err;
    }
  }
}
