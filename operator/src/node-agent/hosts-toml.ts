/**
 * containerd's per-registry host files (`<config_path>/<host>/hosts.toml`, containerd
 * docs/hosts.md) that send a registry's pulls to Wharf first. Pure.
 */

/** The first line of every file the node agent writes: what proves a file is Wharf's. */
export const MARKER = '# Written by the Wharf node agent (wharf.dev); edits are overwritten. Removing the host from the mirror restores the file that was here before.';

/** One upstream registry a node sends to Wharf. */
export interface MirroredHost {
  /** The registry host as images name it: `docker.io`, `ghcr.io`, `registry.example:5000`. */
  host: string;
  /** The upstream's own URL, pulled from when Wharf fails; default `https://<host>` (`https://registry-1.docker.io` for docker.io). */
  server?: string;
}

/** Where nodes reach Wharf, and how to trust it. */
export interface WharfEndpoint {
  /** `http://10.0.0.5:30500` (a NodePort or hostPort), or an https URL. */
  url: string;
  /** CA file(s) on the node that sign Wharf's certificate. */
  ca?: string[];
  /** Skip TLS verification of Wharf (test setups only). */
  skipVerify?: boolean;
}

export interface RenderOptions {
  /**
   * `[host.…]` tables of a foreign file this one replaces, kept after Wharf's entry
   * (mode `prepend`): containerd tries Wharf first, then those hosts, then the server.
   */
  keep?: string;
}

/** The default upstream URL of a registry host. */
export function defaultServer(host: string): string {
  return host === 'docker.io' ? 'https://registry-1.docker.io' : `https://${host}`;
}

/** A TOML basic string. */
function str(value: string): string {
  return JSON.stringify(value);
}

/**
 * The hosts.toml for `host`: its `server` is the original upstream, and one
 * `[host."<wharf>"]` with pull and resolve capabilities (pushes go to the server),
 * plus the CA or skip_verify as configured. Wharf maps the `?ns=<host>` containerd
 * adds to the proxy-cache project that mirrors `host`. Deterministic.
 */
export function renderHostsToml(host: MirroredHost, endpoint: WharfEndpoint, options: RenderOptions = {}): string {
  const lines = [MARKER, `server = ${str(host.server ?? defaultServer(host.host))}`, '', `[host.${str(endpoint.url.replace(/\/+$/, ''))}]`, '  capabilities = ["pull", "resolve"]'];
  if (endpoint.ca && endpoint.ca.length > 0) lines.push(`  ca = [${endpoint.ca.map(str).join(', ')}]`);
  if (endpoint.skipVerify) lines.push('  skip_verify = true');
  const keep = options.keep?.trim();
  if (keep) lines.push('', '# Kept from the file this one replaced (mode prepend):', keep);
  return `${lines.join('\n')}\n`;
}

/**
 * The part of a foreign hosts.toml to keep after Wharf's entry: everything from its
 * first table on. Its top-level keys (`server`, and settings of the server) are left
 * out: this file names the server, and TOML allows a key once. Pure.
 */
export function hostTablesOf(foreign: string): string {
  const lines = foreign.split('\n');
  const first = lines.findIndex((l) => /^\s*\[/.test(l));
  return first === -1 ? '' : lines.slice(first).join('\n').trim();
}

export function isWharfFile(content: string): boolean {
  return content.startsWith(MARKER);
}
