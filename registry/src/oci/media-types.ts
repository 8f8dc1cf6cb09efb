export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  octetStream: 'application/octet-stream',
} as const;

export type ManifestKind = 'image' | 'index';

const manifestKinds: ReadonlyMap<string, ManifestKind> = new Map([
  [MediaTypes.ociManifest, 'image'],
  [MediaTypes.dockerManifest, 'image'],
  [MediaTypes.ociIndex, 'index'],
  [MediaTypes.dockerManifestList, 'index'],
]);

export function manifestKindOf(mediaType: string): ManifestKind | undefined {
  return manifestKinds.get(mediaType);
}

export const SUPPORTED_MANIFEST_TYPES: readonly string[] = [...manifestKinds.keys()];

/**
 * Layers a registry must not require to be present: OCI non-distributable layers and
 * Docker foreign layers are fetched from their `urls`, never pushed.
 */
const nonDistributableLayerTypes = new Set([
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);

export function isNonDistributable(mediaType: string): boolean {
  return nonDistributableLayerTypes.has(mediaType);
}

/** Strips parameters and whitespace: `application/json; charset=utf-8` → `application/json`. */
export function baseMediaType(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  const base = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return base === '' ? undefined : base;
}
