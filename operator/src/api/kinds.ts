// The four Wharf kinds and how each is exposed as a CRD: names, printer columns, root-level rules.
import type { TSchema } from '@sinclair/typebox';
import { ProjectSpec, ProjectStatus } from './project.js';
import { RegistrySpec, RegistryStatus } from './registry.js';
import { ReplicationRuleSpec, ReplicationRuleStatus } from './replicationrule.js';
import { RobotAccountSpec, RobotAccountStatus } from './robotaccount.js';
import type { CelRule } from './schema.js';

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface KindDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  description: string;
  spec: TSchema;
  status: TSchema;
  specRequired: boolean;
  printerColumns: PrinterColumn[];
  rootValidations: CelRule[];
}

const READY_COLUMN: PrinterColumn = { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' };
const STATUS_COLUMN: PrinterColumn = { name: 'Status', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].message', priority: 1 };
const AGE_COLUMN: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };
const REGISTRY_COLUMN: PrinterColumn = { name: 'Registry', type: 'string', jsonPath: '.spec.registryRef.name' };

export const KINDS: readonly KindDefinition[] = [
  {
    kind: 'Registry',
    plural: 'registries',
    singular: 'registry',
    shortNames: ['wreg'],
    description: 'A Wharf OCI registry: its Deployment, Service, configuration, secrets and data volume.',
    spec: RegistrySpec,
    status: RegistryStatus,
    specRequired: true,
    printerColumns: [
      READY_COLUMN,
      { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' },
      { name: 'Available', type: 'integer', jsonPath: '.status.readyReplicas' },
      { name: 'Version', type: 'string', jsonPath: '.status.version' },
      { name: 'Endpoint', type: 'string', jsonPath: '.status.endpoint' },
      STATUS_COLUMN,
      AGE_COLUMN,
    ],
    rootValidations: [
      {
        rule: "size(self.metadata.name) <= 45 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
        message: 'metadata.name must be a DNS-1035 label of at most 45 characters: it names the Service and the other generated objects',
      },
    ],
  },
  {
    kind: 'Project',
    plural: 'projects',
    singular: 'project',
    shortNames: ['wproj'],
    description: 'A project in a Wharf registry: visibility, quota, members and optional proxy cache.',
    spec: ProjectSpec,
    status: ProjectStatus,
    specRequired: true,
    printerColumns: [
      REGISTRY_COLUMN,
      { name: 'Visibility', type: 'string', jsonPath: '.spec.visibility' },
      { name: 'Quota', type: 'string', jsonPath: '.spec.quota.storage' },
      READY_COLUMN,
      STATUS_COLUMN,
      AGE_COLUMN,
    ],
    rootValidations: [
      {
        rule: "has(self.spec.projectName) || self.metadata.name.matches('^[a-z0-9]+(?:[._-][a-z0-9]+)*$')",
        message: 'metadata.name is not a valid project name (lowercase letters, digits and single . _ - separators); set spec.projectName',
      },
    ],
  },
  {
    kind: 'RobotAccount',
    plural: 'robotaccounts',
    singular: 'robotaccount',
    shortNames: ['robot'],
    description: 'A robot account in a Wharf registry, and the pull secrets it feeds.',
    spec: RobotAccountSpec,
    status: RobotAccountStatus,
    specRequired: true,
    printerColumns: [
      REGISTRY_COLUMN,
      { name: 'Robot', type: 'string', jsonPath: '.status.robotName' },
      { name: 'Level', type: 'string', jsonPath: '.spec.level' },
      { name: 'Expires', type: 'date', jsonPath: '.status.expiresAt' },
      READY_COLUMN,
      STATUS_COLUMN,
      AGE_COLUMN,
    ],
    rootValidations: [
      {
        rule: "has(self.spec.robotName) || self.metadata.name.matches('^[a-z0-9]+(?:[._-][a-z0-9]+)*$')",
        message: 'metadata.name is not a valid robot name (lowercase letters, digits and single . _ - separators); set spec.robotName',
      },
    ],
  },
  {
    kind: 'ReplicationRule',
    plural: 'replicationrules',
    singular: 'replicationrule',
    shortNames: ['wrepl'],
    description: 'Replication between a Wharf registry and a remote registry.',
    spec: ReplicationRuleSpec,
    status: ReplicationRuleStatus,
    specRequired: true,
    printerColumns: [
      REGISTRY_COLUMN,
      { name: 'Mode', type: 'string', jsonPath: '.spec.mode' },
      { name: 'Remote', type: 'string', jsonPath: '.spec.remote.url' },
      { name: 'Trigger', type: 'string', jsonPath: '.spec.trigger.type' },
      { name: 'Last Run', type: 'string', jsonPath: '.status.lastExecution.phase' },
      { name: 'Finished', type: 'date', jsonPath: '.status.lastExecution.endTime', priority: 1 },
      READY_COLUMN,
      STATUS_COLUMN,
      AGE_COLUMN,
    ],
    rootValidations: [],
  },
];

export function kindDefinition(kind: string): KindDefinition {
  const found = KINDS.find((k) => k.kind === kind);
  if (!found) throw new Error(`unknown kind ${kind}`);
  return found;
}

