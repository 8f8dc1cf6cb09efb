import { randomBytes } from 'node:crypto';
import { blobOf, imageManifest, MEDIA_TYPE, randomConfig } from './oci/content.js';
import { HttpClient } from './oci/http.js';
import { RegistryClient, type UploadShape } from './oci/registry-client.js';
import type { PullBlob } from './pull-blob.js';
import type { Target } from './targets/target.js';

export const PULL_REPO = 'bench/pull';
export const PULL_TAG = 'latest';

/** A target ready for the workloads: where to pull from and how it takes uploads. */
export interface PreparedTarget {
  target: Target;
  blobUrl: string;
  /** Registries only. */
  manifestUrl?: string;
  uploadShape?: UploadShape;
}

/**
 * Untimed setup of a registry: finds out which monolithic upload it takes, pushes
 * the pull blob as the layer of `bench/pull:latest`, and checks that both answer.
 */
export async function prepareTarget(target: Target, blob: PullBlob): Promise<PreparedTarget> {
  if (target.kind === 'file') return { target, blobUrl: `${target.origin}${target.blobPath}` };
  const http = new HttpClient(target.origin, 1);
  try {
    const client = new RegistryClient(http);
    const uploadShape = await client.probeUploadShape('bench/probe', blobOf([randomBytes(1024)]));
    await client.uploadFile(PULL_REPO, blob.file, blob.digest, blob.size);
    const config = randomConfig(blob);
    await client.uploadBlob(PULL_REPO, config, 'post-put');
    await client.putManifest(PULL_REPO, PULL_TAG, imageManifest(config, blob));
    const blobUrl = `${target.origin}/v2/${PULL_REPO}/blobs/${blob.digest}`;
    const manifestUrl = `${target.origin}/v2/${PULL_REPO}/manifests/${PULL_TAG}`;
    const head = await http.send('HEAD', blobUrl);
    if (head.status !== 200 || Number(head.headers['content-length']) !== blob.size) {
      throw new Error(`HEAD ${blobUrl}: status ${head.status}, length ${head.headers['content-length']}; expected 200, ${blob.size}`);
    }
    const manifest = await http.send('GET', manifestUrl, { accept: MEDIA_TYPE.manifest });
    if (manifest.status !== 200) throw new Error(`GET ${manifestUrl}: status ${manifest.status}`);
    return { target, blobUrl, manifestUrl, uploadShape };
  } finally {
    http.close();
  }
}
