// Several tasks of one execution run at once on one replica (replication.parallelTasks).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManagementClient } from '../support/auth.js';
import { buildImage, RegistryClient } from '../support/oci.js';
import type { RunningRegistry } from '../support/registry.js';
import { eventually, type Sites, startSites, tasksOf, waitForExecution } from './support.js';

let source: RunningRegistry;
let destination: RunningRegistry;
let api: ManagementClient;

let sites: Sites;

beforeAll(async () => {
  sites = await startSites({ replication: { settings: { parallelTasks: 3, stopPollMs: 200 } } });
  ({ source, destination, api } = sites);
});

afterAll(() => sites?.stop());

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
