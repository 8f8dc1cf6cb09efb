import type { FastifyBaseLogger } from 'fastify';
import type { ArtifactEvents } from '../events/artifact-events.js';
import { EMPTY_IMMUTABILITY, immutableBy } from '../lifecycle/immutability.js';
import { planRetention, type RetentionDecision } from '../lifecycle/retention-plan.js';
import type { Metadata } from '../metadata/index.js';

export interface RetentionRunRequest {
  project: string;
  dryRun: boolean;
  /** 'manual' (management API) or 'schedule'. */
  trigger: 'manual' | 'schedule';
  /** Who started it (a username, or `scheduler`). */
  actor: string;
  /** The job that runs it, which the runs API names the run by. */
  runId?: string;
}

export interface RetentionReport {
  project: string;
  dryRun: boolean;
  trigger: RetentionRunRequest['trigger'];
  startedAt: string;
  finishedAt: string;
  /** Tags (tag null: untagged artifacts) kept, each with the reason. */
  kept: RetentionDecision[];
  /** Tags and untagged artifacts deleted (in a dry run: that would be), each with the reason. */
  deleted: RetentionDecision[];
  /** Manifests deleted because retention left them untagged (with their referrers); empty in a dry run. */
  manifestsDeleted: { repository: string; digest: string }[];
  /** Candidates that changed between planning and deleting (a tag moved, a new tag), left alone. */
  skipped: RetentionDecision[];
}

/** Called once per finished run, dry or real: the seam for retention webhooks. */
export type RetentionFinishedListener = (report: RetentionReport, request: RetentionRunRequest) => void | Promise<void>;

/**
 * Runs one project's retention policy: plans (lifecycle/retention-plan.ts, pure), then,
 * unless dry, deletes the tags no rule retains and the manifests that leaves untagged
 * (with their referrers). Every delete publishes a `deleted` artifact event.
 */
export class RetentionRunner {
  private readonly finishedListeners = new Set<RetentionFinishedListener>();

  constructor(
    private readonly meta: Metadata,
    private readonly events: ArtifactEvents,
    private readonly log: FastifyBaseLogger,
    /** After manifests were deleted (in-process manifest caches). */
    private readonly onManifestsDeleted: () => void = () => undefined,
  ) {}

  /** Subscribes to finished runs (webhooks: "retention finished"); returns the unsubscribe function. */
  onRetentionFinished(listener: RetentionFinishedListener): () => void {
    this.finishedListeners.add(listener);
    return () => this.finishedListeners.delete(listener);
  }

  async run(request: RetentionRunRequest, signal: AbortSignal): Promise<RetentionReport> {
    const startedAt = new Date();
    const { project, dryRun } = request;
    const policy = await this.meta.lifecycle.retentionPolicy(project);
    const immutability = (await this.meta.lifecycle.immutabilityPolicy(project)) ?? EMPTY_IMMUTABILITY;
    const candidates = policy ? await this.meta.lifecycle.retentionCandidates(project) : [];
    if (immutability.protectSignedArtifacts) {
      for (const [repository, list] of groupBy(candidates, (c) => c.repository)) {
        const signed = await this.meta.lifecycle.signed(repository, list.map((c) => c.digest));
        for (const c of list) if (signed.has(c.digest)) c.protectedSigned = true;
      }
    }
    for (const c of candidates) {
      const rule = c.tag === null ? undefined : immutableBy(immutability, c.repository, c.tag);
      if (rule) c.immutableBy = rule;
    }
    const plan = policy ? planRetention(policy, candidates, startedAt) : { kept: [], deleted: [] };
    const report: RetentionReport = { project, dryRun, trigger: request.trigger, startedAt: startedAt.toISOString(), finishedAt: '', kept: plan.kept, deleted: [], manifestsDeleted: [], skipped: [] };
    if (dryRun) report.deleted = plan.deleted;
    else await this.execute(plan.deleted, report, signal);
    report.finishedAt = new Date().toISOString();
    this.log.info({ project, dryRun, kept: report.kept.length, deleted: report.deleted.length, manifests: report.manifestsDeleted.length }, 'retention run finished');
    for (const listener of this.finishedListeners) {
      Promise.resolve()
        .then(() => listener(report, request))
        .catch((err: unknown) => this.log.warn({ err, project }, 'retention finished listener failed'));
    }
    return report;
  }

  private async execute(doomed: RetentionDecision[], report: RetentionReport, signal: AbortSignal): Promise<void> {
    const untagged = new Map<string, { repository: string; digest: string }>();
    const at = () => new Date();
    for (const d of doomed) {
      signal.throwIfAborted();
      if (d.tag !== null) {
        if (!(await this.meta.lifecycle.deleteTagAt(d.repository, d.tag, d.digest))) {
          report.skipped.push(d);
          continue;
        }
        report.deleted.push(d);
        this.events.publish({ type: 'deleted', project: report.project, repository: d.repository, digest: d.digest, tag: d.tag, actor: 'retention', at: at() });
      } else report.deleted.push(d);
      untagged.set(`${d.repository}@${d.digest}`, { repository: d.repository, digest: d.digest });
    }
    for (const { repository, digest } of untagged.values()) {
      signal.throwIfAborted();
      // Only if nothing else tags it or names it (another tag kept, an index): then it goes, with its referrers.
      for (const gone of await this.meta.lifecycle.deleteWithReferrers(repository, digest, true)) {
        report.manifestsDeleted.push({ repository, digest: gone });
        this.events.publish({ type: 'deleted', project: report.project, repository, digest: gone, actor: 'retention', at: at() });
      }
    }
    if (report.manifestsDeleted.length > 0 || report.deleted.length > 0) this.onManifestsDeleted();
  }
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return groups;
}
