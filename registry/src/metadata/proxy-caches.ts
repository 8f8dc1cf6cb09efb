import type { Queryable, Sql } from './sql.js';

export const PROXY_PROVIDERS = ['docker-hub', 'docker-registry', 'harbor', 'wharf', 'ghcr', 'quay', 'gcr', 'ecr', 'acr'] as const;
export type ProxyProvider = (typeof PROXY_PROVIDERS)[number];

/** A project's upstream, as stored (the password included: only the proxy reads it). */
export interface ProxyCacheConfig {
  projectId: string;
  project: string;
  /** Whether the project is public (anonymous pulls, and anonymous mirror pulls). */
  public: boolean;
  /** The project's storage limit in bytes, negative for none (read with the settings, for the quota precheck). */
  storageLimit: number;
  provider: ProxyProvider;
  url: string;
  username: string | null;
  password: string | null;
  insecure: boolean;
  mirrorOf: string[];
  manifestTtlSeconds: number;
  updatedAt: Date;
}

/** What is written; `password` undefined keeps the stored one. */
export interface ProxyCacheRecord {
  provider: ProxyProvider;
  url: string;
  username: string | null;
  password?: string | null;
  insecure: boolean;
  mirrorOf: string[];
  /** The hosts `mirrorOf` stands for, canonical (docker.io for its aliases); each may be claimed by one project. */
  mirrorHosts: string[];
  manifestTtlSeconds: number;
}

interface ConfigRow {
  project_id: string;
  project: string;
  public: boolean;
  storage_limit: number;
  provider: ProxyProvider;
  url: string;
  username: string | null;
  password: string | null;
  insecure: boolean;
  mirror_of: string[];
  manifest_ttl_seconds: number;
  updated_at: Date;
}

const toConfig = (r: ConfigRow): ProxyCacheConfig => ({
  projectId: r.project_id,
  project: r.project,
  public: r.public,
  storageLimit: r.storage_limit,
  provider: r.provider,
  url: r.url,
  username: r.username,
  password: r.password,
  insecure: r.insecure,
  mirrorOf: r.mirror_of,
  manifestTtlSeconds: r.manifest_ttl_seconds,
  updatedAt: r.updated_at,
});

const SELECT_CONFIG = `SELECT c.project_id, p.name AS project, p.public, p.storage_limit, c.provider, c.url, c.username, c.password, c.insecure, c.mirror_of, c.manifest_ttl_seconds, c.updated_at
  FROM proxy_caches c JOIN projects p ON p.id = c.project_id`;

/** A mirror host another project already claims. */
export class MirrorHostTakenError extends Error {
  readonly code = 'MIRROR_HOST_TAKEN';
  constructor(
    readonly host: string,
    readonly project: string,
  ) {
    super(`host ${host} is already mirrored by project "${project}"`);
    this.name = 'MirrorHostTakenError';
  }
}

/** Proxy-cache settings of projects, the ?ns= host map, tag freshness and blob fill leases. */
export class ProxyCacheStore {
  constructor(private readonly sql: Sql) {}

  async byProject(name: string, db: Queryable = this.sql): Promise<ProxyCacheConfig | undefined> {
    const rows = await db.query<ConfigRow>(`${SELECT_CONFIG} WHERE p.name = $1`, [name]);
    return rows[0] && toConfig(rows[0]);
  }

  /** The settings of several projects at once (a page of the project list). */
  async byProjects(names: readonly string[]): Promise<Map<string, ProxyCacheConfig>> {
    if (names.length === 0) return new Map();
    const rows = await this.sql.query<ConfigRow>(`${SELECT_CONFIG} WHERE p.name = ANY($1::text[])`, [names]);
    return new Map(rows.map((r) => [r.project, toConfig(r)]));
  }

  /** The proxy project that mirrors `host` (canonical form), if any. */
  async byMirrorHost(host: string): Promise<ProxyCacheConfig | undefined> {
    const rows = await this.sql.query<ConfigRow>(`${SELECT_CONFIG} JOIN proxy_mirror_hosts h ON h.project_id = c.project_id WHERE h.host = $1`, [host]);
    return rows[0] && toConfig(rows[0]);
  }

