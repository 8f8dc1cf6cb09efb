import type { FastifyBaseLogger } from 'fastify';
import { projectOf } from '../auth/scopes.js';
import { immutableBy, type ImmutabilityPolicy } from '../lifecycle/immutability.js';
import type { BlobMark, GcStore, LinkKey, ManifestKey, OrphanedAccessoryTag, ProjectUsage } from '../metadata/gc.js';
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
  /**
   * Cosign accessory tags (`sha256-<hex>.sig|.att|.sbom`) whose subject is gone, deleted in
   * every run; `immutable`: such tags an immutability rule keeps (with their manifests).
   */
  accessoryTags: { deleted: number; immutable: number };
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
/** Storage deletes in flight at once. */
const STORAGE_CONCURRENCY = 16;
/** Deadline for one storage delete; well below the point where a deletion mark counts as abandoned. */
const STORAGE_DELETE_TIMEOUT_MS = (DELETION_MARK_STALE_SECONDS / 3) * 1000;

/**
 * Online mark-and-sweep garbage collection; pushes and pulls go on meanwhile.
 *
 * 1. Accessory tags (cosign `sha256-<hex>.sig|.att|.sbom`) whose subject is gone, unless
 *    immutable; then manifests: those no tag reaches, directly, as an index child or as
 *    a referrer of a reached manifest, and older than the grace window (all of them with
 *    deleteUntagged, else only those orphaned by a deleted subject).
 * 2. Links: a repository's blob links that no manifest of the repository references.
 * 3. Blobs: rows with no link and no manifest reference, then their storage objects.
 * 4. Orphans: storage objects that have no blob row.
 * 5. Abandoned upload sessions.
 *
 * Candidates come from plain reads, a page at a time; each page is deleted in one
 * short transaction that locks the rows and re-checks them (GcStore), and storage
 * objects are deleted only after their row is marked, which makes a racing push of
 * the same digest wait (BlobLinkStore.reserve). Every phase skips anything younger
 * than the grace window, so a blob uploaded for a manifest that is still being pushed
 * survives. Running it again, or on several replicas at once, is safe.
 */
