import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import { digestOf, tryParseDigest, type DigestAlgorithm } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.js';
import { baseMediaType, SUPPORTED_MANIFEST_TYPES } from '../oci/media-types.js';
import { REGISTRY_VERSION } from '../version.js';
import { parseAuthChallenge } from './challenge.js';
import { RemoteError, failureOfStatus, isClosedConnection, remoteErrorOf } from './errors.js';
import { isInternalHost } from './internal-hosts.js';
import { basicAuthorization, readLimited, TokenCache, type Credentials, type TokenRealm } from './tokens.js';

export interface RemoteTimeouts {
  /** To open a connection (TCP and TLS). */
  connectMs: number;
  /** From sending a request to its response headers; also bounds a manifest's whole answer and token requests. */
  responseMs: number;
  /** The longest pause between two pieces of a body. */
  bodyIdleMs: number;
}

/**
 * How long a connection to an upstream stays open unused. undici's default, 4 s, closed them
 * between two pulls a few seconds apart, and every cold pull began with new connections
 * (docs/proxy-cache.md, "Connections kept between pulls"). Go's HTTP client keeps them 90 s.
 */
const IDLE_CONNECTION_MS = 60_000;

export const DEFAULT_REMOTE_TIMEOUTS: RemoteTimeouts = { connectMs: 5_000, responseMs: 15_000, bodyIdleMs: 30_000 };

export interface RemoteRegistryOptions {
  /** `https://registry-1.docker.io`; a path after the host is kept as a prefix before `/v2/`. */
  url: string;
  credentials?: Credentials;
  /** Skip TLS certificate verification. */
  insecure?: boolean;
  timeouts?: Partial<RemoteTimeouts>;
  /** Connections kept per upstream origin. */
  connections?: number;
}

export interface RemoteManifest {
  digest: string;
  mediaType: string;
  content: Buffer;
}

export interface RemoteManifestHead {
  digest: string;
  mediaType: string | undefined;
  size: number | undefined;
}

export interface RemoteBlob {
  /** From Content-Length; undefined when the upstream streams without one. */
  size: number | undefined;
  body: Readable;
}

/** An upload's bytes: a stream, or an async iterable (whose buffers its source may reuse once the socket has taken them). */
export type UploadBody = Readable | AsyncIterable<Uint8Array>;

/** Every manifest type this registry stores, which is what it asks upstreams for. */
export const MANIFEST_ACCEPT = SUPPORTED_MANIFEST_TYPES.join(', ');

const MAX_REDIRECTS = 5;
const MAX_ERROR_BODY_BYTES = 4096;
const USER_AGENT = `wharf/${REGISTRY_VERSION}`;

interface SendOptions {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** A request body; a stream cannot be sent twice, so authenticate (any request of the scope) before sending one. */
  body?: Buffer | UploadBody;
  /** Path after the base, starting with `/v2/`. */
  path: string;
  /** The token scope this request needs (`repository:<name>:pull`); none for `/v2/`. */
  scope?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Bounds the whole exchange, body included (small answers: manifests, lists). */
  wholeMs?: number;
}

/**
 * A client of one other OCI registry (the upstream of a proxy-cache project, the
 * target of a replication): manifests by tag or digest, blob streams, referrers. It
 * speaks the Docker token flow (anonymous or with credentials; tokens cached per
 * scope) and Basic, follows blob redirects without carrying credentials to another
 * origin, bounds every wait, and passes the caller's AbortSignal down to the socket.
 * Failures are RemoteErrors that say whether they are transient.
 */
export class RemoteRegistry {
  readonly origin: string;
  private readonly base: string;
  private readonly internalUpstream: boolean;
  private readonly dispatcher: Agent;
  private readonly tokens: TokenCache;
  private readonly timeouts: RemoteTimeouts;
  /** What the upstream asked for last: its token service, or Basic. */
  private scheme: { kind: 'bearer'; realm: TokenRealm } | { kind: 'basic' } | undefined;

