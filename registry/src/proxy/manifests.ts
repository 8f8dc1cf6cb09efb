import type { FastifyBaseLogger } from 'fastify';
import type { ProxyCacheConfig, ProxyCacheStore } from '../metadata/proxy-caches.js';
import { ociError, RegistryError } from '../oci/errors.js';
import { tryParseManifestReference } from '../oci/reference.js';
import { RemoteError, type RemoteRegistry } from '../remote/index.js';
import type { CachedManifest } from '../services/manifest-cache.js';
import type { ManifestService } from '../services/manifests.js';
import { upstreamFailure } from './errors.js';
import type { ProxyMetrics } from './metrics.js';
import { upstreamRepository } from './names.js';
import { rememberRecent } from '../recent-map.js';

export interface ProxiedManifest {
  manifest: CachedManifest;
  /** Set when a cached tag is served although the upstream could not confirm it (stale-if-error). */
  stale?: { reason: string; message: string };
}

/** Codes of a manifest's own validation: bytes no registry could serve as a manifest. */
const UNUSABLE_MANIFEST = new Set(['MANIFEST_INVALID', 'UNSUPPORTED', 'DIGEST_INVALID', 'SIZE_INVALID']);

/** The tag-freshness hints this process keeps: when it last found each tag current. */
class FreshTags {
  private readonly checked = new Map<string, number>();

  fresh(key: string, ttlSeconds: number): boolean {
    const at = this.checked.get(key);
    return at !== undefined && Date.now() - at < ttlSeconds * 1000;
  }

  mark(key: string, ageSeconds = 0): void {
    rememberRecent(this.checked, key, Date.now() - ageSeconds * 1000, 100_000);
  }
}

/**
 * Manifests of proxy-cache projects. By digest: what is cached is served and the
 * upstream never asked; what is not is fetched once. By tag: a tag checked within the
 * project's TTL is served from the cache; past it, one HEAD asks the upstream for the
 * tag's digest, and only a changed digest is fetched. When that check fails for any
 * reason but a 404 (down, timeout, 429, 5xx, refused credentials) the cached tag is
 * served anyway and marked stale. Concurrent requests for one reference share one upstream request.
 */
export class ProxyManifests {
  private readonly fresh = new FreshTags();
  private readonly inFlight = new Map<string, Promise<ProxiedManifest>>();

  constructor(
    private readonly manifests: ManifestService,
    private readonly store: ProxyCacheStore,
    private readonly metrics: ProxyMetrics,
    private readonly log: FastifyBaseLogger,
    private readonly onCached: (repository: string, reference: string, digest: string) => void = () => undefined,
  ) {}

  get(config: ProxyCacheConfig, remote: RemoteRegistry, repository: string, reference: string): Promise<ProxiedManifest> {
    const key = `${repository}\u0000${reference}`;
    const running = this.inFlight.get(key);
    if (running) return running;
    // Not tied to one client: the answer serves every request that joined it.
    const work = this.resolve(config, remote, repository, reference).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, work);
    return work;
  }

  private async resolve(config: ProxyCacheConfig, remote: RemoteRegistry, repository: string, reference: string): Promise<ProxiedManifest> {
    const ref = tryParseManifestReference(reference);
    if (!ref) throw ociError('MANIFEST_UNKNOWN', { name: repository, reference: reference.slice(0, 300) });
    const upstream = upstreamRepository(config.provider, repository);
    const cached = await this.manifests.find(repository, reference);
    if (ref.kind === 'digest') {
      if (cached) return { manifest: cached };
      return { manifest: await this.fetch(remote, repository, upstream, reference) };
    }
    const key = `${repository}\u0000${reference}`;
    if (!cached) {
      const manifest = await this.fetch(remote, repository, upstream, reference, reference);
      await this.markChecked(key, repository, reference);
      return { manifest };
    }
    if (this.fresh.fresh(key, config.manifestTtlSeconds)) return { manifest: cached };
    const age = await this.store.tagAge(repository, reference);
    if (age !== undefined && age < config.manifestTtlSeconds) {
      this.fresh.mark(key, age);
      return { manifest: cached };
    }
    let current: string;
    try {
      current = (await this.metrics.countUpstream('manifest_head', () => remote.headManifest(upstream, reference))).digest;
    } catch (err) {
      return this.staleOr(err, config, cached, repository, reference);
    }
    if (current === cached.digest) {
      await this.markChecked(key, repository, reference);
      return { manifest: cached };
    }
    let manifest: CachedManifest;
    try {
      manifest = await this.fetch(remote, repository, upstream, current, reference);
    } catch (err) {
      return this.staleOr(err, config, cached, repository, reference);
    }
    await this.markChecked(key, repository, reference);
    return { manifest };
  }

  /**
   * The cached tag when the upstream failed (stale-if-error): down, slow, throttling,
   * failing, refusing Wharf's credentials or answering nonsense. Only an upstream that
   * says the tag is gone (404) is believed, and the pull answers unknown.
   */
  private staleOr(failed: unknown, config: ProxyCacheConfig, cached: CachedManifest, repository: string, reference: string): ProxiedManifest {
    // fetch() hands the upstream's failure on as the client's answer, with the RemoteError as its cause.
    const err = failed instanceof RemoteError ? failed : (failed as { cause?: unknown } | undefined)?.cause;
    if (!(err instanceof RemoteError) || err.failure === 'not-found') throw failed instanceof RemoteError ? upstreamFailure(failed, { kind: 'manifest', repository, reference }) : failed;
    this.metrics.staleServed.inc({ project: config.project, reason: err.failure });
    this.log.warn({ repository, tag: reference, digest: cached.digest, failure: err.failure, err: err.message }, 'proxy cache: upstream check failed; serving the cached tag');
    return { manifest: cached, stale: { reason: err.failure, message: err.message } };
  }

  /** Fetches `reference` (a digest, or the tag when `tag` is unset) and stores it, tagged `tag` if given. */
  private async fetch(remote: RemoteRegistry, repository: string, upstream: string, reference: string, tag?: string): Promise<CachedManifest> {
    let fetched;
    try {
      fetched = await this.metrics.countUpstream('manifest_get', () => remote.getManifest(upstream, reference));
    } catch (err) {
      throw upstreamFailure(err, { kind: 'manifest', repository, reference: tag ?? reference });
    }
    let manifest: CachedManifest;
    try {
      manifest = await this.manifests.putCached(repository, fetched.digest, fetched.content, fetched.mediaType, tag);
    } catch (err) {
      // Bytes the upstream sent that are no manifest Wharf can serve: the upstream's fault (503), not the client's.
      if (err instanceof RegistryError && UNUSABLE_MANIFEST.has(err.code)) {
        throw upstreamFailure(new RemoteError('protocol', `the upstream sent a manifest that cannot be served: ${err.message}`, {}, { cause: err }), { kind: 'manifest', repository, reference: tag ?? reference });
      }
      throw err;
    }
    this.onCached(repository, tag ?? reference, fetched.digest);
    return manifest;
  }

  private async markChecked(key: string, repository: string, tag: string): Promise<void> {
    this.fresh.mark(key);
    await this.store.markTagChecked(repository, tag);
  }

}
