import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

declare module 'fastify' {
  interface FastifyInstance {
    /** This app's Prometheus registry (one per app, so several apps can share a process). */
    metrics: Registry;
  }
}

const UPLOAD_ROUTES = new Set(['/v2/:name/blobs/uploads/', '/v2/:name/blobs/uploads/:id']);

/** The route pattern as clients see it; `unmatched` for requests that reached no route. */
function routeLabel(request: FastifyRequest): string {
  const url = request.routeOptions.url;
  return url ? url.replace('/v2/_r/:name/', '/v2/:name/') : 'unmatched';
}

function headerBytes(value: string | number | string[] | undefined): number {
  const n = Number(Array.isArray(value) ? value[0] : value);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/**
 * Prometheus metrics for every HTTP request: count and latency by method, route and
 * status; bytes received and sent by route (socket counters, so streamed bodies
 * count too); upload requests in flight; open upload sessions; process defaults.
 */
export default fp(
  async function metricsPlugin(app: FastifyInstance) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const labelNames = ['method', 'route', 'status'] as const;
    const requests = new Counter({ name: 'wharf_http_requests_total', help: 'HTTP requests by method, route and status (499: the client went away first)', labelNames, registers: [registry] });
    const latency = new Histogram({
      name: 'wharf_http_request_duration_seconds',
      help: 'HTTP request latency, from the request line to the last byte of the response',
      labelNames,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    });
    const received = new Counter({ name: 'wharf_http_received_bytes_total', help: 'Bytes received in HTTP requests, by route', labelNames: ['route'], registers: [registry] });
    const sent = new Counter({ name: 'wharf_http_sent_bytes_total', help: 'Bytes sent in HTTP responses, by route', labelNames: ['route'], registers: [registry] });
    const uploadsInFlight = new Gauge({ name: 'wharf_upload_requests_in_flight', help: 'Blob upload requests this replica is receiving now', registers: [registry] });
    new Gauge({
      name: 'wharf_upload_sessions',
      help: 'Open blob upload sessions (all replicas)',
      registers: [registry],
      async collect() {
        // A scrape still answers while the database is away; the gauge keeps its last value.
        this.set(await app.metadata.uploads.count().catch(() => NaN));
      },
    });

    // Socket counters at the end of the previous request on the same connection: the
    // difference is this request's share, headers and streamed bodies included.
    const counted = new WeakMap<object, { read: number; written: number }>();

    app.addHook('onRequest', async (request, reply) => {
      const started = performance.now();
      const route = routeLabel(request);
      const upload = request.method !== 'GET' && request.method !== 'DELETE' && UPLOAD_ROUTES.has(route);
      if (upload) uploadsInFlight.inc();
      reply.raw.once('close', () => {
        if (upload) uploadsInFlight.dec();
        const labels = { method: request.method, route, status: reply.raw.writableFinished ? reply.statusCode : 499 };
        requests.inc(labels);
        latency.observe(labels, (performance.now() - started) / 1000);
        const socket = request.raw.socket as { bytesRead?: number; bytesWritten?: number } | null;
        let bytesIn: number;
        let bytesOut: number;
        if (socket && typeof socket.bytesRead === 'number' && typeof socket.bytesWritten === 'number') {
          const before = counted.get(socket) ?? { read: 0, written: 0 };
          counted.set(socket, { read: socket.bytesRead, written: socket.bytesWritten });
          bytesIn = socket.bytesRead - before.read;
          bytesOut = socket.bytesWritten - before.written;
        } else {
          bytesIn = headerBytes(request.headers['content-length']);
          bytesOut = headerBytes(reply.getHeader('content-length'));
        }
        if (bytesIn > 0) received.inc({ route }, bytesIn);
        if (bytesOut > 0) sent.inc({ route }, bytesOut);
      });
    });

    app.decorate('metrics', registry);
  },
  { name: 'wharf-metrics', dependencies: ['wharf-metadata'] },
);
