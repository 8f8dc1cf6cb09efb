import type { FastifyBaseLogger } from 'fastify';
import type { BlobMark, GcStore, LinkKey, ManifestCandidate, ManifestKey, ProjectUsage } from '../metadata/gc.js';
import type { Sql } from '../metadata/sql.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { PurgeReport, UploadPurger } from './upload-purge.js';
import { DELETION_MARK_STALE_SECONDS } from '../metadata/blob-links.js';

export interface GcOptions {
  dryRun: boolean;
  /** Also delete manifests that no tag reaches (directly, as an index child, or as a referrer). */
  deleteUntagged: boolean;
  /** Nothing pushed, linked or modified more recently than this is touched. */
  graceSeconds: number;
  /** Upload sessions idle for longer are purged. */
  uploadPurgeSeconds: number;
}

export interface GcReport {
  dryRun: boolean;
  deleteUntagged: boolean;
  graceSeconds: number;
  startedAt: string;
  finishedAt?: string;
  phase: 'manifests' | 'links' | 'blobs' | 'orphans' | 'uploads' | 'usage' | 'done';
  /** Untagged, unreachable manifests (bytes held in the database). In a dry run: would be deleted. */
  manifests: { deleted: number; bytes: number };
  /** Repository links to blobs that no manifest of the repository references. */
  links: { deleted: number };
  /** Blob rows and their storage objects. */
  blobs: { deleted: number; bytesFreed: number };
  /** Storage objects without a blob row (left by a push that died before recording it). */
  orphanObjects: { deleted: number; bytesFreed: number };
  uploads: PurgeReport;
  /** Candidates a concurrent push claimed back before they could be deleted. */
  keptByRecheck: number;
  /** Storage bytes freed (blobs and orphan objects). */
  bytesFreed: number;
  /** Per-project usage after the run, as quotas count it. */
  projects: ProjectUsage[];
}

const PAGE = 500;
/** Deadline for one storage delete; well below the point where a deletion mark counts as abandoned. */
const STORAGE_DELETE_TIMEOUT_MS = (DELETION_MARK_STALE_SECONDS / 3) * 1000;

/**
 * Online mark-and-sweep garbage collection; pushes and pulls go on meanwhile.
 *
 * 1. Manifests (optional): those no tag reaches, directly, as an index child or as a
 *    referrer of a reached manifest, and older than the grace window.
 * 2. Links: a repository's blob links that no manifest of the repository references.
 * 3. Blobs: rows with no link and no manifest reference, then their storage objects.
 * 4. Orphans: storage objects that have no blob row.
 * 5. Abandoned upload sessions.
 *
 * Candidates come from plain reads; each deletion re-checks under a row lock
 * (GcStore), and storage objects are deleted only after their row is marked, which
 * makes a racing push of the same digest wait (BlobLinkStore.reserve). Every phase
 * skips anything younger than the grace window, so a blob uploaded for a manifest
 * that is still being pushed survives. Running it again, or on several replicas at
 * once, is safe.
 */
export class GarbageCollector {
  constructor(
    private readonly sql: Sql,
    private readonly gc: GcStore,
    private readonly store: BlobStore,
    private readonly purger: UploadPurger,
    private readonly log: FastifyBaseLogger,
  ) {}

  async run(options: GcOptions, signal: AbortSignal, progress: (report: GcReport) => void = () => undefined): Promise<GcReport> {
    const [clock] = await this.sql.query<{ now: Date }>('SELECT now() AS now');
    const now = clock!.now;
    const cutoff = new Date(now.getTime() - options.graceSeconds * 1000);
    const report: GcReport = {
      dryRun: options.dryRun,
      deleteUntagged: options.deleteUntagged,
      graceSeconds: options.graceSeconds,
      startedAt: new Date().toISOString(),
      phase: 'manifests',
      manifests: { deleted: 0, bytes: 0 },
      links: { deleted: 0 },
      blobs: { deleted: 0, bytesFreed: 0 },
      orphanObjects: { deleted: 0, bytesFreed: 0 },
      uploads: { sessions: 0, orphans: 0 },
      keptByRecheck: 0,
      bytesFreed: 0,
      projects: [],
    };
    const step = (phase: GcReport['phase']) => {
      signal.throwIfAborted();
      report.phase = phase;
      progress(report);
    };
    const assumedManifests = options.deleteUntagged ? await this.sweepManifests(cutoff, options.dryRun, report, signal) : [];
    step('links');
    const assumedLinks = await this.sweepLinks(cutoff, options.dryRun, assumedManifests, report, signal);
    step('blobs');
    await this.sweepBlobs(cutoff, options.dryRun, { manifests: assumedManifests, links: assumedLinks }, report, signal);
    step('orphans');
    await this.sweepOrphans(cutoff, options.dryRun, report, signal);
    step('uploads');
    report.uploads = await this.purger.run(new Date(now.getTime() - options.uploadPurgeSeconds * 1000), options.dryRun, signal);
    step('usage');
    report.projects = await this.gc.usageByProject();
    report.bytesFreed = report.blobs.bytesFreed + report.orphanObjects.bytesFreed;
    report.phase = 'done';
    report.finishedAt = new Date().toISOString();
    return report;
  }

