import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { JobState } from '../metadata/jobs.js';
import type { GcReport } from './gc.js';
import type { JobOutcome } from './worker.js';

/** Job queue and garbage collection figures. Counters count what this replica's worker did. */
export class JobMetrics {
  private readonly processed: Counter<'kind' | 'outcome'>;
  private readonly duration: Histogram<'kind'>;
  private readonly gcRuns: Counter<'dry_run'>;
  private readonly gcDeleted: Counter<'what'>;
  private readonly gcBytesFreed: Counter;
  private readonly gcLastSuccess: Gauge;
  private readonly gcLastBytesFreed: Gauge;

  constructor(registry: Registry, counts: () => Promise<{ kind: string; state: JobState; count: number }[]>) {
    const registers = [registry];
    new Gauge({
      name: 'wharf_jobs',
      help: 'Jobs in the queue by kind and state (all replicas)',
      labelNames: ['kind', 'state'],
      registers,
      async collect() {
        const rows = await counts().catch(() => undefined);
        if (!rows) return;
        this.reset();
        for (const row of rows) this.set({ kind: row.kind, state: row.state }, row.count);
      },
    });
    this.processed = new Counter({ name: 'wharf_jobs_processed_total', help: 'Job attempts finished by this replica, by kind and outcome', labelNames: ['kind', 'outcome'], registers });
    this.duration = new Histogram({ name: 'wharf_job_duration_seconds', help: 'Job attempt duration', labelNames: ['kind'], buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600], registers });
    this.gcRuns = new Counter({ name: 'wharf_gc_runs_total', help: 'Completed garbage collection runs', labelNames: ['dry_run'], registers });
    this.gcDeleted = new Counter({ name: 'wharf_gc_deleted_total', help: 'Items deleted by garbage collection (accessory_tags, manifests, links, blobs, orphan_objects, upload_sessions, orphan_uploads)', labelNames: ['what'], registers });
    this.gcBytesFreed = new Counter({ name: 'wharf_gc_bytes_freed_total', help: 'Storage bytes freed by garbage collection', registers });
    this.gcLastSuccess = new Gauge({ name: 'wharf_gc_last_success_timestamp_seconds', help: 'End of the last successful garbage collection run (not dry runs)', registers });
    this.gcLastBytesFreed = new Gauge({ name: 'wharf_gc_last_bytes_freed', help: 'Storage bytes freed by the last garbage collection run (not dry runs)', registers });
  }

  readonly recordOutcome = (outcome: JobOutcome): void => {
    this.processed.inc({ kind: outcome.kind, outcome: outcome.outcome });
    this.duration.observe({ kind: outcome.kind }, outcome.seconds);
  };

  recordGc(report: GcReport): void {
    this.gcRuns.inc({ dry_run: String(report.dryRun) });
    if (report.dryRun) return;
    const deleted: Record<string, number> = {
      accessory_tags: report.accessoryTags.deleted,
      manifests: report.manifests.deleted,
      links: report.links.deleted,
      blobs: report.blobs.deleted,
      orphan_objects: report.orphanObjects.deleted,
      upload_sessions: report.uploads.sessions,
      orphan_uploads: report.uploads.orphans,
    };
    for (const [what, n] of Object.entries(deleted)) if (n > 0) this.gcDeleted.inc({ what }, n);
    this.gcBytesFreed.inc(report.bytesFreed);
    this.gcLastSuccess.set(Date.now() / 1000);
    this.gcLastBytesFreed.set(report.bytesFreed);
  }

  recordPurge(sessions: number, orphans: number): void {
    if (sessions > 0) this.gcDeleted.inc({ what: 'upload_sessions' }, sessions);
    if (orphans > 0) this.gcDeleted.inc({ what: 'orphan_uploads' }, orphans);
  }
}
