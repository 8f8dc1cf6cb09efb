// Crash safety: the source Wharf runs as a real process and is killed with SIGKILL in
// the middle of pushing a 200 MiB image to another Wharf, then started again on the
// same data. The execution completes, resuming the interrupted upload instead of
// starting it over, and the destination holds exactly the image, byte for byte.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManagementClient } from '../support/auth.js';
import { blobOf, OCI_MANIFEST, singleLayerImage } from '../support/oci.js';
import { spawnRegistry, type RegistryProcess } from '../support/process.js';
import { PushClient } from '../support/push.js';
import { removeDir, startRegistry, tempDir, type RunningRegistry } from '../support/registry.js';
import { eventually, tasksOf, waitForExecution } from './support.js';

const SIZE = 200 * 1024 * 1024;
const ENV = { WHARF_AUTH_MODE: 'none', WHARF_GC_SCHEDULE: 'off', WHARF_JOBS_POLL_INTERVAL: '200ms', WHARF_LOG_LEVEL: 'warn', WHARF_REPLICATION_CHUNK_SIZE: '32MiB' };

let dataDir: string;
let source: RegistryProcess;
let destination: RunningRegistry;

beforeAll(async () => {
  dataDir = await tempDir('wharf-replication-crash-');
  source = await spawnRegistry({ dataDir, env: ENV, readyTimeoutMs: 150_000 });
  destination = await startRegistry();
  await new ManagementClient(destination.url, null).project('mirror');
}, 200_000);

afterAll(async () => {
  await source?.stop();
  await destination?.stop();
  if (destination) await removeDir(destination.dataDir);
  if (dataDir) await removeDir(dataDir);
});

describe('crash of the source registry mid-copy', () => {
  it('resumes the 200 MiB copy after kill -9 and a restart; nothing corrupt or duplicated', async () => {
    const api = () => new ManagementClient(source.url, null);
    await api().project('apps');
    const layer = blobOf(randomBytes(SIZE));
    const { config, manifest } = singleLayerImage(layer);
    const push = new PushClient(source.url);
    await push.pushBlobChunked('apps/big', layer, 16 * 1024 * 1024);
    await push.pushBlobChunked('apps/big', config, 1024 * 1024);
    const put = await fetch(`${source.url}/v2/apps/big/manifests/v1`, { method: 'PUT', headers: { 'Content-Type': OCI_MANIFEST }, body: manifest.data });
    expect(put.status).toBe(201);

    await api().ok('PUT', '/registries/site-b', { provider: 'wharf', url: destination.url });
    // 25 MiB/s: the copy takes about 8 s, long enough to be killed in the middle.
    await api().ok('PUT', '/replication/policies/big', { mode: 'push', registry: 'site-b', filters: { name: { matches: ['apps/big'] } }, destination: { namespace: 'mirror' }, bandwidthLimitKiBps: 25 * 1024 });
    const started = await api().ok('POST', '/replication/executions', { policy: 'big' });

    // Kill it once at least two 32 MiB chunks have reached the destination, and before the end.
    const before = await eventually('two chunks sent', async () => {
      const [task] = await tasksOf(api(), started.id);
      return task && task.bytes >= 64 * 1024 * 1024 && task;
    }, 120_000);
    expect(before.bytes).toBeLessThan(SIZE);
    source.child.kill('SIGKILL');
    await source.exited;

    source = await spawnRegistry({ dataDir, env: ENV, port: source.port, readyTimeoutMs: 150_000 });
    // The task's job is taken again once the dead worker's lease (60 s) runs out.
    const execution = await waitForExecution(api(), started.id, 300_000);
    expect(execution.status, JSON.stringify(execution)).toBe('Succeeded');
    expect(execution.tasks).toMatchObject({ total: 1, succeeded: 1 });
    const [task] = await tasksOf(api(), started.id);
    expect(task.attempts).toBe(2);
    // Resumed: what was sent before the crash was not sent again.
    expect(task.bytes).toBeLessThan(SIZE + before.bytes);
    const log = await (await fetch(`${source.url}/api/v1/replication/executions/${started.id}/tasks/${task.id}/log`)).text();
    expect(log).toMatch(/resumed an interrupted upload/);

    const res = await fetch(`${destination.url}/v2/mirror/big/blobs/${layer.digest}`);
    const hash = createHash('sha256');
    let received = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      received += chunk.length;
    }
    expect(received).toBe(SIZE);
    expect(`sha256:${hash.digest('hex')}`).toBe(layer.digest);
    const tags = await (await fetch(`${destination.url}/v2/mirror/big/tags/list`)).json();
    expect(tags).toEqual({ name: 'mirror/big', tags: ['v1'] });
    const head = await fetch(`${destination.url}/v2/mirror/big/manifests/v1`, { method: 'HEAD', headers: { Accept: OCI_MANIFEST } });
    expect(head.headers.get('docker-content-digest')).toBe(manifest.digest);
  }, 600_000);
});
