/**
 * containerd's per-registry host files (`<config_path>/<host>/hosts.toml`, containerd
 * docs/hosts.md) that send a registry's pulls to Wharf first. Pure.
 */

/** The first line of every file the node agent writes: what proves a file is Wharf's. */
export const MARKER = '# Written by the Wharf node agent (wharf.dev); edits are overwritten. Removing the host from the mirror restores the file that was here before.';
/** The second line of a file written for one Registry (`<namespace>/<name>`): another Registry's agent leaves it alone. */
const OWNER_PREFIX = '# Owner: ';

/**
 * A registry host as image references name it (`docker.io`, `registry.example:5000`):
 * DNS labels and an optional port. The CRDs, the operator and the agent check hosts with
 * this one pattern, so that a host the API accepts is one the agent writes.
 */
/** `:port` with a port from 1 to 65535, or nothing. */
export const OPTIONAL_PORT_PATTERN = '(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?';
export const MIRROR_HOST_PATTERN = `^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*${OPTIONAL_PORT_PATTERN}$`;
const MIRROR_HOST = new RegExp(MIRROR_HOST_PATTERN);

export function isMirrorHost(host: string): boolean {
  return host.length <= 253 && MIRROR_HOST.test(host);
}

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
  /** The Registry (`<namespace>/<name>`) whose agent writes the file. */
  owner?: string;
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
  const lines = [MARKER, ...(options.owner ? [`${OWNER_PREFIX}${options.owner}`] : []), `server = ${str(host.server ?? defaultServer(host.host))}`, '', `[host.${str(endpoint.url.replace(/\/+$/, ''))}]`, '  capabilities = ["pull", "resolve"]'];
  if (endpoint.ca && endpoint.ca.length > 0) lines.push(`  ca = [${endpoint.ca.map(str).join(', ')}]`);
  if (endpoint.skipVerify) lines.push('  skip_verify = true');
  const keep = options.keep?.trim();
  if (keep) lines.push('', '# Kept from the file this one replaced (mode prepend):', keep);
  return `${lines.join('\n')}\n`;
}

/** The URL a `[host."…"]` table header names (any of TOML's quotings), without trailing slashes; undefined for other lines. */
function hostTableUrl(line: string): string | undefined {
  const m = /^\s*\[\s*host\s*\.\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))/.exec(line);
  if (!m) return undefined;
  let url: string;
  try {
    url = m[1] !== undefined ? (JSON.parse(`"${m[1]}"`) as string) : (m[2] ?? m[3]!);
  } catch {
    return undefined; // an escape JSON does not know: no URL to compare
  }
  return url.replace(/\/+$/, '');
}

/**
 * The part of a foreign hosts.toml to keep after Wharf's entry: everything from its
 * first table on. Its top-level keys (`server`, and settings of the server) are left
 * out: this file names the server, and TOML allows a key once. With `except`, the
 * tables of that host (`[host."<except>"]` and its sub-tables) are left out too: a file
 * that already names Wharf's endpoint would otherwise define the table twice, and
 * containerd ignores a hosts.toml it cannot decode. Pure.
 */
export function hostTablesOf(foreign: string, except?: string): string {
  const lines = foreign.split('\n');
  const first = lines.findIndex((l) => /^\s*\[/.test(l));
  if (first === -1) return '';
  const skipUrl = except?.replace(/\/+$/, '');
  let skipping = false;
  const kept: string[] = [];
  for (const line of lines.slice(first)) {
    if (/^\s*\[/.test(line)) skipping = skipUrl !== undefined && hostTableUrl(line) === skipUrl;
    if (!skipping) kept.push(line);
  }
  return kept.join('\n').trim();
}

export function isWharfFile(content: string): boolean {
  return content.startsWith(MARKER);
}

/**
 * Whether `content` is a file this agent may change or remove: Wharf's, and written for
 * `owner` or for no one in particular (the agent before owners were written, or one run
 * without an owner). Pure.
 */
export function isOwnFile(content: string, owner: string | undefined): boolean {
  if (!isWharfFile(content)) return false;
  const second = content.slice(MARKER.length).replace(/^\r?\n/, '').split(/\r?\n/, 1)[0]!;
  const written = second.startsWith(OWNER_PREFIX) ? second.slice(OWNER_PREFIX.length).trim() : undefined;
  return written === undefined || written === owner;
}
