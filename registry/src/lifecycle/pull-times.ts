import type { FastifyBaseLogger } from 'fastify';
import type { ArtifactEvent } from '../events/artifact-events.js';
import type { LifecycleStore, PullTime } from '../metadata/lifecycle.js';

/** Distinct artifacts held between flushes at most; past it a flush starts early. */
const MAX_PENDING = 10_000;

/**
 * Records when artifacts were pulled, for retention's pull-based templates, without a
 * write per pull: `pulled` events are collected in memory (one entry per artifact, the
 * latest time) and written in one statement every `flushMs`. A crash loses at most one
 * interval of pull times, which only makes retention see an older last pull.
 */
export class PullTimeRecorder {
  private pending = new Map<string, PullTime>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: LifecycleStore,
    private readonly flushMs: number,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** An ArtifactEvents listener. */
  readonly onEvent = (event: ArtifactEvent): void => {
    if (event.type !== 'pulled' || !event.digest) return;
    const key = `${event.repository}@${event.digest}`;
    const seen = this.pending.get(key);
    if (!seen || seen.at < event.at) this.pending.set(key, { repository: event.repository, digest: event.digest, at: event.at });
    if (this.pending.size >= MAX_PENDING) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.flushMs).unref();
  };

  /** Writes what is pending; resolves when it (and any flush before it) is written. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    this.flushing = this.flushing.then(async () => {
      if (batch.length === 0) return;
      try {
        await this.store.recordPulls(batch);
      } catch (err) {
        this.log.warn({ err, artifacts: batch.length }, 'cannot record pull times; they are dropped');
      }
    });
    return this.flushing;
  }
}