  /**
   * Writes a project's settings and its mirror hosts in one transaction; throws
   * MirrorHostTakenError (and writes nothing) when another project mirrors one of the
   * hosts. A new upstream URL or provider forgets when tags were last checked, so the
   * next pull of each asks the new upstream. Returns whether anything changed.
   */
  async set(projectId: string, record: ProxyCacheRecord): Promise<boolean> {
    return this.sql.transaction(async (tx) => {
      const [before] = await tx.query<ConfigRow>('SELECT * FROM proxy_caches WHERE project_id = $1 FOR UPDATE', [projectId]);
      const password = record.password === undefined ? (before?.password ?? null) : record.password;
      const changed =
        !before ||
        before.provider !== record.provider ||
        before.url !== record.url ||
        before.username !== record.username ||
        before.password !== password ||
        before.insecure !== record.insecure ||
        before.mirror_of.join(',') !== record.mirrorOf.join(',') ||
        before.manifest_ttl_seconds !== record.manifestTtlSeconds;
      if (!changed) return false;
      await tx.query(
        `INSERT INTO proxy_caches (project_id, provider, url, username, password, insecure, mirror_of, manifest_ttl_seconds)
         VALUES ($1, $2, $3, $4, $5, $6, $7::text[], $8)
         ON CONFLICT (project_id) DO UPDATE SET provider = EXCLUDED.provider, url = EXCLUDED.url, username = EXCLUDED.username,
           password = EXCLUDED.password, insecure = EXCLUDED.insecure, mirror_of = EXCLUDED.mirror_of,
           manifest_ttl_seconds = EXCLUDED.manifest_ttl_seconds, updated_at = now()`,
        [projectId, record.provider, record.url, record.username, password, record.insecure, record.mirrorOf, record.manifestTtlSeconds],
      );
      await tx.query('DELETE FROM proxy_mirror_hosts WHERE project_id = $1 AND NOT (host = ANY($2::text[]))', [projectId, record.mirrorHosts]);
      const claimed = await tx.query<{ host: string }>(
        'INSERT INTO proxy_mirror_hosts (host, project_id) SELECT unnest($2::text[]), $1 ON CONFLICT (host) DO UPDATE SET project_id = proxy_mirror_hosts.project_id WHERE proxy_mirror_hosts.project_id = $1 RETURNING host',
        [projectId, record.mirrorHosts],
      );
      const mine = new Set(claimed.map((r) => r.host));
      const taken = record.mirrorHosts.find((h) => !mine.has(h));
      if (taken !== undefined) {
        const [owner] = await tx.query<{ name: string }>('SELECT p.name FROM proxy_mirror_hosts h JOIN projects p ON p.id = h.project_id WHERE h.host = $1', [taken]);
        throw new MirrorHostTakenError(taken, owner?.name ?? '?');
      }
      if (before && (before.url !== record.url || before.provider !== record.provider)) {
        await tx.query(
          `DELETE FROM proxy_tag_checks WHERE repository IN (SELECT r.name FROM repositories r JOIN projects p ON p.name = r.project WHERE p.id = $1)`,
          [projectId],
        );
      }
      return true;
    });
  }

  /** Makes the project an ordinary one again (its cached content stays); false when it was not a proxy. */
  async remove(projectId: string): Promise<boolean> {
    return (await this.sql.query('DELETE FROM proxy_caches WHERE project_id = $1 RETURNING project_id', [projectId])).length > 0;
  }

  /** Seconds since the tag was last found current upstream (the database's clock, shared by replicas); undefined if never. */
  async tagAge(repository: string, tag: string): Promise<number | undefined> {
    const rows = await this.sql.query<{ age: number }>('SELECT extract(epoch FROM now() - checked_at)::float8 AS age FROM proxy_tag_checks WHERE repository = $1 AND tag = $2', [repository, tag]);
    return rows[0] === undefined ? undefined : Number(rows[0].age);
  }

  async markTagChecked(repository: string, tag: string): Promise<void> {
    await this.sql.query(
      `INSERT INTO proxy_tag_checks (repository, tag) SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM repositories WHERE name = $1)
       ON CONFLICT (repository, tag) DO UPDATE SET checked_at = now()`,
      [repository, tag],
    );
  }

  /**
   * Takes the fill lease of `digest` for `owner` when nobody holds it, or its holder let
   * it expire; false when another replica is filling it.
   */
  async claimFill(digest: string, owner: string, leaseSeconds: number): Promise<boolean> {
    const rows = await this.sql.query(
      `INSERT INTO proxy_fills (digest, owner, lease_until) VALUES ($1, $2, now() + make_interval(secs => $3))
       ON CONFLICT (digest) DO UPDATE SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until
         WHERE proxy_fills.lease_until < now() OR proxy_fills.owner = EXCLUDED.owner
       RETURNING digest`,
      [digest, owner, leaseSeconds],
    );
    return rows.length > 0;
  }

  async renewFill(digest: string, owner: string, leaseSeconds: number): Promise<boolean> {
    const rows = await this.sql.query('UPDATE proxy_fills SET lease_until = now() + make_interval(secs => $3) WHERE digest = $1 AND owner = $2 RETURNING digest', [digest, owner, leaseSeconds]);
    return rows.length > 0;
  }

  async releaseFill(digest: string, owner: string): Promise<void> {
    await this.sql.query('DELETE FROM proxy_fills WHERE digest = $1 AND owner = $2', [digest, owner]);
  }

  /** Deletes leases that expired over an hour ago (their replica died); returns how many. */
  async pruneFills(): Promise<number> {
    return (await this.sql.query("DELETE FROM proxy_fills WHERE lease_until < now() - interval '1 hour' RETURNING digest")).length;
  }

  /** Whether a live lease on `digest` exists (someone is filling it). */
  async fillInProgress(digest: string): Promise<boolean> {
    const rows = await this.sql.query('SELECT 1 FROM proxy_fills WHERE digest = $1 AND lease_until >= now()', [digest]);
    return rows.length > 0;
  }
}
