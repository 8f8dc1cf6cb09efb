import { ociError } from '../oci/errors.js';
import { checkSelectors, selectsRepository, selectsTag, type Selectors } from './selectors.js';

/** A tag immutability rule: tags it selects cannot be moved to another digest or deleted. */
export interface ImmutabilityRule extends Selectors {
  /** Named in refusals; `rule #<n>` (1-based) when absent. */
  name?: string;
  disabled?: boolean;
}

export interface ImmutabilityPolicy {
  rules: ImmutabilityRule[];
  /** Refuse deleting a signed artifact (docs/lifecycle.md says what "signed" is). */
  protectSignedArtifacts: boolean;
}

export const EMPTY_IMMUTABILITY: ImmutabilityPolicy = { rules: [], protectSignedArtifacts: false };

export function ruleLabel(rule: ImmutabilityRule, index: number): string {
  return rule.name ? `"${rule.name}"` : `#${index + 1}`;
}

export function checkImmutabilityPolicy(policy: ImmutabilityPolicy): void {
  if (policy.rules.length > 100) throw ociError('INVALID_REQUEST', { rules: policy.rules.length }, { message: 'immutability: at most 100 rules' });
  policy.rules.forEach((rule, i) => checkSelectors(`rules[${i}]`, rule));
}

/** The first enabled rule that makes `tag` of `repository` immutable, with its label; undefined when none. Pure. */
export function immutableBy(policy: ImmutabilityPolicy, repository: string, tag: string): string | undefined {
  const index = policy.rules.findIndex((r) => !r.disabled && selectsRepository(r, repository) && selectsTag(r, tag));
  return index < 0 ? undefined : ruleLabel(policy.rules[index]!, index);
}

export function immutableTagError(repository: string, tag: string, rule: string, action: 'moved to another digest' | 'deleted') {
  return ociError('DENIED', { repository, tag, rule }, { message: `tag "${tag}" of ${repository} is immutable (immutability rule ${rule}) and cannot be ${action}` });
}
