import { PROXY_PROVIDERS, type ProxyCacheConfig, type ProxyCacheRecord, type ProxyProvider } from '../metadata/proxy-caches.js';
import { ociError } from '../oci/errors.js';
import { canonicalMirrorHost, isMirrorHost } from './names.js';

/** Seconds a cached tag is served without asking the upstream, unless the project says otherwise. */
export const DEFAULT_MANIFEST_TTL_SECONDS = 300;
export const MAX_MANIFEST_TTL_SECONDS = 30 * 86400;
export const MAX_MIRROR_HOSTS = 32;

/** `proxyCache` as the management API takes it. */
export interface ProxyCacheInput {
  provider: ProxyProvider;
  url: string;
  username?: string;
  password?: string;
  insecure?: boolean;
  mirrorOf?: string[];
  manifestTTLSeconds?: number;
}

/** `proxyCache` as the management API shows it: everything but the password. */
export interface ProxyCacheView {
  provider: ProxyProvider;
  url: string;
  username?: string;
  /** Whether a password is stored (it is never shown). */
  passwordSet: boolean;
  insecure: boolean;
  mirrorOf: string[];
  manifestTTLSeconds: number;
}

function invalid(field: string, message: string) {
  return ociError('INVALID_REQUEST', { field }, { message: `proxyCache.${field}: ${message}` });
}

/** The upstream URL without a trailing slash; only http(s), no credentials, query or fragment. */
function checkUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid('url', `${JSON.stringify(value.slice(0, 200))} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid('url', 'must be an http:// or https:// URL');
  if (url.username || url.password) throw invalid('url', 'must not carry credentials; use username and password');
  if (url.search || url.hash) throw invalid('url', 'must not have a query or a fragment');
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/**
 * Checks and normalizes `proxyCache` from a request into what is stored. Pure. A
 * password is taken only with a username; omitted, the stored one is kept (undefined),
 * unless the username is removed too.
 */
export function proxyCacheRecord(input: ProxyCacheInput): ProxyCacheRecord {
  if (!(PROXY_PROVIDERS as readonly string[]).includes(input.provider)) throw invalid('provider', `must be one of ${PROXY_PROVIDERS.join(', ')}`);
  const url = checkUrl(input.url);
  const username = input.username === undefined || input.username === '' ? null : input.username;
  if (username === null && input.password) throw invalid('password', 'is given without a username');
  const mirrorOf = [...new Set((input.mirrorOf ?? []).map((h) => h.trim().toLowerCase()))];
  if (mirrorOf.length > MAX_MIRROR_HOSTS) throw invalid('mirrorOf', `lists more than ${MAX_MIRROR_HOSTS} hosts`);
  const bad = mirrorOf.find((h) => !isMirrorHost(h));
  if (bad !== undefined) throw invalid('mirrorOf', `${JSON.stringify(bad.slice(0, 100))} is not a host name (host or host:port, as in an image reference)`);
  const ttl = input.manifestTTLSeconds ?? DEFAULT_MANIFEST_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > MAX_MANIFEST_TTL_SECONDS) throw invalid('manifestTTLSeconds', `must be an integer from 0 to ${MAX_MANIFEST_TTL_SECONDS}`);
  return {
    provider: input.provider,
    url,
    username,
    ...(username === null ? { password: null } : input.password !== undefined && { password: input.password === '' ? null : input.password }),
    insecure: input.insecure ?? false,
    mirrorOf,
    mirrorHosts: [...new Set(mirrorOf.map(canonicalMirrorHost))],
    manifestTtlSeconds: ttl,
  };
}

export function proxyCacheView(config: ProxyCacheConfig): ProxyCacheView {
  return {
    provider: config.provider,
    url: config.url,
    ...(config.username !== null && { username: config.username }),
    passwordSet: config.password !== null,
    insecure: config.insecure,
    mirrorOf: config.mirrorOf,
    manifestTTLSeconds: config.manifestTtlSeconds,
  };
}
