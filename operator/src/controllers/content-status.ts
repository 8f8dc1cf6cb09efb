// The status half of a content reconcile (Project, RobotAccount): run the work, turn its outcome
// into kstatus conditions, and write status only when it changed. observedGeneration moves when
// this generation was fully evaluated (in sync, or stalled on something only the user can fix),
// never on a transient error, which is rethrown so the work queue retries with backoff.
import { API_VERSION } from '../api/group.js';
import type { Condition } from '../api/schema.js';
import type { KubeClient } from '../kube/client.js';
import type { ResourceType } from '../kube/resources.js';
import type { KubeObject } from '../kube/types.js';
import { RegistryApiError } from '../registry-client/client.js';
import { stableStringify } from '../runtime/apply.js';
import { applySummary, type Summary } from '../runtime/conditions.js';
import type { ReconcileResult } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import { errorText } from '../runtime/informer.js';
import { UserError } from '../runtime/user-error.js';

interface StatusBase {
  observedGeneration?: number;
  conditions?: Condition[];
}

export interface WorkOutcome<S> {
  fields: Partial<S>;
  /** In sync (or converging) … */
  summary?: Summary;
  /** … or stalled on something the user must fix, with the rest applied. */
  userError?: UserError;
  requeueAfterMs?: number;
}

export interface StatusReconcile<S> {
  client: KubeClient;
  resource: ResourceType;
  object: KubeObject & { status?: S & StatusBase };
  events: EventRecorder;
  /** Requeue delay while stalled. */
  recheckMs: number;
  signal: AbortSignal;
  work: () => Promise<WorkOutcome<S>>;
}

export async function reconcileWithStatus<S extends StatusBase>(r: StatusReconcile<S>): Promise<ReconcileResult> {
  const { object, signal } = r;
  const generation = object.metadata.generation;
  const { observedGeneration: previousGeneration, conditions: previousConditions, ...carried } = object.status ?? ({} as S & StatusBase);
  let fields = carried as Partial<S>;
  let observedGeneration = previousGeneration;
  let summary: Summary = { state: 'progressing', reason: 'Reconciling', message: 'Reconciling' };
  let requeueAfterMs: number | undefined;
  let failure: unknown;
  try {
    const outcome = await r.work();
    fields = { ...fields, ...outcome.fields };
    observedGeneration = generation;
    if (outcome.userError) {
      summary = { state: 'stalled', reason: outcome.userError.reason, message: outcome.userError.message };
      requeueAfterMs = r.recheckMs;
      await warnOnce(r, previousConditions, outcome.userError.reason, outcome.userError.message);
    } else {
      summary = outcome.summary ?? summary;
      requeueAfterMs = outcome.requeueAfterMs;
    }
  } catch (err) {
    if (signal.aborted) throw err;
    const stalled = stallReason(err);
    if (stalled) {
      summary = { state: 'stalled', ...stalled };
      observedGeneration = generation;
      requeueAfterMs = r.recheckMs;
      await warnOnce(r, previousConditions, stalled.reason, stalled.message);
    } else {
      failure = err;
      summary = { state: 'progressing', reason: 'Retrying', message: `Retrying after an error: ${errorText(err)}` };
    }
  } finally {
    if (!signal.aborted) {
      const status = {
        ...(observedGeneration !== undefined ? { observedGeneration } : {}),
        conditions: applySummary(previousConditions, summary, generation),
        ...fields,
      };
      try {
        if (stableStringify(status) !== stableStringify(object.status ?? {})) {
          await r.client.apply(
            { apiVersion: API_VERSION, kind: r.resource.kind, metadata: { name: object.metadata.name, namespace: object.metadata.namespace }, status },
            { subresource: 'status', signal },
          );
        }
      } catch (err) {
        failure ??= err;
      }
    }
  }
  if (failure) throw failure;
  return requeueAfterMs !== undefined ? { requeueAfterMs } : {};
}

/** A Warning Event when the object becomes stalled or the reason changes, not on every recheck. */
async function warnOnce(r: StatusReconcile<unknown>, previous: Condition[] | undefined, reason: string, message: string): Promise<void> {
  const stalled = previous?.find((c) => c.type === 'Stalled');
  if (stalled?.status === 'True' && stalled.reason === reason && stalled.message === message) return;
  await r.events.record(r.object, 'Warning', reason, message);
}

/** Errors only the user can fix: our own UserError, and a registry refusing the request as invalid (400, 403, 409, 422). */
function stallReason(err: unknown): { reason: string; message: string } | undefined {
  if (err instanceof UserError) return { reason: err.reason, message: err.message };
  if (err instanceof RegistryApiError && [400, 403, 409, 422].includes(err.status)) return { reason: 'RegistryRejected', message: err.message };
  return undefined;
}
