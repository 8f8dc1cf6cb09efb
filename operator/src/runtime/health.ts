// The operator's HTTP endpoints: /healthz (the process is alive), /readyz (it can do its job:
// caches synced when leading, or waiting as a standby), /metrics (Prometheus).
import { createServer, type Server } from 'node:http';
import type { OperatorMetrics } from './metrics.js';

export interface HealthChecks {
  live: () => boolean;
  ready: () => { ok: boolean; detail: string };
}

export async function startHealthServer(addr: string, checks: HealthChecks, metrics: OperatorMetrics): Promise<{ server: Server; port: number }> {
  const [host, portText] = splitHostPort(addr);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    if (path === '/healthz' || path === '/livez') {
      const ok = checks.live();
      res.writeHead(ok ? 200 : 500, { 'Content-Type': 'text/plain' }).end(ok ? 'ok\n' : 'unhealthy\n');
    } else if (path === '/readyz') {
      const { ok, detail } = checks.ready();
      res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(`${detail}\n`);
    } else if (path === '/metrics') {
      metrics.registry
        .metrics()
        .then((text) => res.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(text))
        .catch(() => res.writeHead(500).end());
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(portText), host, () => resolve());
  });
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0 };
}

function splitHostPort(addr: string): [string, string] {
  const i = addr.lastIndexOf(':');
  if (i < 0) return ['0.0.0.0', addr];
  return [addr.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0', addr.slice(i + 1)];
}
