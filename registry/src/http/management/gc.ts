import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errorResponses } from './schemas.js';

const GcInput = Type.Object(
  {
    dryRun: Type.Optional(Type.Boolean({ description: 'Report what would be deleted; delete nothing' })),
    deleteUntagged: Type.Optional(Type.Boolean({ description: 'Also delete manifests that no tag reaches (directly, as an index child, or as a referrer)' })),
  },
  { additionalProperties: false },
);

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

const GcRun = Type.Object({
  id: Type.String({ format: 'uuid' }),
  state: Type.Union([Type.Literal('queued'), Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed')]),
  dryRun: Type.Boolean(),
  deleteUntagged: Type.Boolean(),
  attempts: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
  startedAt: Nullable(Type.String({ format: 'date-time' })),
  finishedAt: Nullable(Type.String({ format: 'date-time' })),
  error: Type.Optional(Type.String()),
  progress: Type.Optional(Type.Unknown({ description: 'While running: the report so far' })),
  report: Type.Optional(
    Type.Unknown({ description: 'When succeeded: counts and bytes of cosign accessory tags whose subject is gone (accessoryTags), manifests, links, blobs, orphan objects and upload sessions deleted (or, in a dry run, that would be), and per-project usage after the run' }),
  ),
});

/** Garbage collection on demand (system administrators). */
const gc: FastifyPluginAsyncTypebox = async (app) => {
  const service = app.jobs.gc;
  const tags = ['gc'];

  app.post('/gc', { schema: { tags, summary: 'Queue a garbage collection run', body: GcInput, response: { 202: GcRun, ...errorResponses } } }, async (request, reply) => {
    const run = await service.start(request.principal, request.body ?? {});
    return reply.code(202).header('Location', `${request.url.split('?', 1)[0]}/${run.id}`).send(run);
  });

  app.get('/gc', { schema: { tags, summary: 'Recent garbage collection runs, newest first', querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })) }), response: { 200: Type.Object({ items: Type.Array(GcRun) }), ...errorResponses } } }, async (request) => ({
    items: await service.list(request.principal, request.query.limit ?? 20),
  }));

  app.get('/gc/:id', { schema: { tags, summary: 'Status and report of a garbage collection run', params: Type.Object({ id: Type.String() }), response: { 200: GcRun, ...errorResponses } } }, async (request) =>
    service.get(request.principal, request.params.id),
  );
};

export default gc;
