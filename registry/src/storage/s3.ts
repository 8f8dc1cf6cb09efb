import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
  type _Object,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { BlobNotFoundError, StorageUnavailableError, type AppendResult, type BlobInfo, type BlobStore, type ByteRange, type StoredBlob, type UploadState } from './blob-store.js';
import { BLOBS_PREFIX, blobKey, digestFromBlobKey, uploadDirKey, uploadIdOfName, uploadPartKey, UPLOADS_PREFIX } from './paths.js';
import { createS3Client, type S3ConnectionOptions } from './s3-client.js';
import { isNotFound, mapS3Error } from './s3-errors.js';
import { parseUploadState, planParts, toUploadState, uploadedSize, type PartSource, type UploadChunk } from './s3-upload-state.js';

export interface S3BlobStoreOptions extends S3ConnectionOptions {
  bucket: string;
  /** redirectUrl() answers presigned GET URLs; off means blobs stream through the registry. */
  redirect: boolean;
  /** Largest chunk object an append writes, and so the most it buffers; default 8 MiB. */
  chunkSize?: number;
  /** Lifetime of presigned URLs, in seconds; default 20 minutes. */
  redirectExpiresIn?: number;
  /**
   * Milliseconds until response headers, per attempt (the SDK makes up to 3): `request`
   * for metadata calls and GETs (default 10 s), `transfer` for calls that send a chunk
   * or make S3 copy one (default 2 min).
   */
  timeouts?: { request?: number; transfer?: number };
  /** Keys per ListObjectsV2 page; S3's maximum (1000) by default. */
  listPageSize?: number;
}

type SendOptions = { abortSignal?: AbortSignal; requestTimeout: number };

const MiB = 1024 * 1024;
/** S3's minimum size of every multipart part but the last. */
const MIN_PART_SIZE = 5 * MiB;
const MAX_PARTS = 10_000;
const DEFAULT_CHUNK_SIZE = 8 * MiB;
const FIRST_BUFFER_SIZE = 64 * 1024;
const DELETE_BATCH = 1000;
const PART_CONCURRENCY = 4;
const OCTET_STREAM = 'application/octet-stream';

export class UploadChunkMissingError extends Error {
  readonly code = 'UPLOAD_CHUNK_MISSING';
  constructor(id: string, offset: number) {
    super(`upload ${id}: the chunk at offset ${offset} is missing from storage or has the wrong size; restart the upload`);
    this.name = 'UploadChunkMissingError';
  }
}

/**
 * Blobs in an S3 bucket (AWS, MinIO, Ceph RGW), keyed as in paths.ts.
 *
 * Uploads. Every append streams its body into chunk objects
 * `uploadPartKey(id, offset, attempt)` of at most `chunkSize` bytes, buffering one chunk
 * at a time. The upload state lists the accepted chunks, so any replica can read, extend
 * or commit the upload; the per-attempt token keeps racing or stale appends from ever
 * overwriting a chunk that the database accepted.
 * Chunk objects are used instead of an S3 multipart upload held open across requests
 * because the parts of an unfinished multipart upload cannot be read back, and a replica
 * that did not see the earlier bytes must re-hash them before commit.
 *
 * Part sizes. S3 wants every multipart part but the last to be at least 5 MiB, while
 * clients may PATCH chunks of any size. Commit therefore plans the parts (planParts):
 * a chunk of 5 MiB or more becomes a part by UploadPartCopy (server-side, no bytes
 * through the registry); runs of smaller chunks are read back and joined into one part
 * of 5 MiB to 5 MiB + chunkSize, the only bytes commit buffers. A single chunk is
 * committed with CopyObject, and an upload that fits in one part with one PutObject.
 * With at most 10,000 parts, a blob may be 48 GiB when PATCHed in small chunks, and
 * 78 GiB when streamed into the default 8 MiB chunks.
 *
 * Commit always writes blobKey(digest), even when the blob exists, so that its
 * modification time marks it as fresh for garbage collection's grace window.
 */
export class S3BlobStore implements BlobStore {
  readonly driver = 's3';
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly chunkSize: number;

  private readonly requestTimeout: number;
  private readonly transferTimeout: number;

  constructor(private readonly options: S3BlobStoreOptions) {
    this.client = createS3Client(options);
    this.bucket = options.bucket;
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.requestTimeout = options.timeouts?.request ?? 10_000;
    this.transferTimeout = options.timeouts?.transfer ?? 120_000;
    if (!(this.chunkSize >= 1)) throw new Error('chunkSize must be positive');
  }

  /** Releases the client's sockets. */
  close(): void {
    this.client.destroy();
  }

