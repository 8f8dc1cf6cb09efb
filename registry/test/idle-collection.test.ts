import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { REGISTRY_NODE_FLAGS } from '../src/node-flags.js';
import { IDLE_COLLECTION_MIN_GROWTH } from '../src/plugins/idle-collector.js';
import { buildImage, randomBlob, RegistryClient } from './support/oci.js';
import { spawnRegistry, type RegistryProcess } from './support/process.js';
import { removeDir, tempDir } from './support/registry.js';

async function idleCollections(registry: RegistryProcess): Promise<number | undefined> {
  const text = await (await fetch(`${registry.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('wharf_idle_collections_total '));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

/**
 * What the idle collector weighs (plugins/idle-collector.ts, heldMemory), as /metrics shows it: the
 * main thread's old generation in use and its memory outside the heap.
 */
async function heldMemory(registry: RegistryProcess): Promise<number> {
  const text = await (await fetch(`${registry.url}/metrics`)).text();
  let held = 0;
  for (const line of text.split('\n')) {
    const space = /^nodejs_heap_space_size_used_bytes\{space="([a-z_]+)"\} (\S+)$/.exec(line);
    if (space && !space[1]!.startsWith('new')) held += Number(space[2]);
    if (line.startsWith('nodejs_external_memory_bytes ')) held += Number(line.split(' ')[1]);
  }
  return held;
}

/** Long enough for a quiet second to be sampled after the last request, even on a loaded machine. */
const QUIET_MS = 4000;

/** About `ms` of back-to-back requests from 16 clients: well above the collector's 5% event-loop utilization. */
async function burst(registry: RegistryProcess, path: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  const client = async () => {
    while (Date.now() < end) expect((await fetch(`${registry.url}${path}`)).status).toBe(200);
  };
  await Promise.all(Array.from({ length: 16 }, client));
}

describe('a registry started with its Node.js flags (embedded PGlite)', () => {
  const dirs: string[] = [];
  const running: RegistryProcess[] = [];
  afterAll(async () => {
    for (const registry of running) await registry.stop();
    for (const dir of dirs) await removeDir(dir);
  });

  async function start(nodeFlags: readonly string[]): Promise<RegistryProcess> {
    const dataDir = await tempDir();
    dirs.push(dataDir);
    await cp(inject('pgliteTemplate'), join(dataDir, 'metadata'), { recursive: true });
    const registry = await spawnRegistry({ dataDir, env: { WHARF_AUTH_MODE: 'none' }, nodeFlags });
    running.push(registry);
    return registry;
  }

  it('collects garbage once when it goes quiet after work that left memory behind, not after work that did not, and keeps answering from the database afterwards', async () => {
    const registry = await start(REGISTRY_NODE_FLAGS);
    const image = await buildImage({ layers: 2 });
    const client = new RegistryClient(registry.url);
    await client.pushImage('idle/app', 'v1', image);
    // Start-up leaves well over the minimum growth behind: its collection comes within a few quiet seconds.
    // The test scrapes /metrics only between quiet periods: each scrape is a little work too.
    await sleep(QUIET_MS);
    const afterStart = (await idleCollections(registry))!;
    expect(afterStart).toBeGreaterThanOrEqual(1);

    // Small requests: what they leave behind the scavenges free, far below the minimum growth.
    await burst(registry, '/v2/idle/app/tags/list', 1500);
    await sleep(QUIET_MS);
    expect(await idleCollections(registry)).toBe(afterStart);

    // Large pushes leave request-body buffers behind, though how many V8 frees on its own varies: pushed
    // until what the collector weighs has grown well past its minimum since the quiet spell above.
    const base = await heldMemory(registry);
    let pushes = 0;
    while ((await heldMemory(registry)) - base < IDLE_COLLECTION_MIN_GROWTH + 8 * 1024 * 1024) {
      expect(++pushes).toBeLessThanOrEqual(24);
      expect((await client.pushBlob('idle/big', randomBlob(16 * 1024 * 1024))).status).toBe(201);
    }
    await sleep(QUIET_MS);
    const afterPushes = (await idleCollections(registry))!;
    expect(afterPushes).toBeGreaterThan(afterStart);

    // Once per quiet period, not once per quiet second.
    await sleep(QUIET_MS);
    expect((await idleCollections(registry))! - afterPushes).toBe(0);

    // The database thread was asked to collect too; its answers stay in order.
    const tags = await fetch(`${registry.url}/v2/idle/app/tags/list`);
    expect(await tags.json()).toEqual({ name: 'idle/app', tags: ['v1'] });
    const manifest = await fetch(`${registry.url}/v2/idle/app/manifests/v1`, { headers: { Accept: image.mediaType } });
    expect(Buffer.from(await manifest.arrayBuffer()).equals(image.manifest.data)).toBe(true);
  });

  it('has no idle collector when Node.js runs without --expose-gc', async () => {
    const registry = await start([]);
    await burst(registry, '/v2/', 500);
    expect(await idleCollections(registry)).toBeUndefined();
  });
});
