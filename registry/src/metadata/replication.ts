import { randomUUID } from 'node:crypto';
import type { Sql } from './sql.js';

export type HealthStatus = 'unknown' | 'healthy' | 'unhealthy';

export interface StoredRegistry {
  id: string;
  name: string;
  provider: string;
  url: string;
  username: string | null;
  password: string | null;
  insecure: boolean;
  description: string;
  healthStatus: HealthStatus;
  healthMessage: string;
  healthCheckedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface RegistryInput {
  provider: string;
  url: string;
  username: string | null;
  /** undefined keeps the stored password. */
  password?: string | null;
  insecure: boolean;
  description: string;
}

export interface StoredPolicy<Spec = Record<string, unknown>> {
  id: string;
  name: string;
  registryId: string;
  registryName: string;
  spec: Spec;
  createdAt: Date;
  updatedAt: Date;
}

interface RegistryRow {
  id: string;
  name: string;
  provider: string;
  url: string;
  username: string | null;
  password: string | null;
  insecure: boolean;
  description: string;
  health_status: HealthStatus;
  health_message: string;
  health_checked_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

interface PolicyRow {
  id: string;
  name: string;
  registry_id: string;
  registry_name: string;
  spec: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

const toRegistry = (r: RegistryRow): StoredRegistry => ({
  id: r.id,
  name: r.name,
  provider: r.provider,
  url: r.url,
  username: r.username,
  password: r.password,
  insecure: r.insecure,
  description: r.description,
  healthStatus: r.health_status,
  healthMessage: r.health_message,
  healthCheckedAt: r.health_checked_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const toPolicy = <Spec>(r: PolicyRow): StoredPolicy<Spec> => ({
  id: r.id,
  name: r.name,
  registryId: r.registry_id,
  registryName: r.registry_name,
  spec: r.spec as Spec,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const POLICY_SELECT = `SELECT p.*, r.name AS registry_name FROM replication_policies p JOIN replication_registries r ON r.id = p.registry_id`;

/** Remote registries and replication policies. */
export class ReplicationStore {
  constructor(private readonly sql: Sql) {}

  async registry(name: string): Promise<StoredRegistry | undefined> {
    const rows = await this.sql.query<RegistryRow>('SELECT * FROM replication_registries WHERE name = $1', [name]);
    return rows[0] && toRegistry(rows[0]);
  }

  async registryById(id: string): Promise<StoredRegistry | undefined> {
    const rows = await this.sql.query<RegistryRow>('SELECT * FROM replication_registries WHERE id = $1', [id]);
    return rows[0] && toRegistry(rows[0]);
  }

  async registries(page: { limit: number; after?: string }): Promise<StoredRegistry[]> {
    const rows = await this.sql.query<RegistryRow>('SELECT * FROM replication_registries WHERE name > $1 ORDER BY name LIMIT $2', [page.after ?? '', page.limit]);
    return rows.map(toRegistry);
  }

  /** Creates or updates by name; `created` tells which. */
  async putRegistry(name: string, input: RegistryInput): Promise<{ registry: StoredRegistry; created: boolean }> {
    const rows = await this.sql.query<RegistryRow & { inserted: boolean }>(
      `INSERT INTO replication_registries (id, name, provider, url, username, password, insecure, description)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (name) DO UPDATE SET provider = EXCLUDED.provider, url = EXCLUDED.url, username = EXCLUDED.username,
         password = CASE WHEN $9 THEN replication_registries.password ELSE EXCLUDED.password END,
         insecure = EXCLUDED.insecure, description = EXCLUDED.description, updated_at = now(),
         health_status = 'unknown', health_message = '', health_checked_at = NULL
       RETURNING *, (xmax = 0) AS inserted`,
      [randomUUID(), name, input.provider, input.url, input.username, input.password ?? null, input.insecure, input.description, input.password === undefined],
    );
    const row = rows[0]!;
    return { registry: toRegistry(row), created: row.inserted };
  }

  async setHealth(id: string, status: HealthStatus, message: string): Promise<StoredRegistry | undefined> {
    const rows = await this.sql.query<RegistryRow>(
      `UPDATE replication_registries SET health_status = $2, health_message = $3, health_checked_at = now() WHERE id = $1 RETURNING *`,
      [id, status, message],
    );
    return rows[0] && toRegistry(rows[0]);
  }

  /** 'deleted', 'missing', or 'in-use' when a policy refers to it. */
  async deleteRegistry(name: string): Promise<'deleted' | 'missing' | 'in-use'> {
    const used = await this.sql.query(`SELECT 1 FROM replication_policies p JOIN replication_registries r ON r.id = p.registry_id WHERE r.name = $1 LIMIT 1`, [name]);
    if (used.length > 0) return 'in-use';
    try {
      const rows = await this.sql.query('DELETE FROM replication_registries WHERE name = $1 RETURNING id', [name]);
      return rows.length > 0 ? 'deleted' : 'missing';
    } catch (err) {
      if ((err as { code?: string }).code === '23503') return 'in-use';
      throw err;
    }
  }

  async policy<Spec>(name: string): Promise<StoredPolicy<Spec> | undefined> {
    const rows = await this.sql.query<PolicyRow>(`${POLICY_SELECT} WHERE p.name = $1`, [name]);
    return rows[0] && toPolicy<Spec>(rows[0]);
  }

  async policyById<Spec>(id: string): Promise<StoredPolicy<Spec> | undefined> {
    const rows = await this.sql.query<PolicyRow>(`${POLICY_SELECT} WHERE p.id = $1`, [id]);
    return rows[0] && toPolicy<Spec>(rows[0]);
  }

  async policies<Spec>(page: { limit: number; after?: string }): Promise<StoredPolicy<Spec>[]> {
    const rows = await this.sql.query<PolicyRow>(`${POLICY_SELECT} WHERE p.name > $1 ORDER BY p.name LIMIT $2`, [page.after ?? '', page.limit]);
    return rows.map((r) => toPolicy<Spec>(r));
  }

  /** Every policy (the trigger scheduler and event matching read them all; policies are few). */
  async allPolicies<Spec>(): Promise<StoredPolicy<Spec>[]> {
    const rows = await this.sql.query<PolicyRow>(`${POLICY_SELECT} ORDER BY p.name`);
    return rows.map((r) => toPolicy<Spec>(r));
  }

  async putPolicy<Spec>(name: string, registryId: string, spec: Spec): Promise<{ policy: StoredPolicy<Spec>; created: boolean }> {
    const rows = await this.sql.query<{ id: string; inserted: boolean }>(
      `INSERT INTO replication_policies (id, name, registry_id, spec) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name) DO UPDATE SET registry_id = EXCLUDED.registry_id, spec = EXCLUDED.spec, updated_at = now()
       RETURNING id, (xmax = 0) AS inserted`,
      [randomUUID(), name, registryId, JSON.stringify(spec)],
    );
    const policy = (await this.policyById<Spec>(rows[0]!.id))!;
    return { policy, created: rows[0]!.inserted };
  }

  async deletePolicy(name: string): Promise<boolean> {
    const rows = await this.sql.query('DELETE FROM replication_policies WHERE name = $1 RETURNING id', [name]);
    return rows.length > 0;
  }
}
