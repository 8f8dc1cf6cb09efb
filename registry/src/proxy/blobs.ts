import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import type { Metadata } from '../metadata/index.js';
import type { ProxyCacheConfig } from '../metadata/proxy-caches.js';
import type { RemoteRegistry } from '../remote/index.js';
import type { QuotaGuard } from '../services/quota.js';
import type { UploadBudget } from '../services/upload-budget.js';
import type { UploadService } from '../services/uploads.js';
import type { BlobStore } from '../storage/blob-store.js';
import { upstreamFailure } from './errors.js';
import { BlobFill, DigestMismatchError, type MinimumRate } from './fill.js';
import type { ProxyMetrics } from './metrics.js';
import { upstreamRepository } from './names.js';
import { rememberRecent } from '../recent-map.js';

export type ProxiedBlob =
  /** Now linked in the repository: serve it from storage as any blob. */
  | { kind: 'stored' }
  /** Arriving from the upstream: `body` follows the fill. */
  | { kind: 'stream'; size: number | undefined; body: Readable }
  /** A HEAD answered from the upstream without fetching the bytes. */
  | { kind: 'head'; size: number | undefined };

export interface ProxyBlobOptions {
  /** Only the size is wanted (HEAD). */
  head: boolean;
  /** The caller needs the stored blob (a Range request): wait for the fill instead of following it. */
  whole: boolean;
  /** Whether a cached manifest of the repository names the digest (the caller's lookup asked). */
  named: boolean;
  /** The client's; it stops this request's waiting, never a fill. */
  signal?: AbortSignal;
}

export interface BlobFillSettings {
  /** Local directory for the files clients follow while a blob arrives. */
  spoolDir: string;
  /** The fill lease in the database; renewed every third of it. */
  leaseSeconds: number;
  /** How often a replica waiting for another one's fill looks again. */
  pollMs: number;
  /** The least an upstream must send per window of a fill (the body idle timeout). */
  minimumRate: MinimumRate;
}

interface ActiveFill {
  fill: BlobFill;
  /** The repository the fill links the blob into. */
  repository: string;
  /** Settles once the blob is stored and linked (or failed). */
  published: Promise<void>;
}

/** Links this process's fills made lately, remembered so that prefetching them again costs nothing. */
const REMEMBERED_LINKS = 10_000;

/** Fills are shared within a project (its repositories have one upstream), never across projects. */
function fillKey(config: ProxyCacheConfig, digest: string): string {
  return `${config.project}\u0000${digest}`;
}

/**
 * Blobs of proxy-cache projects that are not linked yet. A blob that storage already
 * holds and a cached manifest of the repository names is linked without asking the
 * upstream. Otherwise one fill fetches it: concurrent requests in this process follow
 * that fill (BlobFill), and other replicas (on PostgreSQL) wait for it through a lease
 * in the database, then link what it stored. The fill belongs to no client: it runs to
 * its end whoever goes away. A request for a digest that no cached manifest of its repository names
 * fetches on its own, so it never sees bytes its upstream did not hand out.
 */
