// The ReplicationRule kind: Harbor-style replication between a Registry and a remote registry, with
// name/tag/label/resource filters and a manual, scheduled or event-based trigger. Its controller
// comes later.
import { Type, type Static } from '@sinclair/typebox';
import { PROJECT_NAME_PATTERN } from './project.js';
import { KObject, LocalObjectReference, RegistryReference, StatusBase, StringEnum } from './schema.js';

export const ReplicationFilter = KObject(
  {
    type: StringEnum(['name', 'tag', 'label', 'resource'] as const, { description: 'What the filter matches: repository name, tag, label, or resource type.' }),
    value: Type.String({ minLength: 1, maxLength: 512, description: 'Doublestar pattern for name and tag (e.g. library/**, v1.*); label name; image or artifact for resource.' }),
    decoration: StringEnum(['matches', 'excludes'] as const, { default: 'matches', description: 'Whether matching items are included or excluded.' }),
  },
  {
    'x-kubernetes-validations': [
      { rule: "self.decoration == 'matches' || self.type in ['tag', 'label']", message: 'excludes applies only to tag and label filters' },
      { rule: "self.type != 'resource' || self.value in ['image', 'artifact']", message: 'a resource filter value must be image or artifact' },
    ],
  },
);

export const ReplicationRuleSpec = KObject(
  {
    registryRef: RegistryReference(),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    enabled: Type.Boolean({ default: true, description: 'A disabled rule never runs.' }),
    mode: StringEnum(['push', 'pull'] as const, { description: 'push: from this registry to the remote. pull: from the remote into this registry.' }),
    remote: Type.Object(
      {
        provider: StringEnum(['wharf', 'harbor', 'docker-registry', 'docker-hub', 'ghcr', 'quay', 'gcr', 'ecr', 'acr'] as const, { default: 'docker-registry', description: 'Kind of remote registry.' }),
        url: Type.String({ format: 'uri', maxLength: 2048, pattern: '^https?://', description: 'Remote registry URL.' }),
        credentialsSecretRef: Type.Optional(LocalObjectReference('Secret with keys username and password for the remote.')),
        insecure: Type.Boolean({ default: false, description: 'Skip TLS verification of the remote.' }),
      },
      { description: 'The other registry.' },
    ),
    filters: Type.Optional(
      Type.Array(ReplicationFilter, { maxItems: 16, description: 'All filters must match. Without a name filter every repository matches.' }),
    ),
    destination: Type.Object(
      {
        project: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: PROJECT_NAME_PATTERN, description: 'Destination project (namespace). Default: keep the source project.' })),
        flattening: StringEnum(['none', 'one', 'two', 'three', 'all'] as const, {
          default: 'one',
          description: 'How many leading path components of the source repository are dropped at the destination (Harbor flattening).',
        }),
      },
      { default: { flattening: 'one' }, description: 'Where artifacts land.' },
    ),
    trigger: KObject(
      {
        type: StringEnum(['manual', 'scheduled', 'eventBased'] as const, { default: 'manual', description: 'manual runs when wharf.dev/run changes; scheduled follows a cron schedule; eventBased follows pushes and deletes.' }),
        schedule: Type.Optional(
          Type.String({ maxLength: 128, pattern: '^(\\S+\\s+){4,5}\\S+$', description: 'Cron schedule (5 or 6 fields, seconds first when 6), in UTC.' }),
        ),
      },
      {
        default: { type: 'manual' },
        description: 'When the rule runs.',
        'x-kubernetes-validations': [
          { rule: "self.type == 'scheduled' ? has(self.schedule) : !has(self.schedule)", message: 'trigger.schedule must be set when, and only when, trigger.type is scheduled', reason: 'FieldValueRequired' },
        ],
      },
    ),
    override: Type.Boolean({ default: true, description: 'Overwrite artifacts that already exist at the destination.' }),
    replicateDeletion: Type.Boolean({ default: false, description: 'Also replicate deletions (event-based push only).' }),
    bandwidthLimitKiBps: Type.Optional(Type.Integer({ minimum: 1, description: 'Bandwidth limit per task; unset means unlimited.' })),
  },
  {
    description: 'Desired state of a replication rule.',
    'x-kubernetes-validations': [
      { rule: "self.trigger.type != 'eventBased' || self.mode == 'push'", message: 'eventBased triggers apply only to push replication: events come from this registry', fieldPath: '.trigger.type' },
      { rule: "!self.replicateDeletion || self.trigger.type == 'eventBased'", message: 'replicateDeletion needs an eventBased trigger', fieldPath: '.replicateDeletion' },
      { rule: "!has(self.filters) || self.filters.filter(f, f.type == 'name').size() <= 1", message: 'at most one name filter', fieldPath: '.filters' },
    ],
  },
);

export const ReplicationRuleStatus = Type.Object(
  {
    ...StatusBase(),
    lastRun: Type.Optional(
      Type.Object({
        id: Type.Optional(Type.Integer({ format: 'int64' })),
        result: Type.Optional(StringEnum(['Running', 'Succeeded', 'Failed', 'Stopped'] as const)),
        startTime: Type.Optional(Type.String({ format: 'date-time' })),
        completionTime: Type.Optional(Type.String({ format: 'date-time' })),
        succeeded: Type.Optional(Type.Integer({ format: 'int32', description: 'Artifacts copied.' })),
        failed: Type.Optional(Type.Integer({ format: 'int32', description: 'Artifacts that failed.' })),
      }),
    ),
    nextScheduleTime: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { description: 'Observed state of the replication rule.' },
);

export type ReplicationRuleSpec = Static<typeof ReplicationRuleSpec>;
export type ReplicationRuleStatus = Static<typeof ReplicationRuleStatus>;
