import type { FastifyBaseLogger } from 'fastify';
import { projectOf } from '../auth/scopes.js';
import type { Metadata } from '../metadata/index.js';
import type { ProxyCacheConfig } from '../metadata/proxy-caches.js';
import { ociError } from '../oci/errors.js';
import { RemoteError, type RemoteTimeouts } from '../remote/index.js';
import type { AuditLog } from '../services/audit.js';
import type { CachedManifest } from '../services/manifest-cache.js';
import type { ManifestService } from '../services/manifests.js';
import { QuotaGuard } from '../services/quota.js';
import type { UploadService } from '../services/uploads.js';
import type { BlobStore } from '../storage/blob-store.js';
import { ProxyBlobs, type BlobFillSettings, type ProxiedBlob, type ProxyBlobOptions } from './blobs.js';
import { outcomeLabel } from './errors.js';
import { DigestMismatchError } from './fill.js';
import { ProxyManifests, type ProxiedManifest } from './manifests.js';
import type { ProxyMetrics } from './metrics.js';
import { mirroredRepository, upstreamRepository } from './names.js';
import { BlobPrefetch, type PrefetchSettings } from './prefetch.js';
import { ProxyProjects } from './projects.js';
import { UpstreamPool } from './upstreams.js';

export interface ProxyDependencies {
  meta: Metadata;
  store: BlobStore;
  manifests: ManifestService;
  uploads: UploadService;
  audit: AuditLog;
  metrics: ProxyMetrics;
  log: FastifyBaseLogger;
  fills: BlobFillSettings;
  timeouts?: Partial<RemoteTimeouts>;
  prefetch: PrefetchSettings;
}

/**
 * Pull-through caching for proxy-cache projects: which projects are proxies (and which
 * mirror a host for `?ns=`), their manifests and blobs, and the upstream clients.
 */
export class ProxyService {
  readonly projects: ProxyProjects;
  private readonly upstreams: UpstreamPool;
  private readonly manifestCache: ProxyManifests;
  private readonly blobCache: ProxyBlobs;
  private readonly prefetch: BlobPrefetch;

  constructor(private readonly deps: ProxyDependencies) {
    this.projects = new ProxyProjects(deps.meta.proxyCaches, deps.meta.projects);
    this.upstreams = new UpstreamPool(deps.timeouts);
    this.manifestCache = new ProxyManifests(deps.manifests, deps.meta.proxyCaches, deps.metrics, deps.log, (repository, reference, digest) =>
      deps.audit.record({ actor: 'proxy-cache', action: 'cache', resourceType: 'artifact', resource: `${repository}:${reference}`, project: projectOf(repository), outcome: 'success', detail: { digest } }),
    );
    this.blobCache = new ProxyBlobs(deps.meta, deps.store, deps.uploads, new QuotaGuard(deps.meta), deps.metrics, deps.log, deps.fills);
    this.prefetch = new BlobPrefetch(
      this.blobCache,
      deps.meta.blobs,
      async (project) => {
        const config = await this.projects.forProject(project);
        return config && { config, remote: this.upstreams.for(config) };
      },
      deps.metrics,
      deps.log,
      deps.prefetch,
    );
  }

  /** The proxy settings of the repository's project; undefined for an ordinary project. */
  forRepository(repository: string): Promise<ProxyCacheConfig | undefined> {
    return this.projects.forProject(projectOf(repository));
  }

  /**
   * The local repository a `?ns=<host>` mirror request for `name` stands for: the name
   * under the project whose `mirrorOf` lists the host. When none does, a name that
   * already addresses an existing project (containerd's `override_path` mirrors, which
   * send `ns` too) is taken as it is; anything else is NAME_UNKNOWN, never passed on.
   */
  async mirrored(host: string, name: string): Promise<string> {
    const config = await this.projects.forMirrorHost(host);
    if (config) return mirroredRepository(config.project, name);
    if (name.includes('/') && (await this.projects.exists(projectOf(name)))) return name;
    throw ociError('NAME_UNKNOWN', { ns: host.slice(0, 300), name }, { message: `no proxy-cache project mirrors ${JSON.stringify(host.slice(0, 300))} (set proxyCache.mirrorOf on one), and ${name} names no project` });
  }

  manifest(config: ProxyCacheConfig, repository: string, reference: string): Promise<ProxiedManifest> {
    return this.manifestCache.get(config, this.upstreams.for(config), repository, reference);
  }

  /** A client is being sent `manifest` (a GET): its blobs are fetched ahead of the client's requests (BlobPrefetch). */
  manifestSent(config: ProxyCacheConfig, repository: string, manifest: CachedManifest): void {
    this.prefetch.manifestServed(config.project, repository, manifest);
  }

  async blob(config: ProxyCacheConfig, repository: string, digest: string, options: ProxyBlobOptions): Promise<ProxiedBlob> {
    try {
      return await this.blobCache.get(config, this.upstreams.for(config), repository, digest, options);
    } catch (err) {
      if (err instanceof DigestMismatchError) throw ociError('UNAVAILABLE', { digest, actual: err.actual }, { message: err.message, cause: err });
      throw err;
    }
  }

  /**
   * The upstream's referrers index for `digest`, as it sent it; undefined when the
   * upstream cannot answer (no referrers API, down), and the caller lists what is cached.
   */
  async referrers(config: ProxyCacheConfig, repository: string, digest: string, artifactType?: string): Promise<{ content: Buffer; mediaType: string } | undefined> {
    try {
      const answer = await this.upstreams.for(config).referrers(upstreamRepository(config.provider, repository), digest, artifactType);
      this.deps.metrics.upstreamRequests.inc({ request: 'referrers', outcome: 'ok' });
      return answer;
    } catch (err) {
      this.deps.metrics.upstreamRequests.inc({ request: 'referrers', outcome: outcomeLabel(err) });
      if (err instanceof RemoteError) return undefined;
      throw err;
    }
  }

  async close(): Promise<void> {
    this.prefetch.close();
    this.blobCache.close();
    await this.upstreams.close();
  }
}
