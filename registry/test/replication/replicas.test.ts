// Two replicas on one PostgreSQL database and one blob store run one execution's tasks
// between them: every task runs once, every artifact arrives, and the execution ends
// exactly once (one "finished" audit event).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ManagementClient } from '../support/auth.js';
import { buildImage, RegistryClient } from '../support/oci.js';
import { createTestDatabase } from '../support/pg.js';
import { removeDir, startRegistry, tempDir, type RunningRegistry } from '../support/registry.js';
import { runPolicy, tasksOf } from './support.js';

const IMAGES = 12;

let shared: string;
let replicas: RunningRegistry[];
let destination: RunningRegistry;

async function metric(url: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

beforeAll(async () => {
  shared = await tempDir('wharf-replication-replicas-');
  const databaseUrl = await createTestDatabase(inject('pgAdminUrl'));
  const options = { databaseUrl, storage: { driver: 'filesystem' as const, dir: join(shared, 'blobs') }, jobs: { pollIntervalMs: 100 }, replication: { settings: { retryBaseMs: 200 } } };
  replicas = [await startRegistry(options), await startRegistry(options)];
  destination = await startRegistry();
  await new ManagementClient(destination.url, null).project('mirror');
}, 120_000);

afterAll(async () => {
  for (const r of [...(replicas ?? []), destination]) await r?.stop();
  for (const r of [...(replicas ?? []), destination]) if (r) await removeDir(r.dataDir);
  if (shared) await removeDir(shared);
});

describe('replication on two replicas', () => {
  it('runs every task once and ends the execution once', async () => {
    const [a, b] = replicas as [RunningRegistry, RunningRegistry];
    const api = new ManagementClient(a.url, null);
    await api.project('apps');
    for (let i = 0; i < IMAGES; i++) await new RegistryClient(i % 2 ? a.url : b.url).pushImage(`apps/img-${i}`, 'v1', await buildImage({ layers: 1 }));
    await api.ok('PUT', '/registries/site-b', { provider: 'wharf', url: destination.url });
    await api.ok('PUT', '/replication/policies/fan-out', { mode: 'push', registry: 'site-b', filters: { name: { matches: ['apps/**'] } }, destination: { namespace: 'mirror' } });
    const execution = await runPolicy(new ManagementClient(b.url, null), 'fan-out');
    expect(execution.status).toBe('Succeeded');
    expect(execution.tasks).toMatchObject({ total: IMAGES, succeeded: IMAGES });
    const tasks = await tasksOf(api, execution.id);
    expect(tasks.map((t) => t.attempts)).toEqual(Array(IMAGES).fill(1));
    const ran = [await metric(a.url, 'wharf_replication_tasks_total', 'policy="fan-out"'), await metric(b.url, 'wharf_replication_tasks_total', 'policy="fan-out"')];
    expect(ran[0]! + ran[1]!).toBe(IMAGES);
    for (let i = 0; i < IMAGES; i++) {
      const res = await fetch(`${destination.url}/v2/mirror/img-${i}/manifests/v1`, { method: 'HEAD', headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
      expect(res.status, `mirror/img-${i}`).toBe(200);
    }
    for (const r of replicas) await r.app.auth.audit.flush();
    const finished = await api.ok('GET', `/audit?action=replication.execution.finished&resource=${execution.id}`);
    expect(finished.items).toHaveLength(1);
  }, 180_000);
});
