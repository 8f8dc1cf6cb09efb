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

  /**
   * Newest first. The statement names only the filters given, so that each is a
   * condition the plan cached for that statement can use as an index bound: the cursor
   * (`id < before`) on the primary key, an actor, resource or project on its (column, id)
   * index. Other filters (action, resource type, a resource prefix, time bounds) narrow
   * that walk: it reads until the page is full or the log (or its index range) ends.
   */
  async query(q: AuditQuery): Promise<AuditRecord[]> {
    const prefix = q.resource?.endsWith('/') ? q.resource : undefined;
    const conditions: string[] = [];
    const params: unknown[] = [];
    const where = (condition: (param: string) => string, value: unknown) => {
      if (value === undefined) return;
      params.push(value);
      conditions.push(condition(`$${params.length}`));
    };
    where((p) => `actor = ${p}`, q.actor);
    where((p) => `action = ${p}`, q.action);
    where((p) => `resource_type = ${p}`, q.resourceType);
    where((p) => `resource = ${p}`, prefix ? undefined : q.resource);
    where((p) => `starts_with(resource, ${p})`, prefix);
    where((p) => `project = ${p}`, q.project);
    where((p) => `at >= ${p}::timestamptz`, q.since);
    where((p) => `at < ${p}::timestamptz`, q.until);
    where((p) => `id < ${p}::int8`, q.before);
    params.push(q.limit);
    const rows = await this.sql.query<{ id: number; at: Date; actor: string; action: string; resource_type: string; resource: string; project: string | null; outcome: 'success' | 'failure'; detail: Record<string, unknown> | null }>(
      `SELECT * FROM audit_log${conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${params.length}`,
      params,
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
