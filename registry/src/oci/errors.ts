/**
 * Every error the registry reports, declared once. Handlers and services throw
 * `RegistryError`s built from these entries; one fastify error handler turns them
 * into the OCI `{"errors":[{code,message,detail}]}` body with the entry's status.
 */
export interface ErrorCode {
  readonly code: string;
  readonly message: string;
  readonly httpStatus: number;
}

const registered = new Map<string, ErrorCode>();

/** `variant`: a second entry for a spec code that needs another status (the table key; the body still says `code`). */
function register(code: string, message: string, httpStatus: number, variant = code): ErrorCode {
  if (registered.has(variant)) throw new Error(`error code ${variant} is registered twice`);
  const entry = Object.freeze({ code, message, httpStatus });
  registered.set(variant, entry);
  return entry;
}

/** Registers an error code; exported so other API surfaces (management API) share the table. */
export const registerErrorCode = register;

export const Errors = {
  // OCI distribution-spec codes
  BLOB_UNKNOWN: register('BLOB_UNKNOWN', 'blob unknown to registry', 404),
  BLOB_UPLOAD_INVALID: register('BLOB_UPLOAD_INVALID', 'blob upload invalid', 400),
  BLOB_UPLOAD_UNKNOWN: register('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', 404),
  DIGEST_INVALID: register('DIGEST_INVALID', 'provided digest did not match uploaded content', 400),
  MANIFEST_BLOB_UNKNOWN: register('MANIFEST_BLOB_UNKNOWN', 'manifest references a manifest or blob unknown to registry', 400),
  MANIFEST_INVALID: register('MANIFEST_INVALID', 'manifest invalid', 400),
  MANIFEST_UNKNOWN: register('MANIFEST_UNKNOWN', 'manifest unknown to registry', 404),
  NAME_INVALID: register('NAME_INVALID', 'invalid repository name', 400),
  NAME_UNKNOWN: register('NAME_UNKNOWN', 'repository name not known to registry', 404),
  SIZE_INVALID: register('SIZE_INVALID', 'provided length did not match content length', 400),
  /** An upload past the configured largest blob: the spec's code with 413 Content Too Large. */
  SIZE_TOO_LARGE: register('SIZE_INVALID', 'the upload exceeds the largest blob this registry accepts', 413, 'SIZE_TOO_LARGE'),
  UNAUTHORIZED: register('UNAUTHORIZED', 'authentication required', 401),
  DENIED: register('DENIED', 'requested access to the resource is denied', 403),
  UNSUPPORTED: register('UNSUPPORTED', 'the operation is unsupported', 405),
  TOOMANYREQUESTS: register('TOOMANYREQUESTS', 'too many requests', 429),
  // distribution's extensions
  RANGE_INVALID: register('RANGE_INVALID', 'requested range not satisfiable', 416),
  TAG_INVALID: register('TAG_INVALID', 'manifest tag did not match URI', 400),
  // Wharf's extensions
  MANIFEST_TOO_LARGE: register('MANIFEST_TOO_LARGE', 'manifest exceeds the maximum size', 413),
  REQUEST_TOO_LARGE: register('REQUEST_TOO_LARGE', 'request body exceeds the maximum size', 413),
  UNSUPPORTED_MEDIA_TYPE: register('UNSUPPORTED_MEDIA_TYPE', 'the request body has a media type this endpoint does not take', 415),
  PAGINATION_INVALID: register('PAGINATION_INVALID', 'invalid pagination parameters', 400),
  NOT_FOUND: register('NOT_FOUND', 'no such endpoint', 404),
  INVALID_REQUEST: register('INVALID_REQUEST', 'the request is invalid', 400),
  RESOURCE_NOT_FOUND: register('RESOURCE_NOT_FOUND', 'no such resource', 404),
  CONFLICT: register('CONFLICT', 'the request conflicts with the current state', 409),
  REQUEST_TIMEOUT: register('REQUEST_TIMEOUT', 'the request arrived too slowly', 408),
  UNAVAILABLE: register('UNAVAILABLE', 'a backing service is unavailable; retry later', 503),
  INTERNAL: register('INTERNAL', 'internal server error', 500),
} as const;

export type ErrorName = keyof typeof Errors;

/** An error with a stable OCI code. `detail` is any JSON value that helps the client. */
export class RegistryError extends Error {
  readonly code: string;
  readonly httpStatus: number;
  readonly detail: unknown;
  readonly headers: Record<string, string>;

  constructor(entry: ErrorCode, detail?: unknown, options?: { message?: string; headers?: Record<string, string>; cause?: unknown }) {
    super(options?.message ?? entry.message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RegistryError';
    this.code = entry.code;
    this.httpStatus = entry.httpStatus;
    this.detail = detail;
    this.headers = options?.headers ?? {};
  }

  toJSON(): { code: string; message: string; detail?: unknown } {
    return this.detail === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, detail: this.detail };
  }
}

export function ociError(name: ErrorName, detail?: unknown, options?: { message?: string; headers?: Record<string, string>; cause?: unknown }): RegistryError {
  return new RegistryError(Errors[name], detail, options);
}

export function errorBody(errors: RegistryError[]): { errors: ReturnType<RegistryError['toJSON']>[] } {
  return { errors: errors.map((e) => e.toJSON()) };
}
