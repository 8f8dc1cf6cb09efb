import type { ProxyCacheConfig } from '../metadata/proxy-caches.js';
import { RemoteRegistry, type RemoteTimeouts } from '../remote/index.js';

/**
 * One RemoteRegistry per proxy project (its connections and token cache), replaced
 * when the project's settings change.
 */
export class UpstreamPool {
  private readonly clients = new Map<string, { version: number; client: RemoteRegistry }>();

  constructor(private readonly timeouts: Partial<RemoteTimeouts> = {}) {}

  for(config: ProxyCacheConfig): RemoteRegistry {
    const version = config.updatedAt.getTime();
    const known = this.clients.get(config.projectId);
    if (known && known.version === version) return known.client;
    if (known) void known.client.close().catch(() => undefined);
    const client = new RemoteRegistry({
      url: config.url,
      ...(config.username !== null && { credentials: { username: config.username, password: config.password ?? '' } }),
      insecure: config.insecure,
      timeouts: this.timeouts,
    });
    this.clients.set(config.projectId, { version, client });
    return client;
  }

  async close(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((c) => c.client.close().catch(() => undefined)));
  }
}
