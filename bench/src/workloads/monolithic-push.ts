import { BlobFamily, imageManifest, randomConfig, type Blob } from '../oci/content.js';
import { HttpClient } from '../oci/http.js';
import { RegistryClient, type UploadShape } from '../oci/registry-client.js';
import { timePushes, type PushRun } from './push-run.js';

export interface MonolithicPushOptions {
  layerBytes: number;
  pushes: number;
  concurrency: number;
  repo: string;
  /** Tags are `<tagPrefix>-<n>`, so that every push creates a new tag. */
  tagPrefix: string;
}

interface Image {
  layer: Blob;
  config: Blob;
  manifest: Buffer;
}

/**
 * Pushes whole images: one layer of `layerBytes` random content (new per push),
 * its config and the manifest, each blob in one request where the registry takes
 * that (`single-post`), else POST then PUT. Content and digests are prepared first;
 * only the pushes are timed.
 */
export async function monolithicPush(origin: string, shape: UploadShape, options: MonolithicPushOptions): Promise<PushRun> {
  const layers = new BlobFamily(options.layerBytes);
  const images: Image[] = Array.from({ length: options.pushes }, () => {
    const layer = layers.next();
    const config = randomConfig(layer);
    return { layer, config, manifest: imageManifest(config, layer) };
  });
  const http = new HttpClient(origin, options.concurrency);
  const client = new RegistryClient(http);
  try {
    return await timePushes({ pushes: options.pushes }, options.concurrency, async (i) => {
      const image = images[i]!;
      await client.uploadBlob(options.repo, image.layer, shape);
      await client.uploadBlob(options.repo, image.config, shape);
      await client.putManifest(options.repo, `${options.tagPrefix}-${i}`, image.manifest);
    });
  } finally {
    http.close();
  }
}
