import { cp } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { REGISTRY_NODE_FLAGS } from '../src/node-flags.js';
import { buildImage, RegistryClient } from './support/oci.js';
import { spawnRegistry, type RegistryProcess } from './support/process.js';
import { removeDir, tempDir } from './support/registry.js';

async function idleCollections(registry: RegistryProcess): Promise<number | undefined> {
  const text = await (await fetch(`${registry.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('wharf_idle_collections_total '));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
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

  it('collects garbage once each time it goes quiet after work, and keeps answering from the database afterwards', async () => {
    const registry = await start(REGISTRY_NODE_FLAGS);
    const image = await buildImage({ layers: 2 });
    await new RegistryClient(registry.url).pushImage('idle/app', 'v1', image);
    // Start-up and the push are work: their collection comes within a few quiet seconds.
    // The test scrapes /metrics only between quiet periods: each scrape is a little work too.
    await sleep(QUIET_MS);
    const afterStart = (await idleCollections(registry))!;
    expect(afterStart).toBeGreaterThanOrEqual(1);

    await burst(registry, '/v2/idle/app/tags/list', 1500);
    await sleep(QUIET_MS);
    const afterBurst = (await idleCollections(registry))!;
    expect(afterBurst).toBeGreaterThan(afterStart);

    // Once per quiet period, not once per quiet second: at most the scrape above counts as work.
    await sleep(QUIET_MS);
    expect((await idleCollections(registry))! - afterBurst).toBeLessThanOrEqual(1);

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
