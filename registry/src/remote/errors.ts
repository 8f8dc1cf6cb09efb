import { maxHeaderSize } from 'node:http';

/**
 * Why a request to another registry failed. `transient` failures (the upstream is
 * down, slow, throttling or failing) are the ones a cache may answer from what it
 * holds; the others are the upstream's considered answer.
 */
export type RemoteFailure =
  /** No connection: refused, reset, DNS, TLS. */
  | 'unreachable'
  /** Connecting, the response headers or the body took too long. */
  | 'timeout'
  /** 429 Too Many Requests. */
  | 'throttled'
  /** 5xx. */
  | 'server'
  /** 404: the repository, tag or digest is not there. */
  | 'not-found'
  /** 401 after authenticating (wrong or missing credentials). */
  | 'unauthorized'
  /** 403. */
  | 'denied'
  /** Anything the client cannot use: another 4xx, a bad token answer, headers too large or not HTTP, content that does not match its digest. */
  | 'protocol';

const TRANSIENT: ReadonlySet<RemoteFailure> = new Set(['unreachable', 'timeout', 'throttled', 'server']);

export class RemoteError extends Error {
  readonly code = 'REMOTE_ERROR';

  constructor(
    readonly failure: RemoteFailure,
    message: string,
    readonly details: { status?: number; url?: string; retryAfterSeconds?: number } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RemoteError';
  }

  /** The upstream is down, slow, throttling or failing: worth retrying later, and a cached answer may stand in. */
  get transient(): boolean {
    return TRANSIENT.has(this.failure);
  }
}

/** The failure a response status stands for; undefined for a success or a redirect. */
export function failureOfStatus(status: number): RemoteFailure | undefined {
  if (status < 400) return undefined;
  if (status === 404) return 'not-found';
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'denied';
  if (status === 429) return 'throttled';
  if (status >= 500) return 'server';
  return 'protocol';
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT', 'TimeoutError']);

/** The connection went away under a request (closed or reset by the other side), as opposed to a refused connect or a timeout. */
export function isClosedConnection(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE';
}

/**
 * The other side answered, but not in HTTP that can be read: headers past undici's limit
 * (Node's `http.maxHeaderSize`, 16 KiB unless --max-http-header-size says otherwise), or
 * what llhttp refuses (`HPE_*`). The upstream is there and misbehaving, which no retry on
 * another connection mends.
 */
function isUnreadableResponse(code: string | undefined): boolean {
  return code === 'UND_ERR_HEADERS_OVERFLOW' || (code?.startsWith('HPE_') ?? false);
}

/** A RemoteError for an error thrown while talking to `url` (not for the caller's own abort). */
export function remoteErrorOf(err: unknown, url: string, deadlinePassed = false): RemoteError {
  if (err instanceof RemoteError) return err;
  const e = err as { code?: string; name?: string; message?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code ?? e?.name;
  if (!deadlinePassed && isUnreadableResponse(code)) {
    const what = code === 'UND_ERR_HEADERS_OVERFLOW' ? `response headers larger than ${maxHeaderSize} bytes` : `a response that is not valid HTTP (${e?.message ?? code})`;
    return new RemoteError('protocol', `${new URL(url).origin}: sent ${what}`, { url }, { cause: err });
  }
  const timeout = deadlinePassed || (code !== undefined && TIMEOUT_CODES.has(code));
  return new RemoteError(timeout ? 'timeout' : 'unreachable', `${new URL(url).origin}: ${timeout ? 'timed out' : 'unreachable'} (${e?.message ?? String(err)})`, { url }, { cause: err });
}
