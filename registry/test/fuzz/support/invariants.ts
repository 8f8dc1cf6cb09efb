import { Value } from '@sinclair/typebox/value';
import { ErrorBody } from '../../../src/http/management/schemas.js';
import { Errors } from '../../../src/oci/errors.js';
import type { FuzzCase } from './case.js';
import type { Exchange } from './exchange.js';

/** The invariants, by the names findings are reported under. */
export const Invariant = {
  noResponse: 'the connection closed without a response',
  serverError: 'a 5xx answer',
  errorShape: 'an error body outside the documented shape',
  errorCode: 'an error code outside the one error table',
  challenge: 'a 401 without a well-formed WWW-Authenticate challenge',
  badCredentialsAccepted: 'forged or wrong credentials accepted',
  anonymousChange: 'a change accepted without authentication',
  stateChanged: 'a refused request changed state',
  processDied: 'the process died or /healthz failed',
} as const;

export interface Violation {
  invariant: string;
  detail: string;
}

/** Node.js's default `maxHeaderSize`: the request line and headers together. */
export const MAX_HEAD_BYTES = 16 * 1024;

/** Bytes of the request line and headers as sent. */
export function headSize(ex: Exchange): number {
  const r = ex.request;
  return Buffer.byteLength(`${r.method} ${r.path} HTTP/1.1\r\n${r.headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`, 'latin1');
}

const CODES = new Set(Object.values(Errors).map((e) => e.code));
const MUTATING = new Set(['PUT', 'POST', 'PATCH', 'DELETE']);

/** Which API surface a request reached: from its route, or from its path when it has none. */
export function surfaceOf(c: FuzzCase): 'v2' | 'token' | 'api' | 'other' {
  if (c.route) return c.route.surface;
  if (c.path.startsWith('/v2')) return 'v2';
  if (c.path.startsWith('/api/v1')) return 'api';
  if (c.path.startsWith('/token')) return 'token';
  return 'other';
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\t \\x21-\\x7e\\x80-\\xff])*"';
const AUTH_PARAM = new RegExp(`^(${TOKEN})[ \\t]*=[ \\t]*(${TOKEN}|${QUOTED})`);

/**
 * RFC 9110 §11.6.1: `scheme 1*SP auth-param *(OWS "," OWS auth-param)`. Returns the
 * parameters, or undefined when the header does not parse (one challenge is enough here).
 */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } | undefined {
  const m = new RegExp(`^(${TOKEN}) +`).exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  let rest = header.slice(m[0].length);
  for (;;) {
    const p = AUTH_PARAM.exec(rest);
    if (!p) return undefined;
    const key = p[1]!.toLowerCase();
    if (key in params) return undefined;
    params[key] = p[2]!.startsWith('"') ? p[2]!.slice(1, -1).replace(/\\(.)/g, '$1') : p[2]!;
    rest = rest.slice(p[0].length);
    if (rest.trim() === '') return { scheme: m[1]!, params };
    const sep = /^[ \t]*,[ \t]*/.exec(rest);
    if (!sep) return undefined;
    rest = rest.slice(sep[0].length);
  }
}

function checkErrorBody(ex: Exchange): Violation[] {
  const type = String(ex.headers['content-type'] ?? '');
  const text = ex.body.toString('utf8');
  if (!/^application\/json\b/.test(type)) return [{ invariant: Invariant.errorShape, detail: `Content-Type ${JSON.stringify(type)}, body ${JSON.stringify(text.slice(0, 200))}` }];
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return [{ invariant: Invariant.errorShape, detail: `not JSON: ${JSON.stringify(text.slice(0, 200))}` }];
  }
  const errors = (body as { errors?: unknown[] }).errors;
  const exact =
    Value.Check(ErrorBody, body) &&
    Object.keys(body as object).length === 1 &&
    Array.isArray(errors) &&
    errors.length > 0 &&
    errors.every((e) => Object.keys(e as object).every((k) => k === 'code' || k === 'message' || k === 'detail'));
  if (!exact) return [{ invariant: Invariant.errorShape, detail: `body ${text.slice(0, 300)}` }];
  const unknown = (errors as { code: string }[]).map((e) => e.code).filter((code) => !CODES.has(code));
  return unknown.length ? [{ invariant: Invariant.errorCode, detail: `codes ${unknown.join(', ')}` }] : [];
}

/**
 * What every answer must satisfy, whatever was asked: a response, no 5xx, errors in the
 * one documented shape with codes from the one table, a parseable challenge on 401,
 * forged or wrong credentials never accepted where they are read, and nothing changed
 * for a caller who did not authenticate.
 */
export function checkExchange(c: FuzzCase, ex: Exchange): Violation[] {
  if (ex.status === undefined) {
    // A head the server cannot read whole (Node.js's limit is 16 KiB) may be answered with
    // 431 and the connection closed while the client is still sending, which resets it and
    // can discard the answer (RFC 9112 §9.6). Closing is allowed there; anywhere else it is not.
    if (headSize(ex) > MAX_HEAD_BYTES) return [];
    return [{ invariant: Invariant.noResponse, detail: ex.error ?? 'no status' }];
  }
  const status = ex.status;
  const out: Violation[] = [];
  const surface = surfaceOf(c);
  if (status >= 500) out.push({ invariant: Invariant.serverError, detail: `${status} ${ex.body.toString('utf8').slice(0, 200)}` });
  if (status >= 400 && c.method !== 'HEAD') out.push(...checkErrorBody(ex));
  if (status === 401) {
    const header = ex.headers['www-authenticate'];
    const value = Array.isArray(header) ? header[0] : header;
    const parsed = value === undefined ? undefined : parseChallenge(value);
    if (!parsed || parsed.params.realm === undefined) out.push({ invariant: Invariant.challenge, detail: `WWW-Authenticate: ${value ?? '(missing)'}` });
  }
  if (status < 400) {
    const kind = c.credentials.kind;
    // Only documented routes are known to read the Authorization header (the OpenAPI document
    // itself is public). GET /token reads only Basic credentials, so a forged bearer token there
    // is no credentials at all; POST /token reads none (the form carries them). Basic credentials
    // without a user name are no credentials either: the registry serves them as anonymous.
    const readsHeader = c.route !== undefined && !(surface === 'token' && c.method === 'POST');
    const wrongBasic = kind === 'bad-basic' && `${c.credentials.username}:${c.credentials.password}`.split(':', 1)[0] !== '';
    if (readsHeader && (wrongBasic || (kind === 'forged' && surface !== 'token'))) {
      out.push({ invariant: Invariant.badCredentialsAccepted, detail: `${kind} credentials answered ${status}` });
    }
    const anonymous = kind === 'none' || kind === 'raw' || kind === 'forged' || kind === 'bad-basic' || (kind === 'token' && c.credentials.principal === 'anonymous');
    if (anonymous && MUTATING.has(c.method) && surface !== 'token') out.push({ invariant: Invariant.anonymousChange, detail: `${c.method} answered ${status}` });
  }
  return out;
}
