import { Counter, type Registry } from 'prom-client';
import { outcomeLabel } from './errors.js';

/** The proxy cache's Prometheus metrics. */
export class ProxyMetrics {
  readonly upstreamRequests: Counter<'request' | 'outcome'>;
  readonly staleServed: Counter<'project' | 'reason'>;
  readonly fills: Counter<'outcome'>;
  readonly filledBytes: Counter;
  readonly prefetches: Counter<'outcome'>;

  constructor(registry: Registry) {
    this.upstreamRequests = new Counter({
      name: 'wharf_proxy_upstream_requests_total',
      help: 'Requests proxy-cache projects made to their upstreams, by request (manifest_head, manifest_get, blob_get, blob_head, referrers) and outcome (ok, or the failure)',
      labelNames: ['request', 'outcome'],
      registers: [registry],
    });
    this.staleServed = new Counter({
      name: 'wharf_proxy_stale_served_total',
      help: 'Cached tags served without the upstream confirming them, because it failed (stale-if-error), by project and failure',
      labelNames: ['project', 'reason'],
      registers: [registry],
    });
    this.fills = new Counter({
      name: 'wharf_proxy_blob_fills_total',
      help: 'Blob fetches from upstreams, by outcome: stored, digest_mismatch, failed; joined: a request served by a fill already running here; waited: a request that waited for another replica\'s fill',
      labelNames: ['outcome'],
      registers: [registry],
    });
    for (const outcome of ['stored', 'digest_mismatch', 'failed', 'joined', 'waited']) this.fills.inc({ outcome }, 0);
    this.filledBytes = new Counter({ name: 'wharf_proxy_blob_fill_bytes_total', help: 'Bytes of blobs fetched from upstreams and stored', registers: [registry] });
    this.prefetches = new Counter({
      name: 'wharf_proxy_prefetched_blobs_total',
      help: 'Blobs of a manifest a client GOT, fetched before the client asked for them, by outcome: fetched; present: already stored, or being fetched for a client; failed; dropped: not tried (the queue was full, an earlier blob of the manifest failed, the upstream of its project is failing, or the project is no proxy any more)',
      labelNames: ['outcome'],
      registers: [registry],
    });
    for (const outcome of ['fetched', 'present', 'failed', 'dropped']) this.prefetches.inc({ outcome }, 0);
  }

  /** Runs one upstream request and counts it by its outcome. */
  async countUpstream<T>(request: string, call: () => Promise<T>): Promise<T> {
    try {
      const result = await call();
      this.upstreamRequests.inc({ request, outcome: 'ok' });
      return result;
    } catch (err) {
      this.upstreamRequests.inc({ request, outcome: outcomeLabel(err) });
      throw err;
    }
  }
}