  /** Returns what a dry run assumes deleted; a real run deletes as it goes and returns nothing. */
  private async sweepManifests(cutoff: Date, dryRun: boolean, report: GcReport, signal: AbortSignal): Promise<ManifestKey[]> {
    const candidates = await this.gc.unreachableManifests(cutoff);
    if (dryRun) {
      report.manifests = { deleted: candidates.length, bytes: candidates.reduce((sum, c) => sum + c.size, 0) };
      return candidates;
    }
    // A candidate is held while an unreachable parent index or subject still exists;
    // passes repeat until one deletes nothing.
    let remaining: ManifestCandidate[] = candidates;
    for (;;) {
      const held: ManifestCandidate[] = [];
      for (const candidate of remaining) {
        signal.throwIfAborted();
        const verdict = await this.gc.deleteManifest(candidate, cutoff);
        if (verdict === 'deleted') {
          report.manifests.deleted++;
          report.manifests.bytes += candidate.size;
        } else if (verdict === 'kept') {
          held.push(candidate);
        }
      }
      if (held.length === remaining.length) {
        report.keptByRecheck += held.length;
        return [];
      }
      remaining = held;
    }
  }

  private async sweepLinks(cutoff: Date, dryRun: boolean, assumedManifests: ManifestKey[], report: GcReport, signal: AbortSignal): Promise<LinkKey[]> {
    const assumed: LinkKey[] = [];
    let after: LinkKey | undefined;
    for (;;) {
      const page = await this.gc.unreferencedLinks(cutoff, after, PAGE, { manifests: assumedManifests });
      for (const link of page) {
        signal.throwIfAborted();
        if (dryRun) {
          assumed.push(link);
          report.links.deleted++;
        } else if ((await this.gc.deleteLink(link, cutoff)) === 'deleted') {
          report.links.deleted++;
        } else {
          report.keptByRecheck++;
        }
      }
      if (page.length < PAGE) return assumed;
      after = page[page.length - 1];
    }
  }

  private async sweepBlobs(cutoff: Date, dryRun: boolean, assumed: { manifests: ManifestKey[]; links: LinkKey[] }, report: GcReport, signal: AbortSignal): Promise<void> {
    let after: string | undefined;
    for (;;) {
      const page = await this.gc.unreferencedBlobs(cutoff, after, PAGE, assumed);
      for (const blob of page) {
        signal.throwIfAborted();
        if (dryRun) {
          report.blobs.deleted++;
          report.blobs.bytesFreed += blob.size;
          continue;
        }
        const { verdict, mark } = await this.gc.markBlob(blob.digest, cutoff, DELETION_MARK_STALE_SECONDS);
        if (verdict !== 'deleted' || !mark) {
          if (verdict !== 'gone') report.keptByRecheck++;
          continue;
        }
        const freed = await this.deleteObject(mark, cutoff, signal);
        if (freed === undefined) {
          report.keptByRecheck++;
        } else {
          report.blobs.deleted++;
          report.blobs.bytesFreed += freed;
        }
      }
      if (page.length < PAGE) return;
      after = page[page.length - 1]!.digest;
    }
  }

  private async sweepOrphans(cutoff: Date, dryRun: boolean, report: GcReport, signal: AbortSignal): Promise<void> {
    let batch: { digest: string; size: number; modifiedAt: Date }[] = [];
    const flush = async () => {
      const known = await this.gc.existingBlobs(batch.map((b) => b.digest));
      for (const object of batch) {
        signal.throwIfAborted();
        if (known.has(object.digest) || object.modifiedAt >= cutoff) continue;
        if (dryRun) {
          report.orphanObjects.deleted++;
          report.orphanObjects.bytesFreed += object.size;
          continue;
        }
        const mark = await this.gc.markOrphan(object.digest, object.size);
        if (!mark) continue;
        const freed = await this.deleteObject(mark, cutoff, signal);
        if (freed !== undefined) {
          report.orphanObjects.deleted++;
          report.orphanObjects.bytesFreed += freed;
        }
      }
      batch = [];
    };
    for await (const object of this.store.list(signal)) {
      batch.push(object);
      if (batch.length === PAGE) await flush();
    }
    await flush();
  }

  /**
   * Deletes the storage object of a marked blob, then its row. Returns the bytes
   * freed, or undefined when the object was written within the grace window (by a
   * push that did not reserve the digest, e.g. an older replica during an upgrade):
   * then the mark is dropped and the blob stays.
   */
  private async deleteObject(mark: BlobMark, cutoff: Date, signal: AbortSignal): Promise<number | undefined> {
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(STORAGE_DELETE_TIMEOUT_MS)]);
    try {
      const info = await this.store.stat(mark.digest, deadline);
      if (info && info.modifiedAt >= cutoff) {
        await this.gc.unmarkBlob(mark);
        return undefined;
      }
      if (info) await this.store.delete(mark.digest, deadline);
      await this.gc.finishBlobDeletion(mark);
      return info?.size ?? 0;
    } catch (err) {
      await this.gc.unmarkBlob(mark).catch((unmarkErr: unknown) => this.log.warn({ err: unmarkErr, digest: mark.digest }, 'gc: cannot drop a deletion mark; it expires on its own'));
      throw err;
    }
  }
}
