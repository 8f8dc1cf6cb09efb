import { findUnstorableText, printable } from '../storable-text.js';
import { ociError } from './errors.js';
import { tryParseDigest } from './digest.js';
import { baseMediaType, isNonDistributable, manifestKindOf, MediaTypes, SUPPORTED_MANIFEST_TYPES, type ManifestKind } from './media-types.js';

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  urls?: string[];
  data?: string;
}

/** What the registry needs to know about a manifest; the bytes themselves are stored as received. */
export interface ParsedManifest {
  kind: ManifestKind;
  mediaType: string;
  /** Blobs that must be linked in the repository (config and distributable layers). */
  blobs: Descriptor[];
  /** Child manifests that must exist in the repository (index entries). */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** artifactType for the referrers API: the manifest's own, else the config's mediaType. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

function invalid(reason: string, detail?: unknown): never {
  throw ociError('MANIFEST_INVALID', detail ?? { reason }, { message: `manifest invalid: ${reason}` });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readAnnotations(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) invalid(`${where}.annotations must be a map of strings`);
  return value as Record<string, string>;
}

function readDescriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) invalid(`${where} must be a descriptor object`);
  const { mediaType, digest, size, artifactType, urls, data } = value;
  if (typeof mediaType !== 'string' || mediaType === '') invalid(`${where}.mediaType must be a non-empty string`);
  if (typeof digest !== 'string' || !tryParseDigest(digest)) invalid(`${where}.digest is not a valid digest`, { where, digest });
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) invalid(`${where}.size must be a non-negative integer`);
  if (artifactType !== undefined && typeof artifactType !== 'string') invalid(`${where}.artifactType must be a string`);
  if (urls !== undefined && (!Array.isArray(urls) || !urls.every((u) => typeof u === 'string'))) invalid(`${where}.urls must be a list of strings`);
  if (data !== undefined && typeof data !== 'string') invalid(`${where}.data must be base64 text`);
  const descriptor: Descriptor = { mediaType, digest, size };
  if (artifactType !== undefined) descriptor.artifactType = artifactType;
  const annotations = readAnnotations(value.annotations, where);
  if (annotations) descriptor.annotations = annotations;
  if (urls) descriptor.urls = urls as string[];
  return descriptor;
}

function readDescriptorList(value: unknown, where: string): Descriptor[] {
  if (!Array.isArray(value)) invalid(`${where} must be a list`);
  return value.map((item, i) => readDescriptor(item, `${where}[${i}]`));
}

/**
 * Resolves the manifest's media type from the request's Content-Type and the body's
 * `mediaType` field. When both are present they must agree.
 */
function resolveMediaType(contentType: string | undefined, bodyMediaType: unknown): string {
  const header = baseMediaType(contentType);
  if (bodyMediaType !== undefined && typeof bodyMediaType !== 'string') invalid('mediaType must be a string');
  if (bodyMediaType && header && header !== bodyMediaType) {
    invalid('Content-Type does not match the manifest mediaType', { contentType: header, mediaType: bodyMediaType });
  }
  const mediaType = (bodyMediaType as string | undefined) ?? header;
  if (!mediaType) invalid('manifest has no mediaType and the request has no Content-Type');
  return mediaType;
}

/** Parses and validates manifest bytes; throws MANIFEST_INVALID with a reason. */
export function parseManifest(body: Uint8Array, contentType: string | undefined): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    invalid('body is not valid JSON');
  }
  if (!isObject(doc)) invalid('body must be a JSON object');
  // Its fields become rows (media types, annotations for the referrers API); the bytes are kept as sent.
  const unstorable = findUnstorableText(doc);
  if (unstorable !== undefined) invalid(`${unstorable} contains a NUL character or a lone UTF-16 surrogate`, { where: unstorable });
  const mediaType = resolveMediaType(contentType, doc.mediaType);
  if (mediaType === MediaTypes.dockerSchema1 || mediaType === MediaTypes.dockerSchema1Signed) {
    throw ociError('UNSUPPORTED_MEDIA_TYPE', { mediaType }, { message: 'Docker schema 1 manifests are not supported; push schema 2 or OCI' });
  }
  const kind = manifestKindOf(mediaType);
  if (!kind) {
    throw ociError('UNSUPPORTED_MEDIA_TYPE', { mediaType: printable(mediaType), supported: SUPPORTED_MANIFEST_TYPES }, { message: `unsupported manifest media type ${printable(mediaType)}` });
  }
  if (doc.schemaVersion !== 2) invalid('schemaVersion must be 2');
  if (doc.artifactType !== undefined && typeof doc.artifactType !== 'string') invalid('artifactType must be a string');
  const subject = doc.subject === undefined ? undefined : readDescriptor(doc.subject, 'subject');
  const annotations = readAnnotations(doc.annotations, 'manifest');

  const parsed: ParsedManifest = { kind, mediaType, blobs: [], manifests: [] };
  if (kind === 'image') {
    const config = readDescriptor(doc.config, 'config');
    const layers = readDescriptorList(doc.layers, 'layers');
    parsed.blobs = [config, ...layers.filter((layer) => !isNonDistributable(layer.mediaType))];
    parsed.artifactType = (doc.artifactType as string | undefined) ?? config.mediaType;
  } else {
    parsed.manifests = readDescriptorList(doc.manifests, 'manifests');
    if (doc.artifactType !== undefined) parsed.artifactType = doc.artifactType as string;
  }
  if (subject) parsed.subject = subject;
  if (annotations) parsed.annotations = annotations;
  return parsed;
}
