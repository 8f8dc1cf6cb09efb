import type { RouteSpec } from './routes.js';

/** Who sends a request with valid credentials of their own. */
export type Principal = 'admin' | 'user' | 'robot' | 'anonymous';

/**
 * Something only the running registry can provide (a password, a refresh token, a
 * token signed with its key), resolved when the request is sent; printed as `<ref>`.
 */
export class Ref {
  constructor(readonly ref: string) {}
  toString(): string {
    return `<${this.ref}>`;
  }
}

/** A JSON number written exactly as given: `99999999999999999999`, `1e309`, `-0`. */
export class RawNumber {
  constructor(readonly text: string) {}
}

export type Credentials =
  | { kind: 'none' }
  /** A bearer token: minted for this request's repository (`scoped`) or the principal's standing token. */
  | { kind: 'token'; principal: Principal; scoped: boolean }
  | { kind: 'basic'; principal: Exclude<Principal, 'anonymous'> }
  | { kind: 'bad-basic'; username: string; password: string }
  /** A bearer token the registry did not issue, or issued but no longer valid (see forgery.ts). */
  | { kind: 'forged'; label: string }
  | { kind: 'raw'; value: string };

export type BodySpec =
  | { kind: 'bytes'; bytes: Uint8Array; contentType?: string }
  | { kind: 'text'; text: string }
  | { kind: 'json'; value: unknown }
  | { kind: 'form'; fields: [string, string | Ref][] };

/** One generated request, before credentials and references are resolved. */
export interface FuzzCase {
  /** The documented route it was generated for; undefined for paths no route has. */
  route: RouteSpec | undefined;
  method: string;
  /** Path and query, already encoded: sent byte for byte. */
  path: string;
  /** The repository name a scoped token is minted for (as the server decodes it). */
  scopeName?: string;
  /** A mount source, which a scoped token also needs pull on. */
  mountFrom?: string;
  headers: [string, string][];
  body?: BodySpec;
  /** Send the body chunked (no Content-Length): the streamed-upload path. */
  chunked?: boolean;
  /** Overrides the body's natural Content-Type; `null` sends none. */
  contentType?: string | null;
  credentials: Credentials;
}

/** Lower-case route label: `GET /v2/{name}/manifests/{reference}`, or the surface of an unknown path. */
export function routeLabel(c: FuzzCase): string {
  if (c.route) return `${c.method} ${c.route.template}${c.method === c.route.method ? '' : ` (documented: ${c.route.method})`}`;
  const prefix = c.path.startsWith('/v2') ? '/v2/…' : c.path.startsWith('/api/v1') ? '/api/v1/…' : c.path.startsWith('/token') ? '/token…' : '/…';
  return `${c.method} ${prefix} (no route)`;
}
