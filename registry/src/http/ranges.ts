import type { ByteRange } from '../storage/blob-store.js';
import { ociError } from '../oci/errors.js';

export type RangeRequest = { kind: 'whole' } | { kind: 'partial'; range: ByteRange } | { kind: 'unsatisfiable' };

/**
 * Interprets a `Range` header against a representation of `size` bytes (RFC 9110 §14).
 * Syntactically invalid or multi-range requests are ignored (the whole blob is sent),
 * which the RFC allows; a well-formed range that selects nothing is unsatisfiable.
 */
export function interpretRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'whole' };
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'whole' };
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', range: { start: Math.max(0, size - suffix), end: size - 1 } };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? Number.MAX_SAFE_INTEGER : Number(m[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return { kind: 'whole' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', range: { start, end: Math.min(end, size - 1) } };
}

/**
 * Parses an upload chunk's `Content-Range: <start>-<end>` (the distribution-spec form;
 * `bytes ` prefixes and `/total` suffixes from other clients are tolerated).
 */
export function parseContentRange(header: string | undefined): ByteRange | undefined {
  if (header === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  const start = m ? Number(m[1]) : NaN;
  const end = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) {
    throw ociError('BLOB_UPLOAD_INVALID', { contentRange: header }, { message: 'Content-Range must be <start>-<end> with start <= end' });
  }
  return { start, end };
}

/** Parses Content-Length; undefined when absent (chunked transfer). */
export function parseContentLength(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  if (!/^\d{1,15}$/.test(header)) throw ociError('SIZE_INVALID', { contentLength: header }, { message: 'invalid Content-Length' });
  return Number(header);
}
