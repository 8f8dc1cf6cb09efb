import { describe, expect, it } from 'vitest';
import type { Metadata } from '../../src/metadata/index.js';
import { ManifestContentCache, ReferenceCache } from '../../src/services/manifest-cache.js';
import { ManifestService } from '../../src/services/manifests.js';

describe('manifest GETs answered from the reference cache', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  const manifest = { digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 2, subject: null, content: Buffer.from('{}') };
  // A hit must not reach the database: any use of it fails the test.
  const noDatabase = new Proxy({} as Metadata, {
    get: (_, key) => {
      throw new Error(`the database was asked (${String(key)})`);
    },
  });

  it('answers a hit without the database, once the requests read in the same poll phase are in', async () => {
    const references = new ReferenceCache();
    references.set('p/r', 'v1', manifest, references.generation());
    const service = new ManifestService(noDatabase, new ManifestContentCache(), references);
    const order: string[] = [];
    setImmediate(() => order.push('queued before'));
    const answer = service.get('p/r', 'v1').then((m) => {
      order.push('answer');
      return m;
    });
    await new Promise((resolve) => process.nextTick(resolve));
    expect(order).toEqual([]);
    expect(await answer).toMatchObject({ digest, content: Buffer.from('{}') });
    expect(order).toEqual(['queued before', 'answer']);
    expect(references.hits).toBe(1);
  });
});
