import type { Socket } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import { ociError } from '../oci/errors.js';
import { feed } from '../services/feed.js';
import { BodyRateMeter, type BodyRatePolicy } from './body-rate.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Aborts, with a REQUEST_TIMEOUT error as its reason, when the body arrives too slowly; set on requests with a body. */
    bodyDeadline?: AbortSignal;
  }
  interface FastifyContextConfig {
    /** The handler deals with the body itself (reads it from `request.raw`, passing `bodyDeadline` on, or ignores it), not a content-type parser. */
    streamsBody?: boolean;
  }
}

/** After a cut-off, how long the request has to answer before its connection is simply closed. */
const ANSWER_GRACE_MS = 5000;

interface Watched {
  request: FastifyRequest;
  reply: FastifyReply;
  socket: Socket;
  meter: BodyRateMeter;
  deadline: AbortController;
}

function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  if (length !== undefined) return length !== '0';
  return request.headers['transfer-encoding'] !== undefined;
}

/**
 * Cuts off request bodies that arrive slower than the policy allows (see
 * BodyRateMeter), so that slow or stalled clients cannot hold connections and
 * half-written uploads indefinitely. One timer checks every body in flight, reading
 * the socket's byte counter: nothing is added to the path of the body's bytes.
 *
 * A body is cut off by aborting `request.bodyDeadline`: handlers that stream bodies
 * (uploads) stop reading and fail with its reason, and bodies parsed by fastify fail
 * through `guardParsedBody`; either way the one error handler answers 408, and the
 * connection closes after it (closeWhenBodyUnread). A request that can no longer
 * answer (its response is already under way) just loses its connection.
 */
export class BodyDeadlines {
  private readonly watched = new Set<Watched>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly policy: BodyRatePolicy,
    private readonly log: FastifyBaseLogger,
  ) {
    const every = Math.min(1000, Math.max(25, Math.min(policy.windowMs, policy.graceMs || policy.windowMs) / 4));
    this.timer = setInterval(() => this.check(), every);
    this.timer.unref();
  }

  /** onRequest hook: starts watching a request that has a body. */
  readonly watch = (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    const socket = request.raw.socket;
    // An injected request (app.inject) has a stand-in socket that counts no bytes: no network, nothing to watch.
    if (hasBody(request) && socket && typeof socket.bytesRead === 'number' && typeof socket.isPaused === 'function') {
      const entry: Watched = { request, reply, socket, meter: new BodyRateMeter(this.policy, Date.now(), socket.bytesRead), deadline: new AbortController() };
      request.bodyDeadline = entry.deadline.signal;
      this.watched.add(entry);
      reply.raw.once('close', () => this.watched.delete(entry));
    }
    done();
  };

  /** preParsing hook: a body that fastify parses fails with the deadline's reason when it is cut off. */
  readonly guardParsedBody = (request: FastifyRequest, _reply: FastifyReply, payload: Readable, done: (err: null, payload: Readable) => void): void => {
    const deadline = request.bodyDeadline;
    if (!deadline || request.routeOptions.config?.streamsBody) {
      done(null, payload);
      return;
    }
    const guarded = new PassThrough();
    feed(payload, guarded, deadline).catch(() => undefined);
    done(null, guarded);
  };

  close(): void {
    clearInterval(this.timer);
    this.watched.clear();
  }

  private check(): void {
    const now = Date.now();
    for (const entry of this.watched) {
      const { request, socket } = entry;
      if (request.raw.complete || socket.destroyed) {
        this.watched.delete(entry);
        continue;
      }
      // Paused: the registry is not reading (its storage is slower than the client, or no handler reads yet).
      const verdict = entry.meter.check(now, socket.bytesRead, socket.isPaused() || request.raw.isPaused());
      if (verdict.slow) this.cutOff(entry, verdict.bytes, verdict.ms);
    }
  }

  private cutOff(entry: Watched, bytes: number, ms: number): void {
    const { request, reply, socket } = entry;
    this.watched.delete(entry);
    const min = this.policy.minBytesPerSecond;
    request.log.warn({ client: request.ip, method: request.method, url: request.url, bytes, ms, minBytesPerSecond: min }, 'request body too slow: answering 408 and closing the connection');
    if (reply.raw.headersSent) {
      socket.destroy();
      return;
    }
    entry.deadline.abort(
      ociError('REQUEST_TIMEOUT', { received: bytes, ms, minBytesPerSecond: min }, { message: `the request body arrived too slowly: ${bytes} bytes in ${ms} ms, below the minimum of ${min} bytes/s` }),
    );
    setTimeout(() => {
      if (!reply.raw.writableFinished) socket.destroy();
    }, ANSWER_GRACE_MS).unref();
  }
}

