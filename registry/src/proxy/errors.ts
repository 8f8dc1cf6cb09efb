import { ociError } from '../oci/errors.js';
import { RemoteError } from '../remote/index.js';

/**
 * The answer to a client when the upstream could not supply what a proxy-cache project
 * does not hold: unknown when the upstream says so, 429 when it throttles, 503
 * otherwise, each naming the upstream and what it said. Pure.
 */
export function upstreamFailure(err: unknown, what: { kind: 'manifest' | 'blob' | 'referrers'; repository: string; reference: string }): unknown {
  if (!(err instanceof RemoteError)) return err;
  const detail = { upstream: err.details.url, failure: err.failure, ...(err.details.status !== undefined && { status: err.details.status }) };
  if (err.failure === 'not-found') {
    const code = what.kind === 'blob' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN';
    return ociError(code, detail, { message: `${what.repository}${what.kind === 'blob' ? '@' : ':'}${what.reference} is not cached, and the upstream does not have it: ${err.message}`, cause: err });
  }
  const retryAfter = String(Math.max(1, Math.min(err.details.retryAfterSeconds ?? 5, 3600)));
  if (err.failure === 'throttled') {
    return ociError('TOOMANYREQUESTS', detail, { message: `${what.repository} is not cached, and the upstream refuses more requests for now: ${err.message}`, headers: { 'Retry-After': retryAfter }, cause: err });
  }
  return ociError('UNAVAILABLE', detail, {
    message: `${what.repository}${what.kind === 'blob' ? '@' : ':'}${what.reference} is not cached, and the upstream cannot supply it: ${err.message}`,
    headers: { 'Retry-After': retryAfter },
    cause: err,
  });
}

/** The metric label of an upstream outcome. */
export function outcomeLabel(err: unknown): string {
  return err instanceof RemoteError ? err.failure : 'error';
}
