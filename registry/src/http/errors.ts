import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { errorBody, ociError, RegistryError } from '../oci/errors.js';
import { DatabaseUnavailableError } from '../metadata/sql.js';
import { StorageUnavailableError } from '../storage/blob-store.js';
import { NAMED_PREFIX } from './distribution/route-paths.js';
import { isValidRepositoryName } from '../oci/reference.js';

function formatBytes(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}

/** 413: manifests have their own code and limit; every other body shares the server's. */
function bodyTooLarge(request: FastifyRequest | undefined): RegistryError {
  const limit = request?.routeOptions.bodyLimit;
  const size = limit === undefined ? 'the limit' : formatBytes(limit);
  if (request?.routeOptions.url?.endsWith('/manifests/:reference')) {
    return ociError('MANIFEST_TOO_LARGE', { limit: size }, { message: `manifest exceeds ${size}` });
  }
  return ociError('REQUEST_TOO_LARGE', { limit: size }, { message: `request body exceeds ${size}` });
}

/**
 * Maps anything thrown by a handler to a RegistryError; unknown errors become INTERNAL.
 * `request` (when known) tells which limit a too-large body broke.
 */
export function toRegistryError(err: unknown, request?: FastifyRequest): RegistryError {
  if (err instanceof RegistryError) return err;
  if (err instanceof DatabaseUnavailableError || err instanceof StorageUnavailableError) {
    return ociError('UNAVAILABLE', { reason: err.message }, { headers: { 'Retry-After': '5' } });
  }
  const fe = err as FastifyError;
  switch (fe?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return bodyTooLarge(request);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return ociError('SIZE_INVALID', undefined, { message: 'Content-Length does not match the body' });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      const contentType = request?.headers['content-type'];
      return ociError('UNSUPPORTED_MEDIA_TYPE', { contentType }, { message: `this endpoint does not take a body of Content-Type ${JSON.stringify(contentType ?? '')}` });
    }
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return ociError('INVALID_REQUEST', { reason: fe.message }, { message: 'the request body is empty but its Content-Type is JSON' });
    case 'FST_ERR_VALIDATION':
      return ociError('INVALID_REQUEST', { reason: fe.message }, { message: `invalid request: ${fe.message}` });
  }
  if (fe?.statusCode === 400 && typeof fe.message === 'string') return ociError('INVALID_REQUEST', { reason: fe.message }, { message: `invalid request: ${fe.message}` });
  return ociError('INTERNAL');
}

/** NAME_INVALID when `path` is a rewritten `/v2/<name>/...` path whose name is not a valid repository name. */
function invalidName(path: string): RegistryError | undefined {
  if (!path.startsWith(NAMED_PREFIX)) return undefined;
  const encoded = path.slice(NAMED_PREFIX.length).split('/', 1)[0]!;
  let name: string;
  try {
    name = decodeURIComponent(encoded);
  } catch {
    name = encoded;
  }
  return isValidRepositoryName(name) ? undefined : ociError('NAME_INVALID', { name: name.slice(0, 300) }, { message: 'invalid repository name' });
}

/** A rewritten `/v2/<name>/...` path that reached no route has an invalid name or a method the resource does not support. */
function notFoundError(method: string, path: string): RegistryError {
  if (!path.startsWith(NAMED_PREFIX)) return ociError('NOT_FOUND', { path });
  return invalidName(path) ?? ociError('UNSUPPORTED', { method }, { message: `method ${method} is not supported on this resource` });
}

/**
 * A path segment longer than the router captures (`maxParamLength`) names nothing: an
 * invalid name or digest, an unknown upload, and a manifest reference that reads find
 * unknown (as any reference that cannot exist) and a push refuses.
 */
