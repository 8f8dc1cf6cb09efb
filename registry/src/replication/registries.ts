import { actorOf } from '../auth/identities.js';
import type { Principal } from '../auth/policy.js';
import type { ReplicationStore, StoredRegistry, HealthStatus } from '../metadata/replication.js';
import { ociError } from '../oci/errors.js';
import { RemoteError, RemoteRegistry, type RemoteTimeouts } from '../remote/index.js';
import type { AuditLog } from '../services/audit.js';
import { requireReplicationAdmin } from './access.js';

export const REGISTRY_PROVIDERS = ['wharf', 'harbor', 'docker-registry', 'docker-hub', 'ghcr', 'quay', 'gcr', 'ecr', 'acr', 'zot'] as const;
export type RegistryProvider = (typeof REGISTRY_PROVIDERS)[number];

export interface RegistryInputBody {
  provider: RegistryProvider;
  url: string;
  username?: string;
  password?: string;
  insecure?: boolean;
  description?: string;
}

export interface RegistryView {
  id: string;
  name: string;
  provider: string;
  url: string;
  username: string | null;
  passwordSet: boolean;
  insecure: boolean;
  description: string;
  health: { status: HealthStatus; checkedAt: Date | null; message: string };
  createdAt: Date;
  updatedAt: Date;
}

export function registryView(r: StoredRegistry): RegistryView {
  return {
    id: r.id,
    name: r.name,
    provider: r.provider,
    url: r.url,
    username: r.username,
    passwordSet: r.password !== null && r.password !== '',
    insecure: r.insecure,
    description: r.description,
    health: { status: r.healthStatus, checkedAt: r.healthCheckedAt, message: r.healthMessage },
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

const NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

export function checkName(kind: string, name: string): void {
  if (name.length > 63 || !NAME.test(name)) {
    throw ociError('INVALID_REQUEST', { name: name.slice(0, 100) }, { message: `${kind} names are 1–63 lowercase letters, digits and single . _ - between them` });
  }
}

/**
 * Remote registries: their settings (the password write-only), health, and one client
 * per registry for this process (rebuilt when the settings change).
 */
export class RegistryService {
  private readonly clients = new Map<string, { updatedAt: number; client: RemoteRegistry }>();

  constructor(
    private readonly store: ReplicationStore,
    private readonly audit: AuditLog,
    private readonly timeouts?: Partial<RemoteTimeouts>,
  ) {}

  async list(principal: Principal, page: { limit: number; after?: string }): Promise<{ items: RegistryView[]; next?: string }> {
    requireReplicationAdmin(principal);
    const rows = await this.store.registries({ limit: page.limit + 1, ...(page.after !== undefined && { after: page.after }) });
    const items = rows.slice(0, page.limit).map(registryView);
    return rows.length > page.limit ? { items, next: items[items.length - 1]!.name } : { items };
  }

  async get(principal: Principal, name: string): Promise<RegistryView> {
    requireReplicationAdmin(principal);
    return registryView(await this.require(name));
  }

  /** Creates or updates; the health check runs at once, so the answer shows whether the settings work. */
  async put(principal: Principal, name: string, input: RegistryInputBody): Promise<{ registry: RegistryView; created: boolean }> {
    requireReplicationAdmin(principal);
    checkName('registry', name);
    try {
      new URL(input.url);
    } catch {
      throw ociError('INVALID_REQUEST', { url: input.url.slice(0, 200) }, { message: 'url is not a URL' });
    }
    const { registry, created } = await this.store.putRegistry(name, {
      provider: input.provider,
      url: input.url.replace(/\/+$/, ''),
      username: input.username ?? null,
      ...(input.password !== undefined && { password: input.password }),
      insecure: input.insecure ?? false,
      description: input.description ?? '',
    });
    this.audit.record({ actor: actorOf(principal), action: created ? 'create' : 'update', resourceType: 'registry', resource: name, outcome: 'success', detail: { url: registry.url, provider: registry.provider } });
    return { registry: registryView(await this.check(registry)), created };
  }

  async delete(principal: Principal, name: string): Promise<void> {
    requireReplicationAdmin(principal);
    const outcome = await this.store.deleteRegistry(name);
    if (outcome === 'missing') throw notFound(name);
    if (outcome === 'in-use') throw ociError('CONFLICT', { registry: name }, { message: `registry "${name}" is used by a replication policy; delete the policy first` });
    this.audit.record({ actor: actorOf(principal), action: 'delete', resourceType: 'registry', resource: name, outcome: 'success' });
  }

  async ping(principal: Principal, name: string): Promise<RegistryView['health']> {
    requireReplicationAdmin(principal);
    return registryView(await this.check(await this.require(name))).health;
  }

  /** The client of a registry, shared by every task of this process. */
  clientFor(registry: StoredRegistry): RemoteRegistry {
    const cached = this.clients.get(registry.id);
    if (cached && cached.updatedAt === registry.updatedAt.getTime()) return cached.client;
    if (cached) void cached.client.close().catch(() => undefined);
    const client = new RemoteRegistry({
      url: registry.url,
      ...(registry.username !== null && { credentials: { username: registry.username, password: registry.password ?? '' } }),
      insecure: registry.insecure,
      ...(this.timeouts && { timeouts: this.timeouts }),
    });
    this.clients.set(registry.id, { updatedAt: registry.updatedAt.getTime(), client });
    return client;
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.client.close().catch(() => undefined)));
    this.clients.clear();
  }

  /** `GET /v2/` with the credentials (a token request with them, where the registry uses tokens); the result is stored. */
  private async check(registry: StoredRegistry): Promise<StoredRegistry> {
    const client = this.clientFor(registry);
    let status: HealthStatus = 'healthy';
    let message = 'GET /v2/ answered with the credentials accepted';
    try {
      // A registry with token auth answers GET /v2/ with a challenge, so this also asks its
      // token service for a token with the credentials: wrong ones fail here.
      await client.ping(AbortSignal.timeout(15_000));
    } catch (err) {
      status = 'unhealthy';
      message = err instanceof RemoteError ? err.message : `check failed: ${(err as Error).message}`;
    }
    return (await this.store.setHealth(registry.id, status, message)) ?? registry;
  }

  private async require(name: string): Promise<StoredRegistry> {
    const registry = await this.store.registry(name);
    if (!registry) throw notFound(name);
    return registry;
  }
}

function notFound(name: string) {
  return ociError('RESOURCE_NOT_FOUND', { registry: name.slice(0, 100) }, { message: `registry "${name.slice(0, 100)}" not found` });
}
