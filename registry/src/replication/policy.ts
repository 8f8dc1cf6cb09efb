import type { Flattening } from './flatten.js';

export type ReplicationMode = 'push' | 'pull';
export type ResourceKind = 'image' | 'artifact' | 'all';
export type TriggerType = 'manual' | 'scheduled' | 'eventBased';

export interface PatternFilter {
  matches: string[];
  excludes: string[];
}

/** What a policy holds besides its name and registry (stored as one JSON document). */
export interface PolicySpec {
  description: string;
  mode: ReplicationMode;
  filters: { name: PatternFilter; tag: PatternFilter; label: PatternFilter; resource: ResourceKind };
  destination: { namespace: string; flattening: Flattening };
  trigger: { type: TriggerType; cron?: string };
  replicateDeletion: boolean;
  override: boolean;
  enabled: boolean;
  /** 0: unlimited. */
  bandwidthLimitKiBps: number;
  copyReferrers: boolean;
}

export interface Policy extends PolicySpec {
  id: string;
  name: string;
  registry: string;
  registryId: string;
  createdAt: Date;
  updatedAt: Date;
}
