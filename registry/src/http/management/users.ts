import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errorResponses, Page, PageQuery, UserInput, UserParams } from './schemas.js';

/** Local users. */
const users: FastifyPluginAsyncTypebox = async (app) => {
  const service = app.management.users;
  const tags = ['users'];

  app.get('/users', { schema: { tags, summary: 'List users (administrators)', querystring: PageQuery, response: { 200: Page(Type.Ref('User'), 'UserPage'), ...errorResponses } } }, async (request) =>
    service.list(request.principal, { limit: request.query.limit ?? 100, ...(request.query.after !== undefined && { after: request.query.after }) }),
  );

  app.get('/users/:username', { schema: { tags, summary: 'Get a user', params: UserParams, response: { 200: Type.Ref('User'), ...errorResponses } } }, async (request) =>
    service.get(request.principal, request.params.username),
  );

  app.put(
    '/users/:username',
    { schema: { tags, summary: 'Create or update a user (idempotent)', params: UserParams, body: UserInput, response: { 200: Type.Ref('User'), 201: Type.Ref('User'), ...errorResponses } } },
    async (request, reply) => {
      const { user, created } = await service.put(request.principal, request.params.username, request.body);
      return reply.code(created ? 201 : 200).send(user);
    },
  );

  app.delete('/users/:username', { schema: { tags, summary: 'Delete a user', params: UserParams, response: { 204: Type.Null(), ...errorResponses } } }, async (request, reply) => {
    await service.delete(request.principal, request.params.username);
    return reply.code(204).send(null);
  });
};

export default users;
