import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const DOCKER_V2S2 = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export interface Blob {
  data: Buffer;
  digest: string;
  size: number;
}

export function blobOf(data: Buffer | string): Blob {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  return { data: buf, digest: sha256(buf), size: buf.length };
}

export function randomBlob(size: number): Blob {
  return blobOf(randomBytes(size));
}

/** A gzip-compressed tar layer holding the given files. */
export async function tarLayer(files: Record<string, string | Buffer>): Promise<{ layer: Blob; diffId: string }> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  return { layer: blobOf(gzipSync(raw)), diffId: sha256(raw) };
}

export interface Image {
  config: Blob;
  layers: Blob[];
  manifest: Blob;
  mediaType: string;
}

export interface ImageOptions {
  layers?: number;
  architecture?: string;
  /** Random bytes in each layer's file, so images differ. */
  payloadSize?: number;
  extraManifestFields?: Record<string, unknown>;
}

/** A runnable-looking linux image with real tar+gzip layers. */
export async function buildImage(options: ImageOptions = {}): Promise<Image> {
  const layers: Blob[] = [];
  const diffIds: string[] = [];
  for (let i = 0; i < (options.layers ?? 2); i++) {
    const { layer, diffId } = await tarLayer({ [`layer-${i}.bin`]: randomBytes(options.payloadSize ?? 1024) });
    layers.push(layer);
    diffIds.push(diffId);
  }
  const config = blobOf(
    JSON.stringify({
      architecture: options.architecture ?? 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/true'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
    }),
  );
  const manifest = blobOf(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: OCI_LAYER_GZIP, digest: l.digest, size: l.size })),
      ...options.extraManifestFields,
    }),
  );
  return { config, layers, manifest, mediaType: OCI_MANIFEST };
}

export function indexOf(images: { image: Image; architecture: string }[]): Blob {
  return blobOf(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: images.map(({ image, architecture }) => ({
        mediaType: image.mediaType,
        digest: image.manifest.digest,
        size: image.manifest.size,
        platform: { architecture, os: 'linux' },
      })),
    }),
  );
}

/** Minimal HTTP client for the distribution API, for tests that need exact requests. */
export class RegistryClient {
  constructor(readonly base: string) {}

  fetch(path: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`${this.base}${path}`, { redirect: 'manual', ...init });
  }

  async pushBlob(repo: string, blob: Blob): Promise<Response> {
    return this.fetch(`/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(blob.size) },
      body: blob.data,
    });
  }

  async pushManifest(repo: string, reference: string, manifest: Blob, mediaType = OCI_MANIFEST): Promise<Response> {
    return this.fetch(`/v2/${repo}/manifests/${reference}`, { method: 'PUT', headers: { 'Content-Type': mediaType }, body: manifest.data });
  }

  async pushImage(repo: string, tag: string, image: Image): Promise<void> {
    for (const blob of [image.config, ...image.layers]) {
      const res = await this.pushBlob(repo, blob);
      if (res.status !== 201) throw new Error(`blob push failed: ${res.status} ${await res.text()}`);
    }
    const res = await this.pushManifest(repo, tag, image.manifest, image.mediaType);
    if (res.status !== 201) throw new Error(`manifest push failed: ${res.status} ${await res.text()}`);
  }

  async getBlob(repo: string, digest: string): Promise<Buffer> {
    const res = await this.fetch(`/v2/${repo}/blobs/${digest}`);
    if (res.status !== 200) throw new Error(`blob get failed: ${res.status} ${await res.text()}`);
    return Buffer.from(await res.arrayBuffer());
  }
}

/** Reads `{"errors":[{code}]}` from a response and returns the first code. */
export async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json().catch(() => undefined)) as { errors?: { code: string }[] } | undefined;
  return body?.errors?.[0]?.code;
}

/**
 * A manifest with a minimal config for one layer given as a blob (its bytes need not be a real
 * tar): OCI media types, or Docker schema 2 ones with `docker`.
 */
export function singleLayerImage(layer: Blob, options: { docker?: boolean } = {}): { config: Blob; manifest: Blob; mediaType: string } {
  const [mediaType, configType, layerType] = options.docker ? [DOCKER_V2S2, DOCKER_CONFIG, DOCKER_LAYER] : [OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP];
  const config = blobOf(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } }));
  const manifest = blobOf(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: configType, digest: config.digest, size: config.size },
      layers: [{ mediaType: layerType, digest: layer.digest, size: layer.size }],
    }),
  );
  return { config, manifest, mediaType };
}
