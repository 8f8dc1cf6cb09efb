import { projectOf } from '../auth/scopes.js';
import type { ProxyProvider } from '../metadata/proxy-caches.js';

/** Docker Hub's registry answers under these names too; containerd may name any of them in `?ns=`. */
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'registry-1.docker.io', 'index.docker.io']);

/**
 * The form a mirrored host is stored and looked up in: lower case, without a default
 * port, and `docker.io` for Docker Hub's aliases. Pure.
 */
export function canonicalMirrorHost(host: string): string {
  const lower = host.trim().toLowerCase().replace(/:443$/, '');
  return DOCKER_HUB_ALIASES.has(lower) ? 'docker.io' : lower;
}

/** A host[:port] as containerd puts it in `?ns=`: a DNS name or IPv4 address, optional port (1 to 65535). */
export function isMirrorHost(host: string): boolean {
  return /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?$/.test(host.toLowerCase()) && host.length <= 253;
}

/**
 * The repository to ask the upstream for, given the local one (`<project>/<path>`):
 * the path after the project, and for Docker Hub a single-segment path under
 * `library/` (`hub/nginx` → `library/nginx`). Pure.
 */
export function upstreamRepository(provider: ProxyProvider, repository: string): string {
  const project = projectOf(repository);
  const path = repository.slice(project.length + 1);
  if (provider === 'docker-hub' && !path.includes('/')) return `library/${path}`;
  return path;
}

/** The local repository a mirror request (`/v2/<name>/...?ns=<host>`) stands for in the mirroring project. Pure. */
export function mirroredRepository(project: string, name: string): string {
  return `${project}/${name}`;
}
