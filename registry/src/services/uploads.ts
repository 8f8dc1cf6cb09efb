import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_ALGORITHM, newHasher, type DigestAlgorithm, type ParsedDigest } from '../oci/digest.js';
import { ociError } from '../oci/errors.js';
import type { Metadata } from '../metadata/index.js';
import type { UploadSession } from '../metadata/uploads.js';
import { BlobDeletingError, DELETION_MARK_STALE_SECONDS, ProjectGoneError } from '../metadata/blob-links.js';
import type { BlobStore, CommitHints, UploadState } from '../storage/blob-store.js';
import { feed } from './feed.js';
import { HashingStream, UploadHashCache } from './hashing.js';
import type { QuotaGuard } from './quota.js';
import { UploadBudget } from './upload-budget.js';

const RESERVE_RETRY_MS = 100;

/** `Content-Range: <start>-<end>` of a chunk, inclusive. */
export interface ChunkRange {
  start: number;
  end: number;
}

export interface ChunkInput {
  body: Readable;
  range?: ChunkRange;
  /** Declared Content-Length, when the client sent one. */
  length?: number;
  /** Aborted when the body must no longer be read (it arrives too slowly): the chunk then fails with the signal's reason. */
  stop?: AbortSignal;
}

/** What one upload and one client may hold; see LimitsConfig.uploads. */
export interface UploadLimits {
  maxSize: number;
  /** 0: no cap. */
  maxSessionsPerPrincipal: number;
  /** 0: no cap. */
  maxSessionsPerRepository: number;
}

/** Seconds a client refused for holding too many sessions is asked to wait before trying again. */
const SESSION_CAP_RETRY_AFTER_SECONDS = 10;

export interface CommittedBlob {
  digest: string;
  size: number;
}

/** `Range` header value describing what the registry holds: `0-<last byte>`. */
export function uploadRangeHeader(size: number): string {
  return `0-${Math.max(size - 1, 0)}`;
}

export class UploadService {
  private readonly hashes = new UploadHashCache();

  constructor(
    private readonly meta: Metadata,
    private readonly store: BlobStore,
    private readonly quota: QuotaGuard,
    private readonly limits: UploadLimits,
    /** See reservationReuseSeconds. */
    private readonly reuseReservationSeconds = 0,
  ) {}

  /**
   * Opens a session for `principal` (who asks: a token subject, or the client's address
   * when anonymous), unless it or the repository already holds as many open sessions as
   * allowed: each may hold up to what the project's quota has left, so the caps bound
   * the storage that uploads in progress can take.
   */
  async start(repository: string, principal: string, signal?: AbortSignal): Promise<UploadSession> {
    const id = randomUUID();
    const state = await this.store.startUpload(id, signal);
    const { maxSessionsPerPrincipal: perPrincipal, maxSessionsPerRepository: perRepository } = this.limits;
    const refused = await this.meta.uploads.create(id, repository, state, { principal, perPrincipal, perRepository });
    if (refused) throw tooManySessions(refused, repository, refused === 'repository' ? perRepository : perPrincipal);
    return { id, repository, size: 0, state, createdAt: new Date(), updatedAt: new Date() };
  }

  async session(repository: string, id: string): Promise<UploadSession> {
    const session = await this.meta.uploads.get(id, repository);
    if (!session) throw ociError('BLOB_UPLOAD_UNKNOWN', { uploadId: id });
    return session;
  }

  /** Appends one chunk (PATCH); chunks must arrive in order. */
  async append(repository: string, id: string, chunk: ChunkInput, signal?: AbortSignal, algorithm: DigestAlgorithm = DEFAULT_ALGORITHM): Promise<UploadSession> {
    const session = await this.session(repository, id);
    return this.appendTo(session, chunk, algorithm, signal);
  }

