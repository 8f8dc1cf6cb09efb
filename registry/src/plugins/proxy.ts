import { randomBytes } from 'node:crypto';
import { readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { DEFAULT_PREFETCH } from '../config.js';
import { DEFAULT_REMOTE_TIMEOUTS, type RemoteTimeouts } from '../remote/index.js';
import { ProxyMetrics } from '../proxy/metrics.js';
import { ProxyService } from '../proxy/service.js';

declare module 'fastify' {
  interface FastifyInstance {
    proxy: ProxyService;
  }
}

export interface ProxyPluginOptions {
  /** Where blobs arriving from upstreams are spooled for the clients that follow them; a directory of this process is made inside. */
  spoolDir?: string;
  timeouts?: Partial<RemoteTimeouts>;
  /** Fill lease in the database, in seconds (tests shorten it). */
  fillLeaseSeconds?: number;
  /** Blobs fetched ahead of clients at once; DEFAULT_PREFETCH unless set, 0: off. */
  prefetch?: number;
  /** After a failed prefetch, how long until a manifest's next GET tries again (tests shorten it). */
  prefetchRetryMs?: number;
}

/**
 * What an upstream must send of a blob in a body idle timeout (30 s by default) while a fill
 * waits for it, in at least one of every two in a row: 64 KiB, about 2 KiB/s, far below any
 * working link.
 */
const FILL_MINIMUM_BYTES = 64 * 1024;

/** A process's spool directory untouched this long belongs to a process that died (a fill creates a file in it). */
const STALE_SPOOL_MS = 24 * 3600 * 1000;

/** Removes spool directories that processes which died left behind. */
async function sweepSpool(base: string): Promise<void> {
  const entries = await readdir(base, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const path = join(base, entry.name);
    const info = await stat(path).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > STALE_SPOOL_MS) await rm(path, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Pull-through caching for proxy-cache projects (registry/src/proxy). */
export default fp<ProxyPluginOptions>(
  async function proxyPlugin(app: FastifyInstance, options) {
    const base = options.spoolDir ?? join(tmpdir(), 'wharf-proxy-spool');
    await sweepSpool(base);
    const spoolDir = join(base, `${process.pid}-${randomBytes(4).toString('hex')}`);
    const proxy = new ProxyService({
      meta: app.metadata,
      store: app.blobStore,
      manifests: app.services.manifests,
      uploads: app.services.uploads,
      audit: app.auth.audit,
      metrics: new ProxyMetrics(app.metrics),
      log: app.log.child({ component: 'proxy' }),
      fills: {
        spoolDir,
        leaseSeconds: options.fillLeaseSeconds ?? 30,
        pollMs: 200,
        minimumRate: { windowMs: options.timeouts?.bodyIdleMs ?? DEFAULT_REMOTE_TIMEOUTS.bodyIdleMs, bytes: FILL_MINIMUM_BYTES },
      },
      prefetch: { limit: options.prefetch ?? DEFAULT_PREFETCH, ...(options.prefetchRetryMs !== undefined && { retryMs: options.prefetchRetryMs }) },
      ...(options.timeouts && { timeouts: options.timeouts }),
    });
    app.decorate('proxy', proxy);
    app.addHook('onClose', async () => {
      await proxy.close();
      await rm(spoolDir, { recursive: true, force: true });
    });
  },
  { name: 'wharf-proxy', dependencies: ['wharf-metadata', 'wharf-storage', 'wharf-services', 'wharf-metrics', 'wharf-auth'] },
);
