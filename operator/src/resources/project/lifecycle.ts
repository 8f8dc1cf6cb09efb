// A Project's retention and immutability policies as the registry's API takes them, and
// whether the registry's current ones differ. Pure: the controller reads, calls these, writes.
import type { ProjectSpec } from '../../api/project.js';
import type { components } from '../../registry-client/schema.js';

export type RetentionPolicy = components['schemas']['RetentionPolicy'];
export type ImmutabilityPolicy = components['schemas']['ImmutabilityPolicy'];

export interface DesiredLifecycle {
  /** Undefined: the Project does not manage the registry's policy. */
  retention?: RetentionPolicy;
  immutability?: ImmutabilityPolicy;
}

export function renderLifecycle(spec: ProjectSpec): DesiredLifecycle {
  return {
    ...(spec.retention && { retention: { rules: spec.retention.rules, schedule: spec.retention.schedule ?? null } as RetentionPolicy }),
    ...(spec.immutability && { immutability: { rules: spec.immutability.rules, protectSignedArtifacts: spec.immutability.protectSignedArtifacts ?? false } }),
  };
}

/** JSON with object keys sorted: the registry stores rules as jsonb, which does not keep key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

export function samePolicy(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}
