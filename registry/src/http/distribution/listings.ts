import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { parseDigest } from '../../oci/digest.js';
import { MediaTypes } from '../../oci/media-types.js';
import { parsePage } from '../../services/listings.js';
import { NameParams } from './common.js';
import { visibleProjects } from '../../auth/grants.js';

const PageQuery = Type.Object({ n: Type.Optional(Type.String()), last: Type.Optional(Type.String()) });
const ReferrersParams = Type.Object({ name: Type.String(), digest: Type.String() });
const ReferrersQuery = Type.Object({ artifactType: Type.Optional(Type.String()) });

/** RFC 8288 `Link` to the next page, as the distribution-spec describes for tags and the catalog. */
function nextLink(path: string, n: number | undefined, last: string): string {
  const query = new URLSearchParams();
  if (n !== undefined) query.set('n', String(n));
  query.set('last', last);
  return `<${path}?${query.toString()}>; rel="next"`;
}

/** Tags list, catalog and referrers. */
const listings: FastifyPluginAsyncTypebox = async (app) => {
  const { listings: service } = app.services;

  app.get('/v2/_r/:name/tags/list', { schema: { params: NameParams, querystring: PageQuery }, config: { action: 'pull' } }, async (request, reply) => {
    const { name } = request.params;
    const page = parsePage(request.query);
    const result = await service.tags(name, page);
    if (result.next !== undefined) reply.header('Link', nextLink(`/v2/${name}/tags/list`, page.n, result.next));
    return { name, tags: result.items };
  });

  app.get('/v2/_catalog', { schema: { querystring: PageQuery }, config: { action: 'catalog' } }, async (request, reply) => {
    const page = parsePage(request.query);
    const visible = request.tokenSubject === undefined ? undefined : await visibleProjects(await app.auth.identities.principalFor(request.tokenSubject), app.metadata.projects);
    const result = await service.catalog(page, visible);
    if (result.next !== undefined) reply.header('Link', nextLink('/v2/_catalog', page.n, result.next));
    return { repositories: result.items };
  });

  app.get('/v2/_r/:name/referrers/:digest', { schema: { params: ReferrersParams, querystring: ReferrersQuery }, config: { action: 'pull' } }, async (request, reply) => {
    const { name } = request.params;
    const subject = parseDigest(request.params.digest).value;
    const { artifactType } = request.query;
    const proxy = await app.proxy.forRepository(name);
    const upstream = proxy ? await app.proxy.referrers(proxy, name, subject, artifactType || undefined) : undefined;
    // The upstream's own answer, as it sent it (its OCI-Filters-Applied is not known here, so none is claimed).
    if (upstream) return reply.header('Content-Type', upstream.mediaType).send(upstream.content);
    const referrers = await service.referrers(name, subject, artifactType || undefined);
    if (artifactType) reply.header('OCI-Filters-Applied', 'artifactType');
    const index = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: referrers.map((r) => ({
        mediaType: r.mediaType,
        digest: r.digest,
        size: r.size,
        ...(r.artifactType !== null && { artifactType: r.artifactType }),
        ...(r.annotations !== null && { annotations: r.annotations }),
      })),
    };
    // A Buffer keeps fastify from appending "; charset=utf-8" to the media type.
    return reply.header('Content-Type', MediaTypes.ociIndex).send(Buffer.from(JSON.stringify(index)));
  });
};

export default listings;
