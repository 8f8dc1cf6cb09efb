import { randomUUID } from 'node:crypto';
import type { Queryable, Sql } from './sql.js';

/** A webhook policy as stored, its credentials included (only delivery reads them). */
export interface Webhook {
  id: string;
  projectId: string;
  name: string;
  url: string;
  format: 'harbor' | 'cloudevents';
  events: string[];
  authHeader: string | null;
  secret: string | null;
  enabled: boolean;
  managedBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** What is written; `authHeader`/`secret` undefined keeps the stored value, null clears it. */
export interface WebhookRecord {
  url: string;
  format: 'harbor' | 'cloudevents';
  events: string[];
  authHeader?: string | null;
  secret?: string | null;
  enabled: boolean;
  managedBy?: string | null;
}

export type DeliveryStatus = 'pending' | 'retrying' | 'delivered' | 'failed';

export interface Delivery {
  id: string;
  seq: number;
  webhookId: string;
  eventType: string;
  eventId: string;
  status: DeliveryStatus;
  attempts: number;
  responseStatus: number | null;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewDelivery {
  id: string;
  webhookId: string;
  eventType: string;
  eventId: string;
  contentType: string;
  body: string;
}

/** A delivery with what sending it takes: its body and its webhook's target and credentials. */
export interface DeliveryToSend {
  delivery: Delivery;
  contentType: string;
  body: string;
  webhook: Webhook;
}

/** An enabled webhook with what rendering needs from its project. */
export interface ActiveWebhook extends Webhook {
  project: string;
  projectPublic: boolean;
}

interface WebhookRow {
  id: string;
  project_id: string;
  name: string;
  url: string;
  format: 'harbor' | 'cloudevents';
  events: string[];
  auth_header: string | null;
  secret: string | null;
  enabled: boolean;
  managed_by: string | null;
  created_at: Date;
  updated_at: Date;
}

interface DeliveryRow {
  id: string;
  seq: string | number;
  webhook_id: string;
  event_type: string;
  event_id: string;
  status: DeliveryStatus;
  attempts: number;
  response_status: number | null;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
}

const toWebhook = (r: WebhookRow): Webhook => ({
  id: r.id,
  projectId: r.project_id,
  name: r.name,
  url: r.url,
  format: r.format,
  events: r.events,
  authHeader: r.auth_header,
  secret: r.secret,
  enabled: r.enabled,
  managedBy: r.managed_by,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const toDelivery = (r: DeliveryRow): Delivery => ({
  id: r.id,
  seq: Number(r.seq),
  webhookId: r.webhook_id,
  eventType: r.event_type,
  eventId: r.event_id,
  status: r.status,
  attempts: r.attempts,
  responseStatus: r.response_status,
  lastError: r.last_error,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const WEBHOOK_COLUMNS = 'w.id, w.project_id, w.name, w.url, w.format, w.events, w.auth_header, w.secret, w.enabled, w.managed_by, w.created_at, w.updated_at';
const DELIVERY_COLUMNS = 'd.id, d.seq, d.webhook_id, d.event_type, d.event_id, d.status, d.attempts, d.response_status, d.last_error, d.created_at, d.updated_at';

/** Webhook policies per project and their delivery log. */
export class WebhookStore {
  constructor(private readonly sql: Sql) {}

  /** Ordered by name; `after` is the last name of the previous page. */
  async list(projectId: string, limit: number, after?: string): Promise<Webhook[]> {
    const rows = await this.sql.query<WebhookRow>(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks w WHERE w.project_id = $1 AND w.name > $2 ORDER BY w.name LIMIT $3`, [projectId, after ?? '', limit]);
    return rows.map(toWebhook);
  }

  async get(projectId: string, name: string): Promise<Webhook | undefined> {
    const rows = await this.sql.query<WebhookRow>(`SELECT ${WEBHOOK_COLUMNS} FROM webhooks w WHERE w.project_id = $1 AND w.name = $2`, [projectId, name]);
    return rows[0] && toWebhook(rows[0]);
  }

  /**
   * Creates or updates by name; `created` tells which, `changed` whether anything was
   * written (a declarative caller re-sends the same policy on every pass).
   */
  async put(projectId: string, name: string, record: WebhookRecord): Promise<{ webhook: Webhook; created: boolean; changed: boolean }> {
    const rows = await this.sql.query<WebhookRow & { inserted: boolean }>(
      `INSERT INTO webhooks AS w (id, project_id, name, url, format, events, auth_header, secret, enabled, managed_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (project_id, name) DO UPDATE SET
         url = EXCLUDED.url, format = EXCLUDED.format, events = EXCLUDED.events, enabled = EXCLUDED.enabled,
         auth_header = CASE WHEN $11 THEN EXCLUDED.auth_header ELSE w.auth_header END,
         secret = CASE WHEN $12 THEN EXCLUDED.secret ELSE w.secret END,
         managed_by = CASE WHEN $13 THEN EXCLUDED.managed_by ELSE w.managed_by END,
         updated_at = now()
       WHERE (w.url, w.format, w.events, w.enabled) IS DISTINCT FROM (EXCLUDED.url, EXCLUDED.format, EXCLUDED.events, EXCLUDED.enabled)
          OR ($11 AND w.auth_header IS DISTINCT FROM EXCLUDED.auth_header)
          OR ($12 AND w.secret IS DISTINCT FROM EXCLUDED.secret)
          OR ($13 AND w.managed_by IS DISTINCT FROM EXCLUDED.managed_by)
       RETURNING ${WEBHOOK_COLUMNS}, (xmax = 0) AS inserted`,
      [
        randomUUID(),
        projectId,
        name,
        record.url,
        record.format,
        record.events,
        record.authHeader ?? null,
        record.secret ?? null,
        record.enabled,
        record.managedBy ?? null,
        record.authHeader !== undefined,
        record.secret !== undefined,
        record.managedBy !== undefined,
      ],
    );
    if (rows[0]) return { webhook: toWebhook(rows[0]), created: rows[0].inserted, changed: true };
    return { webhook: (await this.get(projectId, name))!, created: false, changed: false };
  }

  async delete(projectId: string, name: string): Promise<boolean> {
    const rows = await this.sql.query('DELETE FROM webhooks WHERE project_id = $1 AND name = $2 RETURNING id', [projectId, name]);
    return rows.length > 0;
  }

  /** The enabled webhooks of these projects (one query for a whole batch of events). */
  async activeFor(projects: readonly string[]): Promise<ActiveWebhook[]> {
    if (projects.length === 0) return [];
    const rows = await this.sql.query<WebhookRow & { project: string; project_public: boolean }>(
      `SELECT ${WEBHOOK_COLUMNS}, p.name AS project, p.public AS project_public
       FROM webhooks w JOIN projects p ON p.id = w.project_id
       WHERE p.name = ANY($1::text[]) AND w.enabled ORDER BY w.name`,
      [projects],
    );
    return rows.map((r) => ({ ...toWebhook(r), project: r.project, projectPublic: r.project_public }));
  }

  /** Writes a batch of deliveries in one statement. */
  async addDeliveries(db: Queryable, deliveries: readonly NewDelivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    await db.query(
      `INSERT INTO webhook_deliveries (id, webhook_id, event_type, event_id, content_type, body)
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[])`,
      [deliveries.map((d) => d.id), deliveries.map((d) => d.webhookId), deliveries.map((d) => d.eventType), deliveries.map((d) => d.eventId), deliveries.map((d) => d.contentType), deliveries.map((d) => d.body)],
    );
  }

  async deliveryToSend(id: string): Promise<DeliveryToSend | undefined> {
    const rows = await this.sql.query<DeliveryRow & WebhookRow & { content_type: string; body: string; w_id: string; w_created_at: Date; w_updated_at: Date }>(
      `SELECT ${DELIVERY_COLUMNS}, d.content_type, d.body, w.id AS w_id, w.project_id, w.name, w.url, w.format, w.events, w.auth_header, w.secret, w.enabled, w.managed_by,
              w.created_at AS w_created_at, w.updated_at AS w_updated_at
       FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1`,
      [id],
    );
    const r = rows[0];
    if (!r) return undefined;
    return { delivery: toDelivery(r), contentType: r.content_type, body: r.body, webhook: toWebhook({ ...r, id: r.w_id, created_at: r.w_created_at, updated_at: r.w_updated_at }) };
  }

  async recordAttempt(id: string, outcome: { status: DeliveryStatus; attempts: number; responseStatus: number | null; error: string | null }): Promise<void> {
    await this.sql.query('UPDATE webhook_deliveries SET status = $2, attempts = $3, response_status = $4, last_error = $5, updated_at = now() WHERE id = $1', [
      id,
      outcome.status,
      outcome.attempts,
      outcome.responseStatus,
      outcome.error,
    ]);
  }

  /** Newest first; `before` is the `seq` of the previous page's last entry. */
  async deliveries(webhookId: string, limit: number, before?: number): Promise<Delivery[]> {
    const rows = await this.sql.query<DeliveryRow>(
      `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.webhook_id = $1 AND ($2::bigint IS NULL OR d.seq < $2) ORDER BY d.seq DESC LIMIT $3`,
      [webhookId, before ?? null, limit],
    );
    return rows.map(toDelivery);
  }

  /** Keeps the log bounded: deletes finished deliveries older than `seconds`. */
  async prune(seconds: number): Promise<number> {
    const rows = await this.sql.query(`DELETE FROM webhook_deliveries WHERE status IN ('delivered', 'failed') AND updated_at < now() - make_interval(secs => $1) RETURNING id`, [seconds]);
    return rows.length;
  }
}
