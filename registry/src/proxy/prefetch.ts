import type { FastifyBaseLogger } from 'fastify';
import type { BlobLinkStore } from '../metadata/blob-links.js';
import type { ProxyCacheConfig } from '../metadata/proxy-caches.js';
import { parseManifest } from '../oci/manifest.js';
import type { RemoteRegistry } from '../remote/index.js';
import type { CachedManifest } from '../services/manifest-cache.js';
import type { ProxyBlobs } from './blobs.js';
import type { ProxyMetrics } from './metrics.js';
import { rememberRecent } from '../recent-map.js';

/** Manifests whose blobs this process has already queued, so that a warm pull costs no query. */
const REMEMBERED_MANIFESTS = 10_000;
/** Blobs waiting for a prefetch slot at most; past it none are queued (clients fetch them as they ask). */
const MAX_QUEUED = 10_000;
/** After a blob of a manifest failed, its next GET queues the rest again only this much later. */
const PREFETCH_RETRY_MS = 60_000;

export interface PrefetchSettings {
  /** Blobs the process prefetches at once; 0 turns prefetching off. */
  limit: number;
  /** After a failure, how long until the manifest's next GET queues it again; PREFETCH_RETRY_MS unless set. */
  retryMs?: number;
}

/** Failures that say the upstream as a whole is unwell, not that one blob is wrong or unwanted. */
const UPSTREAM_FAILURES = new Set(['unreachable', 'timeout', 'throttled', 'server']);

function upstreamUnwell(err: unknown): boolean {
  const failure = (err as { detail?: { failure?: unknown } } | undefined)?.detail?.failure;
  return typeof failure === 'string' && UPSTREAM_FAILURES.has(failure);
}

/** A project's current proxy settings and upstream client; undefined once it is no proxy (or gone). */
type UpstreamOf = (project: string) => Promise<{ config: ProxyCacheConfig; remote: RemoteRegistry } | undefined>;

/** One GOT manifest's blobs on their way. */
interface ManifestPrefetch {
  key: string;
  project: string;
  repository: string;
  manifest: string;
  /** A blob failed: the rest are not tried (an upstream that fails one usually fails all). */
  stopped: boolean;
}

interface PrefetchTask {
  of: ManifestPrefetch;
  digest: string;
}

/**
 * Fetches the blobs of an image manifest a client has just GOT, ahead of the client's
 * own requests for them. A client asks for a few layers at a time (containerd and
 * Docker: 3) and each request to a distant upstream pays its round trip; fetching the
 * rest meanwhile, `limit` at a time across the process and from the last blob back,
 * lets a cold pull go as fast as the link rather than as the client's request pipeline.
 * A client's request for a blob being prefetched joins that fill (one upstream fetch per
 * blob, as ever). Only a GET queues: a HEAD resolves a tag (containerd) or checks for
 * updates (Renovate, Flux), and must not download the image. An index's children are
 * queued when a client GETs one of them, so only the platform it chose is fetched.
 *
 * The first failure among a manifest's blobs (upstream down, throttling, the quota)
 * stops the rest, and the manifest is queued again no sooner than PREFETCH_RETRY_MS
 * later: a failing upstream is asked once per manifest and minute, not once per blob and GET.
 * When the failure is the upstream's as a whole (down, timing out, throttling, 5xx), the
 * project's prefetching pauses for as long, so that one stalled upstream does not take
 * the process's slots manifest after manifest while other projects' blobs wait.
 */
export class BlobPrefetch {
  /** Per manifest (`repository@digest`): when its next GET may queue it again (Infinity: never). */
  private readonly queued = new Map<string, number>();
  /** Projects whose upstream failed as a whole, and until when their prefetching pauses. */
  private readonly paused = new Map<string, number>();
  private readonly waiting: PrefetchTask[] = [];
  private running = 0;
  private closed = false;
  private readonly limit: number;
  private readonly retryMs: number;

