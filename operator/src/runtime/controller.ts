// Runs a reconciler over a work queue with N workers (controller-runtime's Controller).
// Reconcile is level-triggered: it gets a key, reads the current state from caches and the API,
// and converges. A thrown error requeues with backoff; a result may ask for a later requeue.
import type { Logger } from 'pino';
import { errorText } from './informer.js';
import type { OperatorMetrics } from './metrics.js';
import type { WorkQueue } from './workqueue.js';

export interface ReconcileResult {
  requeueAfterMs?: number;
}

export interface Reconciler {
  reconcile(key: string, signal: AbortSignal): Promise<ReconcileResult>;
}

export interface ControllerOptions {
  name: string;
  workers?: number;
}

export class Controller {
  private inFlight = 0;

  constructor(
    private readonly options: ControllerOptions,
    readonly queue: WorkQueue,
    private readonly reconciler: Reconciler,
    private readonly metrics: OperatorMetrics,
    private readonly log: Logger,
  ) {}

  get name(): string {
    return this.options.name;
  }

  get busy(): number {
    return this.inFlight;
  }

  /** Processes keys until the signal aborts; then waits for in-flight reconciles to finish. */
  async run(signal: AbortSignal): Promise<void> {
    const onAbort = () => this.queue.shutDown();
    signal.addEventListener('abort', onAbort, { once: true });
    const workers = Array.from({ length: this.options.workers ?? 2 }, () => this.worker(signal));
    await Promise.all(workers);
    signal.removeEventListener('abort', onAbort);
  }

  private async worker(signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      this.metrics.queueDepth.set({ controller: this.name }, this.queue.length);
      this.inFlight++;
      const end = this.metrics.reconcileSeconds.startTimer({ controller: this.name });
      try {
        const result = await this.reconciler.reconcile(key, signal);
        this.queue.forget(key);
        if (result.requeueAfterMs !== undefined) {
          this.queue.addAfter(key, result.requeueAfterMs);
          this.metrics.reconciles.inc({ controller: this.name, result: 'requeue' });
        } else {
          this.metrics.reconciles.inc({ controller: this.name, result: 'success' });
        }
      } catch (err) {
        this.metrics.reconciles.inc({ controller: this.name, result: 'error' });
        if (!signal.aborted) {
          const delay = this.queue.when(key);
          this.log.warn({ controller: this.name, key, err: errorText(err), retryInMs: delay }, 'reconcile failed; requeued');
          this.queue.addAfter(key, delay);
        }
      } finally {
        end();
        this.inFlight--;
        this.queue.done(key);
      }
    }
  }
}
