import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { ociError } from '../../oci/errors.js';
import { MAX_MANIFEST_BYTES } from '../../oci/manifest.js';
import { baseMediaType, SUPPORTED_MANIFEST_TYPES } from '../../oci/media-types.js';
import { markTagCreated } from './artifact-event.js';
import { manifestLocation } from './common.js';
import { quotedString } from '../challenges.js';

/** RFC 7234 `Warning` for a cached tag served although the upstream could not confirm it. */
export function staleWarning(reason: string): string {
  return `110 wharf ${quotedString(`Response is Stale: the upstream failed (${reason}); serving the cached manifest`)}`;
}

const ManifestParams = Type.Object({ name: Type.String(), reference: Type.String() });
const manifestTypes = new Set(SUPPORTED_MANIFEST_TYPES);

/**
 * Accept negotiation: a client that lists manifest media types but neither this one
 * nor a wildcard cannot use it. Clients that list no manifest type get what is stored.
 */
export function acceptsManifest(accept: string | undefined, mediaType: string): boolean {
  if (!accept) return true;
  const listed = accept.split(',').map((part) => baseMediaType(part)).filter((t): t is string => t !== undefined);
  if (listed.some((t) => t === mediaType || t === '*/*' || t === 'application/*')) return true;
  return !listed.some((t) => manifestTypes.has(t));
}

/** Manifest GET/HEAD/PUT/DELETE by tag or digest. */
const manifests: FastifyPluginAsyncTypebox = async (app) => {
  const { manifests: service } = app.services;

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  app.route({
    method: ['GET', 'HEAD'],
    url: '/v2/_r/:name/manifests/:reference',
    schema: { params: ManifestParams },
    config: { action: 'pull' },
    handler: async (request, reply) => {
      const { name, reference } = request.params;
      const isGet = request.method === 'GET';
      const proxy = await app.proxy.forRepository(name);
      const proxied = proxy ? await app.proxy.manifest(proxy, name, reference) : undefined;
      const manifest = proxied ? proxied.manifest : await service.get(name, reference);
      if (proxied?.stale) reply.header('Warning', staleWarning(proxied.stale.reason));
      if (!acceptsManifest(request.headers.accept, manifest.mediaType)) {
        throw ociError('MANIFEST_UNKNOWN', { mediaType: manifest.mediaType, accept: request.headers.accept }, { message: `manifest is ${manifest.mediaType}, which the Accept header does not allow` });
      }
      if (proxy && isGet) app.proxy.manifestSent(proxy, name, manifest);
      reply.headers({
        'Content-Type': manifest.mediaType,
        'Docker-Content-Digest': manifest.digest,
        'Content-Length': manifest.size,
        ETag: `"${manifest.digest}"`,
      });
      return reply.send(isGet ? manifest.content : undefined);
    },
  });

  app.put('/v2/_r/:name/manifests/:reference', { schema: { params: ManifestParams }, config: { action: 'push' }, bodyLimit: MAX_MANIFEST_BYTES }, async (request, reply) => {
    const { name, reference } = request.params;
    const body = request.body as Buffer | undefined;
    if (!body || body.length === 0) throw ociError('MANIFEST_INVALID', undefined, { message: 'manifest body is empty' });
    const result = await service.put(name, reference, body, request.headers['content-type']);
    if (result.tagCreated) markTagCreated(request);
    reply.code(201).headers({ Location: manifestLocation(name, result.digest), 'Docker-Content-Digest': result.digest, 'Content-Length': 0 });
    if (result.subject) reply.header('OCI-Subject', result.subject);
    return reply.send();
  });

  app.delete('/v2/_r/:name/manifests/:reference', { schema: { params: ManifestParams }, config: { action: 'delete' } }, async (request, reply) => {
    await service.delete(request.params.name, request.params.reference);
    return reply.code(202).header('Content-Length', 0).send();
  });
};

export default manifests;
