import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { WebhooksConfig } from '../config.js';
import type { ArtifactEvent } from '../events/artifact-events.js';
import { WebhookStore } from '../metadata/webhooks.js';
import type { QuotaNotice } from '../services/quota.js';
import { DeliveryHandler } from '../webhooks/delivery.js';
import type { WebhookEvent, WebhookNotifications } from '../webhooks/events.js';
import { WebhookNotifier } from '../webhooks/notifier.js';
import { WebhookService } from '../webhooks/service.js';

export interface WebhooksContext {
  /** `notify(project, event)`: the one entry for events from any module (replication, retention, scanning). */
  notifications: WebhookNotifications;
  service: WebhookService;
  /** The job handler for JobKinds.webhookDelivery (registered by the jobs plugin). */
  deliveryHandler: DeliveryHandler;
  /** Writes the buffered events now (tests, shutdown). */
  flush(): Promise<void>;
  /** Deletes finished deliveries older than `seconds` from the log (maintenance job). */
  pruneDeliveries(seconds: number): Promise<number>;
}

declare module 'fastify' {
  interface FastifyInstance {
    webhooks: WebhooksContext;
  }
}

/** The webhook events an artifact event stands for: a push that created or moved a tag is also tag.created. */
export function webhookEventsOf(event: ArtifactEvent): WebhookEvent[] {
  const artifact = {
    ...(event.digest && { digest: event.digest }),
    ...(event.tag && { tag: event.tag }),
    ...(event.mediaType && { mediaType: event.mediaType }),
    ...(event.size !== undefined && { size: event.size }),
  };
  const base = { repository: event.repository, artifacts: [artifact], actor: event.actor, at: event.at };
  const type = event.type === 'pushed' ? 'artifact.pushed' : event.type === 'pulled' ? 'artifact.pulled' : 'artifact.deleted';
  return event.tagCreated ? [{ type, ...base }, { type: 'tag.created', ...base }] : [{ type, ...base }];
}

function quotaEventOf(notice: QuotaNotice, warningPercent: number): WebhookEvent {
  return {
    type: notice.kind === 'exceeded' ? 'quota.exceeded' : 'quota.warning',
    repository: notice.repository,
    ...(notice.digest && { digest: notice.digest }),
    limitBytes: notice.limit,
    usedBytes: notice.used,
    neededBytes: notice.needed,
    warningPercent,
    actor: 'wharf',
    at: new Date(),
  };
}

/**
 * Webhooks: policies (management API), the notifier that turns events into queued
 * deliveries, and the delivery job handler. Artifact events and quota notices are
 * subscribed here; other modules call `app.webhooks.notifications.notify`.
 */
export default fp<{ webhooks: WebhooksConfig }>(
  async function webhooksPlugin(app: FastifyInstance, options) {
    const config = options.webhooks;
    const store = new WebhookStore(app.metadata.sql);
    const notifier = new WebhookNotifier(
      store,
      app.metadata.sql,
      () => app.jobs.queue,
      { batchWindowMs: config.batchWindowMs, maxAttempts: config.maxAttempts, registryHost: config.registryHost ?? 'localhost' },
      app.log.child({ component: 'webhooks' }),
    );
    const deliveryHandler = new DeliveryHandler(store, { timeoutMs: config.timeoutMs, allowPrivateTargets: config.allowPrivateTargets, retryDelaySeconds: config.retryDelaySeconds });
    app.services.events.subscribe((event) => {
      for (const webhookEvent of webhookEventsOf(event)) notifier.notify(event.project, webhookEvent);
    });
    app.services.quota.observe({ warningPercent: config.quotaWarningPercent, notice: (notice) => notifier.notify(notice.project, quotaEventOf(notice, config.quotaWarningPercent)) });
    app.decorate('webhooks', {
      notifications: notifier,
      service: new WebhookService(app.metadata, store, app.auth.audit, config.allowPrivateTargets),
      deliveryHandler,
      flush: () => notifier.flush(),
      pruneDeliveries: (seconds) => store.prune(seconds),
    });
    // Before the worker and the database close: queue what is buffered, then drop open connections.
    app.addHook('preClose', async () => notifier.flush());
    app.addHook('onClose', async () => deliveryHandler.close());
  },
  { name: 'wharf-webhooks', dependencies: ['wharf-metadata', 'wharf-services', 'wharf-auth'] },
);
