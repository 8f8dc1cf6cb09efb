// Names and labels of the objects generated for a Registry.
import type { Registry } from './model.js';

export function names(name: string) {
  return {
    deployment: name,
    service: name,
    config: `${name}-config`,
    adminSecret: `${name}-admin`,
    tokenKeySecret: `${name}-token-key`,
    data: `${name}-data`,
    pdb: name,
    ingress: name,
  };
}

export const MANAGED_BY = 'wharf-operator';

/** Stable labels used by selectors (never change: Deployment selectors are immutable). */
export function selectorLabels(reg: Registry): Record<string, string> {
  return { 'app.kubernetes.io/name': 'wharf-registry', 'app.kubernetes.io/instance': reg.metadata.name };
}

export function commonLabels(reg: Registry, version: string): Record<string, string> {
  return {
    ...selectorLabels(reg),
    'app.kubernetes.io/component': 'registry',
    'app.kubernetes.io/part-of': 'wharf',
    'app.kubernetes.io/managed-by': MANAGED_BY,
    'app.kubernetes.io/version': labelValue(version),
  };
}

/** A label value: at most 63 characters of [A-Za-z0-9_.-], starting and ending alphanumeric. */
export function labelValue(text: string): string {
  const cleaned = text.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 63);
  return cleaned.replace(/^[^A-Za-z0-9]+/, '').replace(/[^A-Za-z0-9]+$/, '');
}
