import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { JobKinds } from '../jobs/kinds.js';
import type { JobQueue } from '../jobs/queue.js';
import type { Sql } from '../metadata/sql.js';
import type { ActiveWebhook, NewDelivery, WebhookStore } from '../metadata/webhooks.js';
import type { ArtifactWebhookEvent, WebhookEvent, WebhookNotifications } from './events.js';
import { render } from './formats.js';

export interface NotifierSettings {
  /** Events are collected this long and written in one transaction. */
  batchWindowMs: number;
  /** Attempts per delivery before it is marked failed. */
  maxAttempts: number;
  /** host[:port] clients pull from, for Harbor's resource_url. */
  registryHost: string;
}

/** Past this many events waiting (the database is unreachable), new ones are dropped and counted. */
const MAX_BUFFERED = 10_000;
/** A full batch is written at once rather than at the end of the window. */
const FLUSH_AT = 500;

interface Pending {
  project: string;
  event: WebhookEvent;
}

/**
 * Where events enter: `notify` only appends to an in-memory buffer, so whoever calls it
 * (the push path's event listener, quota checks, replication, retention) never waits on
 * webhooks. Every `batchWindowMs` the buffer is turned into deliveries: one query for the
 * projects' enabled webhooks, pulls of one repository merged into one event, one body
 * rendered per webhook, and the deliveries and their jobs written in one transaction.
 */
export class WebhookNotifier implements WebhookNotifications {
  private buffer: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private dropped = 0;

  constructor(
    private readonly store: WebhookStore,
    private readonly sql: Sql,
    private readonly queue: () => JobQueue,
    private readonly settings: NotifierSettings,
    private readonly log: FastifyBaseLogger,
  ) {}

  notify(project: string, event: WebhookEvent): void {
    if (this.buffer.length >= MAX_BUFFERED) {
      if (this.dropped++ % 1000 === 0) this.log.warn({ dropped: this.dropped }, 'webhooks: event buffer full (database unreachable?); dropping events');
      return;
    }
    this.buffer.push({ project, event });
    if (this.buffer.length >= FLUSH_AT) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.settings.batchWindowMs);
  }

  /** Writes what is buffered now; resolves once it (and any earlier flush) is written. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.buffer;
    this.buffer = [];
    this.flushing = this.flushing.then(() =>
      batch.length === 0 ? undefined : this.dispatch(batch).catch((err: unknown) => this.log.warn({ err, events: batch.length }, 'webhooks: cannot queue deliveries; these events are lost')),
    );
    return this.flushing;
  }

  private async dispatch(batch: Pending[]): Promise<void> {
    const webhooks = await this.store.activeFor([...new Set(batch.map((p) => p.project))]);
    if (webhooks.length === 0) return;
    const byProject = new Map<string, ActiveWebhook[]>();
    for (const webhook of webhooks) byProject.set(webhook.project, [...(byProject.get(webhook.project) ?? []), webhook]);
    const deliveries: NewDelivery[] = [];
    for (const { project, event } of mergePulls(batch)) {
      const eventId = randomUUID();
      for (const webhook of byProject.get(project) ?? []) {
        if (!webhook.events.includes(event.type)) continue;
        deliveries.push(this.delivery(webhook, event, eventId));
      }
    }
    if (deliveries.length === 0) return;
    const queue = this.queue();
    await this.sql.transaction(async (tx) => {
      await this.store.addDeliveries(tx, deliveries);
      await queue.enqueueMany(
        deliveries.map((d) => ({ kind: JobKinds.webhookDelivery, payload: { deliveryId: d.id }, maxAttempts: this.settings.maxAttempts })),
        tx,
      );
    });
    queue.wake();
  }

  private delivery(webhook: ActiveWebhook, event: WebhookEvent, eventId: string): NewDelivery {
    const rendered = render(webhook.format, event, { eventId, project: webhook.project, projectPublic: webhook.projectPublic, webhook: webhook.name, registryHost: this.settings.registryHost });
    return { id: randomUUID(), webhookId: webhook.id, eventType: event.type, eventId, ...rendered };
  }
}

/** Pulls of one repository in a batch become one event listing every artifact pulled (deduplicated); the rest pass as they are. */
export function mergePulls(batch: readonly Pending[]): Pending[] {
  const out: Pending[] = [];
  const pulls = new Map<string, { pending: Pending; seen: Set<string> }>();
  for (const pending of batch) {
    const event = pending.event;
    if (event.type !== 'artifact.pulled') {
      out.push(pending);
      continue;
    }
    const key = `${pending.project}\0${event.repository}`;
    let merged = pulls.get(key);
    if (!merged) {
      const copy: ArtifactWebhookEvent = { ...event, artifacts: [] };
      merged = { pending: { project: pending.project, event: copy }, seen: new Set() };
      pulls.set(key, merged);
      out.push(merged.pending);
    }
    const target = merged.pending.event as ArtifactWebhookEvent;
    for (const artifact of event.artifacts) {
      const id = `${artifact.digest ?? ''}\0${artifact.tag ?? ''}\0${event.actor}`;
      if (merged.seen.has(id)) continue;
      merged.seen.add(id);
      target.artifacts.push(artifact);
    }
    // The merged event is as recent as its latest pull; its operator the first puller's.
    if (event.at > target.at) target.at = event.at;
  }
  return out;
}
