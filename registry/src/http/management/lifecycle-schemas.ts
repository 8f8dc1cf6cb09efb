import { Type } from '@fastify/type-provider-typebox';
import { RETENTION_TEMPLATES } from '../../lifecycle/retention-policy.js';

const Pattern = (description: string) => Type.Optional(Type.String({ minLength: 1, maxLength: 256, description }));

const SelectorFields = {
  tagMatches: Pattern('Doublestar pattern of the tags selected; absent: every tag'),
  tagExcludes: Pattern('Doublestar pattern of tags left out'),
  repoMatches: Pattern('Doublestar pattern of the repositories selected, by their name inside the project; absent: every repository'),
  repoExcludes: Pattern('Doublestar pattern of repositories left out'),
};

export const RetentionRule = Type.Object(
  {
    template: Type.Union(
      RETENTION_TEMPLATES.map((t) => Type.Literal(t)),
      { description: 'latestPushedK, latestPulledN (need count), nDaysSinceLastPush, nDaysSinceLastPull (need days), always' },
    ),
    count: Type.Optional(Type.Integer({ minimum: 0, maximum: 100000, description: 'Artifacts to retain per repository (latestPushedK, latestPulledN)' })),
    days: Type.Optional(Type.Integer({ minimum: 0, maximum: 36500, description: 'Days back (nDaysSinceLastPush, nDaysSinceLastPull)' })),
    ...SelectorFields,
    untagged: Type.Optional(Type.Boolean({ description: 'Also select untagged artifacts (tag patterns do not apply to them); default false' })),
    disabled: Type.Optional(Type.Boolean()),
  },
  { $id: 'RetentionRule', additionalProperties: false },
);

export const RetentionPolicy = Type.Object(
  {
    rules: Type.Array(Type.Ref('RetentionRule'), { maxItems: 50, description: 'Combined with OR: in a repository some rule selects, what no rule retains is deleted' }),
    schedule: Type.Union([Type.Null(), Type.String({ maxLength: 200 })], { description: 'Cron schedule (UTC) of automatic runs, or null for on-demand runs only' }),
  },
  { $id: 'RetentionPolicy', additionalProperties: false },
);

export const ImmutabilityRule = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 128, description: 'Named in refusals' })),
    ...SelectorFields,
    disabled: Type.Optional(Type.Boolean()),
  },
  { $id: 'ImmutabilityRule', additionalProperties: false },
);

export const ImmutabilityPolicy = Type.Object(
  {
    rules: Type.Array(Type.Ref('ImmutabilityRule'), { maxItems: 100, description: 'A tag any rule selects cannot be moved to another digest or deleted' }),
    protectSignedArtifacts: Type.Boolean({ description: 'Refuse deleting signed artifacts (a signature referrer or a cosign .sig tag)' }),
  },
  { $id: 'ImmutabilityPolicy', additionalProperties: false },
);

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const RetentionRun = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    project: Type.String(),
    state: Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed')]),
    dryRun: Type.Boolean(),
    trigger: Type.String({ description: 'manual or schedule' }),
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: Nullable(Type.String({ format: 'date-time' })),
    finishedAt: Nullable(Type.String({ format: 'date-time' })),
    error: Type.Optional(Type.String()),
    report: Type.Optional(Type.Unknown({ description: 'When succeeded: kept, deleted (each {repository, tag, digest, reason}), manifestsDeleted, skipped' })),
  },
  { $id: 'RetentionRun' },
);

export const lifecycleSchemas = [RetentionRule, RetentionPolicy, ImmutabilityRule, ImmutabilityPolicy, RetentionRun];
