import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const NameParams = Type.Object({ name: Type.String() });

/** Headers every /v2 response carries. */
export const API_VERSION_HEADER = { 'Docker-Distribution-API-Version': 'registry/2.0' } as const;

/** The action a route needs on its repository; the authorization hook reads it from the route config. */
export type RepositoryAction = 'pull' | 'push' | 'delete';

declare module 'fastify' {
  interface FastifyContextConfig {
    action?: RepositoryAction | 'catalog' | 'base';
  }
}

/** An AbortSignal that fires when the client goes away before the response is complete. */
export function clientSignal(request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('client closed the connection'));
  };
  reply.raw.once('close', onClose);
  request.raw.once('aborted', onClose);
  return controller.signal;
}

/** Whether the request carries a body (a non-zero Content-Length or chunked transfer). */
export function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return request.headers['transfer-encoding'] !== undefined;
}

export function blobLocation(name: string, digest: string): string {
  return `/v2/${name}/blobs/${digest}`;
}

export function manifestLocation(name: string, digest: string): string {
  return `/v2/${name}/manifests/${digest}`;
}
