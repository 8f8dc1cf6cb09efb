import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { metadataOn } from '../src/metadata/index.js';
import { EMBEDDED_SETTINGS, pgliteSql } from '../src/metadata/pglite.js';
import { DatabaseThread } from '../src/metadata/pglite-thread.js';
import { jobsConfig, removeDir, tempDir } from './support/registry.js';

describe('a registry whose embedded database thread dies', () => {
  let dir: string;
  let app: FastifyInstance;

  let closed = false;

  afterAll(async () => {
    if (app && !closed) await app.close();
    if (dir) await removeDir(dir);
  });

  it('fails liveness and readiness, and answers 503 UNAVAILABLE instead of hanging', async () => {
    dir = await tempDir();
    await cp(inject('pgliteTemplate'), join(dir, 'metadata'), { recursive: true });
    const thread = await DatabaseThread.start(join(dir, 'metadata'), EMBEDDED_SETTINGS);
    app = await buildApp({
      config: {
        logLevel: 'silent',
        database: { embeddedDir: join(dir, 'metadata') },
        storage: { driver: 'filesystem', dir: join(dir, 'blobs') },
        auth: { mode: 'none', service: 'wharf-test', issuer: 'wharf-test', tokenKeyFile: join(dir, 'key.pem'), generateKey: true, tokenTtlSeconds: 300, adminPasswordFile: join(dir, 'admin') },
        jobs: jobsConfig({ worker: false }),
      },
      metadata: metadataOn(pgliteSql(thread)),
    });
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/v2/lib/app/tags/list' })).statusCode).toBe(404);

    await (thread as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();

    const health = await app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(503);
    expect(health.json()).toMatchObject({ status: 'failed', error: expect.stringMatching(/embedded database thread stopped/) });
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    const tags = await app.inject({ method: 'GET', url: '/v2/lib/app/tags/list' });
    expect(tags.statusCode).toBe(503);
    expect(tags.json().errors[0].code).toBe('UNAVAILABLE');
    // And it still shuts down.
    await app.close();
    closed = true;
  });
});