export class GarbageCollector {
  constructor(
    private readonly sql: Sql,
    private readonly gc: GcStore,
    private readonly store: BlobStore,
    private readonly purger: UploadPurger,
    private readonly log: FastifyBaseLogger,
    /** A project's tag immutability policy: immutable accessory tags are never deleted. */
    private readonly immutability: (project: string) => Promise<ImmutabilityPolicy | undefined> = async () => undefined,
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
      accessoryTags: { deleted: 0, immutable: 0 },
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
    // Referrers and accessories whose subject was deleted go in every run; other untagged manifests only when asked.
    const assumedManifests = await this.sweepManifests(cutoff, options.dryRun, report, signal, !options.deleteUntagged);
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

  /**
   * Accessory tags whose subject is gone, then manifests. Returns what a dry run assumes
   * deleted; a real run deletes as it goes and returns nothing. A real run repeats while
   * it deletes accessory tags: an accessory of an accessory is orphaned only once the
   * first one's manifest is gone.
   */
  private async sweepManifests(cutoff: Date, dryRun: boolean, report: GcReport, signal: AbortSignal, onlyOrphans: boolean): Promise<ManifestKey[]> {
    const immutable = new Set<string>();
    const policies = new Map<string, Promise<ImmutabilityPolicy | undefined>>();
    const deletable = async (tags: OrphanedAccessoryTag[]) => {
      const kept: OrphanedAccessoryTag[] = [];
      for (const tag of tags) {
        const project = projectOf(tag.repository);
        if (!policies.has(project)) policies.set(project, this.immutability(project));
        const policy = await policies.get(project)!;
        if (policy && immutableBy(policy, tag.repository, tag.name)) immutable.add(`${tag.repository}:${tag.name}`);
        else kept.push(tag);
      }
      report.accessoryTags.immutable = immutable.size;
      return kept;
    };
    for (;;) {
      signal.throwIfAborted();
      // Before the accessory tags go: afterwards nothing ties their manifests to the deleted subject.
      const orphans = onlyOrphans ? await this.gc.orphanedReferrers() : undefined;
      const tags = await deletable(await this.gc.orphanedAccessoryTags(cutoff));
      if (dryRun) {
        // Counts accessories of accessories at once (a real run takes them pass by pass);
        // it over-counts only one whose subject an immutable accessory tag keeps.
        report.accessoryTags.deleted = tags.length;
        if (orphans?.size === 0) return [];
        let candidates = await this.gc.unreachableManifests(cutoff, tags);
        if (orphans) candidates = candidates.filter((c) => orphans.has(`${c.repository}@${c.digest}`));
        report.manifests = { deleted: candidates.length, bytes: candidates.reduce((sum, c) => sum + c.size, 0) };
        return candidates;
      }
      const direct = tags.filter((t) => t.subjectAbsent);
      let tagsDeleted = 0;
      for (let i = 0; i < direct.length; i += PAGE) {
        signal.throwIfAborted();
        const page = direct.slice(i, i + PAGE);
        const deleted = (await this.gc.deleteAccessoryTags(page, cutoff)).length;
        tagsDeleted += deleted;
        report.keptByRecheck += page.length - deleted;
      }
      report.accessoryTags.deleted += tagsDeleted;
      if (orphans?.size !== 0) await this.deleteUnreachable(cutoff, orphans, report, signal);
      if (tagsDeleted === 0) return [];
    }
  }

  /** Deletes unreachable manifests (only those in `only`, when given), in passes until one deletes nothing. */
  private async deleteUnreachable(cutoff: Date, only: Set<string> | undefined, report: GcReport, signal: AbortSignal): Promise<void> {
    let candidates = await this.gc.unreachableManifests(cutoff);
    if (only) candidates = candidates.filter((c) => only.has(`${c.repository}@${c.digest}`));
    // A candidate is held while an unreachable parent index or subject still exists;
    // passes repeat until one deletes nothing.
    const sizes = new Map(candidates.map((c) => [`${c.repository}@${c.digest}`, c.size]));
    let remaining: ManifestKey[] = candidates;
    for (;;) {
      let deletedThisPass = 0;
      for (let i = 0; i < remaining.length; i += PAGE) {
        signal.throwIfAborted();
        for (const key of await this.gc.deleteManifests(remaining.slice(i, i + PAGE), cutoff)) {
          const id = `${key.repository}@${key.digest}`;
          report.manifests.deleted++;
          report.manifests.bytes += sizes.get(id) ?? 0;
          sizes.delete(id);
          deletedThisPass++;
        }
      }
      remaining = remaining.filter((k) => sizes.has(`${k.repository}@${k.digest}`));
      if (deletedThisPass === 0 || remaining.length === 0) {
        report.keptByRecheck += remaining.length;
        return;
      }
    }
  }

  private async sweepLinks(cutoff: Date, dryRun: boolean, assumedManifests: ManifestKey[], report: GcReport, signal: AbortSignal): Promise<LinkKey[]> {
    const assumed: LinkKey[] = [];
    let after: LinkKey | undefined;
    for (;;) {
      signal.throwIfAborted();
      const page = await this.gc.unreferencedLinks(cutoff, after, PAGE, { manifests: assumedManifests });
      if (dryRun) {
        assumed.push(...page);
        report.links.deleted += page.length;
      } else {
        const deleted = (await this.gc.deleteLinks(page, cutoff)).length;
        report.links.deleted += deleted;
        report.keptByRecheck += page.length - deleted;
      }
      if (page.length < PAGE) return assumed;
      after = page[page.length - 1];
    }
  }

  private async sweepBlobs(cutoff: Date, dryRun: boolean, assumed: { manifests: ManifestKey[]; links: LinkKey[] }, report: GcReport, signal: AbortSignal): Promise<void> {
    let after: string | undefined;
    for (;;) {
      signal.throwIfAborted();
      const page = await this.gc.unreferencedBlobs(cutoff, after, PAGE, assumed);
      if (dryRun) {
        report.blobs.deleted += page.length;
        report.blobs.bytesFreed += page.reduce((sum, b) => sum + b.size, 0);
      } else {
        const marks = await this.gc.markBlobs(page.map((b) => b.digest), cutoff, DELETION_MARK_STALE_SECONDS);
        report.keptByRecheck += page.length - marks.length;
        const freed = await this.deleteObjects(marks, signal);
        report.blobs.deleted += freed.count;
        report.blobs.bytesFreed += freed.bytes;
      }
      if (page.length < PAGE) return;
      after = page[page.length - 1]!.digest;
    }
  }

  private async sweepOrphans(cutoff: Date, dryRun: boolean, report: GcReport, signal: AbortSignal): Promise<void> {
    let batch: { digest: string; size: number; modifiedAt: Date }[] = [];
    const flush = async () => {
      signal.throwIfAborted();
      const known = await this.gc.existingBlobs(batch.map((b) => b.digest));
      const orphans = batch.filter((o) => !known.has(o.digest) && o.modifiedAt < cutoff);
      batch = [];
      if (dryRun) {
        report.orphanObjects.deleted += orphans.length;
        report.orphanObjects.bytesFreed += orphans.reduce((sum, o) => sum + o.size, 0);
        return;
      }
      const freed = await this.deleteObjects(await this.gc.markOrphans(orphans), signal);
      report.orphanObjects.deleted += freed.count;
      report.orphanObjects.bytesFreed += freed.bytes;
    };
    for await (const object of this.store.list(signal)) {
      batch.push(object);
      if (batch.length === PAGE) await flush();
    }
    await flush();
  }

  /**
   * Deletes the storage objects of marked blobs, STORAGE_CONCURRENCY at a time, then
   * their rows. Marks whose delete failed are dropped (the blob stays for the next
   * run) and the first failure is rethrown.
   */
  private async deleteObjects(marks: BlobMark[], signal: AbortSignal): Promise<{ count: number; bytes: number }> {
    const done: BlobMark[] = [];
    const failed: BlobMark[] = [];
    let error: unknown;
    let next = 0;
    const worker = async () => {
      while (next < marks.length) {
        const mark = marks[next++]!;
        try {
          if (error) throw error;
          await this.store.delete(mark.digest, AbortSignal.any([signal, AbortSignal.timeout(STORAGE_DELETE_TIMEOUT_MS)]));
          done.push(mark);
        } catch (err) {
          error ??= err;
          failed.push(mark);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(STORAGE_CONCURRENCY, marks.length) }, worker));
    await this.gc.finishBlobDeletions(done);
    if (failed.length > 0) {
      await this.gc.unmarkBlobs(failed).catch((err: unknown) => this.log.warn({ err, blobs: failed.length }, 'gc: cannot drop deletion marks; they expire on their own'));
      throw error;
    }
    return { count: done.length, bytes: done.reduce((sum, m) => sum + m.size, 0) };
  }
}
