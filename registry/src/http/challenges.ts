import type { FastifyRequest } from 'fastify';
import { ociError } from '../oci/errors.js';

/**
 * `WWW-Authenticate` challenges (RFC 7235) whose parameters are RFC 7230 quoted-strings,
 * so nothing taken from a request or a message can end a parameter or add one.
 */

/**
 * `"…"` with `"` and `\` escaped. Characters no header may carry (controls other than
 * HTAB, DEL, and anything beyond ASCII, which RFC 7230 tells senders not to generate)
 * become `?`, one per code point.
 */
export function quotedString(value: string): string {
  let out = '"';
  for (const ch of value) {
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\t' || (ch >= ' ' && ch <= '~')) out += ch;
    else out += '?';
  }
  return `${out}"`;
}

/** `scheme key="value",…` in the order given; undefined parameters are left out. */
export function formatChallenge(scheme: 'Basic' | 'Bearer', params: Record<string, string | undefined>): string {
  const list = Object.entries(params)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([key, value]) => `${key}=${quotedString(value)}`);
  return `${scheme} ${list.join(',')}`;
}

/** RFC 3986 authority without userinfo: a DNS name or IPv4 address, or an IPv6 literal, and an optional port. */
const AUTHORITY = /^(?:[A-Za-z0-9](?:[A-Za-z0-9._~-]{0,252})?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/**
 * The token endpoint URL to name in challenges: the configured realm; otherwise this
 * server as the client reached it. `request.host` and `request.protocol` honour
 * X-Forwarded-Host/-Proto only from the configured trusted proxies (fastify's
 * trustProxy). A host or protocol that cannot form a URL is refused, never reflected.
 */
export function realmFor(request: FastifyRequest, configured: string | undefined): string {
  if (configured) return configured;
  const host = request.host;
  const proto = request.protocol as string;
  if (!AUTHORITY.test(host)) {
    throw ociError('INVALID_REQUEST', { host: host.slice(0, 300) }, { message: 'invalid Host (or X-Forwarded-Host) header: expected host[:port]; set auth.realm to name the token endpoint explicitly' });
  }
  if (proto !== 'http' && proto !== 'https') {
    throw ociError('INVALID_REQUEST', { proto: String(proto).slice(0, 50) }, { message: 'invalid X-Forwarded-Proto header: expected http or https' });
  }
  return `${proto}://${host}/token`;
}
