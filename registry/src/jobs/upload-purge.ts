import type { UploadStore } from '../metadata/uploads.js';
import type { BlobStore } from '../storage/blob-store.js';

export interface PurgeReport {
  /** Upload sessions (database row and storage) not touched for the purge age. */
  sessions: number;
  /** Upload directories in storage without a session (a crash between the two writes, a dropped monolithic push). */
  orphans: number;
}

const BATCH = 100;

/** Removes abandoned upload sessions and the storage they hold. Idempotent. */
export class UploadPurger {
  constructor(
    private readonly uploads: UploadStore,
    private readonly store: BlobStore,
  ) {}

  /** Purges what was last touched before `before`; a dry run only counts. */
  async run(before: Date, dryRun: boolean, signal?: AbortSignal): Promise<PurgeReport> {
    const report: PurgeReport = { sessions: 0, orphans: 0 };
    if (dryRun) {
      report.sessions = (await this.uploads.stale(before, 1_000_000)).length;
    } else {
      for (;;) {
        signal?.throwIfAborted();
        const batch = await this.uploads.stale(before, BATCH);
        for (const session of batch) {
          // The row goes first: once it is gone no request can append to the session.
          if (!(await this.uploads.delete(session.id))) continue;
          await this.store.abortUpload(session.id, session.state, signal);
          report.sessions++;
        }
        if (batch.length < BATCH) break;
      }
    }
    for await (const upload of this.store.listUploads(signal)) {
      if (upload.modifiedAt >= before || (await this.uploads.exists(upload.id))) continue;
      if (!dryRun) await this.store.abortUpload(upload.id, {}, signal);
      report.orphans++;
    }
    return report;
  }
}
