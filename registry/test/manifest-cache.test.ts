import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildImage, RegistryClient, type Image } from './support/oci.js';
import { createTestDatabase } from './support/pg.js';
import { removeDir, startRegistry, type RunningRegistry } from './support/registry.js';

const ACCEPT = { Accept: 'application/vnd.oci.image.manifest.v1+json' };

async function resolve(registry: RunningRegistry, reference: string): Promise<string | number> {
  const res = await fetch(`${registry.url}/v2/cache/app/manifests/${reference}`, { headers: ACCEPT });
  return res.status === 200 ? res.headers.get('docker-content-digest')! : res.status;
}

describe('manifest lookups across replicas sharing one PostgreSQL', () => {
  let a: RunningRegistry;
  let b: RunningRegistry;
  let one: Image;
  let two: Image;

  beforeAll(async () => {
    const databaseUrl = await createTestDatabase(inject('pgAdminUrl'));
    a = await startRegistry({ databaseUrl });
    b = await startRegistry({ databaseUrl, storage: { driver: 'filesystem', dir: `${a.dataDir}/blobs` } });
    one = await buildImage({ layers: 1 });
    two = await buildImage({ layers: 1 });
    await new RegistryClient(a.url).pushImage('cache/app', 'v1', one);
    await new RegistryClient(a.url).pushImage('cache/app', 'other', two);
  });

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    if (a) await removeDir(a.dataDir);
    if (b) await removeDir(b.dataDir);
  });

  it('keeps no reference cache on PostgreSQL', () => {
    expect(a.app.services.references).toBeUndefined();
  });

  it('sees a tag moved on another replica on the very next request', async () => {
    for (let round = 0; round < 10; round++) {
      const target = round % 2 === 0 ? two : one;
      expect(await resolve(a, 'v1')).not.toBe(target.manifest.digest);
      expect((await new RegistryClient(b.url).pushManifest('cache/app', 'v1', target.manifest)).status).toBe(201);
      expect(await resolve(a, 'v1')).toBe(target.manifest.digest);
    }
  });

  it('shares lookups between a crowd of concurrent GETs and still sees every move made on another replica', async () => {
    const manifests = a.app.services.manifests;
    const sharedBefore = manifests.sharedLookups;
    let stop = false;
    // A crowd pulling the tag from replica a the whole time.
    const crowd = Array.from({ length: 16 }, async () => {
      while (!stop) expect([one.manifest.digest, two.manifest.digest]).toContain(await resolve(a, 'v1'));
    });
    try {
      for (let round = 0; round < 10; round++) {
        const target = round % 2 === 0 ? two : one;
        expect((await new RegistryClient(b.url).pushManifest('cache/app', 'v1', target.manifest)).status).toBe(201);
        // Every GET that starts after the move was acknowledged sees it, however many are in flight
        // (that no shared read began before its caller arrived is proven in unit/fresh-coalescer.test.ts).
        const seen = await Promise.all(Array.from({ length: 8 }, () => resolve(a, 'v1')));
        expect(seen).toEqual(Array(8).fill(target.manifest.digest));
      }
    } finally {
      stop = true;
      await Promise.all(crowd);
    }
    expect(manifests.sharedLookups - sharedBefore).toBeGreaterThan(0);
  });

  it('sees a delete on another replica on the very next request', async () => {
    expect(await resolve(a, 'other')).toBe(two.manifest.digest);
    expect((await fetch(`${b.url}/v2/cache/app/manifests/other`, { method: 'DELETE' })).status).toBe(202);
    expect(await resolve(a, 'other')).toBe(404);
  });
});

describe('reference cache with the embedded database', () => {
  let registry: RunningRegistry;

  beforeAll(async () => {
    registry = await startRegistry();
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  it('serves repeated lookups from memory and drops them when the repository changes', async () => {
    const references = registry.app.services.references!;
    const [one, two] = [await buildImage({ layers: 1 }), await buildImage({ layers: 1 })];
    const client = new RegistryClient(registry.url);
    await client.pushImage('cache/app', 'v1', one);
    expect(await resolve(registry, 'v1')).toBe(one.manifest.digest);
    const hits = references.hits;
    for (let i = 0; i < 5; i++) expect(await resolve(registry, 'v1')).toBe(one.manifest.digest);
    expect(references.hits - hits).toBe(5);
    await client.pushImage('cache/app', 'v1', two);
    expect(await resolve(registry, 'v1')).toBe(two.manifest.digest);
    expect((await fetch(`${registry.url}/v2/cache/app/manifests/v1`, { method: 'DELETE' })).status).toBe(202);
    expect(await resolve(registry, 'v1')).toBe(404);
  });
});
