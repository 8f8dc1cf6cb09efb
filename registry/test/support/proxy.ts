import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RoundRobinProxy {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `127.0.0.1:<port>`, for OCI clients. */
  host: string;
  /** Requests forwarded to each upstream. */
  served: number[];
  /** Stops sending requests to upstream `index` (a replica that was killed). */
  remove(index: number): void;
  close(): Promise<void>;
}

/** Response header naming the upstream that answered. */
export const UPSTREAM_HEADER = 'x-test-upstream';

/**
 * A small HTTP load balancer for tests: each request (not each connection) goes to
 * the next upstream in turn, so consecutive requests of one client land on different
 * replicas. The Host header is passed through, as a Kubernetes Service would.
 */
export async function startRoundRobinProxy(upstreams: number[]): Promise<RoundRobinProxy> {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const removed = new Set<number>();
  const served = upstreams.map(() => 0);
  let next = 0;

  const pick = (): number => {
    for (let i = 0; i < upstreams.length; i++) {
      const candidate = (next + i) % upstreams.length;
      if (!removed.has(candidate)) {
        next = candidate + 1;
        return candidate;
      }
    }
    throw new Error('no upstream left');
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const index = pick();
    served[index]!++;
    const upstream = request({ host: '127.0.0.1', port: upstreams[index], method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, { ...answer.headers, [UPSTREAM_HEADER]: String(index) });
      answer.pipe(res);
      answer.on('error', () => res.destroy());
    });
    upstream.on('error', (err) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(502, { 'content-type': 'application/json', [UPSTREAM_HEADER]: String(index) });
      res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `upstream ${index}: ${err.message}` }] }));
    });
    req.pipe(upstream);
    req.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    served,
    remove: (index) => void removed.add(index),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

export interface StallingProxy {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Requests that were held. */
  stalled: number;
  close(): Promise<void>;
}

/**
 * Forwards every request to `target` (Host passed through, so S3 signatures hold),
 * holding those that `stall` picks for `ms` first: a backend that is slower than the
 * registry's clients.
 */
export async function startStallingProxy(target: string, stall: (req: IncomingMessage) => boolean, ms: number): Promise<StallingProxy> {
  const upstream = new URL(target);
  const agent = new Agent({ keepAlive: true });
  const proxy: StallingProxy = { url: '', stalled: 0, close: async () => undefined };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const forward = () => {
      const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      out.on('error', () => res.destroy());
      req.pipe(out);
    };
    if (!stall(req)) return forward();
    proxy.stalled++;
    setTimeout(forward, ms);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    agent.destroy();
  };
  return proxy;
}
