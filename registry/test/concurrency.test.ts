import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, RegistryClient, type Image } from './support/oci.js';
import { eventually, rawRequest } from './support/raw-http.js';
import { removeDir, startRegistry, type RunningRegistry } from './support/registry.js';

const PUSHERS = 20;

describe('concurrent pushes of the same content', () => {
  let registry: RunningRegistry;
  let client: RegistryClient;
  let image: Image;

  beforeAll(async () => {
    registry = await startRegistry();
    client = new RegistryClient(registry.url);
    image = await buildImage({ layers: 2, payloadSize: 512 * 1024 });
  });

  afterAll(async () => {
    await registry?.stop();
    if (registry) await removeDir(registry.dataDir);
  });

  it(`${PUSHERS} clients push the same blobs and manifest at once; all succeed and one copy is stored`, async () => {
    const layer = image.layers[0]!;
    const pushOne = async (i: number) => {
      // Half push monolithically, half through a chunked session, to mix both commit paths.
      if (i % 2 === 0) return (await client.pushBlob('race/app', layer)).status;
      const start = await rawRequest(registry.url, { method: 'POST', path: '/v2/race/app/blobs/uploads/' });
      const location = String(start.headers.location);
      const half = Math.floor(layer.size / 2);
      await rawRequest(registry.url, { method: 'PATCH', path: location, headers: { 'Content-Range': `0-${half - 1}` }, body: layer.data.subarray(0, half) });
      await rawRequest(registry.url, { method: 'PATCH', path: location, headers: { 'Content-Range': `${half}-${layer.size - 1}` }, body: layer.data.subarray(half) });
      return (await rawRequest(registry.url, { method: 'PUT', path: `${location}?digest=${layer.digest}` })).status;
    };
    const blobStatuses = await Promise.all(Array.from({ length: PUSHERS }, (_, i) => pushOne(i)));
    expect(blobStatuses).toEqual(Array(PUSHERS).fill(201));

    for (const blob of [image.config, image.layers[1]!]) expect((await client.pushBlob('race/app', blob)).status).toBe(201);
    const manifestStatuses = await Promise.all(Array.from({ length: PUSHERS }, () => client.pushManifest('race/app', 'latest', image.manifest).then((r) => r.status)));
    expect(manifestStatuses).toEqual(Array(PUSHERS).fill(201));

    const prefix = layer.digest.slice('sha256:'.length, 'sha256:'.length + 2);
    const copies = (await readdir(join(registry.dataDir, 'blobs', 'blobs', 'sha256', prefix))).filter((f) => layer.digest.endsWith(f));
    expect(copies).toHaveLength(1);
    expect(await readdir(join(registry.dataDir, 'blobs', 'uploads'))).toEqual([]);

    const sql = registry.app.metadata.sql;
    expect(await sql.query('SELECT digest FROM blobs WHERE digest = $1', [layer.digest])).toHaveLength(1);
    expect(await sql.query('SELECT digest FROM repository_blobs WHERE repository = $1 AND digest = $2', ['race/app', layer.digest])).toHaveLength(1);
    expect(await sql.query('SELECT digest FROM manifests WHERE repository = $1', ['race/app'])).toHaveLength(1);

    expect((await client.getBlob('race/app', layer.digest)).equals(layer.data)).toBe(true);
    const manifest = await client.fetch('/v2/race/app/manifests/latest', { headers: { Accept: image.mediaType } });
    expect(Buffer.from(await manifest.arrayBuffer()).equals(image.manifest.data)).toBe(true);
  });

  it('two PATCHes at one offset of one upload: the second to finish gets 416, and the upload commits with the first one\'s bytes', async () => {
    const start = await rawRequest(registry.url, { method: 'POST', path: '/v2/race/chunks/blobs/uploads/' });
    const location = String(start.headers.location);
    const first = randomBytes(300_000);
    expect((await rawRequest(registry.url, { method: 'PATCH', path: location, headers: { 'Content-Range': `0-${first.length - 1}` }, body: first })).status).toBe(202);
    const [part] = await readdir(join(registry.dataDir, 'blobs', 'uploads'));
    const slow = randomBytes(200_000);
    const fast = randomBytes(100_000);
    // The slow PATCH sends half its body and waits: it holds the upload's file while the fast one arrives and finishes.
    let finishSlow!: () => void;
    const slowStatus = new Promise<number>((resolve, reject) => {
      const req = request(new URL(location, registry.url), { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': slow.length, 'Content-Range': `${first.length}-${first.length + slow.length - 1}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.write(slow.subarray(0, 100_000));
      finishSlow = () => req.end(slow.subarray(100_000));
    });
    await eventually(async () => !(await readdir(join(registry.dataDir, 'blobs', 'uploads'))).includes(part!), 5000, 'the slow PATCH to take the upload\'s file');
    const fastResponse = await rawRequest(registry.url, { method: 'PATCH', path: location, headers: { 'Content-Range': `${first.length}-${first.length + fast.length - 1}` }, body: fast });
    expect(fastResponse.status).toBe(202);
    finishSlow();
    expect(await slowStatus).toBe(416);
    const data = Buffer.concat([first, fast]);
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    expect((await rawRequest(registry.url, { method: 'PUT', path: `${location}?digest=${digest}` })).status).toBe(201);
    expect((await client.getBlob('race/chunks', digest)).equals(data)).toBe(true);
    expect(await readdir(join(registry.dataDir, 'blobs', 'uploads'))).toEqual([]);
  });
});
