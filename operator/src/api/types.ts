// TypeScript types of the four kinds, derived from the same TypeBox schemas as the CRDs
// (Static<> of each spec and status), so the two cannot drift apart.
import type { KubeObject } from '../kube/types.js';
import type { ProjectSpec, ProjectStatus } from './project.js';
import type { RegistrySpec, RegistryStatus } from './registry.js';
import type { ReplicationRuleSpec, ReplicationRuleStatus } from './replicationrule.js';
import type { RobotAccountSpec, RobotAccountStatus } from './robotaccount.js';

interface WharfObject<K extends string, S, T> extends KubeObject {
  apiVersion: 'wharf.dev/v1alpha1';
  kind: K;
  spec: S;
  status?: T;
}

export type RegistryObject = WharfObject<'Registry', RegistrySpec, RegistryStatus>;
export type ProjectObject = WharfObject<'Project', ProjectSpec, ProjectStatus>;
export type RobotAccountObject = WharfObject<'RobotAccount', RobotAccountSpec, RobotAccountStatus>;
export type ReplicationRuleObject = WharfObject<'ReplicationRule', ReplicationRuleSpec, ReplicationRuleStatus>;