  /**
   * Writes one chunk at the session's end. A chunk that is not the last is recorded
   * (uploads.advance), so that the next request, on any replica, continues after it.
   * The closing chunk of a PUT (`closing`, the expected digest) is not: the commit
   * that follows closes the session, and the quota precheck already knows the digest.
   */
  private async appendTo(session: UploadSession, chunk: ChunkInput, algorithm: DigestAlgorithm, signal?: AbortSignal, closing?: ParsedDigest): Promise<UploadSession> {
    const { range, length } = chunk;
    const outOfOrder = () =>
      ociError('RANGE_INVALID', { expectedStart: session.size, range }, {
        message: `chunk out of order: the upload holds ${session.size} bytes, so the next chunk must start at ${session.size}`,
        headers: { Range: uploadRangeHeader(session.size), Location: uploadLocation(session.repository, session.id), 'Docker-Upload-UUID': session.id },
      });
    if (range) {
      if (range.start !== session.size) throw outOfOrder();
      if (length !== undefined && length !== range.end - range.start + 1) {
        throw ociError('SIZE_INVALID', { contentRange: range, contentLength: length }, { message: 'Content-Length does not match Content-Range' });
      }
    }
    const incoming = declaredLength(chunk);
    const room = await this.quota.room(session.repository, closing?.value, session.projectStorageLimit);
    const budget = new UploadBudget(session.size, this.limits.maxSize, room, incoming);
    let result;
    let hash;
    try {
      budget.checkDeclared();
      hash = this.hashes.take(session.id, algorithm, session.size) ?? (session.size === 0 ? newHasher(algorithm) : undefined);
      const tap = new HashingStream(hash ?? newHasher(algorithm), budget);
      result = await bothSettled(this.store.appendUpload(session.id, session.state, session.size, tap, signal, { last: closing !== undefined }), feed(chunk.body, tap, chunk.stop));
    } catch (err) {
      // What the store wrote of this chunk is gone already; an upload that can no longer fit goes entirely.
      if (budget.ends(err)) await this.discardRefused(session, signal);
      throw err;
    }
    const written = result.size - session.size;
    if (incoming !== undefined && written !== incoming) {
      throw ociError('SIZE_INVALID', { expected: incoming, received: written }, { message: `received ${written} bytes, expected ${incoming}` });
    }
    if (!closing && !(await this.meta.uploads.advance(session.id, session.size, result.size, result.state))) throw outOfOrder();
    if (hash) this.hashes.put(session.id, algorithm, result.size, hash);
    return { ...session, size: result.size, state: result.state, updatedAt: new Date() };
  }

  /** Completes an upload (PUT ?digest=), with an optional last chunk. */
  async finish(repository: string, id: string, expected: ParsedDigest, lastChunk: ChunkInput | undefined, signal?: AbortSignal): Promise<CommittedBlob> {
    let session = await this.session(repository, id);
    if (lastChunk && session.size === 0) {
      const known = await this.receiveKnown(repository, expected, lastChunk, signal, session);
      if (known) return known;
    }
    if (lastChunk) session = await this.appendTo(session, lastChunk, expected.algorithm, signal, expected);
    // A last chunk was held to the quota with this digest (declared, or while streaming).
    return this.commit(session, expected, lastChunk !== undefined, signal);
  }

  /** A whole blob in one request (POST ?digest=); nothing is left behind when it fails. */
  async monolithic(repository: string, expected: ParsedDigest, chunk: ChunkInput, signal?: AbortSignal): Promise<CommittedBlob> {
    const known = await this.receiveKnown(repository, expected, chunk, signal);
    if (known) return known;
    const budget = new UploadBudget(0, this.limits.maxSize, await this.quota.room(repository, expected.value), chunk.length);
    budget.checkDeclared();
    const id = randomUUID();
    let state = await this.store.startUpload(id, signal);
    try {
      const hash = newHasher(expected.algorithm);
      const tap = new HashingStream(hash, budget);
      const result = await bothSettled(this.store.appendUpload(id, state, 0, tap, signal, { last: true }), feed(chunk.body, tap, chunk.stop));
      state = result.state;
      if (chunk.length !== undefined && result.size !== chunk.length) {
        throw ociError('SIZE_INVALID', { expected: chunk.length, received: result.size }, { message: `received ${result.size} bytes, expected ${chunk.length}` });
      }
      const actual = `${expected.algorithm}:${hash.digest('hex')}`;
      if (actual !== expected.value) throw digestMismatch(expected.value, actual);
      await this.publish(repository, id, state, result.size, expected.value, signal);
      return { digest: expected.value, size: result.size };
    } catch (err) {
      await this.store.abortUpload(id, state).catch(() => undefined);
      throw err;
    }
  }

