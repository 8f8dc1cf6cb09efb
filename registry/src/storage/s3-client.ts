import { S3Client } from '@aws-sdk/client-s3';

export interface S3ConnectionOptions {
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
}

/** An unreachable endpoint fails within this instead of waiting for the OS's TCP timeout. */
const CONNECT_TIMEOUT_MS = 5_000;
/** A server that accepted a request and then went silent; generous, since GET bodies pause under client backpressure. */
const SOCKET_IDLE_TIMEOUT_MS = 60_000;
/** Blob GETs stream to slow clients and hold their socket meanwhile; 50 (the SDK default) is too few. */
const MAX_SOCKETS = 256;

/**
 * An S3 client for AWS or an S3-compatible server (MinIO, Ceph RGW).
 *
 * Flexible checksums are sent only where an operation requires them: the SDK's newer
 * default (CRC trailers on every upload) is rejected by several S3-compatible servers,
 * and content integrity is already guaranteed by the registry's own digest check.
 */
export function createS3Client(options: S3ConnectionOptions): S3Client {
  const { endpoint, region, forcePathStyle, accessKeyId, secretAccessKey } = options;
  return new S3Client({
    region,
    ...(endpoint && { endpoint }),
    forcePathStyle,
    ...(accessKeyId && secretAccessKey && { credentials: { accessKeyId, secretAccessKey } }),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    requestHandler: {
      connectionTimeout: CONNECT_TIMEOUT_MS,
      // Each call sets its own requestTimeout (S3BlobStore.call); past it the call fails.
      throwOnRequestTimeout: true,
      socketTimeout: SOCKET_IDLE_TIMEOUT_MS,
      httpAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
      httpsAgent: { keepAlive: true, maxSockets: MAX_SOCKETS },
    },
  });
}
