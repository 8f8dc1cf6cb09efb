export { API_VERSION, GROUP, VERSION } from './group.js';
export { KINDS, kindDefinition, type KindDefinition } from './kinds.js';
export { renderCrd, crdName } from './crd.js';
export type { Condition } from './schema.js';
export type { RegistrySpec, RegistryStatus } from './registry.js';
export type { ProjectSpec, ProjectStatus } from './project.js';
export type { RobotAccountSpec, RobotAccountStatus } from './robotaccount.js';
export type { ReplicationRuleSpec, ReplicationRuleStatus } from './replicationrule.js';
export type { RegistryObject, ProjectObject, RobotAccountObject, ReplicationRuleObject } from './types.js';