function overlongSegmentError(method: string, path: string): RegistryError {
  const [, kind, next] = path.startsWith(NAMED_PREFIX) ? path.slice(NAMED_PREFIX.length).split('/') : [];
  const tooLong = 'a path segment is longer than 1024 characters';
  const known = invalidName(path);
  if (known) return known;
  if (kind === 'manifests' && method === 'PUT') return ociError('TAG_INVALID', undefined, { message: `invalid tag: ${tooLong}` });
  if (kind === 'manifests' && ['GET', 'HEAD', 'DELETE'].includes(method)) return ociError('MANIFEST_UNKNOWN', undefined, { message: `manifest unknown: ${tooLong}` });
  if (kind === 'blobs' && next === 'uploads') return ociError('BLOB_UPLOAD_UNKNOWN', undefined, { message: `blob upload unknown: ${tooLong}` });
  if (kind === 'blobs' || kind === 'referrers') return ociError('DIGEST_INVALID', undefined, { message: `invalid digest: ${tooLong}` });
  return path.startsWith(NAMED_PREFIX) ? notFoundError(method, path) : ociError('INVALID_REQUEST', undefined, { message: tooLong });
}

/** A path whose percent-encoding does not decode to UTF-8 (`%ff`, an encoded surrogate) names nothing: 400. */
function badUrlError(path: string): RegistryError {
  return invalidName(path) ?? ociError('INVALID_REQUEST', { path: path.slice(0, 300) }, { message: 'the path is not valid percent-encoded UTF-8' });
}

/** fastify `frameworkErrors`: router-level failures (over-long or undecodable paths) in the OCI shape. */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const path = request.url.split('?', 1)[0]!;
  const e =
    error.code === 'FST_ERR_BAD_URL' ? badUrlError(path) : error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? overlongSegmentError(request.method, path) : toRegistryError(error, request);
  logError(request, error, e);
  void reply.code(e.httpStatus === 405 ? 400 : e.httpStatus).type('application/json').send(errorBody([e]));
}

/**
 * Node's HTTP parser rejects some requests before fastify sees them (a non-numeric
 * Content-Length, oversized headers). Answer those in the OCI shape too, then close.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const e =
    err.code === 'HPE_INVALID_CONTENT_LENGTH' || err.code === 'HPE_UNEXPECTED_CONTENT_LENGTH'
      ? ociError('SIZE_INVALID', undefined, { message: 'invalid Content-Length header' })
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ociError('REQUEST_TIMEOUT', undefined, { message: 'the request headers did not arrive in time' })
        : ociError('UNSUPPORTED', { reason: err.code ?? err.message }, { message: 'malformed HTTP request' });
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : e.httpStatus === 408 ? 408 : 400;
  const body = JSON.stringify(errorBody([e]));
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/**
 * Whether the client went away before the answer. The request stream alone cannot
 * tell: it is destroyed as soon as its body has been read, client or not.
 */
function isClientGone(request: FastifyRequest): boolean {
  return request.raw.readableAborted || request.raw.socket?.destroyed === true;
}

/** Server errors at error level with their cause (pino prints `err.cause` too); client errors at info. */
function logError(request: FastifyRequest, err: unknown, e: RegistryError): void {
  if (e.httpStatus < 500) request.log.info({ code: e.code, detail: e.detail }, e.message);
  else if (isClientGone(request)) request.log.info({ err }, 'request aborted by client');
  else request.log.error({ err, code: e.code }, 'request failed');
}

/** One error handler for every API surface: the OCI `{"errors":[...]}` body, status from the code table. */
export default fp(
  async function errorHandling(app: FastifyInstance) {
    app.setErrorHandler((err, request: FastifyRequest, reply: FastifyReply) => {
      const e = toRegistryError(err, request);
      logError(request, err, e);
      if (reply.sent || reply.raw.headersSent) return;
      void reply.status(e.httpStatus).headers(e.headers).type('application/json').send(errorBody([e]));
    });

    app.setNotFoundHandler((request, reply) => {
      const e = notFoundError(request.method, request.url.split('?', 1)[0]!);
      void reply.status(e.httpStatus).type('application/json').send(errorBody([e]));
    });
  },
  { name: 'wharf-errors' },
);
