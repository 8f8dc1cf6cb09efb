import type { UploadState } from './blob-store.js';

/** One object `uploadPartKey(id, offset, attempt)` holding the upload's bytes [offset, offset + size). */
export interface UploadChunk {
  offset: number;
  size: number;
  /** Token of the append attempt that wrote the chunk; see paths.ts. */
  attempt: string;
}

export interface S3UploadState {
  chunks: UploadChunk[];
}

/** How commit builds one part of the final multipart object. */
export type PartSource =
  /** A chunk of at least the minimum part size (or the last one): UploadPartCopy, server-side. */
  | { kind: 'copy'; chunk: UploadChunk }
  /** Consecutive small chunks, read back and uploaded as one part. */
  | { kind: 'join'; chunks: UploadChunk[]; size: number };

export function toUploadState(state: S3UploadState): UploadState {
  return { chunks: state.chunks.map(({ offset, size, attempt }) => ({ offset, size, attempt })) };
}

function isChunk(value: unknown): value is UploadChunk {
  const c = value as UploadChunk;
  return (
    typeof c === 'object' && c !== null &&
    Number.isSafeInteger(c.offset) && c.offset >= 0 &&
    Number.isSafeInteger(c.size) && c.size > 0 &&
    typeof c.attempt === 'string' && /^[0-9a-f]{8,64}$/.test(c.attempt)
  );
}

/**
 * Validates state read back from the database: chunks must be contiguous from 0 and,
 * when `size` is given, add up to it. Anything else means the state belongs to another
 * driver or was corrupted, and continuing would store wrong bytes.
 */
export function parseUploadState(id: string, state: UploadState, size?: number): S3UploadState {
  const chunks = (state as { chunks?: unknown }).chunks;
  const fail = (why: string) => new Error(`upload ${id}: invalid s3 upload state (${why})`);
  if (!Array.isArray(chunks) || !chunks.every(isChunk)) throw fail('expected {chunks: [{offset, size, attempt}]}');
  let end = 0;
  for (const chunk of chunks) {
    if (chunk.offset !== end) throw fail(`chunk at ${chunk.offset} does not follow byte ${end}`);
    end += chunk.size;
  }
  if (size !== undefined && end !== size) throw fail(`chunks hold ${end} bytes, the session says ${size}`);
  return { chunks };
}

export function uploadedSize(state: S3UploadState): number {
  const last = state.chunks.at(-1);
  return last ? last.offset + last.size : 0;
}

/**
 * Groups chunks into multipart parts, in order. S3 requires every part but the last to
 * be at least `minPartSize`: a chunk that large is copied server-side on its own; smaller
 * chunks are joined with their successors until the group reaches `minPartSize`. A group
 * therefore stays below `minPartSize` + the largest chunk.
 */
export function planParts(chunks: UploadChunk[], minPartSize: number): PartSource[] {
  const parts: PartSource[] = [];
  let group: UploadChunk[] = [];
  let groupSize = 0;
  const flush = () => {
    if (group.length === 1) parts.push({ kind: 'copy', chunk: group[0]! });
    else if (group.length > 1) parts.push({ kind: 'join', chunks: group, size: groupSize });
    group = [];
    groupSize = 0;
  };
  for (const chunk of chunks) {
    group.push(chunk);
    groupSize += chunk.size;
    if (groupSize >= minPartSize) flush();
  }
  flush();
  return parts;
}
