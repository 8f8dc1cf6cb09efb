import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ExecutionStore } from '../metadata/replication-executions.js';
import { ReplicationStore } from '../metadata/replication.js';
import type { RemoteTimeouts } from '../remote/index.js';
import { DEFAULT_REPLICATION_SETTINGS, ReplicationJobKinds, ReplicationService, type ReplicationSettings } from '../replication/executions.js';
import { ReplicationMetrics } from '../replication/metrics.js';
import { PolicyService } from '../replication/policies.js';
import { RegistryService } from '../replication/registries.js';
import { ReplicationScheduler } from '../replication/schedule.js';

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
    const scheduler = app.jobs.worker ? new ReplicationScheduler(store, app.jobs.queue, app.log.child({ component: 'replication-schedule' }), options.scheduleIntervalMs) : undefined;
    app.decorate('replication', { registries, policies, executions });
    app.addHook('onReady', async () => scheduler?.start());
    app.addHook('onClose', async () => {
      scheduler?.stop();
      await registries.close();
    });
  },
  { name: 'wharf-replication', dependencies: ['wharf-metadata', 'wharf-services', 'wharf-jobs', 'wharf-auth', 'wharf-metrics'] },
);
