// The SQL behind webhooks on both drivers: where a tag pointed before a push (tag.created),
// the idempotent policy upsert, and the batched delivery and job inserts.
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { metadataOn, type Metadata } from '../../src/metadata/index.js';
import { JobStore } from '../../src/metadata/jobs.js';
import { migrate } from '../../src/metadata/migrate.js';
import { openPg } from '../../src/metadata/pg.js';
import { openPglite } from '../../src/metadata/pglite.js';
import type { Sql } from '../../src/metadata/sql.js';
import { WebhookStore } from '../../src/metadata/webhooks.js';
import { createTestDatabase } from '../support/pg.js';
import { removeDir, tempDir } from '../support/registry.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;

const drivers: { name: string; open: () => Promise<{ sql: Sql; cleanup: () => Promise<void> }> }[] = [
  {
    name: 'pglite',
    open: async () => {
      const dir = await tempDir();
      const sql = await openPglite(join(dir, 'db'));
      return { sql, cleanup: async () => removeDir(dir) };
    },
  },
  { name: 'pg', open: async () => ({ sql: await openPg(await createTestDatabase(inject('pgAdminUrl')), { max: 1 }), cleanup: async () => undefined }) },
];

describe.each(drivers)('webhook SQL on $name', ({ open }) => {
  let sql: Sql;
  let meta: Metadata;
  let cleanup: () => Promise<void>;

  afterAll(async () => {
    await sql?.close();
    await cleanup?.();
  });

  it('reports where a pushed tag pointed before the push, in the same statement', async () => {
    ({ sql, cleanup } = await open());
    await migrate(sql);
    meta = metadataOn(sql);
    const put = (digest: string, tag?: string) =>
      meta.manifests.put({ repository: 'p/app', digest, mediaType: 'm', content: Buffer.from(`{"${digest}":1}`), blobs: [], manifests: [], ...(tag && { tag }) });
    expect(await put(d('1'), 'v1')).toEqual({ missing: [] });
    expect(await put(d('1'), 'v1')).toEqual({ missing: [], previousTagDigest: d('1') });
    expect(await put(d('2'), 'v1')).toEqual({ missing: [], previousTagDigest: d('1') });
    expect(await put(d('3'))).toEqual({ missing: [] });
    expect((await meta.manifests.byTag('p/app', 'v1', false))?.digest).toBe(d('2'));
  });

  it('writes an unchanged policy not at all, and deliveries with their jobs in one transaction', async () => {
    await meta.projects.upsert('hooks', {});
    const projectId = (await meta.projects.get('hooks'))!.id;
    const store = new WebhookStore(sql);
    const record = { url: 'https://x.example.com/', format: 'harbor' as const, events: ['artifact.pushed'], enabled: true, secret: 's' };
    const first = await store.put(projectId, 'ci', record);
    expect(first).toMatchObject({ created: true, changed: true });
    expect(await store.put(projectId, 'ci', record)).toMatchObject({ created: false, changed: false, webhook: { updatedAt: first.webhook.updatedAt } });
    expect(await store.put(projectId, 'ci', { ...record, secret: undefined })).toMatchObject({ changed: false, webhook: { secret: 's' } });
    expect(await store.put(projectId, 'ci', { ...record, secret: 't' })).toMatchObject({ changed: true, webhook: { secret: 't' } });

    const jobs = new JobStore(sql);
    const ids = ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'];
    await sql.transaction(async (tx) => {
      await store.addDeliveries(tx, ids.map((id) => ({ id, webhookId: first.webhook.id, eventType: 'artifact.pushed', eventId: `e-${id}`, contentType: 'application/json', body: '{}' })));
      await jobs.enqueueMany(ids.map((deliveryId) => ({ kind: 'webhook-delivery', payload: { deliveryId }, maxAttempts: 4 })), tx);
    });
    expect((await jobs.list('webhook-delivery', 10)).map((j) => [j.payload.deliveryId, j.maxAttempts, j.state]).sort()).toEqual(ids.map((id) => [id, 4, 'queued']));
    const log = await store.deliveries(first.webhook.id, 1);
    expect(log).toHaveLength(1);
    expect((await store.deliveries(first.webhook.id, 10, log[0]!.seq)).map((x) => x.id)).toEqual([ids[0]]);
    expect((await store.deliveryToSend(ids[0]!))?.webhook).toMatchObject({ name: 'ci', secret: 't' });
    // Pruning keeps what is still being delivered.
    await store.recordAttempt(ids[0]!, { status: 'delivered', attempts: 1, responseStatus: 200, error: null });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await store.prune(0)).toBe(1);
    expect((await store.deliveries(first.webhook.id, 10)).map((x) => [x.id, x.status])).toEqual([[ids[1], 'pending']]);
  });
});
