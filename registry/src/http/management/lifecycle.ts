import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ImmutabilityPolicy as ImmutabilityPolicyValue } from '../../lifecycle/immutability.js';
import type { RetentionPolicy as RetentionPolicyValue } from '../../lifecycle/retention-policy.js';
import { ImmutabilityPolicy, RetentionPolicy } from './lifecycle-schemas.js';
import { errorResponses, ProjectParams } from './schemas.js';

/** A project's tag retention policy and runs, and its tag immutability rules (docs/lifecycle.md). */
const lifecycle: FastifyPluginAsyncTypebox = async (app) => {
  const service = app.jobs.lifecycle;
  const tags = ['lifecycle'];
  const RunParams = Type.Object({ project: ProjectParams.properties.project, id: Type.String() });

  app.get('/projects/:project/retention', { schema: { tags, summary: 'The tag retention policy (no rules when none is set)', params: ProjectParams, response: { 200: Type.Ref('RetentionPolicy'), ...errorResponses } } }, async (request) =>
    service.retention(request.principal, request.params.project),
  );

  app.put(
    '/projects/:project/retention',
    { schema: { tags, summary: 'Set the tag retention policy (idempotent)', params: ProjectParams, body: RetentionPolicy, response: { 200: Type.Ref('RetentionPolicy'), ...errorResponses } } },
    async (request) => service.setRetention(request.principal, request.params.project, request.body as RetentionPolicyValue),
  );

  app.post(
    '/projects/:project/retention/runs',
    {
      schema: {
        tags,
        summary: 'Queue a retention run now',
        params: ProjectParams,
        body: Type.Object({ dryRun: Type.Optional(Type.Boolean({ description: 'Report what would be deleted; delete nothing' })) }, { additionalProperties: false }),
        response: { 202: Type.Ref('RetentionRun'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const run = await service.startRun(request.principal, request.params.project, request.body?.dryRun ?? false);
      return reply.code(202).header('Location', `${request.url.split('?', 1)[0]}/${run.id}`).send(run);
    },
  );

  app.get(
    '/projects/:project/retention/runs',
    {
      schema: {
        tags,
        summary: 'Recent retention runs, newest first',
        params: ProjectParams,
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })) }),
        response: { 200: Type.Object({ items: Type.Array(Type.Ref('RetentionRun')) }), ...errorResponses },
      },
    },
    async (request) => ({ items: await service.runs(request.principal, request.params.project, request.query.limit ?? 20) }),
  );

  app.get('/projects/:project/retention/runs/:id', { schema: { tags, summary: 'Status and report of a retention run', params: RunParams, response: { 200: Type.Ref('RetentionRun'), ...errorResponses } } }, async (request) =>
    service.run(request.principal, request.params.project, request.params.id),
  );

  app.get('/projects/:project/immutability', { schema: { tags, summary: 'Tag immutability rules and signed-artifact protection', params: ProjectParams, response: { 200: Type.Ref('ImmutabilityPolicy'), ...errorResponses } } }, async (request) =>
    service.immutability(request.principal, request.params.project),
  );

  app.put(
    '/projects/:project/immutability',
    { schema: { tags, summary: 'Set the tag immutability rules (idempotent)', params: ProjectParams, body: ImmutabilityPolicy, response: { 200: Type.Ref('ImmutabilityPolicy'), ...errorResponses } } },
    async (request) => service.setImmutability(request.principal, request.params.project, request.body as ImmutabilityPolicyValue),
  );
};

export default lifecycle;
