import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ExecutionStore } from '../metadata/replication-executions.js';
import { ReplicationStore } from '../metadata/replication.js';
import type { RemoteTimeouts } from '../remote/index.js';
import { DEFAULT_REPLICATION_SETTINGS, ReplicationJobKinds, ReplicationService, type ReplicationSettings } from '../replication/executions.js';
import { ReplicationMetrics } from '../replication/metrics.js';
import { PolicyService } from '../replication/policies.js';
import { RegistryService } from '../replication/registries.js';
import type { PolicySpec } from '../replication/policy.js';
import { StoredScheduleChecker } from '../jobs/stored-schedules.js';

export interface ReplicationContext {
  registries: RegistryService;
  policies: PolicyService;
  /** Executions and tasks; `onExecutionFinished` is the hook for webhooks. */
  executions: ReplicationService;
}

declare module 'fastify' {
  interface FastifyInstance {
    replication: ReplicationContext;
  }
}

export interface ReplicationPluginOptions {
  settings?: Partial<ReplicationSettings>;
  timeouts?: Partial<RemoteTimeouts>;
  /** How often scheduled policies are looked at, in milliseconds. */
  scheduleIntervalMs?: number;
}

/** Scheduled policies are looked at this often: cron ticks are minutes, so a run starts at most this late. */
const SCHEDULE_CHECK_MS = 30_000;

/** Replication (docs/replication.md): remote registries, policies, and executions on the job queue. */
export default fp<ReplicationPluginOptions>(
  async function replicationPlugin(app: FastifyInstance, options) {
    const store = new ReplicationStore(app.metadata.sql);
    const settings = { ...DEFAULT_REPLICATION_SETTINGS, ...options.settings };
    const registries = new RegistryService(store, app.auth.audit, options.timeouts);
    const executions = new ReplicationService({
      store,
      executions: new ExecutionStore(app.metadata.sql),
      registries,
      queue: app.jobs.queue,
      local: { meta: app.metadata, blobs: app.services.blobs, uploads: app.services.uploads, manifests: app.services.manifests, listings: app.services.listings, events: app.services.events },
      audit: app.auth.audit,
      metrics: new ReplicationMetrics(app.metrics),
      log: app.log.child({ component: 'replication' }),
      settings,
    });
    const policies = new PolicyService(store, app.auth.audit, (id) => executions.stopAll(id));
    for (const [kind, handler] of executions.handlers()) app.jobs.register(kind, handler);
    // Tasks are mostly waiting on the network and the destination: several run at once.
    app.jobs.addWorkers([ReplicationJobKinds.task], Math.max(0, settings.parallelTasks - 1));
    app.services.events.subscribe((event) => executions.handleEvent(event));
    const scheduler = app.jobs.worker
      ? new StoredScheduleChecker(
          async () => (await store.allPolicies<PolicySpec>()).flatMap((p) => (p.spec.enabled && p.spec.trigger.type === 'scheduled' && p.spec.trigger.cron ? [{ key: p.id, schedule: p.spec.trigger.cron }] : [])),
          async (policyId, tick) =>
            void (await app.jobs.queue.enqueue({ kind: ReplicationJobKinds.execution, payload: { policyId }, dedupeKey: `replication-schedule:${policyId}@${tick.toISOString()}`, maxAttempts: 10 })),
          options.scheduleIntervalMs ?? SCHEDULE_CHECK_MS,
          app.log.child({ component: 'replication-schedule' }),
        )
      : undefined;
    app.decorate('replication', { registries, policies, executions });
    app.addHook('onReady', async () => scheduler?.start());
    app.addHook('onClose', async () => {
      scheduler?.stop();
      await registries.close();
    });
  },
  { name: 'wharf-replication', dependencies: ['wharf-metadata', 'wharf-services', 'wharf-jobs', 'wharf-auth', 'wharf-metrics'] },
);