  constructor(private readonly options: RemoteRegistryOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`upstream URL must be http:// or https://, not ${JSON.stringify(options.url)}`);
    this.origin = url.origin;
    this.internalUpstream = isInternalHost(url.hostname);
    this.base = `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
    this.timeouts = { ...DEFAULT_REMOTE_TIMEOUTS, ...options.timeouts };
    this.dispatcher = new Agent({
      connect: { timeout: this.timeouts.connectMs, ...(options.insecure && { rejectUnauthorized: false }) },
      headersTimeout: this.timeouts.responseMs,
      bodyTimeout: this.timeouts.bodyIdleMs,
      connections: options.connections ?? 32,
      // A server's own Keep-Alive timeout, when it sends one, still wins.
      keepAliveTimeout: IDLE_CONNECTION_MS,
    });
    this.tokens = new TokenCache(this.dispatcher, { ...(options.credentials && { credentials: options.credentials }), timeoutMs: this.timeouts.responseMs, userAgent: USER_AGENT, upstreamOrigin: this.origin });
  }

  /** Checks that the upstream answers the API (`GET /v2/`), authenticating as configured. */
  async ping(signal?: AbortSignal): Promise<void> {
    const res = await this.send({ method: 'GET', path: '/v2/', ...(signal && { signal }), wholeMs: this.timeouts.responseMs });
    await this.expectOk(res, 'GET /v2/');
    await res.body.dump();
  }

  /** The digest a tag or digest resolves to, without the manifest (HEAD; Docker Hub does not count these against its pull limit). */
  async headManifest(repository: string, reference: string, signal?: AbortSignal): Promise<RemoteManifestHead> {
    const path = `/v2/${repository}/manifests/${reference}`;
    const res = await this.send({ method: 'HEAD', path, scope: pullScope(repository), headers: { accept: MANIFEST_ACCEPT }, ...(signal && { signal }), wholeMs: this.timeouts.responseMs });
    await this.expectOk(res, `HEAD ${path}`);
    await res.body.dump();
    const digest = header(res.headers, 'docker-content-digest');
    if (!digest || !tryParseDigest(digest)) throw new RemoteError('protocol', `${this.origin} answered HEAD ${path} without a valid Docker-Content-Digest`, { url: this.origin });
    const length = Number(header(res.headers, 'content-length'));
    return { digest, mediaType: baseMediaType(header(res.headers, 'content-type')), size: Number.isSafeInteger(length) ? length : undefined };
  }

  /** A manifest by tag or digest, its bytes verified against the digest asked for (or the one the upstream names). */
  async getManifest(repository: string, reference: string, signal?: AbortSignal): Promise<RemoteManifest> {
    const path = `/v2/${repository}/manifests/${reference}`;
    const res = await this.send({ method: 'GET', path, scope: pullScope(repository), headers: { accept: MANIFEST_ACCEPT }, ...(signal && { signal }), wholeMs: this.timeouts.responseMs });
    await this.expectOk(res, `GET ${path}`);
    const content = await this.readSmall(res.body, signal, () => new RemoteError('protocol', `${this.origin}: manifest ${repository}:${reference} is larger than ${MAX_MANIFEST_BYTES} bytes`, { url: this.origin }));
    const named = header(res.headers, 'docker-content-digest');
    const wanted = tryParseDigest(reference) ?? (named ? tryParseDigest(named) : undefined);
    const algorithm: DigestAlgorithm = wanted?.algorithm ?? 'sha256';
    const digest = digestOf(content, algorithm);
    if (wanted && wanted.value !== digest) {
      throw new RemoteError('protocol', `${this.origin} sent manifest bytes with digest ${digest} for ${wanted.value}`, { url: this.origin });
    }
    const mediaType = mediaTypeOf(content, header(res.headers, 'content-type'));
    if (!mediaType) throw new RemoteError('protocol', `${this.origin}: manifest ${repository}:${reference} has no media type`, { url: this.origin });
    return { digest, mediaType, content };
  }

  /** Blob size without its bytes. */
  async headBlob(repository: string, digest: string, signal?: AbortSignal): Promise<{ size: number | undefined }> {
    const path = `/v2/${repository}/blobs/${digest}`;
    const res = await this.send({ method: 'HEAD', path, scope: pullScope(repository), ...(signal && { signal }), wholeMs: this.timeouts.responseMs });
    await this.expectOk(res, `HEAD ${path}`);
    await res.body.dump();
    const length = Number(header(res.headers, 'content-length'));
    return { size: Number.isSafeInteger(length) ? length : undefined };
  }

  /**
   * A blob's bytes as a stream, unverified (the caller hashes them); from `offset`, and
   * `length` bytes of it when given (a range request). Redirects (to a
   * CDN or object storage) are followed. The stream fails when the body pauses longer
   * than `bodyIdleMs`, and ends early (with an error) when `signal` aborts.
   */
  async getBlob(repository: string, digest: string, signal?: AbortSignal, offset = 0, count?: number): Promise<RemoteBlob> {
    const path = `/v2/${repository}/blobs/${digest}`;
    const ranged = offset > 0 || count !== undefined;
    const range = `bytes=${offset}-${count !== undefined ? offset + count - 1 : ''}`;
    const res = await this.send({ method: 'GET', path, scope: pullScope(repository), ...(ranged && { headers: { range } }), ...(signal && { signal }) });
    await this.expectOk(res, `GET ${path}`);
    const whole = res.statusCode === 200 && offset === 0 && (count === undefined || Number(header(res.headers, 'content-length')) === count);
    if (ranged && res.statusCode !== 206 && !whole) {
      res.body.destroy();
      throw new RemoteError('protocol', `${this.origin} ignored a range request for ${digest}`, { url: this.origin });
    }
    const length = Number(header(res.headers, 'content-length'));
    return { size: Number.isSafeInteger(length) ? length : undefined, body: res.body };
  }

  /** The referrers index of `digest` (OCI 1.1 referrers API); not-found when the upstream has no such API. */
  async referrers(repository: string, digest: string, artifactType?: string, signal?: AbortSignal): Promise<{ content: Buffer; mediaType: string }> {
    const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const path = `/v2/${repository}/referrers/${digest}${query}`;
    const res = await this.send({ method: 'GET', path, scope: pullScope(repository), headers: { accept: 'application/vnd.oci.image.index.v1+json' }, ...(signal && { signal }), wholeMs: this.timeouts.responseMs });
    await this.expectOk(res, `GET ${path}`);
    const content = await this.readSmall(res.body, signal, () => new RemoteError('protocol', `${this.origin}: referrers of ${digest} exceed ${MAX_MANIFEST_BYTES} bytes`, { url: this.origin }));
    // Passed on to clients from Wharf's origin: only an image index, and served as one whatever type the upstream claimed.
    if (!isImageIndex(content)) throw new RemoteError('protocol', `${this.origin}: the referrers of ${digest} are not an image index`, { url: this.origin });
    return { content, mediaType: 'application/vnd.oci.image.index.v1+json' };
  }

  /** Tags of a repository, every page (`Link` headers followed). */
  async listTags(repository: string, signal?: AbortSignal): Promise<string[]> {
    return this.listPages(`/v2/${repository}/tags/list?n=1000`, 'tags', pullScope(repository), signal);
  }

  /** Repositories the credentials may see (`/v2/_catalog`, every page). */
  async catalog(signal?: AbortSignal): Promise<string[]> {
    return this.listPages('/v2/_catalog?n=1000', 'repositories', 'registry:catalog:*', signal);
  }

  /**
   * Opens a blob upload in `repository`; with `mountFrom`, asks for a cross-repository
   * mount of `digest` first. `mounted` when the registry linked the blob (201), else
   * the upload's absolute URL.
   */
  async startUpload(repository: string, options: { mountFrom?: string; digest?: string; signal?: AbortSignal } = {}): Promise<{ mounted: true } | { mounted: false; location: string }> {
    const query = options.mountFrom && options.digest ? `?mount=${encodeURIComponent(options.digest)}&from=${encodeURIComponent(options.mountFrom)}` : '';
    const path = `/v2/${repository}/blobs/uploads/${query}`;
    const scope = options.mountFrom ? `${pushScope(repository)} repository:${options.mountFrom}:pull` : pushScope(repository);
    const res = await this.send({ method: 'POST', path, scope, headers: { 'content-length': '0' }, ...(options.signal && { signal: options.signal }), wholeMs: this.timeouts.responseMs });
    await this.expectOk(res, `POST ${path}`);
    await res.body.dump();
    if (res.statusCode === 201 && query) return { mounted: true };
    return { mounted: false, location: this.uploadLocation(res, path) };
  }

  /** How many bytes an upload holds (`GET <location>`); undefined when the registry no longer knows it. */
  async uploadOffset(repository: string, location: string, signal?: AbortSignal): Promise<number | undefined> {
    const res = await this.send({ method: 'GET', path: this.pathOf(location), scope: pushScope(repository), ...(signal && { signal }), wholeMs: this.timeouts.responseMs });
    if (res.statusCode === 404) {
      await res.body.dump();
      return undefined;
    }
    await this.expectOk(res, `GET upload of ${repository}`);
    await res.body.dump();
    return rangeEnd(header(res.headers, 'range'));
  }

  /** Sends one chunk at `offset` (PATCH with Content-Range); returns the next location. */
  async uploadChunk(repository: string, location: string, body: UploadBody, offset: number, length: number, signal?: AbortSignal): Promise<string> {
    const path = this.pathOf(location);
    const res = await this.send({
      method: 'PATCH',
      path,
      scope: pushScope(repository),
      body,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(length), 'content-range': `${offset}-${offset + length - 1}` },
      ...(signal && { signal }),
    });
    await this.expectOk(res, `PATCH upload of ${repository}`);
    await res.body.dump();
    return this.uploadLocation(res, path);
  }

  /** Closes an upload as blob `digest` (PUT ?digest=), with the remaining bytes if any. */
  async finishUpload(repository: string, location: string, digest: string, last?: { body: UploadBody; length: number }, signal?: AbortSignal): Promise<void> {
    const url = new URL(this.pathOf(location), this.origin);
    url.searchParams.set('digest', digest);
    const path = `${url.pathname}${url.search}`;
    const res = await this.send({
      method: 'PUT',
      path,
      scope: pushScope(repository),
      ...(last ? { body: last.body, headers: { 'content-type': 'application/octet-stream', 'content-length': String(last.length) } } : { headers: { 'content-length': '0' } }),
      ...(signal && { signal }),
    });
    await this.expectOk(res, `PUT upload of ${repository} (${digest})`);
    await res.body.dump();
  }

  /** Stores a manifest under a tag or its digest; returns the digest the registry computed. */
  async putManifest(repository: string, reference: string, content: Buffer, mediaType: string, signal?: AbortSignal): Promise<string | undefined> {
    const path = `/v2/${repository}/manifests/${reference}`;
    const res = await this.send({ method: 'PUT', path, scope: pushScope(repository), body: content, headers: { 'content-type': mediaType }, ...(signal && { signal }), wholeMs: this.timeouts.responseMs });
    await this.expectOk(res, `PUT ${path}`);
    await res.body.dump();
    return header(res.headers, 'docker-content-digest');
  }

  /** Deletes a manifest (by digest) or a tag. */
  async deleteManifest(repository: string, reference: string, signal?: AbortSignal): Promise<void> {
    const path = `/v2/${repository}/manifests/${reference}`;
    const res = await this.send({ method: 'DELETE', path, scope: `repository:${repository}:delete,pull,push`, ...(signal && { signal }), wholeMs: this.timeouts.responseMs });
    await this.expectOk(res, `DELETE ${path}`);
    await res.body.dump();
  }

  private async listPages(first: string, field: string, scope: string, signal: AbortSignal | undefined): Promise<string[]> {
    const items: string[] = [];
    let path: string | undefined = first;
    for (let pages = 0; path && pages < 10_000; pages++) {
      const res = await this.send({ method: 'GET', path, scope, ...(signal && { signal }), wholeMs: this.timeouts.responseMs });
      await this.expectOk(res, `GET ${path}`);
      const body = JSON.parse((await this.readSmall(res.body, signal, () => new RemoteError('protocol', `${this.origin}: listing page too large`, { url: this.origin }))).toString('utf8')) as Record<string, unknown>;
      const page = body[field];
      if (Array.isArray(page)) items.push(...page.filter((x): x is string => typeof x === 'string'));
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(header(res.headers, 'link') ?? '')?.[1];
      path = next ? this.pathOf(next) : undefined;
    }
    return items;
  }

  /** A Location the registry sent, as a path (with query) below this registry's origin. */
  private pathOf(location: string): string {
    const url = new URL(location, `${this.base}/`);
    if (url.origin !== this.origin) throw new RemoteError('protocol', `${this.origin} sent an upload location on another origin (${url.origin})`, { url: this.origin });
    const prefix = this.base.slice(this.origin.length);
    const path = `${url.pathname}${url.search}`;
    return prefix && path.startsWith(prefix) ? path.slice(prefix.length) : path;
  }

  private uploadLocation(res: Dispatcher.ResponseData, path: string): string {
    const location = header(res.headers, 'location');
    if (!location) throw new RemoteError('protocol', `${this.origin} answered ${path} without a Location`, { url: this.origin });
    return this.pathOf(location);
  }

  /** Releases the connections. */
  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /** A manifest-sized body; a failure while reading it is a RemoteError unless the caller aborted. */
  private async readSmall(body: Readable, signal: AbortSignal | undefined, tooLarge: () => RemoteError): Promise<Buffer> {
    try {
      return await readAll(body, MAX_MANIFEST_BYTES, tooLarge);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw remoteErrorOf(err, this.origin, (err as { name?: string }).name === 'AbortError' || (err as { name?: string }).name === 'TimeoutError');
    }
  }

  /** Throws the RemoteError a non-2xx answer stands for, after reading a little of its body for the message. */
  private async expectOk(res: Dispatcher.ResponseData, what: string): Promise<void> {
    const failure = failureOfStatus(res.statusCode);
    if (!failure && res.statusCode < 300) return;
    const text = await readLimited(res.body, MAX_ERROR_BODY_BYTES);
    const retryAfter = Number(header(res.headers, 'retry-after'));
    // What another origin (a redirect's target) says is not passed on: clients see these messages.
    const said = answeredElsewhere.has(res) ? ' (after a redirect to another host)' : upstreamMessage(text);
    throw new RemoteError(failure ?? 'protocol', `${this.origin} answered ${what} with ${res.statusCode}${said}`, {
      status: res.statusCode,
      url: this.origin,
      ...(Number.isFinite(retryAfter) && retryAfter >= 0 && { retryAfterSeconds: retryAfter }),
    });
  }

  /**
   * One request with authentication: credentials the upstream asked for before are
   * sent at once; a 401 with a challenge is answered once (a token for the scope it
   * names, or Basic). Redirects are followed, dropping credentials on another origin.
   */
  private async send(options: SendOptions): Promise<Dispatcher.ResponseData> {
    const whole = options.wholeMs === undefined ? undefined : AbortSignal.timeout(options.wholeMs);
    const signal = options.signal && whole ? AbortSignal.any([options.signal, whole]) : (options.signal ?? whole);
    const attempt = async (authorization: string | undefined) => this.follow(options, authorization, signal, whole);
    let res = await attempt(await this.authorization(options.scope, options.signal));
    if (res.statusCode !== 401) return res;
    const challenge = parseAuthChallenge(res.headers['www-authenticate']);
    if (!challenge) return res;
    let retry: string | undefined;
    if (challenge.scheme === 'bearer' && challenge.params.realm) {
      let realm: TokenRealm;
      let token: string;
      try {
        realm = { realm: this.checkRealm(challenge.params.realm), ...(challenge.params.service !== undefined && { service: challenge.params.service }) };
        token = await this.tokens.get(realm, challenge.params.scope ?? options.scope ?? '', options.signal, true);
      } catch (err) {
        // The 401's body is read to its end, or its connection would stay taken.
        await res.body.dump().catch(() => undefined);
        if (options.signal?.aborted) throw options.signal.reason;
        throw err;
      }
      // Remembered only once it gave a token: one bad challenge must not stick to every later request.
      this.scheme = { kind: 'bearer', realm };
      retry = `Bearer ${token}`;
    } else if (challenge.scheme === 'basic' && this.options.credentials) {
      this.scheme = { kind: 'basic' };
      retry = basicAuthorization(this.options.credentials);
    }
    if (!retry) return res;
    await res.body.dump();
    res = await attempt(retry);
    return res;
  }

  /** The token realm a challenge names, if Wharf may ask it: an http(s) URL, not on an internal address unless the upstream is. */
  private checkRealm(realm: string): string {
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RemoteError('protocol', `${this.origin} named a token realm that is not a URL`, { url: this.origin });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new RemoteError('protocol', `${this.origin} named a token realm that is not an http(s) URL`, { url: this.origin });
    if (!this.mayReach(url)) throw new RemoteError('protocol', `${this.origin} named a token realm on a loopback, link-local or private address; refused`, { url: this.origin });
    return realm;
  }

  /**
   * Whether a redirect or a token realm may take Wharf to `url`: not to this machine or a
   * private network, unless the upstream itself is there (a registry on the LAN).
   */
  private mayReach(url: URL): boolean {
    return !isInternalHost(url.hostname) || this.internalUpstream;
  }

  /** What to send before being asked, from what the upstream asked for last. */
  private async authorization(scope: string | undefined, signal: AbortSignal | undefined): Promise<string | undefined> {
    if (this.scheme?.kind === 'basic' && this.options.credentials) return basicAuthorization(this.options.credentials);
    if (this.scheme?.kind === 'bearer' && scope !== undefined) {
      const cached = this.tokens.cached(this.scheme.realm, scope);
      if (cached) return `Bearer ${cached}`;
      return `Bearer ${await this.tokens.get(this.scheme.realm, scope, signal)}`;
    }
    return undefined;
  }

  private async follow(options: SendOptions, authorization: string | undefined, signal: AbortSignal | undefined, deadline: AbortSignal | undefined): Promise<Dispatcher.ResponseData> {
    let url = new URL(`${this.base}${options.path}`);
    // The answer's headers are awaited for at most responseMs in all (every redirect, a second
    // sending), and no longer than the caller's signal: undici applies both only once a
    // connection is free, and a request queued behind busy connections (fills of a trickling
    // upstream) would wait unbounded. Not for a streamed body (a blob pushed by replication),
    // whose sending may take longer.
    const headersBy = options.body === undefined || Buffer.isBuffer(options.body) ? Date.now() + this.timeouts.responseMs : undefined;
    for (let hop = 0; ; hop++) {
      const sameOrigin = url.origin === this.origin;
      let res: Dispatcher.ResponseData;
      try {
        res = await this.dispatch(url, options, sameOrigin ? authorization : undefined, signal, deadline, headersBy);
      } catch (err) {
        // Where a redirect led, and what went wrong there (a name that did not resolve, a refused
        // connection), stays in the log: the upstream must not learn it from Wharf's answer.
        if (sameOrigin || !(err instanceof RemoteError)) throw err;
        throw new RemoteError(err.failure, `${this.origin}: where it redirected ${err.failure === 'timeout' ? 'did not answer in time' : 'could not be reached'}`, { url: this.origin }, { cause: err });
      }
      // undici's body emits 'error' when it is destroyed unread; a caller that gives a body up
      // (a refused range, a quota refusal, a failed fill) must not end the process with it.
      // Readers (pipeline, for await) listen for themselves and still see every error.
      res.body.on('error', ignoreAbandonedBody);
      const location = header(res.headers, 'location');
      if (![301, 302, 303, 307, 308].includes(res.statusCode) || !location) {
        if (!sameOrigin) answeredElsewhere.add(res);
        return res;
      }
      await res.body.dump();
      if (hop >= MAX_REDIRECTS) throw new RemoteError('protocol', `${this.origin}: more than ${MAX_REDIRECTS} redirects for ${options.path}`, { url: this.origin });
      url = new URL(location, url);
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new RemoteError('protocol', `${this.origin} redirected to a non-http(s) URL`, { url: this.origin });
      if (!this.mayReach(url)) throw new RemoteError('protocol', `${this.origin} redirected to a loopback, link-local or private address; refused`, { url: this.origin });
    }
  }

  /**
   * Sends one request and waits for its answer's headers. A GET or HEAD whose connection
   * the upstream closed as it went out is sent once more: kept-alive connections sit idle
   * for a minute (IDLE_CONNECTION_MS), and a server may close one just as a request takes it.
   */
  private async dispatch(
    url: URL,
    options: SendOptions,
    authorization: string | undefined,
    signal: AbortSignal | undefined,
    deadline: AbortSignal | undefined,
    /** When the answer's headers must have come (Date.now() time), across every attempt. */
    headersBy: number | undefined,
  ): Promise<Dispatcher.ResponseData> {
    const resendable = (options.method === 'GET' || options.method === 'HEAD') && options.body === undefined;
    for (let attempt = 1; ; attempt++) {
      // One canceller per attempt, fed by the caller's signal and a timer cleared once the headers
      // come: no composed AbortSignals (AbortSignal.any), and no AbortSignal.timeout whose timer
      // outlives the request by responseMs (docs/proxy-cache.md, "Fewer signals per upstream request").
      const cancel = new RequestCancel();
      const relay = () => cancel.abort(signal!.reason);
      if (signal?.aborted) relay();
      else signal?.addEventListener('abort', relay, { once: true });
      let late = false;
      const timer =
        headersBy === undefined
          ? undefined
          : setTimeout(() => {
              late = true;
              cancel.abort(new Error(`no answer within ${this.timeouts.responseMs} ms`));
            }, Math.max(0, headersBy - Date.now()));
      try {
        const pending = request(url, {
          dispatcher: this.dispatcher,
          method: options.method,
          // undici sends async iterables too (lib/dispatcher/client-h1.js, writeIterable); its types leave them out.
          ...(options.body !== undefined && { body: options.body as Buffer | Readable }),
          headers: { 'user-agent': USER_AGENT, ...options.headers, ...(authorization && { authorization }) },
          signal: cancel,
        });
        const res = await untilAborted(pending, cancel);
        // The caller's signal still ends the body; its listener goes with the body.
        if (signal) res.body.once('close', () => signal.removeEventListener('abort', relay));
        return res;
      } catch (err) {
        signal?.removeEventListener('abort', relay);
        if (options.signal?.aborted) throw options.signal.reason;
        const timedOut = deadline?.aborted || late || (headersBy !== undefined && Date.now() >= headersBy);
        if (resendable && attempt === 1 && !timedOut && isClosedConnection(err)) continue;
        throw remoteErrorOf(err, url.href, timedOut);
      } finally {
        clearTimeout(timer);
      }
    }
  }
}

function ignoreAbandonedBody(): void {}

function isImageIndex(content: Buffer): boolean {
  try {
    const doc = JSON.parse(content.toString('utf8')) as { manifests?: unknown } | null;
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc) && Array.isArray(doc.manifests);
  } catch {
    return false;
  }
}

/**
 * What aborts one upstream request: undici takes an EventEmitter with `aborted`, `reason` and
 * an 'abort' event as a signal, and one costs less than an AbortController (an EventTarget).
 */
class RequestCancel extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit('abort');
  }
}

/**
 * `work`, or the canceller's reason once it fires first (undici may not settle a request still
 * waiting for a connection); an answer that still comes has its body thrown away.
 */
function untilAborted(work: Promise<Dispatcher.ResponseData>, signal: RequestCancel): Promise<Dispatcher.ResponseData> {
  const late = (res: Dispatcher.ResponseData) => res.body.destroy();
  return new Promise((resolve, reject) => {
    const abort = () => {
      reject(signal.reason);
      work.then(late, () => undefined);
    };
    if (signal.aborted) return abort();
    signal.once('abort', abort);
    work.then(
      (res) => {
        signal.removeListener('abort', abort);
        resolve(res);
      },
      (err: unknown) => {
        signal.removeListener('abort', abort);
        reject(err);
      },
    );
  });
}

/** Responses that came from another origin than the upstream's (the end of a redirect). */
const answeredElsewhere = new WeakSet<Dispatcher.ResponseData>();

export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

export function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}

/** The end (exclusive) of an upload's `Range: 0-<last>` header: the bytes it holds. */
function rangeEnd(range: string | undefined): number {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(range?.trim() ?? '');
  // `0-0` is what registries say for an empty upload too; chunks are never one byte, so it means empty.
  return m && m[1] !== '0' ? Number(m[1]) + 1 : 0;
}

function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The media type of manifest bytes: the document's own `mediaType`, else Content-Type. */
function mediaTypeOf(content: Buffer, contentType: string | undefined): string | undefined {
  try {
    const doc = JSON.parse(content.toString('utf8')) as { mediaType?: unknown };
    if (typeof doc.mediaType === 'string' && doc.mediaType) return doc.mediaType;
  } catch {
    // Not JSON: the caller's parser says why.
  }
  return baseMediaType(contentType);
}

/** `: <first error message>` from an OCI error body, or a short excerpt of any other body. */
function upstreamMessage(text: string): string {
  if (!text) return '';
  try {
    const body = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    const first = body.errors?.[0];
    if (first) return `: ${[first.code, first.message].filter(Boolean).join(' ')}`;
  } catch {
    // Not an OCI error body.
  }
  return `: ${text.slice(0, 200).replace(/\s+/g, ' ')}`;
}

async function readAll(body: Readable, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      throw tooLarge();
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
