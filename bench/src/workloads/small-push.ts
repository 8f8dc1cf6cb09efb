import { randomBytes, randomUUID } from 'node:crypto';
import { blobOf, imageManifest, randomConfig, type Blob } from '../oci/content.js';
import { HttpClient } from '../oci/http.js';
import { RegistryClient } from '../oci/registry-client.js';
import { timePushes, type PushRun } from './push-run.js';

export interface SmallPushOptions {
  layerBytes: number;
  /** Pushes start for this long; the rate is completed pushes over wall time. */
  durationS: number;
  /** Pushes prepared (an upper bound the run should not reach). */
  maxPushes: number;
  concurrency: number;
  /** Each push goes to a new repository `<repoPrefix>/<uuid>`. */
  repoPrefix: string;
}

/**
 * The request sequence of zb's "Push Monolith 1MB": one layer for the whole run (a
 * random first 4 KiB page, zeros after it, like zb's test file), and per push a new
 * repository, POST + PUT ?digest= of the layer, POST + PUT ?digest= of a random
 * config, PUT of the manifest as `tag<size>`. zb runs a fixed count; this runs for a
 * fixed time, so every registry is measured for as long. Configs and manifests are
 * prepared before timing (zb builds the config inside its timed loop; it is tiny).
 */
export async function smallPush(origin: string, options: SmallPushOptions): Promise<PushRun> {
  const page = randomBytes(4096);
  const layer = blobOf([page, Buffer.alloc(options.layerBytes - page.length)]);
  const pushes = Array.from({ length: options.maxPushes }, () => {
    const config: Blob = randomConfig(layer);
    return { repo: `${options.repoPrefix}/${randomUUID()}`, config, manifest: imageManifest(config, layer) };
  });
  const http = new HttpClient(origin, options.concurrency);
  const client = new RegistryClient(http);
  try {
    return await timePushes({ pushes: options.maxPushes, durationS: options.durationS }, options.concurrency, async (i) => {
      const { repo, config, manifest } = pushes[i]!;
      await client.uploadBlob(repo, layer, 'post-put');
      await client.uploadBlob(repo, config, 'post-put');
      await client.putManifest(repo, `tag${options.layerBytes}`, manifest);
    });
  } finally {
    http.close();
  }
}
