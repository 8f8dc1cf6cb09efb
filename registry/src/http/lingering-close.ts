import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * How long a connection stays half-closed after an answer the client may still be
 * busy sending into. Closing at once, with unread bytes in the receive buffer, makes
 * the kernel send a reset, and a client still writing its body then often loses the
 * answer that was already on its way (with a 200 MB upload refused after 1 MiB, about
 * a third of Node clients saw EPIPE instead of the 403). Go's server waits 500 ms.
 */
export const LINGER_MS = 1000;

/** An unread body up to this size, which nothing began to read, is read and dropped as usual, keeping the connection. */
const SMALL_BODY = 64 * 1024;

/**
 * Closes `socket` gracefully once the answer is written: our side is shut (the client
 * reads the answer, then end of stream), the rest of its request is not read, and the
 * socket is destroyed `LINGER_MS` later. Node ends a connection after a response
 * marked `Connection: close` by calling `socket.destroySoon()`, which destroys the
 * socket as soon as the answer is handed to the kernel; this replaces it for `socket`.
 */
export function lingerOnClose(socket: Socket): void {
  socket.destroySoon = function lingeringClose(this: Socket) {
    if (this.destroyed) return;
    this.end();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}

/**
 * Whether the request's body was not read to its end, so that the connection should
 * close. Node reads and drops the rest of a body nothing began to read; that is kept
 * for small bodies. A body something began to read and then left (a refusal, a
 * timeout) would hold the connection, and a large or chunked one may never end.
 */
function bodyLeftUnread(request: FastifyRequest): boolean {
  if (request.raw.complete) return false;
  const length = Number(request.headers['content-length']);
  return !(request.raw.readableFlowing === null && length <= SMALL_BODY);
}

/**
 * onSend hook: an answer given before the request's body was read (a refusal, a
 * timeout, an error) closes the connection, lingering, instead of reading the rest
 * of a body nobody wants, which could be endless.
 */
export function closeWhenBodyUnread(request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void): void {
  if (bodyLeftUnread(request)) {
    void reply.header('Connection', 'close');
    lingerOnClose(request.raw.socket);
  }
  done(null, payload);
}
