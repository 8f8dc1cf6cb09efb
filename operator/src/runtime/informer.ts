// A list+watch informer: keeps a local cache of one resource type and tells handlers about
// changes. It lists, then watches from the list's resourceVersion with bookmarks; when the
// apiserver answers 410 Gone (the version fell out of its window) it lists again; on any other
// error it reconnects with exponential backoff. It never throws out of its loop and never ends
// the process: the only way to stop it is the AbortSignal given to run().
import type { Logger } from 'pino';
import type { KubeClient } from '../kube/client.js';
import { ApiError, isGone } from '../kube/errors.js';
import { resourcePath, type ResourceType } from '../kube/resources.js';
import { objectKey, type KubeObject } from '../kube/types.js';
import { Backoff, sleep } from './backoff.js';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export type Handler<T> = (type: EventType, obj: T, old?: T) => void;

export interface InformerOptions {
  resource: ResourceType;
  namespace?: string;
  labelSelector?: string;
  /**
   * Metadata only: the apiserver sends PartialObjectMetadata (never a Secret's data), and the
   * cache keeps name, namespace, uid, resourceVersion, generation, labels, ownerReferences and
   * deletionTimestamp, dropping annotations (kubectl's last-applied copy can hold the data) and
   * managedFields. For objects the operator only needs to notice changing.
   */
  metadataOnly?: boolean;
  /** A field selector, e.g. metadata.name=default (to watch one name in every namespace). */
  fieldSelector?: string;
  /** Server-side watch timeout; the client reconnects after it. Randomised within [t, 2t). */
  watchTimeoutSeconds?: number;
  backoff?: Backoff;
}

export interface InformerStats {
  lists: number;
  watches: number;
  relistsOnGone: number;
  errors: number;
}

export class Informer<T extends KubeObject = KubeObject> {
  private readonly store = new Map<string, T>();
  private readonly handlers: Handler<T>[] = [];
  private syncedResolve!: () => void;
  private readonly syncedPromise = new Promise<void>((r) => (this.syncedResolve = r));
  private resourceVersion = '';
  private hasSynced = false;
  readonly stats: InformerStats = { lists: 0, watches: 0, relistsOnGone: 0, errors: 0 };

  constructor(
    private readonly client: KubeClient,
    private readonly options: InformerOptions,
    private readonly log: Logger,
  ) {}

  get resource(): ResourceType {
    return this.options.resource;
  }

  get synced(): boolean {
    return this.hasSynced;
  }

  /** The resourceVersion the next watch resumes from. */
  get lastResourceVersion(): string {
    return this.resourceVersion;
  }

