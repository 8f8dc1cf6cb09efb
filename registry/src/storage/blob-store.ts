import type { Readable } from 'node:stream';

/** Inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface BlobInfo {
  size: number;
  modifiedAt: Date;
}

export interface StoredBlob extends BlobInfo {
  digest: string;
}

/** Driver-specific upload bookkeeping (e.g. S3 part list), persisted with the upload session. */
export type UploadState = Record<string, unknown>;

export interface AppendHints {
  /** The caller commits right after this append (a monolithic or closing request): a driver may flush to disk now. */
  last?: boolean;
}

export interface CommitHints {
  /**
   * No other request can append to or commit this upload (a proxy-cache fill's, whose id no
   * client ever sees), and its one append was `last`: a driver may publish the bytes as they
   * are, without guarding against concurrent appends.
   */
  exclusive?: boolean;
}

export interface AppendResult {
  state: UploadState;
  /** Total bytes in the upload after this append. */
  size: number;
}

/**
 * Content-addressed blob storage. Keys come from paths.ts; callers pass validated
 * digests and upload ids only. Every method takes an AbortSignal so that a client that
 * goes away stops the work down to the backend.
 *
 * Uploads: bytes arrive in one or more appends at increasing offsets; the caller keeps
 * `UploadState` and the size in the database, so any replica can continue an upload.
 * `commitUpload` makes the bytes visible as the blob; nothing is visible before it.
 */
export interface BlobStore {
  readonly driver: string;
  stat(digest: string, signal?: AbortSignal): Promise<BlobInfo | undefined>;
  /** Resolves with a stream once the blob is known to exist; rejects with BlobNotFoundError otherwise. */
  read(digest: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable>;
  delete(digest: string, signal?: AbortSignal): Promise<void>;
  list(signal?: AbortSignal): AsyncIterable<StoredBlob>;
  /** A URL the client may fetch the blob from directly, when the driver is configured to redirect. */
  redirectUrl(digest: string, signal?: AbortSignal): Promise<string | undefined>;
  /** Throws when the backend cannot be reached. */
  ping(signal?: AbortSignal): Promise<void>;

  startUpload(id: string, signal?: AbortSignal): Promise<UploadState>;
  /** Appends `body` at `offset` (= current size). On failure nothing past `offset` counts. */
  appendUpload(id: string, state: UploadState, offset: number, body: Readable, signal?: AbortSignal, hints?: AppendHints): Promise<AppendResult>;
  readUpload(id: string, state: UploadState, size: number, signal?: AbortSignal): Promise<Readable>;
  commitUpload(id: string, state: UploadState, size: number, digest: string, signal?: AbortSignal, hints?: CommitHints): Promise<void>;
  abortUpload(id: string, state: UploadState, signal?: AbortSignal): Promise<void>;
  /** Releases connections, for drivers that hold some. */
  close?(): void | Promise<void>;
  /** Upload ids present in storage, with their last modification, for purging abandoned uploads. */
  listUploads(signal?: AbortSignal): AsyncIterable<{ id: string; modifiedAt: Date }>;
}

export class BlobNotFoundError extends Error {
  readonly code = 'BLOB_NOT_FOUND';
  constructor(readonly digest: string) {
    super(`blob ${digest} is not in storage`);
    this.name = 'BlobNotFoundError';
  }
}

export class StorageUnavailableError extends Error {
  readonly code = 'STORAGE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageUnavailableError';
  }
}
