import { createHash, randomBytes } from 'node:crypto';

const MiB = 2 ** 20;

export interface TestBlob {
  digest: string;
  data: Buffer;
}

export interface TestImage {
  /** What the tables call it, e.g. "1 × 256 MiB layer". */
  kind: string;
  config: TestBlob;
  layers: TestBlob[];
  manifest: Buffer;
  bytes: number;
}

export interface ImageShape {
  kind: string;
  layers: number;
  layerBytes: number;
}

export const SHAPES = {
  big: (layerMiB: number): ImageShape => ({ kind: `1 × ${layerMiB} MiB layer`, layers: 1, layerBytes: layerMiB * MiB }),
  small: (layers: number, layerKiB: number): ImageShape => ({ kind: `${layers} × ${layerKiB} KiB layers`, layers, layerBytes: layerKiB * 1024 }),
};

function blob(data: Buffer): TestBlob {
  return { digest: `sha256:${createHash('sha256').update(data).digest('hex')}`, data };
}

/** An OCI image of random layers, new content every call (each round's cold pulls need bytes no cache has seen). */
export function makeImage(shape: ImageShape): TestImage {
  const layers = Array.from({ length: shape.layers }, () => blob(randomBytes(shape.layerBytes)));
  const config = blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, created: new Date().toISOString(), nonce: randomBytes(8).toString('hex') })));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.data.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest, size: l.data.length })),
    }),
  );
  return { kind: shape.kind, config, layers, manifest, bytes: config.data.length + layers.reduce((n, l) => n + l.data.length, 0) };
}

/** Pushes `image` as `repository:tag` the way every registry takes it: POST for a session, one PUT with the bytes. */
export async function pushImage(origin: string, repository: string, tag: string, image: TestImage): Promise<void> {
  for (const b of [image.config, ...image.layers]) {
    const started = await fetch(`${origin}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
    await started.arrayBuffer();
    if (started.status !== 202) throw new Error(`POST upload to ${origin}/${repository}: ${started.status}`);
    const location = new URL(started.headers.get('location')!, origin);
    location.searchParams.set('digest', b.digest);
    const done = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: b.data });
    await done.arrayBuffer();
    if (done.status !== 201) throw new Error(`PUT blob to ${origin}/${repository}: ${done.status}`);
  }
  const res = await fetch(`${origin}/v2/${repository}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: image.manifest });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`PUT manifest to ${origin}/${repository}:${tag}: ${res.status}`);
}
