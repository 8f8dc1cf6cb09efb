import { StorageUnavailableError } from './blob-store.js';

interface SdkError {
  name?: string;
  code?: string;
  errors?: unknown[];
  $metadata?: { httpStatusCode?: number };
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  // A body stream cut off mid-request (the server went away while a PUT was being sent).
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/**
 * S3 error codes that blame the service or the connection, not the request. S3 (and MinIO) can
 * send them inside a 200 answer to CopyObject and CompleteMultipartUpload, so the code, not the
 * HTTP status, is what tells. RequestTimeout (400) is a connection that stalled mid-body.
 * ClientDisconnected (499) is what MinIO answers to requests in flight while it shuts down: a
 * registry that had cancelled the request would have no answer to read.
 */
const UNAVAILABLE_CODES = new Set(['InternalError', 'ServiceUnavailable', 'SlowDown', 'RequestTimeout', 'XMinioServerNotInitialized', 'ClientDisconnected']);

function status(err: unknown): number | undefined {
  return (err as SdkError)?.$metadata?.httpStatusCode;
}

export function isNotFound(err: unknown): boolean {
  const name = (err as SdkError)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || status(err) === 404;
}

/**
 * True for failures that say the storage service, not the request, is at fault: no
 * connection, a timeout, or a 5xx that survived the SDK's retries (e.g. 503 SlowDown).
 */
export function isUnavailable(err: unknown): boolean {
  const e = err as SdkError;
  if (!e || e.name === 'AbortError') return false;
  if (e.code && NETWORK_CODES.has(e.code)) return true;
  if (e.name && UNAVAILABLE_CODES.has(e.name)) return true;
  // Node reports a failed connection to every address of a host as an AggregateError.
  if (Array.isArray(e.errors) && e.errors.some(isUnavailable)) return true;
  if (e.name === 'TimeoutError') return true;
  const code = status(err);
  return code !== undefined && code >= 500;
}

/** Rethrows `err` as StorageUnavailableError when it is one, so the HTTP layer answers 503. */
export function mapS3Error(err: unknown, what: string): unknown {
  if (!isUnavailable(err)) return err;
  return new StorageUnavailableError(`S3 storage unavailable (${what}): ${(err as Error).message || (err as SdkError).name}`, { cause: err });
}
