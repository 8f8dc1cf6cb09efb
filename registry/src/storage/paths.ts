import { tryParseDigest } from '../oci/digest.js';

/**
 * Every storage key the registry uses, built in one place. Keys are relative, use `/`,
 * and never contain client-chosen text other than validated digests and upload ids.
 *
 *   <root>/
 *   ├── blobs/
 *   │   └── <algorithm>/<first two hex>/<hex>     blob content, written once (rename or multipart complete)
 *   └── uploads/
 *       ├── <upload id>/                         object storage (S3)
 *       │   └── part-<offset>-<attempt>          bytes of one append attempt
 *       ├── <upload id>.part-<offset>-<attempt>  filesystem: the same, without a directory
 *       └── <upload id>.assembled                filesystem: parts joined at commit
 *
 * The filesystem keeps an upload's files side by side rather than in a directory of
 * their own: a directory per upload costs every push an inode allocated and another
 * deleted, and allocating one next to recently deleted inodes is what an ext4 without
 * a journal spends its time on (bench/README.md, "What made Wharf faster").
 *
 * Every append attempt writes its own part, named by a fresh attempt token, and the
 * upload state (kept in the database) records which part was accepted at each offset.
 * Two requests racing at the same offset, or a stale request still writing after its
 * client went away, can therefore never touch bytes that another request committed.
 */
const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isUploadId(id: string): boolean {
  return UPLOAD_ID.test(id);
}

function checkedDigest(digest: string): { algorithm: string; hex: string } {
  const parsed = tryParseDigest(digest);
  if (!parsed) throw new Error(`refusing to build a storage key from an invalid digest: ${JSON.stringify(digest)}`);
  return parsed;
}

function checkedUploadId(id: string): string {
  if (!isUploadId(id)) throw new Error(`refusing to build a storage key from an invalid upload id: ${JSON.stringify(id)}`);
  return id;
}

export const BLOBS_PREFIX = 'blobs/';
export const UPLOADS_PREFIX = 'uploads/';

export function blobKey(digest: string): string {
  const { algorithm, hex } = checkedDigest(digest);
  return `${BLOBS_PREFIX}${algorithm}/${hex.slice(0, 2)}/${hex}`;
}

/** Inverse of blobKey, for listing; undefined for keys that are not blob keys. */
export function digestFromBlobKey(key: string): string | undefined {
  const m = /^blobs\/([a-z0-9]+)\/([0-9a-f]{2})\/([0-9a-f]+)$/.exec(key);
  if (!m || !m[3]!.startsWith(m[2]!)) return undefined;
  const digest = `${m[1]}:${m[3]}`;
  return tryParseDigest(digest) ? digest : undefined;
}

export function uploadDirKey(id: string): string {
  return `${UPLOADS_PREFIX}${checkedUploadId(id)}`;
}

function partName(offset: number, attempt: string): string {
  if (!/^[0-9a-f]{8,64}$/.test(attempt)) throw new Error(`refusing to build a storage key from an invalid attempt token: ${JSON.stringify(attempt)}`);
  return `part-${offset.toString().padStart(16, '0')}-${attempt}`;
}

export function uploadPartKey(id: string, offset: number, attempt: string): string {
  return `${uploadDirKey(id)}/${partName(offset, attempt)}`;
}

/** Prefix of every file the filesystem keeps for upload `id`. */
export function uploadFilePrefix(id: string): string {
  return `${uploadDirKey(id)}.`;
}

export function uploadPartFileKey(id: string, offset: number, attempt: string): string {
  return `${uploadFilePrefix(id)}${partName(offset, attempt)}`;
}

/** The file a commit publishes, under a name of its own (`attempt`) so that concurrent commits of one upload cannot write into each other's. */
export function uploadAssembledFileKey(id: string, attempt: string): string {
  if (!/^[0-9a-f]{8,64}$/.test(attempt)) throw new Error(`refusing to build a storage key from an invalid attempt token: ${JSON.stringify(attempt)}`);
  return `${uploadFilePrefix(id)}assembled-${attempt}`;
}

/**
 * The upload a key under uploads/ belongs to, given the key without that prefix:
 * `<id>.…` (the filesystem's files), `<id>/…` (S3's keys) or `<id>` (a directory of the
 * filesystem's earlier layout).
 */
export function uploadIdOfName(name: string): string | undefined {
  const id = name.slice(0, 36);
  return isUploadId(id) && (name.length === 36 || name[36] === '.' || name[36] === '/') ? id : undefined;
}
