// Tag retention and tag immutability of a Project (docs/lifecycle.md), as the registry's
// management API takes them (/api/v1/projects/{p}/retention and /immutability).
import { Type } from '@sinclair/typebox';
import { StringEnum } from './schema.js';

const Pattern = (description: string) => Type.Optional(Type.String({ minLength: 1, maxLength: 256, description }));

const Selectors = {
  tagMatches: Pattern('Doublestar pattern of the tags selected (default: every tag).'),
  tagExcludes: Pattern('Doublestar pattern of tags left out.'),
  repoMatches: Pattern('Doublestar pattern of repositories selected, by name inside the project (default: every repository).'),
  repoExcludes: Pattern('Doublestar pattern of repositories left out.'),
};

export const RetentionRuleSpec = Type.Object(
  {
    template: StringEnum(['latestPushedK', 'latestPulledN', 'nDaysSinceLastPush', 'nDaysSinceLastPull', 'always'] as const, { description: "Harbor's retention templates." }),
    count: Type.Optional(Type.Integer({ minimum: 0, maximum: 100000, description: 'latestPushedK, latestPulledN: artifacts retained per repository.' })),
    days: Type.Optional(Type.Integer({ minimum: 0, maximum: 36500, description: 'nDaysSinceLastPush, nDaysSinceLastPull: days back.' })),
    ...Selectors,
    untagged: Type.Optional(Type.Boolean({ description: 'Also select untagged artifacts.' })),
    disabled: Type.Optional(Type.Boolean()),
  },
  {
    'x-kubernetes-validations': [
      { rule: "!(self.template in ['latestPushedK', 'latestPulledN']) || has(self.count)", message: 'latestPushedK and latestPulledN need count' },
      { rule: "!(self.template in ['nDaysSinceLastPush', 'nDaysSinceLastPull']) || has(self.days)", message: 'nDaysSinceLastPush and nDaysSinceLastPull need days' },
    ],
  },
);

export const RetentionSpec = Type.Object(
  {
    rules: Type.Array(RetentionRuleSpec, { maxItems: 50, description: 'Combined with OR: in a repository some rule selects, what no rule retains is deleted.' }),
    schedule: Type.Optional(Type.String({ maxLength: 200, description: 'Cron schedule (UTC) of automatic runs; unset: on demand only.' })),
  },
  { description: 'Tag retention policy. Unset leaves the registry\'s policy as it is.' },
);

export const ImmutabilitySpec = Type.Object(
  {
    rules: Type.Array(Type.Object({ name: Type.Optional(Type.String({ maxLength: 128, description: 'Named in refusals.' })), ...Selectors, disabled: Type.Optional(Type.Boolean()) }), {
      maxItems: 100,
      description: 'Tags a rule selects cannot be moved to another digest or deleted.',
    }),
    protectSignedArtifacts: Type.Optional(Type.Boolean({ description: 'Refuse deleting signed artifacts (default false).' })),
  },
  { description: 'Tag immutability rules. Unset leaves the registry\'s rules as they are.' },
);
