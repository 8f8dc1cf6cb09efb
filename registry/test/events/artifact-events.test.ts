import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArtifactEvent } from '../../src/events/artifact-events.js';
import { buildImage } from '../support/oci.js';
import { PushClient } from '../support/push.js';
import { startRegistry, type RunningRegistry } from '../support/registry.js';

describe('artifact events from the /v2 API', () => {
  let registry: RunningRegistry;
  const events: ArtifactEvent[] = [];

  beforeAll(async () => {
    registry = await startRegistry();
    registry.app.services.events.subscribe((event) => void events.push(event));
    // A listener that fails must not affect the request or the other listeners.
    registry.app.services.events.subscribe(() => {
      throw new Error('listener failure');
    });
  });
  afterAll(() => registry?.stop());

  async function until(predicate: () => boolean): Promise<void> {
    for (let i = 0; i < 100 && !predicate(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  it('publishes pushed, pulled and deleted with the digest, tag and actor', async () => {
    const client = new PushClient(registry.url);
    const image = await buildImage();
    await client.pushImage('library/app', '1', image);
    await until(() => events.some((e) => e.type === 'pushed'));
    const pushed = events.find((e) => e.type === 'pushed');
    expect(pushed).toMatchObject({ project: 'library', repository: 'library/app', tag: '1', digest: image.manifest.digest, actor: 'anonymous' });

    await client.manifest('library/app', '1');
    await fetch(`${registry.url}/v2/library/app/manifests/1`, { method: 'HEAD' });
    await until(() => events.some((e) => e.type === 'pulled'));
    const pulls = events.filter((e) => e.type === 'pulled');
    expect(pulls).toHaveLength(1);
    expect(pulls[0]).toMatchObject({ repository: 'library/app', tag: '1', digest: image.manifest.digest, size: image.manifest.data.length });

    await client.deleteManifest('library/app', image.manifest.digest);
    await until(() => events.some((e) => e.type === 'deleted'));
    expect(events.find((e) => e.type === 'deleted')).toMatchObject({ repository: 'library/app', digest: image.manifest.digest });
    expect(events.find((e) => e.type === 'deleted')?.tag).toBeUndefined();
  });

  it('publishes nothing for failed requests', async () => {
    const before = events.length;
    const res = await fetch(`${registry.url}/v2/library/app/manifests/missing`);
    expect(res.status).toBe(404);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(events.length).toBe(before);
  });
});
