import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { assertRepositoryName } from '../../oci/reference.js';
import { ociError } from '../../oci/errors.js';
import base from './base.js';
import blobs from './blobs.js';
import listings from './listings.js';
import manifests from './manifests.js';
import uploads from './uploads.js';
import { API_VERSION_HEADER } from './common.js';
import { auditEventFor } from './audit-events.js';
import { artifactEventFor, createdTag } from './artifact-event.js';
import { authorizationHook } from './authorization.js';

/** The OCI distribution API (/v2), one plugin per resource. */
const distribution: FastifyPluginAsyncTypebox = async (app) => {
  app.addHook('onRequest', async (request, reply) => {
    reply.headers(API_VERSION_HEADER);
    // Names are checked before anything touches storage or the database.
    const params = request.params as { name?: string } | undefined;
    if (params?.name === undefined) return;
    assertRepositoryName(params.name);
    // containerd's mirror requests name the registry they stand in for: `?ns=docker.io`.
    // From here on (authorization, handlers, audit) the request is one for the project that mirrors it.
    const query = (request.query ?? {}) as Record<string, unknown>;
    const ns = query.ns;
    // Repeated, or in a form containerd never sends: refused, never taken for a request without ns.
    if ((ns !== undefined && typeof ns !== 'string') || 'ns[]' in query) throw ociError('NAME_INVALID', { ns: JSON.stringify(ns ?? query['ns[]']).slice(0, 300) }, { message: 'ns names one registry host: give it once, as ?ns=<host>' });
    if (typeof ns === 'string' && ns !== '') params.name = assertRepositoryName(await app.proxy.mirrored(ns, params.name));
  });
  app.addHook('onRequest', authorizationHook(app.auth, app.metadata.projects));
  // A proxy-cache project holds what its upstream has; it is filled by pulls only.
  app.addHook('onRequest', async (request) => {
    const name = (request.params as { name?: string } | undefined)?.name;
    if (request.routeOptions.config?.action !== 'push' || name === undefined) return;
    const proxy = await app.proxy.forRepository(name);
    if (proxy) {
      throw ociError('DENIED', { project: proxy.project, upstream: proxy.url }, { message: `project "${proxy.project}" is a proxy cache of ${proxy.url}: it is filled by pulls, and pushes into it are refused` });
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    const completed = {
      method: request.method,
      routeUrl: request.routeOptions.url,
      status: reply.statusCode,
      params: (request.params ?? {}) as Record<string, string>,
      actor: request.tokenSubject || 'anonymous',
    };
    const event = auditEventFor(completed);
    if (event) app.auth.audit.record(event);
    const artifactEvent = artifactEventFor({ ...completed, headers: reply.getHeaders(), at: new Date(), tagCreated: createdTag(request) });
    if (artifactEvent) app.services.events.publish(artifactEvent);
  });
  await app.register(base);
  await app.register(blobs);
  await app.register(uploads);
  await app.register(manifests);
  await app.register(listings);
};

export default distribution;
