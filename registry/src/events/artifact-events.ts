import type { FastifyBaseLogger } from 'fastify';

/**
 * What happened to an artifact, as seen by the /v2 API (and by the services that delete
 * on their own, such as retention). Webhooks and event-based replication consume these.
 */
export interface ArtifactEvent {
  type: 'pushed' | 'pulled' | 'deleted';
  project: string;
  /** Full repository name, project included. */
  repository: string;
  /** The manifest's digest; absent for a tag delete, whose digest the request does not name. */
  digest?: string;
  /** The tag the request named, when it named one. */
  tag?: string;
  /** A push that made `tag` point at `digest`, where it did not point before (new or moved tag). */
  tagCreated?: boolean;
  mediaType?: string;
  size?: number;
  actor: string;
  at: Date;
}

export type ArtifactEventListener = (event: ArtifactEvent) => void | Promise<void>;

/**
 * In-process fan-out of artifact events. Each event happens on exactly one replica, so a
 * consumer that must survive restarts enqueues a job from its listener. Listeners run
 * after the response, off the request path; one that throws or rejects is logged and
 * never affects the request or the other listeners.
 */
export class ArtifactEvents {
  private readonly listeners = new Set<ArtifactEventListener>();

  constructor(private readonly log: FastifyBaseLogger) {}

  /** Returns the unsubscribe function. */
  subscribe(listener: ArtifactEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(event: ArtifactEvent): void {
    for (const listener of this.listeners) {
      setImmediate(() => {
        Promise.resolve()
          .then(() => listener(event))
          .catch((err: unknown) => this.log.warn({ err, event: { type: event.type, repository: event.repository, digest: event.digest } }, 'artifact event listener failed'));
      });
    }
  }
}
