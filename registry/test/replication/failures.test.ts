// What a replication does when things go wrong: the remote registry is down (stand-in:
// distribution 2.8.2 on loopback, stopped and started again on the same port), and a
// destination tag that differs while override is off.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManagementClient } from '../support/auth.js';
import { buildImage, RegistryClient } from '../support/oci.js';
import { removeDir, startRegistry, tempDir, type RunningRegistry } from '../support/registry.js';
import { startDistribution, type Distribution } from '../support/upstream.js';
import { eventually, runPolicy, tasksOf, waitForExecution } from './support.js';

let work: string;
let distribution: Distribution;
let wharf: RunningRegistry;
let other: RunningRegistry;
let api: ManagementClient;

async function taskLog(executionId: string, taskId: string): Promise<string> {
  return (await fetch(`${wharf.url}/api/v1/replication/executions/${executionId}/tasks/${taskId}/log`)).text();
}

beforeAll(async () => {
  work = await tempDir('wharf-replication-failures-');
  distribution = await startDistribution(join(work, 'distribution'));
  // Five attempts, 0.4 s apart at first and doubling: 0.4 + 0.8 + 1.6 + 3.2 s of retries.
  wharf = await startRegistry({ replication: { settings: { retryBaseMs: 400, maxAttempts: 5 } } });
  other = await startRegistry();
  api = new ManagementClient(wharf.url, null);
  await api.project('apps');
  await new ManagementClient(other.url, null).project('mirror');
  await api.ok('PUT', '/registries/dist', { provider: 'docker-registry', url: distribution.url });
  await api.ok('PUT', '/registries/other', { provider: 'wharf', url: other.url });
});

afterAll(async () => {
  await wharf?.stop();
  await other?.stop();
  await distribution?.stop();
  for (const r of [wharf, other]) if (r) await removeDir(r.dataDir);
  if (work) await removeDir(work);
});

describe('remote registry down (stand-in: distribution 2.8.2)', () => {
  it('fails the task with a clear message, retries it, and succeeds once the remote is back', async () => {
    await new RegistryClient(wharf.url).pushImage('apps/down', '1', await buildImage());
    await api.ok('PUT', '/replication/policies/to-dist', { mode: 'push', registry: 'dist', filters: { name: { matches: ['apps/down'] } } });
    await distribution.stop();
    const started = await api.ok('POST', '/replication/executions', { policy: 'to-dist' });
    const task = await eventually('a task', async () => (await tasksOf(api, started.id))[0], 20_000);
    const log = await eventually('a failed attempt in the log', async () => {
      const text = await taskLog(started.id, task.id);
      return /attempt 1 failed/.test(text) && text;
    });
    expect(log).toMatch(new RegExp(`attempt 1 failed: ${distribution.url.replace(/[.]/g, '\\.')}: unreachable \\(.*ECONNREFUSED.*\\); retrying in 0\\.4 s`));
    await distribution.start();
    const execution = await waitForExecution(api, started.id);
    expect(execution.status).toBe('Succeeded');
    const [done] = await tasksOf(api, started.id);
    expect(done.status).toBe('Succeeded');
    const tags = await (await fetch(`${distribution.url}/v2/apps/down/tags/list`)).json();
    expect(tags).toEqual({ name: 'apps/down', tags: ['1'] });
  });

  it('marks the task and the execution Failed when the remote stays down', async () => {
    await distribution.stop();
    try {
      await new RegistryClient(wharf.url).pushImage('apps/down', '2', await buildImage());
      const execution = await runPolicy(api, 'to-dist');
      expect(execution.status).toBe('Failed');
      const tasks = await tasksOf(api, execution.id);
      const failed = tasks.filter((t) => t.status === 'Failed');
      expect(failed.length).toBeGreaterThan(0);
      expect(failed[0].message).toMatch(/unreachable \(.*ECONNREFUSED/);
      expect(await taskLog(execution.id, failed[0].id)).toMatch(/attempt 5 failed/);
    } finally {
      await distribution.start();
    }
  });
});

describe('override', () => {
  it('leaves a differing destination tag alone when override is off, and reports it', async () => {
    const ours = await buildImage();
    const theirs = await buildImage();
    await new RegistryClient(wharf.url).pushImage('apps/web', '1.0', ours);
    await new RegistryClient(other.url).pushImage('mirror/web', '1.0', theirs);
    await api.ok('PUT', '/replication/policies/keep', { mode: 'push', registry: 'other', filters: { name: { matches: ['apps/web'] } }, destination: { namespace: 'mirror' }, override: false });
    const execution = await runPolicy(api, 'keep');
    expect(execution.status).toBe('Succeeded');
    const [task] = await tasksOf(api, execution.id);
    expect(task.message).toBe(`skipped: tag(s) 1.0 (at ${theirs.manifest.digest}) differ at the destination and override is off`);
    expect(await taskLog(execution.id, task.id)).toMatch(/tag 1\.0: left alone/);
    const head = await fetch(`${other.url}/v2/mirror/web/manifests/1.0`, { method: 'HEAD', headers: { Accept: ours.mediaType } });
    expect(head.headers.get('docker-content-digest')).toBe(theirs.manifest.digest);

    await api.ok('PUT', '/replication/policies/keep', { mode: 'push', registry: 'other', filters: { name: { matches: ['apps/web'] } }, destination: { namespace: 'mirror' }, override: true });
    expect((await runPolicy(api, 'keep')).status).toBe('Succeeded');
    const moved = await fetch(`${other.url}/v2/mirror/web/manifests/1.0`, { method: 'HEAD', headers: { Accept: ours.mediaType } });
    expect(moved.headers.get('docker-content-digest')).toBe(ours.manifest.digest);
  });
});
