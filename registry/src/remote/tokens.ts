import type { Dispatcher } from 'undici';
import { request } from 'undici';
import { RemoteError, failureOfStatus, isClosedConnection, remoteErrorOf } from './errors.js';
import { rememberRecent } from '../recent-map.js';

export interface Credentials {
  username: string;
  password: string;
}

export function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

/** Where a registry's token service is, as its Bearer challenge names it. */
export interface TokenRealm {
  realm: string;
  service?: string;
}

interface Entry {
  token: string;
  expiresAt: number;
}

/** Tokens shorter-lived than this are still reused this long; longer ones until this much before they expire. */
const EXPIRY_MARGIN_MS = 10_000;
const DEFAULT_LIFETIME_SECONDS = 60;
const MAX_TOKEN_ANSWER_BYTES = 64 * 1024;

/**
 * Bearer tokens of the distribution token flow (anonymous, or with Basic credentials
 * on the token request), cached per realm, service and scope until shortly before
 * they expire. Concurrent requests for one scope share one token request.
 */
export class TokenCache {
  private readonly entries = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly options: { credentials?: Credentials; timeoutMs: number; userAgent: string; capacity?: number; upstreamOrigin?: string },
  ) {}

  private key(realm: TokenRealm, scope: string): string {
    return `${realm.realm}\u0000${realm.service ?? ''}\u0000${scope}`;
  }

  /** A cached, unexpired token for the scope; undefined when one must be fetched. */
  cached(realm: TokenRealm, scope: string): string | undefined {
    const entry = this.entries.get(this.key(realm, scope));
    return entry && entry.expiresAt > Date.now() ? entry.token : undefined;
  }

  /** A token for the scope: the cached one unless `refresh` (the upstream refused it), else a new one. */
  async get(realm: TokenRealm, scope: string, signal: AbortSignal | undefined, refresh = false): Promise<string> {
    const key = this.key(realm, scope);
    if (!refresh) {
      const cached = this.cached(realm, scope);
      if (cached) return cached;
    }
    const running = this.pending.get(key);
    if (running) return running;
    const fetching = this.fetch(realm, scope, signal).finally(() => this.pending.delete(key));
    this.pending.set(key, fetching);
    return fetching;
  }

  private async fetch(realm: TokenRealm, scope: string, signal: AbortSignal | undefined): Promise<string> {
    let url: URL;
    try {
      url = new URL(realm.realm);
    } catch {
      throw new RemoteError('protocol', 'the token realm is not a URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new RemoteError('protocol', `token realm ${JSON.stringify(realm.realm)} is not an http(s) URL`);
    if (realm.service) url.searchParams.set('service', realm.service);
    // Several scopes (a mount needs push on one repository and pull on another) are several parameters.
    for (const one of scope.split(' ').filter(Boolean)) url.searchParams.append('scope', one);
    // The upstream's credentials go to its token service over https, or to the upstream's own origin;
    // never in the clear to another host that a challenge named.
    const credentials = url.protocol === 'https:' || url.origin === this.options.upstreamOrigin ? this.options.credentials : undefined;
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    let answer: Dispatcher.ResponseData;
    for (let attempt = 1; ; attempt++) {
      try {
        answer = await request(url, {
          dispatcher: this.dispatcher,
          method: 'GET',
          headers: { 'user-agent': this.options.userAgent, accept: 'application/json', ...(credentials && { authorization: basicAuthorization(credentials) }) },
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        break;
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        // A kept-alive connection the token service closed as the request took it (see RemoteRegistry's dispatch).
        if (attempt === 1 && !timeout.aborted && isClosedConnection(err)) continue;
        throw remoteErrorOf(err, url.href);
      }
    }
    const text = await readLimited(answer.body, MAX_TOKEN_ANSWER_BYTES);
    const failure = failureOfStatus(answer.statusCode);
    if (failure) {
      throw new RemoteError(failure === 'not-found' ? 'protocol' : failure, `token service ${url.origin} answered ${answer.statusCode}${credentials ? ` for user ${JSON.stringify(credentials.username)}` : ' (anonymous)'}: ${text.slice(0, 200)}`, {
        status: answer.statusCode,
        url: url.origin,
      });
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new RemoteError('protocol', `token service ${url.origin} answered something other than JSON`, { url: url.origin });
    }
    const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : undefined;
    if (!token) throw new RemoteError('protocol', `token service ${url.origin} answered without a token`, { url: url.origin });
    const lifetime = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_LIFETIME_SECONDS;
    this.remember(this.key(realm, scope), { token, expiresAt: Date.now() + Math.max(lifetime * 1000 - EXPIRY_MARGIN_MS, lifetime * 500) });
    return token;
  }

  private remember(key: string, entry: Entry): void {
    rememberRecent(this.entries, key, entry, this.options.capacity ?? 1024);
  }
}

/** Reads a (small) body as text, at most `limit` bytes; the rest is discarded. */
export async function readLimited(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const piece = chunk as Buffer;
      if (size + piece.length > limit) {
        chunks.push(piece.subarray(0, limit - size));
        body.destroy();
        break;
      }
      chunks.push(piece);
      size += piece.length;
    }
  } catch {
    // What arrived is enough for a message.
  }
  return Buffer.concat(chunks).toString('utf8');
}