  /**
   * A whole blob whose content storage already holds (another repository pushed it)
   * needs no second copy: the body is hashed and counted, not written, and the stored
   * object is linked once the digest is verified. The blob row is reserved before
   * the object is looked at again, so garbage collection cannot remove it meanwhile;
   * undefined (nothing consumed yet) when the object is absent and the caller should
   * store the body as usual. Closes `session` when one is given.
   */
  private async receiveKnown(repository: string, expected: ParsedDigest, chunk: ChunkInput, signal?: AbortSignal, session?: UploadSession): Promise<CommittedBlob | undefined> {
    if (chunk.range && chunk.range.start !== 0) return undefined;
    const declared = declaredLength(chunk);
    const stored = await this.store.stat(expected.value, signal);
    if (!stored || (declared !== undefined && declared !== stored.size)) return undefined;
    await this.quota.precheck(repository, stored.size, expected.value, session?.projectStorageLimit);
    const reservedAt = await this.reserve(expected.value, stored.size, signal);
    if (!(await this.store.stat(expected.value, signal))) return undefined;
    // Hashed and counted only; past the stored size the content cannot match, so reading stops there.
    let tooLong: Error | undefined;
    const longer = () => (tooLong = ociError('DIGEST_INVALID', { expected: expected.value, size: stored.size }, { message: `uploaded content is longer than the ${stored.size} bytes of ${expected.value}` }));
    const tap = new HashingStream(newHasher(expected.algorithm), { bytes: stored.size, exceeded: longer });
    tap.resume();
    try {
      await feed(chunk.body, tap, chunk.stop);
    } catch (err) {
      if (err === tooLong && session) await this.discardRefused(session, signal);
      throw err;
    }
    const received = tap.bytes;
    const actual = `${expected.algorithm}:${tap.hash.digest('hex')}`;
    if (received !== stored.size || actual !== expected.value) {
      if (session) await this.discard(session, signal);
      if (declared !== undefined && received !== declared) {
        throw ociError('SIZE_INVALID', { expected: declared, received }, { message: `received ${received} bytes, expected ${declared}` });
      }
      throw digestMismatch(expected.value, actual);
    }
    await this.link(repository, expected.value, stored.size, reservedAt, session?.id);
    return { digest: expected.value, size: stored.size };
  }

  /**
   * What a blob that arrives from elsewhere (a proxy fill) may hold, as one request of an
   * upload: the largest blob the registry accepts, what the project's quota has left, and
   * `declared` (the upstream's Content-Length) when known. `knownLimit`: the project's
   * storage limit, when the caller has it.
   */
  async budgetFor(repository: string, digest: string, declared: number | undefined, knownLimit?: number | null): Promise<UploadBudget> {
    return new UploadBudget(0, this.limits.maxSize, await this.quota.room(repository, digest, knownLimit), declared);
  }

  /**
   * Publishes bytes already written to upload `id` and verified to have `digest` (a
   * proxy-cache fill: the upload is the fill's alone, written by one `last` append), and
   * links the blob into `repository` under its quota.
   */
  async publishVerified(repository: string, id: string, state: UploadState, size: number, digest: string, signal?: AbortSignal): Promise<void> {
    await this.publish(repository, id, state, size, digest, signal, { hints: { exclusive: true }, requireProject: true });
  }

