import { createServer, type Server } from 'node:http';
import { REGISTRY_VERSION } from '../version.js';
import { Errors } from '../oci/errors.js';

/**
 * The port while the registry starts. The first start of the embedded database runs initdb
 * (several CPU-seconds; minutes on a throttled pod), and Kubernetes would restart a container
 * whose port stayed closed past its startup probe's budget, from scratch. Instead the port
 * opens at once: `/healthz` answers 200 (the process is alive and starting), `/readyz` and
 * everything else 503 with a Retry-After, until the app takes the port over (`close()`, then
 * the app's `listen()`: no request is answered by both, and only a connection attempted in the
 * instant between the two finds the port closed).
 */
export async function listenWhileStarting(host: string, port: number): Promise<{ close(): Promise<void> }> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      response.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...(status === 503 && { 'Retry-After': '5' }), Connection: 'close' });
      response.end(JSON.stringify(body));
    };
    if (path === '/healthz') json(200, { status: 'starting' });
    else if (path === '/readyz') json(503, { status: 'starting', version: REGISTRY_VERSION, checks: [] });
    else json(503, { errors: [{ code: Errors.UNAVAILABLE.code, message: 'the registry is starting; retry later' }] });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        // Every answer closes its connection, so this waits only for answers being written.
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
