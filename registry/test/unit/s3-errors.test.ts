import { describe, expect, it } from 'vitest';
import { StorageUnavailableError } from '../../src/storage/blob-store.js';
import { isUnavailable, mapS3Error } from '../../src/storage/s3-errors.js';

// What the registry answers 503 for (StorageUnavailableError) and what stays an error of the request.
const sdkError = (name: string, httpStatusCode?: number, code?: string) => Object.assign(new Error(name), { name, ...(code && { code }), $metadata: { httpStatusCode } });

describe('S3 errors that mean the storage service is unavailable', () => {
  it.each([
    ['a refused connection', sdkError('Error', undefined, 'ECONNREFUSED')],
    ['a reset connection', sdkError('Error', undefined, 'ECONNRESET')],
    ['a body cut off mid-request', sdkError('Error', undefined, 'ERR_STREAM_PREMATURE_CLOSE')],
    ['the SDK deadline', sdkError('TimeoutError')],
    ['a 503 SlowDown', sdkError('SlowDown', 503)],
    ['InternalError inside a 200 answer (CopyObject, CompleteMultipartUpload)', sdkError('InternalError', 200)],
    ['a stalled connection (RequestTimeout, 400)', sdkError('RequestTimeout', 400)],
    ['MinIO starting or stopping', sdkError('XMinioServerNotInitialized', 503)],
    ['MinIO shutting down with the request in flight (ClientDisconnected, 499)', sdkError('ClientDisconnected', 499)],
    ['every address of a host refused', Object.assign(new AggregateError([sdkError('Error', undefined, 'ECONNREFUSED')]), {})],
  ])('%s', (_what, err) => {
    expect(isUnavailable(err)).toBe(true);
    expect(mapS3Error(err, 'put')).toBeInstanceOf(StorageUnavailableError);
  });

  it.each([
    ['a missing key', sdkError('NoSuchKey', 404)],
    ['a refused signature', sdkError('SignatureDoesNotMatch', 403)],
    ['a bad digest', sdkError('BadDigest', 400)],
    ['a cancelled request', sdkError('AbortError')],
  ])('not %s', (_what, err) => {
    expect(isUnavailable(err)).toBe(false);
    expect(mapS3Error(err, 'put')).toBe(err);
  });
});
