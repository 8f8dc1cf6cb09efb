import { join } from 'node:path';
import { openPg } from '../../../registry/src/metadata/pg.js';
import { openPglite } from '../../../registry/src/metadata/pglite.js';
import { startDistribution } from '../targets/distribution.js';
import { startPostgres } from '../targets/postgres.js';
import type { Target } from '../targets/target.js';
import { startWharf } from '../targets/wharf.js';
import { distributionSeeder, wharfSeeder, type Seeder } from './seeders.js';

export const LISTING_TARGETS = ['distribution', 'wharf-pglite', 'wharf-postgres'] as const;
export type ListingTargetId = (typeof LISTING_TARGETS)[number];

/** A registry under the listings benchmark, and a way to write into its storage. */
export interface Subject {
  readonly id: ListingTargetId;
  readonly label: string;
  /** What it runs on, when the label does not say (the PostgreSQL server's version). */
  readonly detail?: string;
  /** Where it listens now (a restart may move it). */
  origin(): string;
  /**
   * Runs `fn` against the registry's storage. The embedded database belongs to the one
   * registry process that opened it, so Wharf on PGlite is stopped meanwhile and started
   * again on the same data afterwards.
   */
  seed(fn: (seeder: Seeder) => Promise<void>): Promise<void>;
  /** Stops it (and its PostgreSQL server); later calls wait for the first. */
  stop(): Promise<void>;
}

function once(stop: () => Promise<void>): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => (stopping ??= stop());
}

/** Starts `id` in `dir` (its data, config and log); `distribution` is the binary. */
export async function startSubject(id: ListingTargetId, dir: string, distribution: string): Promise<Subject> {
  switch (id) {
    case 'distribution': {
      const target = await startDistribution(distribution, { dir });
      return { id, label: target.label, origin: () => target.origin, seed: (fn) => fn(distributionSeeder(join(dir, 'data'))), stop: once(() => target.stop()) };
    }
    case 'wharf-pglite': {
      let target: Target = await startWharf({}, { dir });
      return {
        id,
        label: target.label,
        origin: () => target.origin,
        async seed(fn) {
          await target.stop();
          const sql = await openPglite(join(dir, 'data', 'metadata'));
          try {
            await fn(wharfSeeder(sql));
          } finally {
            await sql.close();
          }
          target = await startWharf({}, { dir });
        },
        stop: once(() => target.stop()),
      };
    }
    case 'wharf-postgres': {
      const pg = await startPostgres(join(dir, 'postgres'));
      let target: Target;
      try {
        target = await startWharf({ databaseUrl: pg.url }, { dir });
      } catch (err) {
        await pg.stop();
        throw err;
      }
      return {
        id,
        label: target.label,
        detail: `PostgreSQL ${pg.version}`,
        origin: () => target.origin,
        async seed(fn) {
          const sql = await openPg(pg.url, { max: 1 });
          try {
            await fn(wharfSeeder(sql));
          } finally {
            await sql.close();
          }
        },
        stop: once(async () => {
          await target.stop();
          await pg.stop();
        }),
      };
    }
  }
}
