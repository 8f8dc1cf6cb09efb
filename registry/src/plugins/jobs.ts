import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { JobsConfig } from '../config.js';
import { parseCron } from '../jobs/cron.js';
import { GarbageCollector } from '../jobs/gc.js';
import { JobKinds } from '../jobs/kinds.js';
import { JobMetrics } from '../jobs/metrics.js';
import { JobQueue } from '../jobs/queue.js';
import { CronScheduler, type ScheduledJob } from '../jobs/scheduler.js';
import { UploadPurger } from '../jobs/upload-purge.js';
import { JobWorker, type JobHandler } from '../jobs/worker.js';
import { GcStore } from '../metadata/gc.js';
import { JobStore } from '../metadata/jobs.js';
import { GcService } from '../services/gc.js';
import { lifecycleJobs } from '../lifecycle/setup.js';
import type { LifecycleService } from '../services/lifecycle.js';
import type { PullTimeRecorder } from '../lifecycle/pull-times.js';

export interface JobsContext {
  queue: JobQueue;
  gc: GcService;
  /** Retention and immutability policies, retention runs; onRetentionFinished is the webhook seam. */
  lifecycle: LifecycleService;
  pullTimes: PullTimeRecorder;
  /** Absent when this process runs no worker (`jobs.worker: false`). */
  worker?: JobWorker;
  /** Adds the handler of a job kind (plugins registered after this one, before the app is ready). */
  register(kind: string, handler: JobHandler): void;
  /**
   * Runs `count` more workers in this process for the registered `kinds` only, so that
   * jobs of those kinds run side by side (as on more replicas); none without a worker.
   */
  addWorkers(kinds: readonly string[], count: number): void;
}

declare module 'fastify' {
  interface FastifyInstance {
    jobs: JobsContext;
  }
}

/** Finished jobs are kept this long for their status and reports. */
const JOB_RETENTION_SECONDS = 7 * 24 * 3600;

export interface JobsPluginOptions {
  jobs: JobsConfig;
  /** Lease length and retry delay; tests shorten them. */
  leaseSeconds?: number;
  retryDelaySeconds?: number;
}

/**
 * The job queue in the metadata database, this process's worker and cron scheduler,
 * and the job handlers: garbage collection and maintenance (upload purge, pruning
 * old jobs). The worker stops before the database closes, handing a running job back.
 */
export default fp<JobsPluginOptions>(
  async function jobsPlugin(app: FastifyInstance, options) {
    const config = options.jobs;
    const store = new JobStore(app.metadata.sql);
    const queue = new JobQueue(store);
    const metrics = new JobMetrics(app.metrics, () => store.counts());
    const purger = new UploadPurger(app.metadata.uploads, app.blobStore);
    const collector = new GarbageCollector(app.metadata.sql, new GcStore(app.metadata.sql), app.blobStore, purger, app.log.child({ component: 'gc' }), (project) =>
      app.metadata.lifecycle.immutabilityPolicy(project),
    );

    const handlers = new Map<string, JobHandler>([
      [
        JobKinds.gc,
        {
          exclusive: true,
          async run(payload, context) {
            const report = await collector.run(
              { dryRun: payload.dryRun === true, deleteUntagged: payload.deleteUntagged === true, graceSeconds: config.gc.graceSeconds, uploadPurgeSeconds: config.uploads.purgeAfterSeconds },
              context.signal,
              context.progress,
            );
            metrics.recordGc(report);
            // Deleted manifests and tags must not linger in this process's reference cache.
            if (report.manifests.deleted > 0 || report.accessoryTags.deleted > 0) app.services.references?.clear();
            app.log.info({ job: context.job.id, dryRun: report.dryRun, bytesFreed: report.bytesFreed, blobs: report.blobs.deleted, manifests: report.manifests.deleted, accessoryTags: report.accessoryTags.deleted }, 'garbage collection finished');
            return report;
          },
        },
      ],
      [
        JobKinds.maintenance,
        {
          exclusive: true,
          async run(_payload, context) {
            const uploads = await purger.run(new Date(Date.now() - config.uploads.purgeAfterSeconds * 1000), false, context.signal);
            metrics.recordPurge(uploads.sessions, uploads.orphans);
            return { uploads, jobsPruned: await store.prune(JOB_RETENTION_SECONDS), proxyFillLeasesPruned: await app.metadata.proxyCaches.pruneFills(), webhookDeliveriesPruned: await app.webhooks.pruneDeliveries(JOB_RETENTION_SECONDS) };
          },
        },
      ],
      [JobKinds.webhookDelivery, app.webhooks.deliveryHandler],
    ]);
    const lifecycle = lifecycleJobs(app, queue, config);
    handlers.set(lifecycle.kind, lifecycle.handler);

    let worker: JobWorker | undefined;
    let scheduler: CronScheduler | undefined;
    const extraWorkers: JobWorker[] = [];
    const newWorker = (forHandlers: ReadonlyMap<string, JobHandler>) => {
      const created = new JobWorker(store, forHandlers, {
        pollIntervalMs: config.pollIntervalMs,
        log: app.log.child({ component: 'jobs' }),
        onOutcome: metrics.recordOutcome,
        ...(options.leaseSeconds !== undefined && { leaseSeconds: options.leaseSeconds }),
        ...(options.retryDelaySeconds !== undefined && { retryDelaySeconds: options.retryDelaySeconds }),
      });
      queue.onEnqueued(() => created.wake());
      return created;
    };
    const addWorkers = (kinds: readonly string[], count: number) => {
      if (!config.worker) return;
      const subset = new Map(kinds.map((kind) => [kind, handlers.get(kind)!] as const));
      for (let i = 0; i < count; i++) extraWorkers.push(newWorker(subset));
    };
    if (config.worker) {
      worker = newWorker(handlers);
      const entries: ScheduledJob[] = [];
      if (config.gc.schedule) entries.push({ kind: JobKinds.gc, schedule: parseCron(config.gc.schedule), payload: { dryRun: false, deleteUntagged: config.gc.deleteUntagged } });
      if (config.uploads.purgeSchedule) entries.push({ kind: JobKinds.maintenance, schedule: parseCron(config.uploads.purgeSchedule), payload: {} });
      scheduler = new CronScheduler(entries, async (kind, payload, dedupeKey) => void (await queue.enqueue({ kind, payload, dedupeKey })), app.log.child({ component: 'scheduler' }));
    }

    const register = (kind: string, handler: JobHandler) => void handlers.set(kind, handler);
    app.decorate('jobs', { queue, gc: new GcService(queue, app.auth.audit), lifecycle: lifecycle.service, pullTimes: lifecycle.recorder, ...(worker && { worker }), register, addWorkers });
    app.addHook('onReady', async () => {
      worker?.start();
      for (const extra of extraWorkers) extra.start();
      scheduler?.start();
      lifecycle.start();
    });
    app.addHook('onClose', async () => {
      scheduler?.stop();
      await Promise.all([worker?.stop(), ...extraWorkers.map((extra) => extra.stop())]);
      await lifecycle.stop();
    });
  },
  { name: 'wharf-jobs', dependencies: ['wharf-metadata', 'wharf-storage', 'wharf-auth', 'wharf-metrics', 'wharf-services', 'wharf-webhooks'] },
);
