// Applies owned objects with server-side apply, but only when needed, so that a reconcile of an
// unchanged object writes nothing.
//
// Each applied object carries the hash of what we applied (annotation wharf.dev/applied-hash).
// An apply is skipped when the live object carries the hash of the current desired object (so no
// field was added to or removed from what we manage) and the live object still holds every
// desired value (so nobody changed a field we manage). Otherwise we apply, and server-side apply
// with our single field manager sets our fields and removes the ones we no longer want.
import { createHash } from 'node:crypto';
import type { KubeClient } from '../kube/client.js';
import type { KubeObject } from '../kube/types.js';
import type { OperatorMetrics } from './metrics.js';
import { sameQuantity } from './quantity.js';

export const APPLIED_HASH_ANNOTATION = 'wharf.dev/applied-hash';

/** JSON with sorted keys: the same value always gives the same text. */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}

export function hashOf(value: unknown): string {
  return createHash('sha256').update(stableStringify(value)).digest('hex');
}

/** True when every value in `desired` is present and equal in `live` (arrays: same length, element-wise). */
export function isSubset(desired: unknown, live: unknown): boolean {
  if (desired === live) return true;
  if (typeof desired === 'string' && typeof live === 'string') return sameQuantity(desired, live);
  if (typeof desired === 'number' && typeof live === 'string') return sameQuantity(String(desired), live);
  if (desired === null || live === null || typeof desired !== 'object' || typeof live !== 'object') return false;
  if (Array.isArray(desired)) {
    if (!Array.isArray(live) || desired.length !== live.length) return false;
    return desired.every((d, i) => isSubset(d, live[i]));
  }
  if (Array.isArray(live)) return false;
  const l = live as Record<string, unknown>;
  return Object.entries(desired as Record<string, unknown>).every(([k, v]) => v === undefined || isSubset(v, l[k]));
}

/** Adds the applied-hash annotation to a desired object. */
export function withAppliedHash<T extends KubeObject>(desired: T): T {
  const hash = hashOf(desired);
  return { ...desired, metadata: { ...desired.metadata, annotations: { ...(desired.metadata.annotations ?? {}), [APPLIED_HASH_ANNOTATION]: hash } } };
}

export interface ApplyOutcome<T> {
  object: T;
  changed: boolean;
}

export class Applier {
  constructor(
    private readonly client: KubeClient,
    private readonly metrics?: OperatorMetrics,
  ) {}

  async apply<T extends KubeObject>(desired: KubeObject, live: T | undefined, signal?: AbortSignal): Promise<ApplyOutcome<T>> {
    const annotated = withAppliedHash(desired);
    if (live && isSubset(annotated, live)) {
      this.metrics?.applies.inc({ kind: desired.kind, outcome: 'unchanged' });
      return { object: live, changed: false };
    }
    const object = await this.client.apply<T>(annotated, { signal });
    const changed = !live || object.metadata.resourceVersion !== live.metadata.resourceVersion;
    this.metrics?.applies.inc({ kind: desired.kind, outcome: changed ? 'applied' : 'unchanged' });
    return { object, changed };
  }
}
