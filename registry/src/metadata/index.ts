import { BlobLinkStore } from './blob-links.js';
import { dsnWithCaFile } from './dsn.js';
import { ManifestStore } from './manifests.js';
import { migrate } from './migrate.js';
import { RepositoryStore } from './repositories.js';
import type { Sql } from './sql.js';
import { UploadStore } from './uploads.js';
import { AuditStore } from './audit.js';
import { ProjectStore } from './projects.js';
import { RobotStore } from './robots.js';
import { UserStore } from './users.js';
import { ProxyCacheStore } from './proxy-caches.js';
import { LifecycleStore } from './lifecycle.js';

export type { Sql, Queryable } from './sql.js';
export { DatabaseUnavailableError } from './sql.js';

/** The registry's metadata: one SQL connection, one store per aggregate. */
export interface Metadata {
  sql: Sql;
  repositories: RepositoryStore;
  blobs: BlobLinkStore;
  manifests: ManifestStore;
  uploads: UploadStore;
  projects: ProjectStore;
  users: UserStore;
  robots: RobotStore;
  audit: AuditStore;
  proxyCaches: ProxyCacheStore;
  lifecycle: LifecycleStore;
}

export function metadataOn(sql: Sql): Metadata {
  const repositories = new RepositoryStore(sql);
  return {
    sql,
    repositories,
    blobs: new BlobLinkStore(sql, repositories),
    manifests: new ManifestStore(sql),
    uploads: new UploadStore(sql),
    projects: new ProjectStore(sql),
    users: new UserStore(sql),
    robots: new RobotStore(sql),
    audit: new AuditStore(sql),
    proxyCaches: new ProxyCacheStore(sql),
    lifecycle: new LifecycleStore(sql),
  };
}

export interface DatabaseConfig {
  /** PostgreSQL DSN; when absent the embedded PGlite database in `embeddedDir` is used. */
  url?: string;
  /** PEM file of the CA(s) that sign the PostgreSQL server's certificate (added to the DSN as `sslrootcert`, see dsn.ts). */
  caFile?: string;
  embeddedDir: string;
}

/**
 * Opens the configured driver and brings the schema up to date. Each driver is loaded
 * only when used: the other's modules would only add resident memory.
 */
export async function openMetadata(config: DatabaseConfig): Promise<Metadata> {
  const url = config.url && config.caFile ? dsnWithCaFile(config.url, config.caFile) : config.url;
  const sql = url ? await (await import('./pg.js')).openPg(url) : await (await import('./pglite.js')).openPglite(config.embeddedDir);
  try {
    await migrate(sql);
  } catch (err) {
    await sql.close().catch(() => undefined);
    throw err;
  }
  return metadataOn(sql);
}
