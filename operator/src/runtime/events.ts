// Records Kubernetes Events (events.k8s.io/v1) about the objects the operator manages.
// Identical events for the same object are sent once per `dedupeMs`, so a failing reconcile
// that retries does not flood the apiserver, and an idle operator writes none.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { KubeClient } from '../kube/client.js';
import type { KubeObject } from '../kube/types.js';
import { errorText } from './informer.js';
import { microTime } from './time.js';

export type EventKind = 'Normal' | 'Warning';

export class EventRecorder {
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly client: KubeClient,
    private readonly controller: string,
    private readonly instance: string,
    private readonly log: Logger,
    private readonly dedupeMs = 10 * 60_000,
  ) {}

  async record(regarding: KubeObject, type: EventKind, reason: string, note: string, action = 'Reconcile'): Promise<void> {
    const key = `${regarding.metadata.uid}|${type}|${reason}|${note}`;
    const now = Date.now();
    const last = this.recent.get(key);
    if (last !== undefined && now - last < this.dedupeMs) return;
    this.recent.set(key, now);
    if (this.recent.size > 5000) for (const [k, t] of this.recent) if (now - t >= this.dedupeMs) this.recent.delete(k);
    const ns = regarding.metadata.namespace ?? 'default';
    try {
      await this.client.create({
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name: `${regarding.metadata.name}.${randomBytes(8).toString('hex')}`, namespace: ns },
        eventTime: microTime(),
        reportingController: this.controller,
        reportingInstance: this.instance,
        action,
        reason,
        note: note.slice(0, 1024),
        type,
        regarding: {
          apiVersion: regarding.apiVersion,
          kind: regarding.kind,
          name: regarding.metadata.name,
          namespace: regarding.metadata.namespace,
          uid: regarding.metadata.uid,
          resourceVersion: regarding.metadata.resourceVersion,
        },
      });
    } catch (err) {
      // An event is best effort: never fail a reconcile because of one.
      this.log.warn({ err: errorText(err), reason }, 'recording an event failed');
    }
  }
}
