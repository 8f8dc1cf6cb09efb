import type { ProjectStore } from '../metadata/projects.js';
import type { ProxyCacheConfig, ProxyCacheStore } from '../metadata/proxy-caches.js';
import { canonicalMirrorHost } from './names.js';

/** How long a project's proxy settings (or their absence) are reused before the database is asked again. */
export const SETTINGS_TTL_MS = 2_000;

interface Entry {
  config: ProxyCacheConfig | undefined;
  until: number;
}

/**
 * Proxy settings by project name and by mirrored host, cached for a moment: every
 * /v2 request asks whether its project is a proxy. A change made through this
 * process clears the cache at once; one made on another replica is seen within
 * SETTINGS_TTL_MS.
 */
export class ProxyProjects {
  private readonly byName = new Map<string, Entry>();
  private readonly byHost = new Map<string, Entry>();
  private readonly existing = new Map<string, { exists: boolean; until: number }>();

  constructor(
    private readonly store: ProxyCacheStore,
    private readonly projects: ProjectStore,
    private readonly ttlMs = SETTINGS_TTL_MS,
  ) {}

  /** Whether a project of that name exists (cached like the settings). */
  async exists(name: string): Promise<boolean> {
    const hit = this.existing.get(name);
    if (hit && hit.until > Date.now()) return hit.exists;
    const exists = (await this.projects.get(name)) !== undefined;
    if (this.existing.size > 10_000) this.existing.clear();
    this.existing.set(name, { exists, until: Date.now() + this.ttlMs });
    return exists;
  }

  /** The project's upstream settings; undefined for an ordinary (or absent) project. */
  forProject(name: string): Promise<ProxyCacheConfig | undefined> {
    return this.cached(this.byName, name, () => this.store.byProject(name));
  }

  /** The proxy project that mirrors `host` (any of its aliases), if any. */
  forMirrorHost(host: string): Promise<ProxyCacheConfig | undefined> {
    const canonical = canonicalMirrorHost(host);
    return this.cached(this.byHost, canonical, () => this.store.byMirrorHost(canonical));
  }

  invalidate(): void {
    this.byName.clear();
    this.byHost.clear();
    this.existing.clear();
  }

  private async cached(map: Map<string, Entry>, key: string, load: () => Promise<ProxyCacheConfig | undefined>): Promise<ProxyCacheConfig | undefined> {
    const hit = map.get(key);
    if (hit && hit.until > Date.now()) return hit.config;
    const config = await load();
    if (map.size > 10_000) map.clear();
    map.set(key, { config, until: Date.now() + this.ttlMs });
    return config;
  }
}