  constructor(
    private readonly blobs: ProxyBlobs,
    private readonly links: BlobLinkStore,
    private readonly upstreamOf: UpstreamOf,
    private readonly metrics: ProxyMetrics,
    private readonly log: FastifyBaseLogger,
    settings: PrefetchSettings,
  ) {
    this.limit = settings.limit;
    this.retryMs = settings.retryMs ?? PREFETCH_RETRY_MS;
  }

  /** A client GOT `manifest` of `repository` in `project`: queues the blobs it names that the repository lacks. */
  manifestServed(project: string, repository: string, manifest: CachedManifest): void {
    if (this.limit === 0 || this.closed || this.isPaused(project)) return;
    const key = `${repository}@${manifest.digest}`;
    if ((this.queued.get(key) ?? 0) > Date.now()) return;
    rememberRecent(this.queued, key, Infinity, REMEMBERED_MANIFESTS);
    const of: ManifestPrefetch = { key, project, repository, manifest: manifest.digest, stopped: false };
    this.enqueue(of, manifest).catch((err: unknown) => this.stop(of, err));
  }

  /** Drops what waits; fills already running stop with the registry's other fills. */
  close(): void {
    this.closed = true;
    this.waiting.length = 0;
  }

  private async enqueue(of: ManifestPrefetch, manifest: CachedManifest): Promise<void> {
    // Last first: the client starts at the front (config, first layers), so the two work from
    // opposite ends and add up, instead of the prefetch mostly fetching what the client has asked for.
    const digests = [...new Set(parseManifest(manifest.content, manifest.mediaType).blobs.map((blob) => blob.digest))].reverse();
    if (digests.length === 0) return;
    const linked = await this.links.linkedAmong(of.repository, digests);
    for (const digest of digests) {
      if (linked.has(digest) || this.closed) continue;
      if (this.waiting.length >= MAX_QUEUED) {
        this.metrics.prefetches.inc({ outcome: 'dropped' });
        this.queued.delete(of.key);
        continue;
      }
      this.waiting.push({ of, digest });
    }
    this.pump();
  }

  private pump(): void {
    while (this.running < this.limit && this.waiting.length > 0) {
      const task = this.waiting.shift()!;
      if (task.of.stopped || this.isPaused(task.of.project)) {
        this.metrics.prefetches.inc({ outcome: 'dropped' });
        continue;
      }
      this.running++;
      void this.run(task).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async run({ of, digest }: PrefetchTask): Promise<void> {
    try {
      // The settings as they are now: the project may have changed upstream, or be no proxy any more.
      const upstream = await this.upstreamOf(of.project);
      if (!upstream) {
        this.metrics.prefetches.inc({ outcome: 'dropped' });
        return;
      }
      this.metrics.prefetches.inc({ outcome: await this.blobs.prefetch(upstream.config, upstream.remote, of.repository, digest) });
    } catch (err) {
      this.metrics.prefetches.inc({ outcome: 'failed' });
      this.stop(of, err, digest);
    }
  }

  private isPaused(project: string): boolean {
    const until = this.paused.get(project);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.paused.delete(project);
    return false;
  }

  /** The first failure of a manifest's prefetch: the rest is dropped, and the manifest may be queued again later. */
  private stop(of: ManifestPrefetch, err: unknown, digest?: string): void {
    if (upstreamUnwell(err)) this.paused.set(of.project, Date.now() + this.retryMs);
    if (of.stopped) return;
    of.stopped = true;
    if (this.queued.get(of.key) === Infinity) this.queued.set(of.key, Date.now() + this.retryMs);
    if (this.closed) return;
    this.log.info(
      { repository: of.repository, manifest: of.manifest, digest, err: err instanceof Error ? err.message : String(err) },
      `proxy cache: prefetching the blobs of a manifest stopped after a failure; clients fetch them as they ask, and the manifest's next GET after ${this.retryMs / 1000} s tries again`,
    );
  }
}
