import { BlockList, isIP } from 'node:net';

const internal = new BlockList();
for (const [address, prefix] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.168.0.0', 16]] as const) internal.addSubnet(address, prefix, 'ipv4');
for (const [address, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10]] as const) internal.addSubnet(address, prefix, 'ipv6');

/**
 * Whether a URL's host names this machine or a private network: loopback, private,
 * link-local (cloud metadata services) or carrier-grade NAT addresses, IPv4-mapped ones
 * included, and `localhost`. Names are not resolved: a public name that resolves to such
 * an address is not caught here. Pure.
 */
export function isInternalHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  const family = isIP(host);
  return family === 0 ? false : internal.check(host, family === 4 ? 'ipv4' : 'ipv6');
}
