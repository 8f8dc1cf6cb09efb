// Several tasks of one execution run at once on one replica (replication.parallelTasks).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManagementClient } from '../support/auth.js';
import { buildImage, RegistryClient } from '../support/oci.js';
import { removeDir, startRegistry, type RunningRegistry } from '../support/registry.js';
import { eventually, tasksOf, waitForExecution } from './support.js';

let source: RunningRegistry;
let destination: RunningRegistry;
let api: ManagementClient;

beforeAll(async () => {
  source = await startRegistry({ replication: { settings: { parallelTasks: 3, stopPollMs: 200 } } });
  destination = await startRegistry();
  api = new ManagementClient(source.url, null);
  await api.project('apps');
  await new ManagementClient(destination.url, null).project('mirror');
  await api.ok('PUT', '/registries/site-b', { provider: 'wharf', url: destination.url });
});

afterAll(async () => {
  await source?.stop();
  await destination?.stop();
  for (const r of [source, destination]) if (r) await removeDir(r.dataDir);
});

describe('parallel tasks', () => {
  it('runs several tasks of an execution at the same time on one replica', async () => {
    const client = new RegistryClient(source.url);
    for (const name of ['a', 'b', 'c']) await client.pushImage(`apps/par-${name}`, '1', await buildImage({ layers: 1, payloadSize: 2 * 1024 * 1024 }));
    // 256 KiB/s per task: each copy takes several seconds, long enough to be seen running together.
    await api.ok('PUT', '/replication/policies/par', { mode: 'push', registry: 'site-b', filters: { name: { matches: ['apps/par-*'] } }, destination: { namespace: 'mirror' }, bandwidthLimitKiBps: 256 });
    const started = await api.ok('POST', '/replication/executions', { policy: 'par' });
    const running = await eventually('two tasks running at once', async () => {
      const tasks = await tasksOf(api, started.id);
      const inProgress = tasks.filter((t) => t.status === 'InProgress');
      return inProgress.length >= 2 && inProgress;
    });
    expect(running.length).toBeGreaterThanOrEqual(2);
    await api.ok('POST', `/replication/executions/${started.id}/stop`);
    expect((await waitForExecution(api, started.id)).status).toBe('Stopped');
  }, 60_000);
});