  /**
   * Links a blob that storage already holds into `repository` (under its quota), without
   * reading it: for a caller that knows the repository may have it (a proxy-cache
   * project whose cached manifest names it). The row is reserved before storage is
   * looked at again, so garbage collection cannot remove the object meanwhile. Returns
   * the size, or undefined when storage does not hold it. With `withinProject`, only a
   * blob already linked in a repository of that project is adopted: storage is shared by
   * every project, and a proxy project's upstream merely naming a digest must not open
   * another project's blob to its readers.
   */
  async adoptStored(repository: string, digest: string, signal?: AbortSignal, withinProject?: string): Promise<number | undefined> {
    const stored = await this.store.stat(digest, signal);
    if (!stored) return undefined;
    if (withinProject !== undefined && !(await this.meta.blobs.linkedInProject(withinProject, digest))) return undefined;
    await this.quota.precheck(repository, stored.size, digest);
    const reservedAt = await this.reserve(digest, stored.size, signal);
    if (!(await this.store.stat(digest, signal))) return undefined;
    await this.link(repository, digest, stored.size, reservedAt, undefined, true);
    return stored.size;
  }

  async cancel(repository: string, id: string, signal?: AbortSignal): Promise<void> {
    const session = await this.session(repository, id);
    await this.discard(session, signal);
  }

  private async discard(session: UploadSession, signal?: AbortSignal): Promise<void> {
    this.hashes.drop(session.id);
    await this.meta.uploads.delete(session.id);
    await this.store.abortUpload(session.id, session.state, signal);
  }

  /** Discards a refused upload; the refusal is the answer, so a failure here is left to the purge of abandoned uploads. */
  private async discardRefused(session: UploadSession, signal?: AbortSignal): Promise<void> {
    await this.discard(session, signal).catch(() => undefined);
  }

  /** Verifies the digest and publishes the upload; `prechecked`: the quota was already checked with this digest. */
  private async commit(session: UploadSession, expected: ParsedDigest, prechecked: boolean, signal?: AbortSignal): Promise<CommittedBlob> {
    const actual = await this.digestOf(session, expected.algorithm, signal);
    if (actual !== expected.value) {
      await this.discard(session, signal);
      throw digestMismatch(expected.value, actual);
    }
    if (!prechecked) {
      try {
        await this.quota.precheck(session.repository, session.size, expected.value, session.projectStorageLimit);
      } catch (err) {
        await this.discard(session, signal);
        throw err;
      }
    }
    await this.publish(session.repository, session.id, session.state, session.size, expected.value, signal, { closeUpload: session.id });
    return { digest: expected.value, size: session.size };
  }

  /**
   * Makes verified upload bytes the blob `digest` and links it, closing the upload
   * session `closeUpload` in the same statement. The blob row is reserved before the
   * object is written, so garbage collection never deletes an object that a push is
   * writing (see BlobLinkStore.reserve). Projects with a storage limit take the
   * locked path, where the quota is checked in the linking transaction.
   */
  private async publish(repository: string, id: string, state: UploadState, size: number, digest: string, signal?: AbortSignal, options: { closeUpload?: string; hints?: CommitHints; requireProject?: boolean } = {}): Promise<void> {
    const reservedAt = await this.reserve(digest, size, signal);
    await this.store.commitUpload(id, state, size, digest, signal, options.hints);
    await this.link(repository, digest, size, reservedAt, options.closeUpload, options.requireProject);
  }

  /**
   * Links a reserved, stored blob; see publish. `requireProject` (proxy-cache fills, which
   * outlive requests): refuses, NAME_UNKNOWN, once the repository's project is gone.
   */
  private async link(repository: string, digest: string, size: number, reservedAt: Date, closeUpload?: string, requireProject = false): Promise<void> {
    const outcome = await this.meta.blobs.linkReserved(repository, digest, reservedAt, closeUpload, requireProject);
    if (outcome === 'lost') throw blobBeingCollected(digest);
    if (outcome === 'no-project') throw projectGone(new ProjectGoneError(repository));
    if (outcome === 'linked') return;
    try {
      await this.meta.blobs.link(repository, digest, size, this.quota.admit, reservedAt, closeUpload, requireProject);
    } catch (err) {
      if (err instanceof BlobDeletingError) throw blobBeingCollected(digest, err);
      if (err instanceof ProjectGoneError) throw projectGone(err);
      throw err;
    }
  }

