// The ReplicationRule kind: Harbor-style replication between a Registry and a remote registry, with
// name/tag/label/resource filters and a manual, scheduled or event-based trigger. Its controller is
// controllers/replication-rule.ts: one rule is one remote registry plus one policy in the registry.
import { Type, type Static } from '@sinclair/typebox';
import { PROJECT_NAME_PATTERN } from './project.js';
import { KObject, LocalObjectReference, RegistryReference, StatusBase, StringEnum } from './schema.js';

export const ReplicationFilter = KObject(
  {
    type: StringEnum(['name', 'tag', 'label', 'resource'] as const, { description: 'What the filter matches: repository name, tag, label, or resource type.' }),
    value: Type.String({ minLength: 1, maxLength: 512, description: 'name and tag: a doublestar pattern (library/**, v1.*, {a,b}); label: an annotation the manifest carries, key or key=value; resource: image or artifact.' }),
    decoration: StringEnum(['matches', 'excludes'] as const, { default: 'matches', description: 'Whether matching items are included or excluded.' }),
  },
  {
    'x-kubernetes-validations': [
      { rule: "self.decoration == 'matches' || self.type != 'resource'", message: 'excludes applies only to name, tag and label filters' },
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
      Type.Array(ReplicationFilter, {
        maxItems: 32,
        description:
          'An artifact is replicated when, for each of name, tag and label, it matches one of the matches patterns (or there are none) and none of the excludes patterns, and it is of the resource type (default: both). Without filters everything tagged is replicated.',
      }),
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
        type: StringEnum(['manual', 'scheduled', 'eventBased'] as const, { default: 'manual', description: 'manual: only when the annotation wharf.dev/run is set to a new value (which starts a run of a rule with any trigger); scheduled: on the cron schedule; eventBased: on each push (and delete, with replicateDeletion) of a matching artifact.' }),
        schedule: Type.Optional(
          Type.String({ maxLength: 128, pattern: '^(@[a-z]+|(\\S+\\s+){4,5}\\S+)$', description: 'Cron schedule in UTC: 5 or 6 fields (seconds first when 6), or @hourly, @daily, @weekly, @monthly, @yearly.' }),
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
    bandwidthLimitKiBps: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_485_760, description: 'Bandwidth limit per task in KiB/s; unset means unlimited.' })),
    copyReferrers: Type.Boolean({ default: true, description: 'Copy the referrers (signatures, SBOMs, attestations) of each copied manifest after it.' }),
  },
  {
    description: 'Desired state of a replication rule.',
    'x-kubernetes-validations': [
      { rule: "self.trigger.type != 'eventBased' || self.mode == 'push'", message: 'eventBased triggers apply only to push replication: events come from this registry', fieldPath: '.trigger.type' },
      { rule: "!self.replicateDeletion || self.trigger.type == 'eventBased'", message: 'replicateDeletion needs an eventBased trigger', fieldPath: '.replicateDeletion' },
      { rule: "!has(self.filters) || self.filters.filter(f, f.type == 'resource').size() <= 1", message: 'at most one resource filter', fieldPath: '.filters' },
    ],
  },
);

export const ExecutionPhase = StringEnum(['Pending', 'InProgress', 'Succeeded', 'Failed', 'Stopped'] as const, { description: 'Phase of a replication execution.' });

export const LastExecution = Type.Object(
  {
    id: Type.String({ description: 'ID of the execution in the registry.' }),
    trigger: Type.Optional(Type.String({ description: 'What started it: manual, scheduled or eventBased.' })),
    phase: ExecutionPhase,
    startTime: Type.Optional(Type.String({ format: 'date-time' })),
    endTime: Type.Optional(Type.String({ format: 'date-time', description: 'Unset while it runs.' })),
    artifacts: Type.Optional(Type.Integer({ format: 'int64', description: 'Artifacts copied.' })),
    bytes: Type.Optional(Type.Integer({ format: 'int64', description: 'Bytes copied.' })),
    tasks: Type.Optional(Type.Integer({ format: 'int64', description: 'Tasks (one per artifact) in the execution.' })),
    failedTasks: Type.Optional(Type.Integer({ format: 'int64', description: 'Tasks that failed.' })),
    message: Type.Optional(Type.String({ maxLength: 4096, description: 'Why it failed or stopped, when the registry says.' })),
  },
  { description: 'The most recent execution of the policy, whatever started it.' },
);

export const ReplicationRuleStatus = Type.Object(
  {
    ...StatusBase(),
    remoteRegistry: Type.Optional(Type.String({ description: 'Name of the remote registry in the registry.' })),
    policy: Type.Optional(Type.String({ description: 'Name of the replication policy in the registry.' })),
    credentialsDigest: Type.Optional(
      Type.String({ description: 'Keyed digest (HMAC-SHA256) of the remote credentials last sent to the registry, so that a changed Secret is sent again. It reveals nothing about them.' }),
    ),
    lastRunRequest: Type.Optional(Type.String({ maxLength: 1024, description: 'The value of the annotation wharf.dev/run that last started an execution; another value starts one more.' })),
    lastExecution: Type.Optional(LastExecution),
  },
  { description: 'Observed state of the replication rule.' },
);

export type ReplicationRuleSpec = Static<typeof ReplicationRuleSpec>;
export type ReplicationRuleStatus = Static<typeof ReplicationRuleStatus>;
export type LastExecution = Static<typeof LastExecution>;
export type ExecutionPhase = Static<typeof ExecutionPhase>;
