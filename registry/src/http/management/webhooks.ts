import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { errorResponses, Page, PageQuery, ProjectParams } from './schemas.js';
import { ProjectWebhookParams, WebhookInput } from './webhook-schemas.js';

const page = (q: { limit?: number; after?: string }) => ({ limit: q.limit ?? 100, ...(q.after !== undefined && { after: q.after }) });

/** Webhook policies under /projects/{project}/webhooks, and each one's delivery log. */
const webhooks: FastifyPluginAsyncTypebox = async (app) => {
  const service = app.webhooks.service;
  const tags = ['webhooks'];
  const base = '/projects/:project/webhooks';

  app.get(base, { schema: { tags, summary: 'List the webhooks of a project', params: ProjectParams, querystring: PageQuery, response: { 200: Page(Type.Ref('Webhook'), 'WebhookPage'), ...errorResponses } } }, async (request) =>
    service.list(request.principal, request.params.project, page(request.query)),
  );

  app.get(`${base}/:webhook`, { schema: { tags, summary: 'Get a webhook', params: ProjectWebhookParams, response: { 200: Type.Ref('Webhook'), ...errorResponses } } }, async (request) =>
    service.get(request.principal, request.params.project, request.params.webhook),
  );

  app.put(
    `${base}/:webhook`,
    { schema: { tags, summary: 'Create or update a webhook by name; authHeader and secret are write-only', params: ProjectWebhookParams, body: WebhookInput, response: { 200: Type.Ref('Webhook'), 201: Type.Ref('Webhook'), ...errorResponses } } },
    async (request, reply) => {
      const { webhook, created } = await service.put(request.principal, request.params.project, request.params.webhook, request.body);
      return reply.code(created ? 201 : 200).send(webhook);
    },
  );

  app.delete(`${base}/:webhook`, { schema: { tags, summary: 'Delete a webhook and its delivery log', params: ProjectWebhookParams, response: { 204: Type.Null(), ...errorResponses } } }, async (request, reply) => {
    await service.delete(request.principal, request.params.project, request.params.webhook);
    return reply.code(204).send(null);
  });

  app.get(
    `${base}/:webhook/deliveries`,
    { schema: { tags, summary: 'The delivery log of a webhook, newest first', params: ProjectWebhookParams, querystring: PageQuery, response: { 200: Page(Type.Ref('WebhookDelivery'), 'WebhookDeliveryPage'), ...errorResponses } } },
    async (request) => service.deliveries(request.principal, request.params.project, request.params.webhook, page(request.query)),
  );
};

export default webhooks;
