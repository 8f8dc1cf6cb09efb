import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import type { RobotScope, RobotView } from '../../services/robots.js';
import { errorResponses, Page, PageQuery, ProjectParams, ProjectRobotParams, RobotInput, RobotParams, RotateInput } from './schemas.js';

const page = (q: { limit?: number; after?: string }) => ({ limit: q.limit ?? 100, ...(q.after !== undefined && { after: q.after }) });

/** Project robots under /projects/{project}/robots and system robots under /robots. */
const robots: FastifyPluginAsyncTypebox = async (app) => {
  const service = app.management.robots;
  const tags = ['robots'];
  const created = (reply: FastifyReply, result: { robot: RobotView; created: boolean; secret?: string }) =>
    result.secret !== undefined ? reply.code(201).send({ robot: result.robot, secret: result.secret }) : reply.code(200).send(result.robot);
  const putResponses = { 200: Type.Ref('Robot'), 201: Type.Ref('RobotWithSecret'), ...errorResponses };

  for (const level of ['project', 'system'] as const) {
    const base = level === 'project' ? '/projects/:project/robots' : '/robots';
    const listParams = level === 'project' ? ProjectParams : Type.Object({});
    const itemParams = level === 'project' ? ProjectRobotParams : RobotParams;
    const scopeOf = (params: { project?: string }): RobotScope => (level === 'project' ? { project: params.project! } : { project: null });
    const what = level === 'project' ? 'project robots' : 'system robots';

    app.get(base, { schema: { tags, summary: `List ${what}`, params: listParams, querystring: PageQuery, response: { 200: Page(Type.Ref('Robot'), `${level}RobotPage`), ...errorResponses } } }, async (request) =>
      service.list(request.principal, scopeOf(request.params as { project?: string }), page(request.query)),
    );

    app.get(`${base}/:robot`, { schema: { tags, summary: `Get one of the ${what}`, params: itemParams, response: { 200: Type.Ref('Robot'), ...errorResponses } } }, async (request) =>
      service.get(request.principal, scopeOf(request.params as { project?: string }), (request.params as { robot: string }).robot),
    );

    app.put(
      `${base}/:robot`,
      { schema: { tags, summary: `Create or update one of the ${what}; the secret is returned once, on creation`, params: itemParams, body: RobotInput, response: putResponses } },
      async (request, reply) => created(reply, await service.put(request.principal, scopeOf(request.params as { project?: string }), (request.params as { robot: string }).robot, request.body)),
    );

    app.post(
      `${base}/:robot/rotate`,
      {
        schema: {
          tags,
          summary: 'Issue a new secret, or set a provided one; the replaced secret keeps working for graceSeconds',
          params: itemParams,
          body: RotateInput,
          response: { 200: Type.Ref('RobotWithSecret'), ...errorResponses },
        },
      },
      async (request) =>
        service.rotate(request.principal, scopeOf(request.params as { project?: string }), (request.params as { robot: string }).robot, request.body ?? {}),
    );

    app.delete(`${base}/:robot`, { schema: { tags, summary: `Delete one of the ${what}`, params: itemParams, response: { 204: Type.Null(), ...errorResponses } } }, async (request, reply) => {
      await service.delete(request.principal, scopeOf(request.params as { project?: string }), (request.params as { robot: string }).robot);
      return reply.code(204).send(null);
    });
  }
};

export default robots;
