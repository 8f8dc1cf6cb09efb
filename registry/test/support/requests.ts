import type { FastifyInstance, FastifyRequest } from 'fastify';

/** How the registry finished one request: the status it answered, or the error that ended it. */
export type FinishedRequest = { method: string; url: string } & ({ status: number; error?: undefined } | { status?: undefined; error: Error });

interface Waiter {
  method: string;
  url: string;
  resolve(finished: FinishedRequest): void;
}

/**
 * Tells a test when the registry is done with a request, so that what the test checks next
 * cannot run before the server has processed it. fastify's onError hook runs once the handler
 * (or the body parser) has failed, after the handler's own clean-up; onSend once the handler
 * has produced its answer, whether or not the client is still there to receive it.
 */
export class RequestWatch {
  private readonly waiters: Waiter[] = [];
  private readonly done = new WeakSet<FastifyRequest>();

  constructor(app: FastifyInstance) {
    app.addHook('onError', async (request, _reply, error) => this.finish(request, { method: request.method, url: request.originalUrl, error }));
    app.addHook('onSend', async (request, reply) => this.finish(request, { method: request.method, url: request.originalUrl, status: reply.statusCode }));
  }

  /**
   * Resolves when the registry has finished the next request for `method` and `url` (path and
   * query exactly as sent). Call it before sending the request.
   */
  next(method: string, url: string, timeoutMs = 30_000): Promise<FinishedRequest> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        method,
        url,
        resolve: (finished) => {
          clearTimeout(timer);
          resolve(finished);
        },
      };
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(new Error(`the registry did not finish ${method} ${url} within ${timeoutMs} ms: did the request reach it?`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  private finish(request: FastifyRequest, finished: FinishedRequest): void {
    // A failed request reaches both hooks (the error body is sent too): the first one counts.
    if (this.done.has(request)) return;
    this.done.add(request);
    const index = this.waiters.findIndex((w) => w.method === finished.method && w.url === finished.url);
    if (index >= 0) this.waiters.splice(index, 1)[0]!.resolve(finished);
  }
}
