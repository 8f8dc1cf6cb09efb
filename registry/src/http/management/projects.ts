import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DeleteProjectQuery, errorResponses, GroupMember, Member, MemberInput, Page, PageQuery, ProjectGroupParams, ProjectInput, ProjectParams, ProjectUserParams, Quota, QuotaInput } from './schemas.js';

const page = (q: { limit?: number; after?: string }) => ({ limit: q.limit ?? 100, ...(q.after !== undefined && { after: q.after }) });

/** Projects, quotas and members. */
const projects: FastifyPluginAsyncTypebox = async (app) => {
  const service = app.management.projects;
  const tags = ['projects'];

  app.get('/projects', { schema: { tags, summary: 'List the projects the caller can see', querystring: PageQuery, response: { 200: Page(Type.Ref('Project'), 'ProjectPage'), ...errorResponses } } }, async (request) =>
    service.list(request.principal, page(request.query)),
  );

  app.get('/projects/:project', { schema: { tags, summary: 'Get a project with its storage usage', params: ProjectParams, response: { 200: Type.Ref('Project'), ...errorResponses } } }, async (request) =>
    service.get(request.principal, request.params.project),
  );

  app.put(
    '/projects/:project',
    { schema: { tags, summary: 'Create or update a project (idempotent)', params: ProjectParams, body: ProjectInput, response: { 200: Type.Ref('Project'), 201: Type.Ref('Project'), ...errorResponses } } },
    async (request, reply) => {
      const { project, created } = await service.put(request.principal, request.params.project, request.body);
      return reply.code(created ? 201 : 200).send(project);
    },
  );

  app.delete(
    '/projects/:project',
    { schema: { tags, summary: 'Delete a project: an empty one, or with deleteContent=true everything in it', params: ProjectParams, querystring: DeleteProjectQuery, response: { 204: Type.Null(), ...errorResponses } } },
    async (request, reply) => {
      await service.delete(request.principal, request.params.project, request.query.deleteContent ?? false);
      return reply.code(204).send(null);
    },
  );

  app.get('/projects/:project/quota', { schema: { tags, summary: 'Storage quota and usage', params: ProjectParams, response: { 200: Type.Ref('Quota'), ...errorResponses } } }, async (request) =>
    service.quota(request.principal, request.params.project),
  );

  app.put('/projects/:project/quota', { schema: { tags, summary: 'Set the storage quota (administrators)', params: ProjectParams, body: QuotaInput, response: { 200: Quota, ...errorResponses } } }, async (request) =>
    service.setQuota(request.principal, request.params.project, request.body.limitBytes),
  );

  app.get('/projects/:project/members', { schema: { tags, summary: 'List members', params: ProjectParams, response: { 200: Type.Object({ items: Type.Array(Type.Ref('Member')) }), ...errorResponses } } }, async (request) => ({
    items: await service.members(request.principal, request.params.project),
  }));

  app.put(
    '/projects/:project/members/:username',
    { schema: { tags, summary: 'Add a member or change their role (idempotent)', params: ProjectUserParams, body: MemberInput, response: { 200: Member, 201: Member, ...errorResponses } } },
    async (request, reply) => {
      const { member, created } = await service.setMember(request.principal, request.params.project, request.params.username, request.body.role);
      return reply.code(created ? 201 : 200).send(member);
    },
  );

  app.delete('/projects/:project/members/:username', { schema: { tags, summary: 'Remove a member', params: ProjectUserParams, response: { 204: Type.Null(), ...errorResponses } } }, async (request, reply) => {
    await service.removeMember(request.principal, request.params.project, request.params.username);
    return reply.code(204).send(null);
  });

  app.get('/projects/:project/groups', { schema: { tags, summary: 'List group members', params: ProjectParams, response: { 200: Type.Object({ items: Type.Array(Type.Ref('GroupMember')) }), ...errorResponses } } }, async (request) => ({
    items: await service.groups(request.principal, request.params.project),
  }));

  app.put(
    '/projects/:project/groups/:group',
    {
      schema: {
        tags,
        summary: 'Give a group a role (idempotent); it grants access once identities carry groups',
        params: ProjectGroupParams,
        body: MemberInput,
        response: { 200: GroupMember, 201: GroupMember, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { member, created } = await service.setGroup(request.principal, request.params.project, request.params.group, request.body.role);
      return reply.code(created ? 201 : 200).send(member);
    },
  );

  app.delete('/projects/:project/groups/:group', { schema: { tags, summary: 'Remove a group member', params: ProjectGroupParams, response: { 204: Type.Null(), ...errorResponses } } }, async (request, reply) => {
    await service.removeGroup(request.principal, request.params.project, request.params.group);
    return reply.code(204).send(null);
  });
};

export default projects;
