import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { errorBody, ociError, RegistryError } from '../oci/errors.js';
import { DatabaseUnavailableError } from '../metadata/sql.js';
import { StorageUnavailableError } from '../storage/blob-store.js';
import { NAMED_PREFIX } from './distribution/route-paths.js';
import { isValidRepositoryName } from '../oci/reference.js';

/** Maps anything thrown by a handler to a RegistryError; unknown errors become INTERNAL. */
export function toRegistryError(err: unknown): RegistryError {
  if (err instanceof RegistryError) return err;
  if (err instanceof DatabaseUnavailableError || err instanceof StorageUnavailableError) {
    return ociError('UNAVAILABLE', { reason: err.message }, { headers: { 'Retry-After': '5' } });
  }
  const fe = err as FastifyError;
  switch (fe?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return ociError('MANIFEST_TOO_LARGE', { limit: '4 MiB' }, { message: 'request body exceeds 4 MiB' });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return ociError('SIZE_INVALID', undefined, { message: 'Content-Length does not match the body' });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return ociError('UNSUPPORTED', { reason: fe.message });
    case 'FST_ERR_VALIDATION':
      return ociError('INVALID_REQUEST', { reason: fe.message }, { message: `invalid request: ${fe.message}` });
  }
  if (fe?.statusCode === 400 && typeof fe.message === 'string') return ociError('INVALID_REQUEST', { reason: fe.message }, { message: `invalid request: ${fe.message}` });
  return ociError('INTERNAL');
}

/**
 * A rewritten `/v2/<name>/...` path that reached no route either has a name the router
 * could not capture (too long) or a method the resource does not support.
 */
function notFoundError(method: string, path: string): RegistryError {
  if (!path.startsWith(NAMED_PREFIX)) return ociError('NOT_FOUND', { path });
  const encoded = path.slice(NAMED_PREFIX.length).split('/', 1)[0]!;
  let name: string;
  try {
    name = decodeURIComponent(encoded);
  } catch {
    name = encoded;
  }
  if (!isValidRepositoryName(name)) return ociError('NAME_INVALID', { name: name.slice(0, 300) }, { message: 'invalid repository name' });
  return ociError('UNSUPPORTED', { method }, { message: `method ${method} is not supported on this resource` });
}

/** fastify `frameworkErrors`: router-level failures (over-long or undecodable paths) in the OCI shape. */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const routerLevel = error.code === 'FST_ERR_MAX_PARAM_LENGTH' || error.code === 'FST_ERR_BAD_URL';
  const e = routerLevel ? notFoundError(request.method, request.url.split('?', 1)[0]!) : toRegistryError(error);
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

function isClientGone(request: FastifyRequest): boolean {
  return request.raw.destroyed || request.raw.socket?.destroyed === true;
}

/** One error handler for every API surface: the OCI `{"errors":[...]}` body, status from the code table. */
export default fp(
  async function errorHandling(app: FastifyInstance) {
    app.setErrorHandler((err, request: FastifyRequest, reply: FastifyReply) => {
      const e = toRegistryError(err);
      if (e.httpStatus >= 500) {
        if (isClientGone(request)) request.log.info({ err }, 'request aborted by client');
        else request.log.error({ err, code: e.code }, 'request failed');
      } else {
        request.log.info({ code: e.code, detail: e.detail }, e.message);
      }
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
