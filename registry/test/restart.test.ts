import { afterAll, describe, expect, inject, it } from 'vitest';
import { buildImage, RegistryClient, sha256 } from './support/oci.js';
import { createTestDatabase } from './support/pg.js';
import { rawRequest } from './support/raw-http.js';
import { removeDir, startRegistry, tempDir } from './support/registry.js';

const drivers = [
  { name: 'embedded PGlite', databaseUrl: async () => undefined },
  { name: 'PostgreSQL', databaseUrl: async () => createTestDatabase(inject('pgAdminUrl')) },
];

describe.each(drivers)('restart on $name', ({ databaseUrl }) => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await removeDir(dir);
  });

  it('keeps images, tags and an unfinished upload across a stop and start', async () => {
    const dataDir = await tempDir();
    dirs.push(dataDir);
    const url = await databaseUrl();
    const options = { dataDir, ...(url && { databaseUrl: url }) };
    const image = await buildImage({ layers: 3 });

    const first = await startRegistry(options);
    const before = new RegistryClient(first.url);
    await before.pushImage('restart/app', 'v1', image);
    const session = await rawRequest(first.url, { method: 'POST', path: '/v2/restart/app/blobs/uploads/' });
    const location = String(session.headers.location);
    const chunk = Buffer.from('first half of an upload that spans a restart;');
    expect((await rawRequest(first.url, { method: 'PATCH', path: location, body: chunk })).status).toBe(202);
    await first.stop();

    const second = await startRegistry(options);
    try {
      const after = new RegistryClient(second.url);
      const manifest = await after.fetch('/v2/restart/app/manifests/v1', { headers: { Accept: image.mediaType } });
      expect(manifest.status).toBe(200);
      expect(Buffer.from(await manifest.arrayBuffer()).equals(image.manifest.data)).toBe(true);
      for (const blob of [image.config, ...image.layers]) expect((await after.getBlob('restart/app', blob.digest)).equals(blob.data)).toBe(true);
      const tags = await (await after.fetch('/v2/restart/app/tags/list')).json();
      expect(tags).toEqual({ name: 'restart/app', tags: ['v1'] });

      // The upload session survived: its status holds the first chunk, and it can be finished.
      const status = await rawRequest(second.url, { method: 'GET', path: location });
      expect(status.status).toBe(204);
      expect(status.headers.range).toBe(`0-${chunk.length - 1}`);
      const rest = Buffer.from(' and the second half, after it.');
      expect((await rawRequest(second.url, { method: 'PATCH', path: location, body: rest })).status).toBe(202);
      const whole = Buffer.concat([chunk, rest]);
      const done = await rawRequest(second.url, { method: 'PUT', path: `${location}?digest=${sha256(whole)}` });
      expect(done.status).toBe(201);
      expect((await after.getBlob('restart/app', sha256(whole))).equals(whole)).toBe(true);
    } finally {
      await second.stop();
    }
  });
});
