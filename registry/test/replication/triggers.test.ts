// Scheduled executions, stopping an execution through the API, and the metrics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ManagementClient } from '../support/auth.js';
import { buildImage, randomBlob, RegistryClient, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, blobOf } from '../support/oci.js';
import { PushClient } from '../support/push.js';
import type { RunningRegistry } from '../support/registry.js';
import { eventually, runPolicy, type Sites, startSites, tasksOf, waitForExecution } from './support.js';

let source: RunningRegistry;
let destination: RunningRegistry;
let api: ManagementClient;

async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${source.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

let sites: Sites;

beforeAll(async () => {
  sites = await startSites({ replication: { settings: { retryBaseMs: 200, stopPollMs: 200 }, scheduleIntervalMs: 300 } });
  ({ source, destination, api } = sites);
});

afterAll(() => sites?.stop());

describe('scheduled trigger', () => {
  it('runs the policy on its cron schedule (UTC) and stops when the policy is disabled', async () => {
    await new RegistryClient(source.url).pushImage('apps/nightly', '1', await buildImage());
    const spec = { mode: 'push', registry: 'site-b', filters: { name: { matches: ['apps/nightly'] } }, destination: { namespace: 'mirror' }, trigger: { type: 'scheduled', cron: '*/2 * * * * *' } };
    await api.ok('PUT', '/replication/policies/nightly', spec);
    const scheduled = await eventually('a scheduled execution', async () => (await api.ok('GET', '/replication/executions?policy=nightly')).items.find((e: { trigger: string }) => e.trigger === 'scheduled'), 20_000);
    expect((await waitForExecution(api, scheduled.id)).status).toBe('Succeeded');
    const head = await fetch(`${destination.url}/v2/mirror/nightly/manifests/1`, { method: 'HEAD', headers: { Accept: OCI_MANIFEST } });
    expect(head.status).toBe(200);

    await api.ok('PUT', '/replication/policies/nightly', { ...spec, enabled: false });
    // Whatever a tick queued before the change may still start; after that, nothing new.
    await new Promise((r) => setTimeout(r, 3000));
    const settled = (await api.ok('GET', '/replication/executions?policy=nightly')).items.length;
    await new Promise((r) => setTimeout(r, 5000));
    expect((await api.ok('GET', '/replication/executions?policy=nightly')).items.length).toBe(settled);
    expect((await api.call('POST', '/replication/executions', { policy: 'nightly' })).status).toBe(409);
  }, 60_000);
});

describe('stop', () => {
  it('stops a running execution: it and its running task end Stopped, and no tag is set', async () => {
    const layer = randomBlob(48 * 1024 * 1024);
    const config = blobOf(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } }));
    const manifest = blobOf(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size }, layers: [{ mediaType: OCI_LAYER_GZIP, digest: layer.digest, size: layer.size }] }));
    const push = new PushClient(source.url);
    await push.pushBlobChunked('apps/slow', layer, 8 * 1024 * 1024);
    await push.pushBlobChunked('apps/slow', config, 1024);
    expect((await fetch(`${source.url}/v2/apps/slow/manifests/v1`, { method: 'PUT', headers: { 'Content-Type': OCI_MANIFEST }, body: manifest.data })).status).toBe(201);
    // 1 MiB/s: the copy would take most of a minute.
    await api.ok('PUT', '/replication/policies/slow', { mode: 'push', registry: 'site-b', filters: { name: { matches: ['apps/slow'] } }, destination: { namespace: 'mirror' }, bandwidthLimitKiBps: 1024 });
    const started = await api.ok('POST', '/replication/executions', { policy: 'slow' });
    await eventually('the task running', async () => (await tasksOf(api, started.id)).find((t) => t.status === 'InProgress'));
    const stopped = await api.ok('POST', `/replication/executions/${started.id}/stop`);
    expect(stopped.status).toBe('Stopped');
    const task = await eventually('the task stopped', async () => (await tasksOf(api, started.id)).find((t) => t.status === 'Stopped'));
    expect(task.message).toBe('stopped');
    expect((await api.ok('GET', `/replication/executions/${started.id}`)).status).toBe('Stopped');
    const head = await fetch(`${destination.url}/v2/mirror/slow/manifests/v1`, { method: 'HEAD', headers: { Accept: OCI_MANIFEST } });
    expect(head.status).toBe(404);
  }, 60_000);
});

describe('metrics', () => {
  it('counts bytes replicated, task outcomes and queue lag', async () => {
    const image = await buildImage({ payloadSize: 64 * 1024 });
    await new RegistryClient(source.url).pushImage('apps/counted', '1', image);
    await api.ok('PUT', '/replication/policies/counted', { mode: 'push', registry: 'site-b', filters: { name: { matches: ['apps/counted'] } }, destination: { namespace: 'mirror' } });
    const execution = await runPolicy(api, 'counted');
    expect(execution.status).toBe('Succeeded');
    expect(await metric('wharf_replication_bytes_total', 'policy="counted"')).toBe(execution.bytes);
    expect(await metric('wharf_replication_tasks_total', 'policy="counted",outcome="succeeded"')).toBe(1);
    const text = await (await fetch(`${source.url}/metrics`)).text();
    expect(text).toMatch(/^wharf_replication_queue_lag_seconds_count [1-9]/m);
  });
});