export class ProxyBlobs {
  private readonly owner = `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
  /**
   * This process's fill of each digest, per project (fillKey), from the moment a request
   * decides to fetch it. Per project: a fill from one project's upstream that stalls or
   * fails must not hold up or fail another project's clients, nor name its upstream to them.
   */
  private readonly active = new Map<string, Promise<ActiveFill | 'stored' | 'elsewhere'>>();
  private readonly stopping = new AbortController();
  /**
   * `repository\u0000digest` of the blobs this process's fills linked lately. A client that
   * asks for a blob before the prefetch reaches it fills it itself; the prefetch then finds it
   * here instead of looking at storage and linking it again (two file-system calls and three
   * queries, for about a third of a cold pull's blobs). A link removed since (a deletion,
   * garbage collection) only means the prefetch skips the blob, and the client fetches it.
   */
  private readonly linkedByFills = new Map<string, true>();
  /**
   * Whether fills hold a lease in the database. Only replicas on one PostgreSQL need it:
   * the embedded database belongs to one process, whose fills `active` already
   * single-flights, and the claim and release were two of a small cold blob's queries.
   */
  private readonly leased: boolean;

  constructor(
    private readonly meta: Metadata,
    private readonly store: BlobStore,
    private readonly uploads: UploadService,
    private readonly quota: QuotaGuard,
    private readonly metrics: ProxyMetrics,
    private readonly log: FastifyBaseLogger,
    private readonly settings: BlobFillSettings,
  ) {
    this.leased = meta.sql.driver !== 'pglite';
    // Every running fill listens to it (a few listeners each); dozens at once are normal.
    setMaxListeners(0, this.stopping.signal);
  }

  async get(config: ProxyCacheConfig, remote: RemoteRegistry, repository: string, digest: string, options: ProxyBlobOptions): Promise<ProxiedBlob> {
    const { signal, named } = options;
    // A fill in progress (a prefetch, another client) is joined below without a look at storage.
    const key = fillKey(config, digest);
    if (named && !this.active.has(key) && (await this.uploads.adoptStored(repository, digest, signal, config.project)) !== undefined) return { kind: 'stored' };
    const upstream = upstreamRepository(config.provider, repository);
    if (options.head) {
      try {
        const { size } = await this.metrics.countUpstream('blob_head', () => remote.headBlob(upstream, digest, signal));
        return { kind: 'head', size };
      } catch (err) {
        throw upstreamFailure(err, { kind: 'blob', repository, reference: digest });
      }
    }
    if (!named) return this.follow(await this.start(config, remote, repository, upstream, digest, false, signal), repository, digest, options);
    for (;;) {
      let pending = this.active.get(key);
      const joined = pending !== undefined;
      if (!pending) pending = this.begin(config, remote, repository, upstream, digest);
      else this.metrics.fills.inc({ outcome: 'joined' });
      const outcome = await pending;
      if (outcome === 'elsewhere') {
        if (await this.awaitOtherReplica(config.project, repository, digest, signal)) return { kind: 'stored' };
        continue;
      }
      if (outcome === 'stored') {
        if (!joined || (await this.uploads.adoptStored(repository, digest, signal)) !== undefined) return { kind: 'stored' };
        continue;
      }
      if (joined) await this.quota.precheck(repository, outcome.fill.size ?? 0, digest, config.storageLimit);
      return this.follow(outcome, repository, digest, options);
    }
  }

  /**
   * Fetches a blob that a cached manifest of `repository` names before any client asks
   * for it (BlobPrefetch): links it if storage holds it, else starts the one fill of it,
   * which clients that ask meanwhile join. Settles when the blob is linked (or another
   * replica fills it, or a fill is already running here); `present`: nothing was fetched.
   */
  async prefetch(config: ProxyCacheConfig, remote: RemoteRegistry, repository: string, digest: string): Promise<'fetched' | 'present'> {
    const key = fillKey(config, digest);
    if (this.active.has(key) || this.stopping.signal.aborted || this.linkedByFills.has(`${repository}\u0000${digest}`)) return 'present';
    if ((await this.uploads.adoptStored(repository, digest, undefined, config.project)) !== undefined || this.active.has(key)) return 'present';
    const outcome = await this.begin(config, remote, repository, upstreamRepository(config.provider, repository), digest);
    if (typeof outcome === 'string') return 'present';
    await outcome.published;
    return 'fetched';
  }

  /**
   * Starts the one fill of `digest` in this process, announced at once (before any
   * await) so that concurrent requests join it: takes the database lease, or learns
   * that another replica holds it (`elsewhere`), or finds the blob stored meanwhile.
   */
  private begin(config: ProxyCacheConfig, remote: RemoteRegistry, repository: string, upstream: string, digest: string): Promise<ActiveFill | 'stored' | 'elsewhere'> {
    // No client's signal: the requests that join must not fail because the first one left.
    const pending = (async (): Promise<ActiveFill | 'stored' | 'elsewhere'> => {
      if (this.leased) {
        if (!(await this.meta.proxyCaches.claimFill(digest, this.owner, this.settings.leaseSeconds))) return 'elsewhere';
        // A fill (here or on another replica) may have finished just before the claim. Without
        // a lease nothing stands between the caller's own look at storage and this fill.
        if ((await this.adoptAfterClaim(config.project, repository, digest)) !== undefined) return 'stored';
      }
      return this.start(config, remote, repository, upstream, digest, true);
    })();
    const key = fillKey(config, digest);
    this.active.set(key, pending);
    const forget = () => {
      if (this.active.get(key) === pending) this.active.delete(key);
    };
    pending.then((outcome) => (typeof outcome === 'string' ? forget() : outcome.published.then(forget, forget)), forget);
    return pending;
  }

  /** Links the blob if storage now holds it, giving the fresh claim back; undefined (claim kept) otherwise. */
  private async adoptAfterClaim(project: string, repository: string, digest: string, signal?: AbortSignal): Promise<number | undefined> {
    let size: number | undefined;
    try {
      size = await this.uploads.adoptStored(repository, digest, signal, project);
    } catch (err) {
      await this.releaseLease(digest);
      throw err;
    }
    if (size !== undefined) await this.releaseLease(digest);
    return size;
  }

  private async releaseLease(digest: string): Promise<void> {
    if (this.leased) await this.meta.proxyCaches.releaseFill(digest, this.owner).catch((err: unknown) => this.log.warn({ err, digest }, 'proxy cache: cannot release a fill lease; it expires'));
  }

  /** Stops fills in progress (their uploads are abandoned and purged later). */
  close(): void {
    this.stopping.abort(new Error('the registry is shutting down'));
  }

  /** Serves `entry` to one request: a reader of the fill, or the stored blob once published. */
  private async follow(entry: ActiveFill, repository: string, digest: string, options: ProxyBlobOptions): Promise<ProxiedBlob> {
    const body = options.whole ? undefined : entry.fill.reader();
    if (!body) {
      await entry.published;
      if ((await this.uploads.adoptStored(repository, digest, options.signal)) === undefined) throw new Error(`blob ${digest} was stored but is gone again`);
      return { kind: 'stored' };
    }
    // A request that joined another repository's fill links the blob into its own once stored.
    if (repository !== entry.repository) {
      void entry.published.then(
        () => this.uploads.adoptStored(repository, digest).catch((err: unknown) => this.log.warn({ err, repository, digest }, 'proxy cache: cannot link a fetched blob')),
        () => undefined,
      );
    }
    return { kind: 'stream', size: entry.fill.size, body };
  }

  /**
   * Starts fetching `digest` into storage, linked into `repository` once verified. With
   * `shared`, the fill is announced to this process's other requests and, on
   * PostgreSQL, holds the database lease (already claimed), which it renews until it ends.
   */
  private async start(config: ProxyCacheConfig, remote: RemoteRegistry, repository: string, upstream: string, digest: string, shared: boolean, signal?: AbortSignal): Promise<ActiveFill> {
    let heartbeat: NodeJS.Timeout | undefined;
    const release = async () => {
      clearInterval(heartbeat);
      if (shared) await this.releaseLease(digest);
    };
    let fill: BlobFill;
    try {
      const blob = await this.metrics.countUpstream('blob_get', () => remote.getBlob(upstream, digest, signal ? AbortSignal.any([signal, this.stopping.signal]) : this.stopping.signal));
      let budget: UploadBudget;
      try {
        // The limit read with the settings (up to SETTINGS_TTL_MS old) spares the first byte a query;
        // the linking transaction checks the current one. A body of unannounced length is held
        // to the budget while it streams, as a push of unknown length is.
        budget = await this.uploads.budgetFor(repository, digest, blob.size, config.storageLimit);
        budget.checkDeclared();
      } catch (err) {
        blob.body.destroy();
        throw err;
      }
      fill = new BlobFill(digest, blob.size, budget, blob.body, this.store, this.settings.spoolDir, this.stopping.signal, this.settings.minimumRate);
    } catch (err) {
      await release();
      throw upstreamFailure(err, { kind: 'blob', repository, reference: digest });
    }
    if (shared && this.leased) {
      heartbeat = setInterval(() => {
        this.meta.proxyCaches.renewFill(digest, this.owner, this.settings.leaseSeconds).catch((err: unknown) => this.log.warn({ err, digest }, 'proxy cache: cannot renew a fill lease'));
      }, (this.settings.leaseSeconds * 1000) / 3);
      heartbeat.unref();
    }
    const published = this.publish(fill, repository).finally(release);
    published.catch(() => undefined);
    return { fill, repository, published };
  }

  private async publish(fill: BlobFill, repository: string): Promise<void> {
    try {
      const result = await fill.done;
      await this.uploads.publishVerified(repository, result.uploadId, result.state, result.size, fill.digest, this.stopping.signal);
      rememberRecent(this.linkedByFills, `${repository}\u0000${fill.digest}`, true, REMEMBERED_LINKS);
      this.metrics.fills.inc({ outcome: 'stored' });
      this.metrics.filledBytes.inc(result.size);
      fill.published();
    } catch (err) {
      fill.fail(err as Error);
      if (err instanceof DigestMismatchError) {
        this.metrics.fills.inc({ outcome: 'digest_mismatch' });
        this.log.error({ repository, digest: fill.digest, actual: err.actual, size: err.size }, 'proxy cache: the upstream sent a blob that does not match its digest; refused');
      } else {
        this.metrics.fills.inc({ outcome: 'failed' });
        // Stopping, the fills still running fail with the database or the upstream going away: expected.
        if (this.stopping.signal.aborted) this.log.debug({ err, repository, digest: fill.digest }, 'proxy cache: blob fill stopped by the shutdown');
        else if ((err as { code?: unknown }).code === 'NAME_UNKNOWN') this.log.info({ repository, digest: fill.digest }, 'proxy cache: the project was deleted while the blob was being fetched; it was not linked');
        else this.log.warn({ err, repository, digest: fill.digest }, 'proxy cache: blob fill failed');
      }
      throw err;
    }
  }

  /**
   * Waits while another replica holds the fill lease of `digest`; true once storage
   * holds the blob and it is linked here, false when the lease is gone without it
   * (that fill failed: the caller claims it).
   */
  private async awaitOtherReplica(project: string, repository: string, digest: string, signal?: AbortSignal): Promise<boolean> {
    this.metrics.fills.inc({ outcome: 'waited' });
    for (;;) {
      // The lease is per digest: the fill waited for may be another project's, whose blob is not this project's to adopt.
      if ((await this.uploads.adoptStored(repository, digest, signal, project)) !== undefined) return true;
      if (!(await this.meta.proxyCaches.fillInProgress(digest))) return (await this.uploads.adoptStored(repository, digest, signal, project)) !== undefined;
      await sleep(this.settings.pollMs, undefined, signal ? { signal } : undefined);
    }
  }

}
