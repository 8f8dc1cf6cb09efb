import type { FastifyPluginAsync } from 'fastify';
import { REGISTRY_VERSION } from '../version.js';

export interface HealthCheck {
  name: string;
  check(signal: AbortSignal): Promise<void>;
}

const CHECK_TIMEOUT_MS = 2000;

async function runCheck(c: HealthCheck): Promise<{ name: string; ok: boolean; error?: string }> {
  try {
    await Promise.race([
      c.check(AbortSignal.timeout(CHECK_TIMEOUT_MS)),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS).unref()),
    ]);
    return { name: c.name, ok: true };
  } catch (err) {
    return { name: c.name, ok: false, error: (err as Error).message };
  }
}

/**
 * `/healthz`: the process serves requests and has not lost something only a restart
 * brings back (the embedded database's thread). `/readyz`: the database and storage answer; it
 * also carries the registry's version (the operator shows it for external registries).
 */
const health: FastifyPluginAsync = async (app) => {
  const checks: HealthCheck[] = [
    { name: 'database', check: async () => void (await app.metadata.sql.query('SELECT 1')) },
    { name: 'storage', check: (signal) => app.blobStore.ping(signal) },
  ];

  app.get('/healthz', async (_request, reply) => {
    const fatal = app.metadata.sql.fatal?.();
    if (fatal) return reply.code(503).send({ status: 'failed', error: fatal.message });
    return { status: 'ok' };
  });

  app.get('/readyz', async (_request, reply) => {
    const results = await Promise.all(checks.map(runCheck));
    const ready = results.every((r) => r.ok);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', version: REGISTRY_VERSION, checks: results });
  });
};

export default health;
