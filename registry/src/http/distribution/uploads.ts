import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { parseDigest } from '../../oci/digest.js';
import { ociError } from '../../oci/errors.js';
import { assertRepositoryName } from '../../oci/reference.js';
import type { UploadSession } from '../../metadata/uploads.js';
import type { ChunkInput } from '../../services/uploads.js';
import { uploadLocation, uploadRangeHeader } from '../../services/uploads.js';
import { isUploadId } from '../../storage/paths.js';
import { parseContentLength, parseContentRange } from '../ranges.js';
import { blobLocation, clientSignal, hasBody, NameParams } from './common.js';
import { tokenAllows } from './authorization.js';

const StartQuery = Type.Object({
  digest: Type.Optional(Type.String()),
  mount: Type.Optional(Type.String()),
  from: Type.Optional(Type.String()),
});
const SessionParams = Type.Object({ name: Type.String(), id: Type.String() });
const FinishQuery = Type.Object({ digest: Type.Optional(Type.String()) });

function sessionHeaders(session: UploadSession): Record<string, string> {
  return {
    Location: uploadLocation(session.repository, session.id),
    Range: uploadRangeHeader(session.size),
    'Docker-Upload-UUID': session.id,
  };
}

function uploadId(id: string): string {
  if (!isUploadId(id)) throw ociError('BLOB_UPLOAD_UNKNOWN', { uploadId: id.slice(0, 100) });
  return id;
}

function chunkOf(request: FastifyRequest, withRange: boolean): ChunkInput {
  const chunk: ChunkInput = { body: request.raw, ...(request.bodyDeadline && { stop: request.bodyDeadline }) };
  const length = parseContentLength(request.headers['content-length']);
  if (length !== undefined) chunk.length = length;
  const range = withRange ? parseContentRange(request.headers['content-range']) : undefined;
  if (range) chunk.range = range;
  return chunk;
}

/** Who opens an upload session, for the per-principal cap: the token's subject, else the client's address. */
function principal(request: FastifyRequest): string {
  return request.tokenSubject || `addr:${request.ip}`;
}

function accepted(reply: FastifyReply, session: UploadSession) {
  return reply.code(202).headers(sessionHeaders(session)).header('Content-Length', 0).send();
}

function created(reply: FastifyReply, name: string, digest: string) {
  return reply.code(201).headers({ Location: blobLocation(name, digest), 'Docker-Content-Digest': digest, 'Content-Length': 0 }).send();
}

/** Blob uploads: monolithic, chunked, streamed, status, cancel and cross-repository mount. */
const uploads: FastifyPluginAsyncTypebox = async (app) => {
  const { uploads: service, blobs } = app.services;

  // Upload bodies are streamed by the handlers, never parsed.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));

  app.post('/v2/_r/:name/blobs/uploads/', { schema: { params: NameParams, querystring: StartQuery }, config: { action: 'push', streamsBody: true } }, async (request, reply) => {
    const { name } = request.params;
    const { digest, mount, from } = request.query;
    const signal = clientSignal(request, reply);
    if (mount !== undefined) {
      const mounted = parseDigest(mount, 'mount').value;
      // Mounting needs pull on the source too; without it the client just uploads.
      const source = from === undefined ? undefined : assertRepositoryName(from);
      if (source !== undefined && tokenAllows(request.grants, source, 'pull') && (await blobs.mount(name, source, mounted)) !== undefined) {
        return created(reply, name, mounted);
      }
      // Not mountable: the spec's answer is a normal upload session (202).
      return accepted(reply, await service.start(name, principal(request), signal));
    }
    if (digest !== undefined) {
      const blob = await service.monolithic(name, parseDigest(digest), chunkOf(request, false), signal);
      return created(reply, name, blob.digest);
    }
    return accepted(reply, await service.start(name, principal(request), signal));
  });

  app.patch('/v2/_r/:name/blobs/uploads/:id', { schema: { params: SessionParams }, config: { action: 'push', streamsBody: true } }, async (request, reply) => {
    const { name } = request.params;
    const session = await service.append(name, uploadId(request.params.id), chunkOf(request, true), clientSignal(request, reply));
    return accepted(reply, session);
  });

  app.put('/v2/_r/:name/blobs/uploads/:id', { schema: { params: SessionParams, querystring: FinishQuery }, config: { action: 'push', streamsBody: true } }, async (request, reply) => {
    const { name } = request.params;
    const id = uploadId(request.params.id);
    const expected = parseDigest(request.query.digest);
    const lastChunk = hasBody(request) ? chunkOf(request, true) : undefined;
    const blob = await service.finish(name, id, expected, lastChunk, clientSignal(request, reply));
    return created(reply, name, blob.digest);
  });

  app.get('/v2/_r/:name/blobs/uploads/:id', { schema: { params: SessionParams }, config: { action: 'push', streamsBody: true } }, async (request, reply) => {
    const session = await service.session(request.params.name, uploadId(request.params.id));
    return reply.code(204).headers(sessionHeaders(session)).send();
  });

  app.delete('/v2/_r/:name/blobs/uploads/:id', { schema: { params: SessionParams }, config: { action: 'push', streamsBody: true } }, async (request, reply) => {
    await service.cancel(request.params.name, uploadId(request.params.id));
    return reply.code(204).send();
  });
};

export default uploads;
