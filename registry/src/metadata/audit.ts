import { toStorableText } from '../storable-text.js';
import type { Sql } from './sql.js';

export interface AuditEvent {
  actor: string;
  action: string;
  resourceType: string;
  resource: string;
  /** The project the event belongs to, when it belongs to one. */
  project?: string;
  outcome: 'success' | 'failure';
  detail?: Record<string, unknown>;
}

export interface AuditRecord extends AuditEvent {
  id: number;
  at: Date;
}

export interface AuditQuery {
  actor?: string;
  action?: string;
  resourceType?: string;
  /** Exact resource, or a prefix ending in `/`. */
  resource?: string;
  project?: string;
  since?: Date;
  until?: Date;
  /** Return records with id below this (the next page). */
  before?: number;
  limit: number;
}

export class AuditStore {
  constructor(private readonly sql: Sql) {}

  /**
   * Writes a batch in one statement. Text is made storable first: events are written off
   * the request path and retried as a batch, so one value PostgreSQL refuses would
   * otherwise hold back every record after it.
   */
  async append(events: AuditEvent[]): Promise<void> {
    if (events.length === 0) return;
    const text = toStorableText;
    const json = (detail: Record<string, unknown>) => JSON.stringify(detail, (_key, value: unknown) => (typeof value === 'string' ? text(value) : value));
    await this.sql.query(
      `INSERT INTO audit_log (actor, action, resource_type, resource, outcome, detail, project)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::text[])`,
      [
        events.map((e) => text(e.actor)),
        events.map((e) => text(e.action)),
        events.map((e) => text(e.resourceType)),
        events.map((e) => text(e.resource)),
        events.map((e) => e.outcome),
        events.map((e) => (e.detail ? json(e.detail) : null)),
        events.map((e) => (e.project === undefined ? null : text(e.project))),
      ],
    );
  }

  /** Newest first. */
  async query(q: AuditQuery): Promise<AuditRecord[]> {
    const prefix = q.resource?.endsWith('/') ? q.resource : undefined;
    const rows = await this.sql.query<{ id: number; at: Date; actor: string; action: string; resource_type: string; resource: string; project: string | null; outcome: 'success' | 'failure'; detail: Record<string, unknown> | null }>(
      `SELECT * FROM audit_log WHERE
         ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR resource_type = $3)
         AND ($4::text IS NULL OR resource = $4) AND ($5::text IS NULL OR starts_with(resource, $5))
         AND ($6::timestamptz IS NULL OR at >= $6) AND ($7::timestamptz IS NULL OR at < $7) AND ($8::int8 IS NULL OR id < $8)
         AND ($10::text IS NULL OR project = $10)
       ORDER BY id DESC LIMIT $9`,
      [q.actor ?? null, q.action ?? null, q.resourceType ?? null, prefix ? null : (q.resource ?? null), prefix ?? null, q.since ?? null, q.until ?? null, q.before ?? null, q.limit, q.project ?? null],
    );
    return rows.map((r) => ({
      id: r.id,
      at: r.at,
      actor: r.actor,
      action: r.action,
      resourceType: r.resource_type,
      resource: r.resource,
      ...(r.project !== null && { project: r.project }),
      outcome: r.outcome,
      ...(r.detail && { detail: r.detail }),
    }));
  }
}
