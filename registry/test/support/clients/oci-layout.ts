// OCI image layouts on disk (image-spec `image-layout.md`): the source and the
// destination format that skopeo, crane, regctl and oras read and write.
import { createReadStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { OCI_INDEX, sha256, type Blob, type Image } from '../oci.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
  artifactType?: string;
}

/** One entry of the layout's `index.json`: a manifest (or index) and the tag it is known by. */
export interface LayoutRef {
  tag: string;
  manifest: Blob;
  mediaType: string;
}

/** Every blob an image consists of, its manifest included. */
export function imageBlobs(image: Image): Blob[] {
  return [image.config, ...image.layers, image.manifest];
}

/** `blobs/<alg>/<hex>`, relative to the layout's root. */
function blobPath(digest: string): string {
  const [algorithm, hex] = digest.split(':');
  if (!algorithm || !hex || !/^[a-z0-9]+$/.test(algorithm) || !/^[a-f0-9]+$/.test(hex)) throw new Error(`malformed digest ${digest}`);
  return `blobs/${algorithm}/${hex}`;
}

/**
 * Writes an OCI image layout: `oci-layout`, `blobs/<alg>/<hex>` for every blob
 * and an `index.json` naming each ref with `org.opencontainers.image.ref.name`.
 */
export async function writeOciLayout(dir: string, refs: LayoutRef[], blobs: Blob[]): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const seen = new Set<string>();
  for (const blob of [...blobs, ...refs.map((r) => r.manifest)]) {
    if (seen.has(blob.digest)) continue;
    seen.add(blob.digest);
    await writeFile(join(dir, blobPath(blob.digest)), blob.data);
  }
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: refs.map<Descriptor>((r) => ({
      mediaType: r.mediaType,
      digest: r.manifest.digest,
      size: r.manifest.size,
      annotations: { [REF_NAME]: r.tag },
    })),
  };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
}

export interface OciLayout {
  /** The directory or archive it was read from. */
  dir: string;
  /** The layout's top-level `index.json`, parsed. */
  index: { schemaVersion: number; manifests: Descriptor[] };
  /** The descriptor tagged `tag` (by ref-name annotation); throws when absent. */
  ref(tag: string): Descriptor;
  /** A blob's bytes, checked against its digest; throws when absent or corrupt. */
  blob(digest: string): Promise<Buffer>;
  hasBlob(digest: string): Promise<boolean>;
}

/** Reads a layout some client wrote, verifying each blob it hands out. */
export async function readOciLayout(dir: string): Promise<OciLayout> {
  return layoutView(dir, async (path) => readFile(join(dir, path)).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err))));
}

/** Reads a tar of an OCI layout (what `regctl image export` writes), verifying each blob it hands out. */
export async function readOciArchive(file: string): Promise<OciLayout> {
  const entries = new Map<string, Buffer>();
  const extract = tar.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      if (entry.header.type === 'file') entries.set(entry.header.name.replace(/^\.\//, ''), Buffer.concat(chunks));
    }
  })();
  await pipeline(createReadStream(file), extract);
  await done;
  return layoutView(file, async (path) => entries.get(path));
}

async function layoutView(source: string, read: (path: string) => Promise<Buffer | undefined>): Promise<OciLayout> {
  const json = async <T>(path: string): Promise<T> => {
    const data = await read(path);
    if (!data) throw new Error(`${source}: no ${path}`);
    return JSON.parse(data.toString('utf8')) as T;
  };
  const marker = await json<{ imageLayoutVersion?: string }>('oci-layout');
  if (marker.imageLayoutVersion !== '1.0.0') throw new Error(`${source}: unexpected oci-layout ${JSON.stringify(marker)}`);
  const index = await json<OciLayout['index']>('index.json');
  return {
    dir: source,
    index,
    ref(tag) {
      const found = index.manifests.filter((d) => d.annotations?.[REF_NAME] === tag);
      if (found.length !== 1) throw new Error(`${source}: expected one ref ${tag} in index.json, found ${found.length}: ${JSON.stringify(index)}`);
      return found[0]!;
    },
    async blob(digest) {
      const data = await read(blobPath(digest));
      if (!data) throw new Error(`${source}: no blob ${digest}`);
      const actual = sha256(data);
      if (actual !== digest) throw new Error(`${source}: blob ${digest} holds content with digest ${actual}`);
      return data;
    },
    async hasBlob(digest) {
      return (await read(blobPath(digest))) !== undefined;
    },
  };
}
