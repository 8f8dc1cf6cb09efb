import { createHash, randomBytes, type Hash } from 'node:crypto';

export const MEDIA_TYPE = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
} as const;

/**
 * A blob held as a list of buffers, so that many blobs can share one large buffer
 * and differ only in a small part: distinct content (and digest) without holding a
 * full copy of each in memory.
 */
export interface Blob {
  digest: string;
  size: number;
  chunks: readonly Buffer[];
}

export function blobOf(chunks: readonly Buffer[]): Blob {
  const hash = createHash('sha256');
  let size = 0;
  for (const chunk of chunks) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size, chunks };
}

/**
 * Makes many distinct blobs of one size cheaply: each is a shared random prefix
 * followed by its own random suffix, and the prefix is hashed once (each blob's
 * digest continues from a copy of that hash state). The registry still receives and
 * hashes every byte of every blob.
 */
export class BlobFamily {
  private readonly prefix: Buffer;
  private readonly prefixHash: Hash;

  constructor(
    readonly size: number,
    private readonly suffixBytes = 4096,
  ) {
    this.prefix = randomBytes(size - suffixBytes);
    this.prefixHash = createHash('sha256').update(this.prefix);
  }

  next(): Blob {
    const suffix = randomBytes(this.suffixBytes);
    const digest = this.prefixHash.copy().update(suffix).digest('hex');
    return { digest: `sha256:${digest}`, size: this.size, chunks: [this.prefix, suffix] };
  }
}

/** An image config for one uncompressed layer, with a random label so each is distinct. */
export function randomConfig(layer: Pick<Blob, 'digest'>): Blob {
  const config = {
    architecture: 'amd64',
    os: 'linux',
    config: { Labels: { 'dev.wharf.bench.nonce': randomBytes(16).toString('hex') } },
    rootfs: { type: 'layers', diff_ids: [layer.digest] },
  };
  return blobOf([Buffer.from(JSON.stringify(config))]);
}

/** An OCI image manifest naming one config and one layer. */
export function imageManifest(config: Pick<Blob, 'digest' | 'size'>, layer: Pick<Blob, 'digest' | 'size'>): Buffer {
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.manifest,
    config: { mediaType: MEDIA_TYPE.config, digest: config.digest, size: config.size },
    layers: [{ mediaType: MEDIA_TYPE.layer, digest: layer.digest, size: layer.size }],
  };
  return Buffer.from(JSON.stringify(manifest, null, '\t'));
}
