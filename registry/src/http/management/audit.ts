import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AuditQuery as StoreQuery } from '../../metadata/audit.js';
import { ociError } from '../../oci/errors.js';
import { requireInProject, requireSystem } from '../../services/access.js';
import { AuditQuery, errorResponses, Page, ProjectParams } from './schemas.js';

/** A date-time the schema's format accepts can still be one JavaScript cannot hold (a leap second, 23:59:60). */
function timestamp(name: string, value: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw ociError('INVALID_REQUEST', { [name]: value.slice(0, 100) }, { message: `${name} is not a date-time this registry can represent` });
  return date;
}

function toStoreQuery(q: { limit?: number; before?: number; actor?: string; action?: string; resourceType?: string; resource?: string; since?: string; until?: string }): StoreQuery {
  return {
    limit: q.limit ?? 100,
    ...(q.before !== undefined && { before: q.before }),
    ...(q.actor !== undefined && { actor: q.actor }),
    ...(q.action !== undefined && { action: q.action }),
    ...(q.resourceType !== undefined && { resourceType: q.resourceType }),
    ...(q.resource !== undefined && { resource: q.resource }),
    ...(q.since !== undefined && { since: timestamp('since', q.since) }),
    ...(q.until !== undefined && { until: timestamp('until', q.until) }),
  };
}

/** The audit log: all of it for administrators, one project's for its members. */
const audit: FastifyPluginAsyncTypebox = async (app) => {
  const tags = ['audit'];
  const page = async (query: StoreQuery) => {
    await app.auth.audit.flush();
    const items = await app.metadata.audit.query({ ...query, limit: query.limit + 1 });
    const shown = items.slice(0, query.limit);
    return items.length > query.limit ? { items: shown, next: String(shown[shown.length - 1]!.id) } : { items: shown };
  };

  app.get('/audit', { schema: { tags, summary: 'Query the audit log (administrators), newest first', querystring: AuditQuery, response: { 200: Page(Type.Ref('AuditRecord'), 'AuditPage'), ...errorResponses } } }, async (request) => {
    requireSystem(request.principal, 'audit:read-all');
    return page(toStoreQuery(request.query));
  });

  app.get(
    '/projects/:project/audit',
    { schema: { tags, summary: "Query one project's audit log, newest first", params: ProjectParams, querystring: Type.Omit(AuditQuery, ['resource']), response: { 200: Page(Type.Ref('AuditRecord'), 'ProjectAuditPage'), ...errorResponses } } },
    async (request) => {
      const { project } = request.params;
      requireInProject(request.principal, project, await app.metadata.projects.get(project), 'audit:read');
      return page({ ...toStoreQuery(request.query), project });
    },
  );
};

export default audit;
