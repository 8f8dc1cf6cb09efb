import { Type } from '@sinclair/typebox';
import { FLATTENING_LEVELS } from '../../replication/flatten.js';
import { REGISTRY_PROVIDERS } from '../../replication/registries.js';
import { HTTP_URL_PATTERN } from './url-pattern.js';

const Timestamps = { createdAt: Type.String({ format: 'date-time' }), updatedAt: Type.String({ format: 'date-time' }) };
const NullableTime = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);
const Provider = Type.Union(REGISTRY_PROVIDERS.map((p) => Type.Literal(p)), { description: 'Kind of registry (informational; every provider speaks the OCI distribution API)' });

export const NameParams = Type.Object({ name: Type.String({ maxLength: 63 }) });

export const RegistryHealth = Type.Object(
  {
    status: Type.Union([Type.Literal('unknown'), Type.Literal('healthy'), Type.Literal('unhealthy')]),
    checkedAt: NullableTime,
    message: Type.String(),
  },
  { $id: 'RegistryHealth', description: 'Result of the last check: GET /v2/ with the credentials (with token auth, that includes getting a token with them)' },
);

export const RemoteRegistry = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String(),
    provider: Type.String(),
    url: Type.String(),
    username: Type.Union([Type.String(), Type.Null()]),
    passwordSet: Type.Boolean({ description: 'Whether a password is stored; it is never returned' }),
    insecure: Type.Boolean(),
    description: Type.String(),
    health: Type.Ref('RegistryHealth'),
    ...Timestamps,
  },
  { $id: 'RemoteRegistry' },
);

export const RemoteRegistryInput = Type.Object(
  {
    provider: Provider,
    url: Type.String({ maxLength: 2048, pattern: HTTP_URL_PATTERN, description: 'Registry URL, http:// or https://' }),
    username: Type.Optional(Type.String({ maxLength: 256 })),
    password: Type.Optional(Type.String({ maxLength: 4096, description: 'Write-only; omitted keeps the stored one' })),
    insecure: Type.Optional(Type.Boolean({ description: 'Skip TLS verification; default false' })),
    description: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);

const Patterns = Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 64 });
const PatternFilter = Type.Object({ matches: Patterns, excludes: Patterns }, { additionalProperties: false });
const PatternFilterInput = Type.Object({ matches: Type.Optional(Patterns), excludes: Type.Optional(Patterns) }, { additionalProperties: false });
const Mode = Type.Union([Type.Literal('push'), Type.Literal('pull')], { description: 'push: this registry → the remote one; pull: the remote one → this registry' });
const Resource = Type.Union([Type.Literal('image'), Type.Literal('artifact'), Type.Literal('all')]);
const Flattening = Type.Union(FLATTENING_LEVELS.map((l) => Type.Literal(l)), { description: 'Leading path components dropped before the namespace is put in front (all: keep only the last)' });
const TriggerType = Type.Union([Type.Literal('manual'), Type.Literal('scheduled'), Type.Literal('eventBased')]);
const Bandwidth = Type.Integer({ minimum: 0, maximum: 10_000_000, description: 'KiB per second per task; 0 is unlimited' });

export const ReplicationPolicyInput = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    mode: Mode,
    registry: Type.String({ maxLength: 63, description: 'Name of a remote registry' }),
    filters: Type.Optional(
      Type.Object(
        {
          name: Type.Optional(PatternFilterInput),
          tag: Type.Optional(PatternFilterInput),
          label: Type.Optional(PatternFilterInput),
          resource: Type.Optional(Resource),
        },
        { additionalProperties: false },
      ),
    ),
    destination: Type.Optional(Type.Object({ namespace: Type.Optional(Type.String({ maxLength: 255 })), flattening: Type.Optional(Flattening) }, { additionalProperties: false })),
    trigger: Type.Optional(Type.Object({ type: TriggerType, cron: Type.Optional(Type.String({ maxLength: 256, description: 'For scheduled: a cron expression in UTC' })) }, { additionalProperties: false })),
    replicateDeletion: Type.Optional(Type.Boolean()),
    override: Type.Optional(Type.Boolean({ description: 'Overwrite a destination tag that points elsewhere; default true' })),
    enabled: Type.Optional(Type.Boolean()),
    bandwidthLimitKiBps: Type.Optional(Bandwidth),
    copyReferrers: Type.Optional(Type.Boolean({ description: 'Copy signatures, SBOMs and other referrers with their subject; default true' })),
  },
  { additionalProperties: false },
);

export const ReplicationPolicy = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String(),
    description: Type.String(),
    mode: Mode,
    registry: Type.String(),
    filters: Type.Object({ name: PatternFilter, tag: PatternFilter, label: PatternFilter, resource: Resource }),
    destination: Type.Object({ namespace: Type.String(), flattening: Flattening }),
    trigger: Type.Object({ type: TriggerType, cron: Type.Optional(Type.String()) }),
    replicateDeletion: Type.Boolean(),
    override: Type.Boolean(),
    enabled: Type.Boolean(),
    bandwidthLimitKiBps: Type.Integer(),
    copyReferrers: Type.Boolean(),
    ...Timestamps,
  },
  { $id: 'ReplicationPolicy' },
);

const RunStatus = Type.Union([Type.Literal('Pending'), Type.Literal('InProgress'), Type.Literal('Succeeded'), Type.Literal('Failed'), Type.Literal('Stopped')]);

export const ReplicationExecution = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    policy: Type.String(),
    trigger: TriggerType,
    status: RunStatus,
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: NullableTime,
    endedAt: NullableTime,
    tasks: Type.Object({ total: Type.Integer(), pending: Type.Integer(), inProgress: Type.Integer(), succeeded: Type.Integer(), failed: Type.Integer(), stopped: Type.Integer() }),
    artifacts: Type.Integer({ description: 'Tasks that copied or deleted something' }),
    bytes: Type.Integer({ description: 'Blob bytes sent' }),
    message: Type.String(),
  },
  { $id: 'ReplicationExecution' },
);

export const ReplicationTask = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    executionId: Type.String({ format: 'uuid' }),
    operation: Type.Union([Type.Literal('copy'), Type.Literal('delete')]),
    source: Type.Object({ repository: Type.String(), digest: Type.Union([Type.String(), Type.Null()]), tags: Type.Array(Type.String()) }),
    destination: Type.Object({ repository: Type.String() }),
    status: RunStatus,
    attempts: Type.Integer(),
    bytes: Type.Integer(),
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: NullableTime,
    endedAt: NullableTime,
    message: Type.String({ description: 'Why it failed, or what it skipped (e.g. a differing tag with override off)' }),
  },
  { $id: 'ReplicationTask' },
);

export const ExecutionInput = Type.Object({ policy: Type.String({ maxLength: 63 }) }, { additionalProperties: false });
export const ExecutionQuery = Type.Object({
  policy: Type.Optional(Type.String({ maxLength: 63 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
  after: Type.Optional(Type.String({ maxLength: 20, description: 'The `next` value of the previous page' })),
});
export const TaskQuery = Type.Object({
  status: Type.Optional(RunStatus),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
  after: Type.Optional(Type.String({ maxLength: 20, description: 'The `next` value of the previous page' })),
});
export const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
export const TaskParams = Type.Object({ id: Type.String({ maxLength: 64 }), taskId: Type.String({ maxLength: 64 }) });

export const replicationSchemas = [RegistryHealth, RemoteRegistry, ReplicationPolicy, ReplicationExecution, ReplicationTask];