  onEvent(handler: Handler<T>): void {
    this.handlers.push(handler);
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(namespace?: string): T[] {
    const all = [...this.store.values()];
    return namespace ? all.filter((o) => o.metadata.namespace === namespace) : all;
  }

  waitForSync(): Promise<void> {
    return this.syncedPromise;
  }

  /**
   * Forces the next watch to resume from `resourceVersion` (tests use it to make the apiserver
   * answer 410 Gone) and drops the current watch connection.
   */
  resumeFrom(resourceVersion: string): void {
    this.resourceVersion = resourceVersion;
    this.currentWatch?.abort();
  }

  private currentWatch?: AbortController;

  async run(signal: AbortSignal): Promise<void> {
    const backoff = this.options.backoff ?? new Backoff(500, 30_000);
    let needList = true;
    while (!signal.aborted) {
      try {
        if (needList) {
          await this.relist(signal);
          needList = false;
        }
        const events = await this.watchOnce(signal);
        if (events > 0) backoff.reset();
      } catch (err) {
        if (signal.aborted) break;
        if (isGone(err)) {
          this.stats.relistsOnGone++;
          this.log.info({ resource: this.options.resource.plural, resourceVersion: this.resourceVersion }, 'watch expired (410 Gone); relisting');
          needList = true;
          continue;
        }
        this.stats.errors++;
        const delay = backoff.next();
        this.log.warn({ resource: this.options.resource.plural, err: errorText(err), retryInMs: delay }, 'list/watch failed; retrying');
        await sleep(delay, signal);
      }
    }
  }

  private baseQuery(): Record<string, string | undefined> {
    return { labelSelector: this.options.labelSelector, fieldSelector: this.options.fieldSelector };
  }

  /** The Accept header of lists (`List`) and watches (single objects) when caching metadata only. */
  private accept(list: boolean): string | undefined {
    return this.options.metadataOnly ? `application/json;as=PartialObjectMetadata${list ? 'List' : ''};g=meta.k8s.io;v=v1` : undefined;
  }

  /** What the cache keeps of an object from the apiserver. */
  private cached(obj: T): T {
    const r = this.options.resource;
    const apiVersion = r.group ? `${r.group}/${r.version}` : r.version;
    if (!this.options.metadataOnly) {
      // List items carry no apiVersion/kind; fill them in so cached objects are complete.
      obj.apiVersion ??= apiVersion;
      obj.kind ??= r.kind;
      return obj;
    }
    const { name, namespace, uid, resourceVersion, generation, labels, ownerReferences, deletionTimestamp } = obj.metadata;
    const metadata = { name, namespace, uid, resourceVersion, generation, labels, ownerReferences, deletionTimestamp };
    for (const k of Object.keys(metadata) as (keyof typeof metadata)[]) if (metadata[k] === undefined) delete metadata[k];
    return { apiVersion, kind: r.kind, metadata } as T;
  }

  private async relist(signal: AbortSignal): Promise<void> {
    this.stats.lists++;
    const list = await this.client.list<T>(this.options.resource, this.options.namespace, this.baseQuery(), signal, this.accept(true));
    const seen = new Set<string>();
    for (const item of list.items) {
      const obj = this.cached(item);
      const key = objectKey(obj);
      seen.add(key);
      const old = this.store.get(key);
      this.store.set(key, obj);
      if (!old) this.emit('ADDED', obj);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.emit('MODIFIED', obj, old);
    }
    for (const [key, old] of [...this.store]) {
      if (!seen.has(key)) {
        this.store.delete(key);
        this.emit('DELETED', old);
      }
    }
    this.resourceVersion = list.metadata.resourceVersion ?? '';
    if (!this.hasSynced) {
      this.hasSynced = true;
      this.syncedResolve();
    }
  }

  /** One watch connection; resolves with the number of events seen when the server closes it. */
  private async watchOnce(signal: AbortSignal): Promise<number> {
    this.stats.watches++;
    const timeout = this.options.watchTimeoutSeconds ?? 300;
    const ctl = new AbortController();
    this.currentWatch = ctl;
    const onAbort = () => ctl.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    let events = 0;
    try {
      const res = await this.client.open({
        method: 'GET',
        path: resourcePath(this.options.resource, this.options.namespace),
        query: {
          ...this.baseQuery(),
          watch: 1,
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: timeout + Math.floor(Math.random() * timeout),
        },
        signal: ctl.signal,
        ...(this.options.metadataOnly && { accept: this.accept(false) }),
      });
      if (res.statusCode !== 200) {
        let text = '';
        for await (const chunk of res) text += String(chunk);
        let status: { reason?: string; message?: string } = {};
        try {
          status = JSON.parse(text) as typeof status;
        } catch {
          /* not JSON */
        }
        throw new ApiError(res.statusCode ?? 0, status.reason ?? 'Unknown', `watch ${this.options.resource.plural}: ${res.statusCode} ${status.message ?? text}`);
      }
      // A silent connection (no event, no bookmark) for too long is treated as dead.
      const idleLimitMs = (2 * timeout + 60) * 1000;
      let idleTimer = setTimeout(() => ctl.abort(), idleLimitMs);
      let buffered = '';
      try {
        for await (const chunk of res) {
          clearTimeout(idleTimer);
          idleTimer = setTimeout(() => ctl.abort(), idleLimitMs);
          buffered += String(chunk);
          let nl: number;
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (line) {
              this.handleWatchEvent(JSON.parse(line) as { type: string; object: T & { code?: number; reason?: string; message?: string } });
              events++;
            }
          }
        }
      } finally {
        clearTimeout(idleTimer);
      }
      return events;
    } catch (err) {
      // resumeFrom() aborts the connection on purpose: resume at once from the new version.
      if (ctl.signal.aborted && !signal.aborted) return events;
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.currentWatch = undefined;
    }
  }

  private handleWatchEvent(ev: { type: string; object: T & { code?: number; reason?: string; message?: string } }): void {
    if (ev.type === 'ERROR') {
      const status = ev.object;
      throw new ApiError(status.code ?? 0, status.reason ?? 'Unknown', `watch ${this.options.resource.plural}: ${status.message ?? 'error event'}`);
    }
    if (ev.object.metadata?.resourceVersion) this.resourceVersion = ev.object.metadata.resourceVersion;
    if (ev.type === 'BOOKMARK') return;
    const obj = this.cached(ev.object);
    const key = objectKey(obj);
    const old = this.store.get(key);
    if (ev.type === 'DELETED') {
      this.store.delete(key);
      this.emit('DELETED', obj);
    } else {
      this.store.set(key, obj);
      this.emit(old ? 'MODIFIED' : 'ADDED', obj, old);
    }
  }

  private emit(type: EventType, obj: T, old?: T): void {
    for (const h of this.handlers) {
      try {
        h(type, obj, old);
      } catch (err) {
        this.log.error({ err: errorText(err) }, 'informer handler failed');
      }
    }
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
