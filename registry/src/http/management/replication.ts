import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Page, PageQuery, errorResponses } from './schemas.js';
import { ExecutionInput, ExecutionQuery, IdParams, NameParams, RegistryHealth, RemoteRegistryInput, ReplicationPolicyInput, TaskParams, TaskQuery } from './replication-schemas.js';

const page = (q: { limit?: number; after?: string }) => ({ limit: q.limit ?? 100, ...(q.after !== undefined && { after: q.after }) });

/** Remote registries, replication policies, executions and tasks (system administrators). */
const replication: FastifyPluginAsyncTypebox = async (app) => {
  const { registries, policies, executions } = app.replication;

  {
    const tags = ['registries'];
    app.get('/registries', { schema: { tags, summary: 'List remote registries', querystring: PageQuery, response: { 200: Page(Type.Ref('RemoteRegistry'), 'RemoteRegistryPage'), ...errorResponses } } }, async (request) =>
      registries.list(request.principal, page(request.query)),
    );
    app.get('/registries/:name', { schema: { tags, summary: 'Get a remote registry with its health', params: NameParams, response: { 200: Type.Ref('RemoteRegistry'), ...errorResponses } } }, async (request) =>
      registries.get(request.principal, request.params.name),
    );
    app.put(
      '/registries/:name',
      {
        schema: {
          tags,
          summary: 'Create or update a remote registry (idempotent); its health is checked at once',
          params: NameParams,
          body: RemoteRegistryInput,
          response: { 200: Type.Ref('RemoteRegistry'), 201: Type.Ref('RemoteRegistry'), ...errorResponses },
        },
      },
      async (request, reply) => {
        const { registry, created } = await registries.put(request.principal, request.params.name, request.body);
        return reply.code(created ? 201 : 200).send(registry);
      },
    );
    app.delete('/registries/:name', { schema: { tags, summary: 'Delete a remote registry no policy uses', params: NameParams, response: { 204: Type.Null(), ...errorResponses } } }, async (request, reply) => {
      await registries.delete(request.principal, request.params.name);
      return reply.code(204).send(null);
    });
    app.post('/registries/:name/ping', { schema: { tags, summary: 'Check the registry now (GET /v2/ with the credentials, which gets a token with them where the registry uses tokens)', params: NameParams, response: { 200: RegistryHealth, ...errorResponses } } }, async (request) =>
      registries.ping(request.principal, request.params.name),
    );
  }

  {
    const tags = ['replication'];
    app.get(
      '/replication/policies',
      { schema: { tags, summary: 'List replication policies', querystring: PageQuery, response: { 200: Page(Type.Ref('ReplicationPolicy'), 'ReplicationPolicyPage'), ...errorResponses } } },
      async (request) => policies.list(request.principal, page(request.query)),
    );
    app.get('/replication/policies/:name', { schema: { tags, summary: 'Get a replication policy', params: NameParams, response: { 200: Type.Ref('ReplicationPolicy'), ...errorResponses } } }, async (request) =>
      policies.get(request.principal, request.params.name),
    );
    app.put(
      '/replication/policies/:name',
      {
        schema: {
          tags,
          summary: 'Create or update a replication policy (idempotent)',
          params: NameParams,
          body: ReplicationPolicyInput,
          response: { 200: Type.Ref('ReplicationPolicy'), 201: Type.Ref('ReplicationPolicy'), ...errorResponses },
        },
      },
      async (request, reply) => {
        const { policy, created } = await policies.put(request.principal, request.params.name, request.body);
        return reply.code(created ? 201 : 200).send(policy);
      },
    );
    app.delete('/replication/policies/:name', { schema: { tags, summary: 'Delete a policy (its open executions are stopped)', params: NameParams, response: { 204: Type.Null(), ...errorResponses } } }, async (request, reply) => {
      await policies.delete(request.principal, request.params.name);
      return reply.code(204).send(null);
    });

    app.post('/replication/executions', { schema: { tags, summary: 'Run a policy now', body: ExecutionInput, response: { 202: Type.Ref('ReplicationExecution'), ...errorResponses } } }, async (request, reply) => {
      const execution = await executions.start(request.principal, request.body.policy);
      return reply.code(202).header('Location', `${request.url.split('?', 1)[0]}/${execution.id}`).send(execution);
    });
    app.get(
      '/replication/executions',
      { schema: { tags, summary: 'Executions, newest first', querystring: ExecutionQuery, response: { 200: Page(Type.Ref('ReplicationExecution'), 'ReplicationExecutionPage'), ...errorResponses } } },
      async (request) => executions.list(request.principal, { ...page(request.query), ...(request.query.policy !== undefined && { policy: request.query.policy }) }),
    );
    app.get('/replication/executions/:id', { schema: { tags, summary: 'Get an execution', params: IdParams, response: { 200: Type.Ref('ReplicationExecution'), ...errorResponses } } }, async (request) =>
      executions.get(request.principal, request.params.id),
    );
    app.post('/replication/executions/:id/stop', { schema: { tags, summary: 'Stop an execution', params: IdParams, response: { 200: Type.Ref('ReplicationExecution'), ...errorResponses } } }, async (request) =>
      executions.stop(request.principal, request.params.id),
    );
    app.get(
      '/replication/executions/:id/tasks',
      { schema: { tags, summary: 'Tasks of an execution, one per artifact', params: IdParams, querystring: TaskQuery, response: { 200: Page(Type.Ref('ReplicationTask'), 'ReplicationTaskPage'), ...errorResponses } } },
      async (request) => executions.tasks(request.principal, request.params.id, { ...page(request.query), ...(request.query.status && { status: request.query.status }) }),
    );
    app.get(
      '/replication/executions/:id/tasks/:taskId/log',
      { schema: { tags, summary: "A task's log (text/plain)", params: TaskParams, produces: ['text/plain'], response: { 200: Type.String(), ...errorResponses } } },
      async (request, reply) => reply.type('text/plain; charset=utf-8').send(await executions.taskLog(request.principal, request.params.id, request.params.taskId)),
    );
  }
};

export default replication;
