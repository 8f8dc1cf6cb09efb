// meta/v1 LabelSelector semantics, evaluated locally against cached objects' labels: every
// matchLabels pair and every matchExpressions requirement must hold; an empty selector matches
// everything (as in Kubernetes).
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

export function matchesLabelSelector(selector: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (have[key] !== value) return false;
  for (const { key, operator, values = [] } of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(have, key);
    const ok =
      operator === 'In' ? present && values.includes(have[key]!) :
      operator === 'NotIn' ? !present || !values.includes(have[key]!) :
      operator === 'Exists' ? present :
      !present;
    if (!ok) return false;
  }
  return true;
}
