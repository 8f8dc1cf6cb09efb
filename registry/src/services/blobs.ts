import type { Readable } from 'node:stream';
import { ociError } from '../oci/errors.js';
import type { Metadata } from '../metadata/index.js';
import { BlobNotFoundError, type BlobStore, type ByteRange } from '../storage/blob-store.js';
import type { QuotaGuard } from './quota.js';

export interface BlobHandle {
  digest: string;
  size: number;
  /** Manifests are also readable through the blobs endpoint; their bytes live in the database. */
  manifestContent?: Buffer;
}

export class BlobService {
  constructor(
    private readonly meta: Metadata,
    private readonly store: BlobStore,
    private readonly quota: QuotaGuard,
  ) {}

  /** Resolves a blob visible in `repository`, or throws BLOB_UNKNOWN. */
  async find(repository: string, digest: string, withManifestContent = false): Promise<BlobHandle> {
    const found = await this.lookup(repository, digest, withManifestContent);
    if ('missing' in found) throw ociError('BLOB_UNKNOWN', { digest });
    return found;
  }

  /**
   * As `find`, with a miss as an answer of its own; with `askReferenced` (a proxy-cache
   * project) the miss says whether a manifest of the repository names the digest, in the
   * same statement.
   */
  async lookup(repository: string, digest: string, withManifestContent: boolean, askReferenced = false): Promise<BlobHandle | { missing: true; referenced: boolean }> {
    const found = await this.meta.manifests.blobOrManifest(repository, digest, withManifestContent, askReferenced);
    if ('linkedSize' in found) return { digest, size: found.linkedSize };
    if ('referenced' in found) return { missing: true, referenced: found.referenced };
    const { manifest } = found;
    return manifest.content ? { digest, size: manifest.size, manifestContent: manifest.content } : { digest, size: manifest.size };
  }

  async open(blob: BlobHandle, range: ByteRange | undefined, signal?: AbortSignal): Promise<Readable> {
    try {
      return await this.store.read(blob.digest, range, signal);
    } catch (err) {
      if (err instanceof BlobNotFoundError) {
        throw ociError('BLOB_UNKNOWN', { digest: blob.digest }, { message: 'blob is linked but missing from storage', cause: err });
      }
      throw err;
    }
  }

  redirectUrl(digest: string, signal?: AbortSignal): Promise<string | undefined> {
    return this.store.redirectUrl(digest, signal);
  }

  /** Removes the blob from `repository`; storage is reclaimed by garbage collection. */
  async delete(repository: string, digest: string): Promise<void> {
    if (!(await this.meta.blobs.unlink(repository, digest))) throw ociError('BLOB_UNKNOWN', { digest });
  }

  /** Cross-repository mount: links the blob if `from` has it; undefined means "fall back to an upload". */
  mount(repository: string, from: string, digest: string): Promise<number | undefined> {
    return this.meta.blobs.mount(repository, from, digest, this.quota.admit);
  }
}
