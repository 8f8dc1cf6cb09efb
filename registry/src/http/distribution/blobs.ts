import type { OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { parseDigest } from '../../oci/digest.js';
import { ociError } from '../../oci/errors.js';
import { MediaTypes } from '../../oci/media-types.js';
import { interpretRange } from '../ranges.js';
import { canSendDirectly } from '../../storage/file-range-stream.js';
import { clientSignal } from './common.js';

const BlobParams = Type.Object({ name: Type.String(), digest: Type.String() });

/** Blob GET/HEAD (with Range) and DELETE. */
const blobs: FastifyPluginAsyncTypebox = async (app) => {
  const { blobs: service } = app.services;

  app.route({
    method: ['GET', 'HEAD'],
    url: '/v2/_r/:name/blobs/:digest',
    schema: { params: BlobParams },
    config: { action: 'pull' },
    handler: async (request, reply) => {
      const { name } = request.params;
      const digest = parseDigest(request.params.digest).value;
      const isGet = request.method === 'GET';
      // A proxy-cache project fetches what it lacks; any other answers unknown.
      const proxy = await app.proxy.forRepository(name);
      const found = await service.lookup(name, digest, isGet, proxy !== undefined);
      let blob;
      if ('missing' in found) {
        if (!proxy) throw ociError('BLOB_UNKNOWN', { digest });
        const answer = await app.proxy.blob(proxy, name, digest, { head: !isGet, whole: request.headers.range !== undefined, named: found.referenced, signal: clientSignal(request, reply) });
        if (answer.kind !== 'stored') {
          reply.headers({ 'Docker-Content-Digest': digest, ETag: `"${digest}"`, 'Cache-Control': 'max-age=31536000, immutable' }).type(MediaTypes.octetStream);
          if (answer.size !== undefined) reply.header('Content-Length', answer.size);
          return reply.send(answer.kind === 'stream' ? answer.body : undefined);
        }
        blob = await service.find(name, digest, isGet);
      } else {
        blob = found;
      }
      const headers = {
        'Docker-Content-Digest': digest,
        'Accept-Ranges': 'bytes',
        ETag: `"${digest}"`,
        'Cache-Control': 'max-age=31536000, immutable',
      };
      if (isGet && !blob.manifestContent) {
        const url = await service.redirectUrl(digest);
        if (url) return reply.code(307).headers({ ...headers, Location: url }).send();
      }
      const range = interpretRange(request.headers.range, blob.size);
      if (range.kind === 'unsatisfiable') {
        throw ociError('RANGE_INVALID', { range: request.headers.range, size: blob.size }, { headers: { 'Content-Range': `bytes */${blob.size}` } });
      }
      reply.headers(headers).type(MediaTypes.octetStream);
      const byteRange = range.kind === 'partial' ? range.range : undefined;
      const length = byteRange ? byteRange.end - byteRange.start + 1 : blob.size;
      if (byteRange) reply.code(206).header('Content-Range', `bytes ${byteRange.start}-${byteRange.end}/${blob.size}`);
      reply.header('Content-Length', length);
      if (!isGet) return reply.send();
      if (blob.manifestContent) {
        const bytes = byteRange ? blob.manifestContent.subarray(byteRange.start, byteRange.end + 1) : blob.manifestContent;
        return reply.send(bytes);
      }
      if (length === 0) return reply.send(Readable.from([]));
      const body = await service.open(blob, byteRange, clientSignal(request, reply));
      if (!canSendDirectly(body)) return reply.send(body);
      // The filesystem fast path writes the response itself, with reused buffers.
      reply.hijack();
      reply.raw.writeHead(reply.statusCode, reply.getHeaders() as OutgoingHttpHeaders);
      body.sendTo(reply.raw).catch((err: Error) => {
        request.log.info({ err: err.message, digest }, 'blob download ended early');
        reply.raw.destroy();
      });
      return reply;
    },
  });

  app.delete('/v2/_r/:name/blobs/:digest', { schema: { params: BlobParams }, config: { action: 'delete' } }, async (request, reply) => {
    const digest = parseDigest(request.params.digest).value;
    await service.delete(request.params.name, digest);
    return reply.code(202).header('Content-Length', 0).send();
  });
};

export default blobs;