  /** Waits while a garbage collector is deleting the digest's object (one storage call, normally milliseconds). */
  private async reserve(digest: string, size: number, signal?: AbortSignal): Promise<Date> {
    const deadline = Date.now() + (DELETION_MARK_STALE_SECONDS + 5) * 1000;
    for (;;) {
      const reservedAt = await this.meta.blobs.reserve(digest, size, this.reuseReservationSeconds);
      if (reservedAt) return reservedAt;
      if (Date.now() > deadline) throw blobBeingCollected(digest);
      await sleep(RESERVE_RETRY_MS, undefined, signal ? { signal } : undefined);
    }
  }

  private async digestOf(session: UploadSession, algorithm: DigestAlgorithm, signal?: AbortSignal): Promise<string> {
    const cached = this.hashes.take(session.id, algorithm, session.size);
    if (cached) return `${algorithm}:${cached.digest('hex')}`;
    const hash = newHasher(algorithm);
    const tap = new HashingStream(hash);
    await pipeline(await this.store.readUpload(session.id, session.state, session.size, signal), tap, async function* (source) {
      for await (const _ of source);
    });
    return `${algorithm}:${hash.digest('hex')}`;
  }
}

/**
 * How long a blob's reservation (`blobs.pushed_at`) is reused by further pushes of the
 * same digest instead of refreshed: a tenth of the collector's grace window, at most
 * 10 s. A popular layer pushed by many clients at once then costs one write every few
 * seconds instead of one per push, and the grace window a push relies on shrinks by at
 * most a tenth.
 */
export function reservationReuseSeconds(graceSeconds: number): number {
  return Math.min(10, graceSeconds / 10);
}

export function uploadLocation(repository: string, id: string): string {
  return `/v2/${repository}/blobs/uploads/${id}`;
}

function blobBeingCollected(digest: string, cause?: unknown) {
  return ociError('UNAVAILABLE', { digest }, { message: `blob ${digest} is being garbage-collected; retry the upload`, headers: { 'Retry-After': '1' }, cause });
}

function projectGone(err: ProjectGoneError) {
  return ociError('NAME_UNKNOWN', { name: err.repository }, { message: err.message });
}

function digestMismatch(expected: string, actual: string) {
  return ociError('DIGEST_INVALID', { expected, actual }, { message: `uploaded content has digest ${actual}, not ${expected}` });
}

/** The chunk's size as the client announced it (Content-Range, else Content-Length). */
function declaredLength(chunk: ChunkInput): number | undefined {
  return chunk.range ? chunk.range.end - chunk.range.start + 1 : chunk.length;
}

/**
 * Waits until both the store and the feed of its body have settled, so that no write is
 * still in flight when a failure is handled (an S3 chunk landing after the upload was
 * discarded would stay until the purge); then fails with the store's error if any (the
 * cause when storage fails), else the feed's.
 */
export async function bothSettled<T>(stored: Promise<T>, fed: Promise<void>): Promise<T> {
  const [store, body] = await Promise.allSettled([stored, fed]);
  if (store.status === 'rejected') throw store.reason;
  if (body.status === 'rejected') throw body.reason;
  return store.value;
}

function tooManySessions(scope: 'principal' | 'repository', repository: string, limit: number) {
  const held = scope === 'repository' ? `repository ${repository} has ${limit} open upload sessions` : `you have ${limit} open upload sessions`;
  return ociError('TOOMANYREQUESTS', { openUploads: { scope, limit } }, {
    message: `${held}, the most allowed; finish or cancel one (idle sessions expire)`,
    headers: { 'Retry-After': String(SESSION_CAP_RETRY_AFTER_SECONDS) },
  });
}
