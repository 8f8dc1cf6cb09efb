import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { assertRepositoryName } from '../../oci/reference.js';
import base from './base.js';
import blobs from './blobs.js';
import listings from './listings.js';
import manifests from './manifests.js';
import uploads from './uploads.js';
import { API_VERSION_HEADER } from './common.js';
import { auditEventFor } from './audit-events.js';
import { authorizationHook } from './authorization.js';

/** The OCI distribution API (/v2), one plugin per resource. */
const distribution: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', async (request, reply) => {
    reply.headers(API_VERSION_HEADER);
    // Names are checked before anything touches storage or the database.
    const params = request.params as { name?: string } | undefined;
    if (params?.name !== undefined) assertRepositoryName(params.name);
  });
  app.addHook('onRequest', authorizationHook(app.auth, app.metadata.projects));
  app.addHook('onResponse', async (request, reply) => {
    const event = auditEventFor({
      method: request.method,
      routeUrl: request.routeOptions.url,
      status: reply.statusCode,
      params: (request.params ?? {}) as Record<string, string>,
      actor: request.tokenSubject || 'anonymous',
    });
    if (event) app.auth.audit.record(event);
  });
  await app.register(base);
  await app.register(blobs);
  await app.register(uploads);
  await app.register(manifests);
  await app.register(listings);
};

export default distribution;
