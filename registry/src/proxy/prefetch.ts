import type { FastifyBaseLogger } from 'fastify';
import type { BlobLinkStore } from '../metadata/blob-links.js';
import type { ProxyCacheConfig } from '../metadata/proxy-caches.js';
import { parseManifest } from '../oci/manifest.js';
import type { RemoteRegistry } from '../remote/index.js';
import type { CachedManifest } from '../services/manifest-cache.js';
import type { ProxyBlobs } from './blobs.js';
import type { ProxyMetrics } from './metrics.js';

/** Manifests whose blobs this process has already queued, so that a warm pull costs no query. */
const REMEMBERED_MANIFESTS = 10_000;
/** Blobs waiting for a prefetch slot at most; past it none are queued (clients fetch them as they ask). */
const MAX_QUEUED = 10_000;

interface PrefetchTask {
  config: ProxyCacheConfig;
  remote: RemoteRegistry;
  repository: string;
  digest: string;
  /** The manifest's key in `queued`, forgotten when one of its blobs fails so that the next GET tries again. */
  manifest: string;
}

/**
 * Fetches the blobs of an image manifest a client has just GOT, ahead of the client's
 * own requests for them. A client asks for a few layers at a time (containerd and
 * Docker: 3) and each request to a distant upstream pays its round trip; fetching the
 * rest meanwhile, `limit` at a time across the process and from the last blob back,
 * lets a cold pull go as fast as the link rather than as the client's request pipeline. A client's request for a
 * blob being prefetched joins that fill (one upstream fetch per blob, as ever). Only a
 * GET queues: a HEAD resolves a tag (containerd) or checks for updates (Renovate, Flux),
 * and must not download the image. An index's children are queued when a client GETs
 * one of them, so only the platform it chose is fetched.
 */
export class BlobPrefetch {
  private readonly queued = new Set<string>();
  private readonly waiting: PrefetchTask[] = [];
  private running = 0;
  private closed = false;

  constructor(
    private readonly blobs: ProxyBlobs,
    private readonly links: BlobLinkStore,
    private readonly metrics: ProxyMetrics,
    private readonly log: FastifyBaseLogger,
    /** Blobs the process prefetches at once; 0 turns prefetching off. */
    private readonly limit: number,
  ) {}

  /** A client GOT `manifest` of `repository`: queues the blobs it names that the repository lacks. */
  manifestServed(config: ProxyCacheConfig, remote: RemoteRegistry, repository: string, manifest: CachedManifest): void {
    if (this.limit === 0 || this.closed) return;
    const key = `${repository}@${manifest.digest}`;
    if (this.queued.has(key)) return;
    this.queued.add(key);
    if (this.queued.size > REMEMBERED_MANIFESTS) this.queued.delete(this.queued.values().next().value!);
    this.enqueue(config, remote, repository, manifest, key).catch((err: unknown) => {
      this.queued.delete(key);
      this.log.warn({ err, repository, digest: manifest.digest }, 'proxy cache: cannot prefetch the blobs of a manifest');
    });
  }

  /** Drops what waits; fills already running stop with the registry's other fills. */
  close(): void {
    this.closed = true;
    this.waiting.length = 0;
  }

  private async enqueue(config: ProxyCacheConfig, remote: RemoteRegistry, repository: string, manifest: CachedManifest, key: string): Promise<void> {
    // Last first: the client starts at the front (config, first layers), so the two work from
    // opposite ends and add up, instead of the prefetch mostly fetching what the client has asked for.
    const digests = [...new Set(parseManifest(manifest.content, manifest.mediaType).blobs.map((blob) => blob.digest))].reverse();
    if (digests.length === 0) return;
    const linked = await this.links.linkedAmong(repository, digests);
    for (const digest of digests) {
      if (linked.has(digest) || this.closed) continue;
      if (this.waiting.length >= MAX_QUEUED) {
        this.metrics.prefetches.inc({ outcome: 'dropped' });
        this.queued.delete(key);
        continue;
      }
      this.waiting.push({ config, remote, repository, digest, manifest: key });
    }
    this.pump();
  }

  private pump(): void {
    while (this.running < this.limit && this.waiting.length > 0) {
      const task = this.waiting.shift()!;
      this.running++;
      void this.run(task).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async run(task: PrefetchTask): Promise<void> {
    try {
      this.metrics.prefetches.inc({ outcome: await this.blobs.prefetch(task.config, task.remote, task.repository, task.digest) });
    } catch (err) {
      this.queued.delete(task.manifest);
      this.metrics.prefetches.inc({ outcome: 'failed' });
      this.log.info({ err, repository: task.repository, digest: task.digest }, 'proxy cache: prefetching a blob failed; a client that asks for it fetches it again');
    }
  }
}
