import type { Readable } from 'node:stream';
import { rememberRecent } from '../recent-map.js';

export interface ManifestBytes {
  digest: string;
  mediaType: string;
  content: Buffer;
}

/** Where an interrupted blob upload stands at the destination. */
export interface UploadCheckpoint {
  digest: string;
  repository: string;
  /** The destination's upload location (remote) or session id (local). */
  location: string;
}

export interface BlobUpload {
  repository: string;
  digest: string;
  size: number;
  /** The source's bytes [offset, offset + length), in buffers the reader may keep. */
  open(offset: number, length: number): Promise<Readable>;
  /**
   * Hands the same bytes to `send` for a writer that passes each chunk to a socket before
   * asking for more: the source may reuse a chunk's buffer once the chunk after the next
   * is requested (FileRangeStream.chunks), which spares allocating every chunk. The source
   * is closed once `send` settles, whether or not it read everything.
   */
  sendChunks<T>(offset: number, length: number, send: (chunks: AsyncIterable<Buffer>) => Promise<T>): Promise<T>;
  /** Blobs larger than this go in chunks of this size, each recorded with `save`. */
  chunkSize: number;
  resumeFrom?: UploadCheckpoint;
  save(checkpoint: UploadCheckpoint | undefined): Promise<void>;
  signal: AbortSignal;
}

/** What a copy reads from: the local registry or a remote one. */
export interface SourceEndpoint {
  readonly label: string;
  /** Every repository (the caller filters). */
  repositories(signal: AbortSignal): Promise<string[]>;
  tags(repository: string, signal: AbortSignal): Promise<string[]>;
  /** undefined when the reference names nothing. */
  manifest(repository: string, reference: string, signal: AbortSignal): Promise<ManifestBytes | undefined>;
  blob(repository: string, digest: string, offset: number, length: number, signal: AbortSignal): Promise<Readable>;
  /** Digests of the manifests whose subject is `digest`. */
  referrers(repository: string, digest: string, signal: AbortSignal): Promise<string[]>;
}

/** What a copy writes to. */
export interface DestinationEndpoint {
  readonly label: string;
  /** The digest a tag or digest resolves to, undefined when absent. */
  manifestDigest(repository: string, reference: string, signal: AbortSignal): Promise<string | undefined>;
  hasBlob(repository: string, digest: string, signal: AbortSignal): Promise<boolean>;
  /** Links the blob from another repository of the destination that has it; false when none is known or the mount was refused. */
  mountBlob(repository: string, digest: string, signal: AbortSignal): Promise<boolean>;
  /** Streams a blob in (resuming `resumeFrom` when the destination still holds it); returns the bytes sent. */
  putBlob(upload: BlobUpload): Promise<number>;
  putManifest(repository: string, reference: string, manifest: ManifestBytes, signal: AbortSignal): Promise<void>;
  /** false when there was nothing to delete. */
  deleteManifest(repository: string, reference: string, signal: AbortSignal): Promise<boolean>;
}

/**
 * Repositories of a destination known to hold a blob (seen or sent by a copy), so that
 * another repository needing it can mount it instead of receiving the bytes again.
 * Bounded; the oldest entries go first.
 */
export class KnownBlobs {
  private readonly where = new Map<string, string>();

  constructor(private readonly capacity = 100_000) {}

  remember(digest: string, repository: string): void {
    rememberRecent(this.where, digest, repository, this.capacity);
  }

  /** A repository other than `repository` that holds it. */
  elsewhere(digest: string, repository: string): string | undefined {
    const known = this.where.get(digest);
    return known !== undefined && known !== repository ? known : undefined;
  }
}