  /**
   * Runs one SDK call with the caller's AbortSignal and a deadline for the response
   * headers, so that a server that accepts connections but never answers (frozen,
   * partitioned) fails the call instead of hanging it; errors come out mapped.
   */
  private async call<T>(what: string, signal: AbortSignal | undefined, run: (options: SendOptions) => Promise<T>, kind: 'request' | 'transfer' = 'request'): Promise<T> {
    try {
      return await run({ abortSignal: signal, requestTimeout: kind === 'request' ? this.requestTimeout : this.transferTimeout });
    } catch (err) {
      throw mapS3Error(err, what);
    }
  }

  private copySource(key: string): string {
    return `${this.bucket}/${key}`;
  }

  async stat(digest: string, signal?: AbortSignal): Promise<BlobInfo | undefined> {
    try {
      const head = await this.call('stat', signal, (o) => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: blobKey(digest) }), o));
      return { size: head.ContentLength ?? 0, modifiedAt: head.LastModified ?? new Date(0) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async read(digest: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    try {
      const out = await this.call('read', signal, (o) =>
        this.client.send(
          new GetObjectCommand({ Bucket: this.bucket, Key: blobKey(digest), ...(range && { Range: `bytes=${range.start}-${range.end}` }) }),
          o,
        ),
      );
      return out.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) throw new BlobNotFoundError(digest);
      throw err;
    }
  }

  async delete(digest: string, signal?: AbortSignal): Promise<void> {
    await this.call('delete', signal, (o) => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: blobKey(digest) }), o));
  }

  private async *listObjects(prefix: string, what: string, signal?: AbortSignal): AsyncIterable<_Object> {
    let token: string | undefined;
    do {
      const page = await this.call(what, signal, (o) =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token, MaxKeys: this.options.listPageSize }), o),
      );
      yield* page.Contents ?? [];
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async *list(signal?: AbortSignal): AsyncIterable<StoredBlob> {
    for await (const object of this.listObjects(BLOBS_PREFIX, 'list blobs', signal)) {
      const digest = object.Key && digestFromBlobKey(object.Key);
      if (digest) yield { digest, size: object.Size ?? 0, modifiedAt: object.LastModified ?? new Date(0) };
    }
  }

  async redirectUrl(digest: string): Promise<string | undefined> {
    if (!this.options.redirect) return undefined;
    const command = new GetObjectCommand({ Bucket: this.bucket, Key: blobKey(digest) });
    return this.call('presign', undefined, () => getSignedUrl(this.client, command, { expiresIn: this.options.redirectExpiresIn ?? 20 * 60 }));
  }

  async ping(signal?: AbortSignal): Promise<void> {
    try {
      await this.call('ping', signal, (o) => this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), o));
    } catch (err) {
      if (isNotFound(err)) throw new StorageUnavailableError(`S3 bucket ${this.bucket} does not exist`, { cause: err });
      throw err;
    }
  }

  /** Nothing to create yet: the first append writes the first chunk. */
  async startUpload(_id: string, _signal?: AbortSignal): Promise<UploadState> {
    return toUploadState({ chunks: [] });
  }

  async appendUpload(id: string, state: UploadState, offset: number, body: Readable, signal?: AbortSignal): Promise<AppendResult> {
    const current = parseUploadState(id, state);
    if (uploadedSize(current) !== offset) throw new Error(`upload ${id}: append at offset ${offset}, but its state holds ${uploadedSize(current)} bytes`);
    const attempt = randomBytes(8).toString('hex');
    const written: UploadChunk[] = [];
    let size = offset;
    let buffer = Buffer.allocUnsafe(Math.min(FIRST_BUFFER_SIZE, this.chunkSize));
    let filled = 0;
    /** Chunks this append wrote or began to write. */
    const attempted: UploadChunk[] = [];
    const flush = async () => {
      const chunk = { offset: size, size: filled, attempt };
      attempted.push(chunk);
      written.push(await this.putChunk(id, chunk, buffer.subarray(0, filled), signal));
      size += filled;
      filled = 0;
    };
    try {
      for await (const piece of body) {
        let data = piece as Buffer;
        while (data.length > 0) {
          if (filled === buffer.length) {
            // Grow geometrically up to one chunk, so small PATCHes stay small in memory.
            const grown = Buffer.allocUnsafe(Math.min(this.chunkSize, Math.max(buffer.length * 2, filled + data.length)));
            buffer.copy(grown, 0, 0, filled);
            buffer = grown;
          }
          const n = data.copy(buffer, filled);
          filled += n;
          data = data.subarray(n);
          if (filled === this.chunkSize) await flush();
        }
      }
      if (filled > 0) await flush();
    } catch (err) {
      // The chunks of a failed append are in no accepted state: remove them now (without
      // the signal, which may be why it failed). What this misses, commit, abort or the
      // purge of abandoned uploads removes with the rest of the upload's objects.
      await this.deleteKeys(attempted.map((chunk) => this.chunkKey(id, chunk))).catch(() => undefined);
      throw err;
    }
    return { state: toUploadState({ chunks: [...current.chunks, ...written] }), size };
  }

  private chunkKey(id: string, chunk: UploadChunk): string {
    return uploadPartKey(id, chunk.offset, chunk.attempt);
  }

  private async putChunk(id: string, chunk: UploadChunk, bytes: Buffer, signal?: AbortSignal): Promise<UploadChunk> {
    await this.call('write upload chunk', signal, (o) =>
      this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.chunkKey(id, chunk), Body: bytes, ContentLength: bytes.length, ContentType: OCTET_STREAM }),
        o,
      ),
      'transfer',
    );
    return chunk;
  }

  private async openChunk(id: string, chunk: UploadChunk, signal?: AbortSignal): Promise<Readable> {
    try {
      const out = await this.call('read upload chunk', signal, (o) =>
        this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.chunkKey(id, chunk) }), o),
      );
      if (out.ContentLength !== chunk.size) {
        (out.Body as Readable).destroy();
        throw new UploadChunkMissingError(id, chunk.offset);
      }
      return out.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) throw new UploadChunkMissingError(id, chunk.offset);
      throw err;
    }
  }

  async readUpload(id: string, state: UploadState, size: number, signal?: AbortSignal): Promise<Readable> {
    const { chunks } = parseUploadState(id, state, size);
    const open = (chunk: UploadChunk) => this.openChunk(id, chunk, signal);
    // Opened one at a time as the reader gets there: one socket, no buffering.
    return Readable.from(
      (async function* () {
        for (const chunk of chunks) yield* await open(chunk);
      })(),
      { objectMode: false },
    );
  }

  /** Reads `chunks` into one buffer of `size` bytes; used for parts below S3's minimum. */
  private async joinChunks(id: string, chunks: UploadChunk[], size: number, signal?: AbortSignal): Promise<Buffer> {
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    for (const chunk of chunks) {
      for await (const piece of await this.openChunk(id, chunk, signal)) {
        if (at + (piece as Buffer).length > size) throw new UploadChunkMissingError(id, chunk.offset);
        at += (piece as Buffer).copy(out, at);
      }
      if (at !== chunk.offset - chunks[0]!.offset + chunk.size) throw new UploadChunkMissingError(id, chunk.offset);
    }
    return out;
  }

  async commitUpload(id: string, state: UploadState, size: number, digest: string, signal?: AbortSignal): Promise<void> {
    const { chunks } = parseUploadState(id, state, size);
    const key = blobKey(digest);
    const parts = planParts(chunks, MIN_PART_SIZE);
    if (parts.length > MAX_PARTS) throw new Error(`upload ${id}: ${parts.length} parts exceed S3's limit of ${MAX_PARTS}`);
    const only = parts.length === 1 ? parts[0]! : undefined;
    if (chunks.length === 0) {
      await this.call('commit', signal, (o) =>
        this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: Buffer.alloc(0), ContentLength: 0, ContentType: OCTET_STREAM }), o),
      );
    } else if (only?.kind === 'copy') {
      await this.copyChunk(id, only.chunk, key, signal);
    } else if (only?.kind === 'join') {
      const body = await this.joinChunks(id, only.chunks, only.size, signal);
      await this.call('commit', signal, (o) =>
        this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length, ContentType: OCTET_STREAM }), o),
        'transfer',
      );
    } else {
      await this.commitMultipart(id, parts, key, signal);
    }
    // The blob is in place; chunks that fail to go now are left to the abandoned-upload purge.
    await this.removeUpload(id, signal).catch(() => undefined);
  }

  private async copyChunk(id: string, chunk: UploadChunk, key: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.call('commit', signal, (o) =>
        this.client.send(
          new CopyObjectCommand({ Bucket: this.bucket, Key: key, CopySource: this.copySource(this.chunkKey(id, chunk)), ContentType: OCTET_STREAM, MetadataDirective: 'REPLACE' }),
          o,
        ),
        'transfer',
      );
    } catch (err) {
      if (isNotFound(err)) throw new UploadChunkMissingError(id, chunk.offset);
      throw err;
    }
  }

  private async commitMultipart(id: string, parts: PartSource[], key: string, signal?: AbortSignal): Promise<void> {
    const created = await this.call('commit', signal, (o) =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: OCTET_STREAM }), o),
    );
    const uploadId = created.UploadId;
    if (!uploadId) throw new Error('S3 returned no UploadId');
    try {
      const completed = await this.writeParts(id, key, uploadId, parts, signal);
      await this.call('commit', signal, (o) =>
        this.client.send(
          new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: completed } }),
          o,
        ),
        'transfer',
      );
    } catch (err) {
      await this.call('abort commit', undefined, (o) => this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }), o)).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Writes the parts, PART_CONCURRENCY at a time since server-side copies are slow one
   * by one; joined parts go one at a time, so commit buffers at most one of them. After a
   * failure no new part starts, and this settles only when none is in flight, so that an
   * abort that follows leaves no part behind.
   */
  private async writeParts(id: string, key: string, uploadId: string, parts: PartSource[], signal?: AbortSignal): Promise<CompletedPart[]> {
    const completed: CompletedPart[] = [];
    let next = 0;
    let failed = false;
    let joinSlot: Promise<unknown> = Promise.resolve();
    const write = (index: number) => {
      const run = () => this.writePart(id, key, uploadId, index + 1, parts[index]!, signal);
      if (parts[index]!.kind === 'copy') return run();
      const joined = joinSlot.then(run);
      joinSlot = joined.catch(() => undefined);
      return joined;
    };
    const worker = async () => {
      while (!failed && next < parts.length) {
        const index = next++;
        try {
          completed[index] = { PartNumber: index + 1, ETag: await write(index) };
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    const results = await Promise.allSettled(Array.from({ length: Math.min(PART_CONCURRENCY, parts.length) }, worker));
    const rejected = results.find((r) => r.status === 'rejected');
    if (rejected) throw rejected.reason;
    return completed;
  }

  private async writePart(id: string, key: string, uploadId: string, partNumber: number, part: PartSource, signal?: AbortSignal): Promise<string> {
    const target = { Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber };
    let etag: string | undefined;
    if (part.kind === 'copy') {
      try {
        const out = await this.call(
          'commit',
          signal,
          (o) => this.client.send(new UploadPartCopyCommand({ ...target, CopySource: this.copySource(this.chunkKey(id, part.chunk)) }), o),
          'transfer',
        );
        etag = out.CopyPartResult?.ETag;
      } catch (err) {
        if (isNotFound(err)) throw new UploadChunkMissingError(id, part.chunk.offset);
        throw err;
      }
    } else {
      const body = await this.joinChunks(id, part.chunks, part.size, signal);
      const out = await this.call('commit', signal, (o) => this.client.send(new UploadPartCommand({ ...target, Body: body, ContentLength: body.length }), o), 'transfer');
      etag = out.ETag;
    }
    if (!etag) throw new Error(`S3 returned no ETag for part ${partNumber} of ${key}`);
    return etag;
  }

  async abortUpload(id: string, _state: UploadState, signal?: AbortSignal): Promise<void> {
    await this.removeUpload(id, signal);
  }

  /** Deletes every object of the upload, including chunks of failed appends that no state names. */
  private async removeUpload(id: string, signal?: AbortSignal): Promise<void> {
    const keys: string[] = [];
    for await (const object of this.listObjects(`${uploadDirKey(id)}/`, 'list upload', signal)) {
      if (object.Key) keys.push(object.Key);
      if (keys.length === DELETE_BATCH) await this.deleteKeys(keys.splice(0), signal);
    }
    await this.deleteKeys(keys, signal);
  }

  private async deleteKeys(keys: string[], signal?: AbortSignal): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      const out = await this.call('delete', signal, (o) =>
        this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
          o,
        ),
      );
      const failed = out.Errors?.filter((e) => e.Code !== 'NoSuchKey') ?? [];
      if (failed.length > 0) throw new Error(`S3 could not delete ${failed.length} objects, e.g. ${failed[0]!.Key}: ${failed[0]!.Code} ${failed[0]!.Message ?? ''}`);
    }
  }

  async *listUploads(signal?: AbortSignal): AsyncIterable<{ id: string; modifiedAt: Date }> {
    // Keys sort by upload id, so each upload's objects arrive together.
    let current: { id: string; modifiedAt: Date } | undefined;
    for await (const object of this.listObjects(UPLOADS_PREFIX, 'list uploads', signal)) {
      const id = object.Key === undefined ? undefined : uploadIdOfName(object.Key.slice(UPLOADS_PREFIX.length));
      if (!id) continue;
      const modifiedAt = object.LastModified ?? new Date(0);
      if (current?.id === id) {
        if (modifiedAt > current.modifiedAt) current.modifiedAt = modifiedAt;
        continue;
      }
      if (current) yield current;
      current = { id, modifiedAt };
    }
    if (current) yield current;
  }
}
