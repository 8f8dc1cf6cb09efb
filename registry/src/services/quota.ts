import { projectOf } from '../auth/scopes.js';
import { ociError } from '../oci/errors.js';
import type { Metadata } from '../metadata/index.js';
import type { Queryable } from '../metadata/sql.js';

function quotaExceeded(project: string, limit: number, used: number, needed: number) {
  return ociError('DENIED', { quota: { project, limit, used, needed } }, {
    message: `storage quota of project "${project}" exceeded: ${used} of ${limit} bytes used, this push needs ${needed} more`,
  });
}

/**
 * Project storage quotas, counted on distinct blob sizes. The authoritative check runs
 * inside the transaction that links a blob, under a lock on the project row, so
 * concurrent pushes cannot overshoot; `precheck` refuses early when the size is known
 * up front, so nothing is even written to storage.
 */
export class QuotaGuard {
  constructor(private readonly meta: Metadata) {}

  /** `knownLimit`: the project's storage limit as just read with the upload session (null: no project). */
  async precheck(repository: string, incomingBytes: number, digest?: string, knownLimit?: number | null): Promise<void> {
    const name = projectOf(repository);
    const limit = knownLimit !== undefined ? knownLimit : ((await this.meta.projects.get(name))?.storageLimit ?? null);
    if (limit === null || limit < 0) return;
    if (digest && (await this.meta.projects.holdsBlob(this.meta.sql, name, digest))) return;
    const used = await this.meta.projects.usage(name);
    if (used + incomingBytes > limit) throw quotaExceeded(name, limit, used, incomingBytes);
  }

  /** Runs in the linking transaction; throws DENIED when the new blob does not fit. */
  readonly admit = async (tx: Queryable, repository: string, digest: string, size: number): Promise<void> => {
    const name = projectOf(repository);
    const unlocked = await this.meta.projects.get(name, tx);
    if (!unlocked || unlocked.storageLimit < 0) return;
    const project = await this.meta.projects.lock(tx, name);
    if (!project || project.storageLimit < 0) return;
    if (await this.meta.projects.holdsBlob(tx, name, digest)) return;
    const used = await this.meta.projects.usage(name, tx);
    if (used + size > project.storageLimit) throw quotaExceeded(name, project.storageLimit, used, size);
  };
}
