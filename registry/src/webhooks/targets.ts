import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { ociError } from '../oci/errors.js';

/**
 * Addresses a webhook may not reach unless the operator allows private targets
 * (webhooks.allowPrivateTargets): loopback, private, link-local (cloud metadata),
 * carrier-grade NAT, unspecified and multicast ranges, v4 and v6.
 */
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6');
}

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return PRIVATE.check(mapped[1]!, 'ipv4');
  return PRIVATE.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** Host of a URL without IPv6 brackets. */
const bareHost = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1');

/**
 * Checks a webhook target as given to the API: an absolute http(s) URL without
 * credentials in it (they would show up in logs; the auth header is the place), and not
 * a private address literal unless private targets are allowed. Names are checked again
 * when delivering, against what they resolve to.
 */
export function checkTargetUrl(value: string, allowPrivate: boolean): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw ociError('INVALID_REQUEST', { url: value }, { message: `webhook url ${JSON.stringify(value)} is not an absolute URL` });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw ociError('INVALID_REQUEST', { url: value }, { message: `webhook url must be http:// or https://, not ${url.protocol}` });
  }
  if (url.username || url.password) {
    throw ociError('INVALID_REQUEST', undefined, { message: 'webhook url must not carry credentials; use authHeader' });
  }
  const host = bareHost(url);
  if (!allowPrivate && (isPrivateAddress(host) || host === 'localhost' || host.endsWith('.localhost'))) {
    throw ociError('INVALID_REQUEST', { host }, { message: `webhook url points at a private address (${host}); a registry administrator can allow private targets (webhooks.allowPrivateTargets)` });
  }
  return url;
}

export class PrivateTargetError extends Error {
  readonly code = 'WEBHOOK_PRIVATE_TARGET';
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A dns.lookup for the delivery client's connections that refuses private addresses, so
 * a name that resolves (or later re-resolves) to an internal address is not reached.
 */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: object, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const list = addresses as LookupAddress[];
      const refused = allowPrivate ? undefined : list.find((a) => isPrivateAddress(a.address));
      if (refused) return callback(new PrivateTargetError(`webhook target ${hostname} resolves to a private address (${refused.address})`), []);
      const all = (options as { all?: boolean }).all;
      if (all) return callback(null, list);
      const first = list[0]!;
      callback(null, first.address, first.family);
    });
  };
}
