import { projectOf } from '../auth/scopes.js';
import { ociError } from '../oci/errors.js';
import type { Metadata } from '../metadata/index.js';
import type { Queryable } from '../metadata/sql.js';

function quotaExceeded(project: string, limit: number, used: number, needed: number) {
  return ociError('DENIED', { quota: { project, limit, used, needed } }, {
    message: `storage quota of project "${project}" exceeded: ${used} of ${limit} bytes used, this push needs ${needed} more`,
  });
}

/** What a quota check reports: a refusal, or a link that took usage across the warning threshold. */
export interface QuotaNotice {
  kind: 'exceeded' | 'warning';
  project: string;
  repository: string;
  digest?: string | undefined;
  limit: number;
  used: number;
  needed: number;
}

/** Told about quota refusals and warnings (webhooks); must return at once and never throw. */
export interface QuotaObserver {
  /** Usage percentage whose crossing by a push is reported as a warning. */
  warningPercent: number;
  notice(notice: QuotaNotice): void;
}

/** Whether adding `needed` to `used` crosses `percent` of `limit`. */
export function crossesWarning(limit: number, used: number, needed: number, percent: number): boolean {
  if (limit <= 0) return false;
  const threshold = (limit * percent) / 100;
  return used < threshold && used + needed >= threshold;
}

/** What a project with a storage limit has left, as read once for one request. */
export class QuotaRoom {
  constructor(
    readonly project: string,
    readonly limit: number,
    readonly used: number,
    private readonly onRefusal: (needed: number) => void = () => undefined,
  ) {}

  /** Bytes an upload may hold before it no longer fits. */
  get left(): number {
    return Math.max(this.limit - this.used, 0);
  }

  /** The DENIED refusal for an upload of `needed` bytes. */
  refusal(needed: number) {
    this.onRefusal(needed);
    return quotaExceeded(this.project, this.limit, this.used, needed);
  }

  check(needed: number): void {
    if (needed > this.left) throw this.refusal(needed);
  }
}

/**
 * Project storage quotas, counted on distinct blob sizes. The authoritative check runs
 * inside the transaction that links a blob, under a lock on the project row, so
 * concurrent pushes cannot overshoot; `precheck` refuses early when the size is known
 * up front, so nothing is even written to storage, and `room` gives the allowance an
 * upload of unknown size is held to while it streams.
 */
export class QuotaGuard {
  private observer: QuotaObserver | undefined;

  constructor(private readonly meta: Metadata) {}

  /** Reports refusals and warning crossings to `observer` (one observer: the webhooks). */
  observe(observer: QuotaObserver): void {
    this.observer = observer;
  }

  /** `knownLimit`: the project's storage limit as just read with the upload session (null: no project). */
  async precheck(repository: string, incomingBytes: number, digest?: string, knownLimit?: number | null): Promise<void> {
    (await this.room(repository, digest, knownLimit))?.check(incomingBytes);
  }

  /**
   * What the repository's project has left (one query, two with a digest); undefined
   * when it has no limit, or when `digest` is already linked in it and so costs nothing.
   */
  async room(repository: string, digest?: string, knownLimit?: number | null): Promise<QuotaRoom | undefined> {
    const name = projectOf(repository);
    const limit = knownLimit !== undefined ? knownLimit : ((await this.meta.projects.get(name))?.storageLimit ?? null);
    if (limit === null || limit < 0) return undefined;
    if (digest && (await this.meta.projects.holdsBlob(this.meta.sql, name, digest))) return undefined;
    const used = await this.meta.projects.usage(name);
    return new QuotaRoom(name, limit, used, (needed) => this.observer?.notice({ kind: 'exceeded', project: name, repository, digest, limit, used, needed }));
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
    const notice = { project: name, repository, digest, limit: project.storageLimit, used, needed: size };
    if (used + size > project.storageLimit) {
      this.observer?.notice({ kind: 'exceeded', ...notice });
      throw quotaExceeded(name, project.storageLimit, used, size);
    }
    if (this.observer && crossesWarning(project.storageLimit, used, size, this.observer.warningPercent)) this.observer.notice({ kind: 'warning', ...notice });
  };
}
