// Pull-secret injection, the side that writes: each target namespace of a RobotAccount gets its
// dockerconfigjson Secret, and the listed ServiceAccounts there get an imagePullSecrets entry;
// namespaces that stop matching lose both. Wharf's Secrets are found by label (the informer's
// cache, or a label-selected list when finalizing), never by memory, so a restarted operator
// cleans up what an earlier one wrote. A Secret of the same name that Wharf did not write, or
// that another RobotAccount owns, is never changed or deleted: it is reported, and the other
// namespaces still converge.
import type { Logger } from 'pino';
import type { RobotAccountObject } from '../api/types.js';
import type { KubeClient } from '../kube/client.js';
import { isAlreadyExists, isConflict, isNotFound } from '../kube/errors.js';
import { RESOURCES } from '../kube/resources.js';
import type { Credential, SecretLike } from '../resources/robot-account/credentials.js';
import { dockerConfigJson } from '../resources/robot-account/credentials.js';
import { belongsTo, pullSecretName, ROBOT_ACCOUNT_ANNOTATION, ROBOT_SECRET_LABEL, ROBOT_UID_LABEL } from '../resources/robot-account/names.js';
import {
  imagePullSecretPatch,
  isTerminating,
  recordedServiceAccounts,
  renderPullSecret,
  targetNamespaces,
  wantedServiceAccounts,
  type NamespaceLike,
} from '../resources/robot-account/pull-secret.js';
import { withAppliedHash, type Applier } from '../runtime/apply.js';
import type { Informer } from '../runtime/informer.js';
import type { ServiceAccountWatches } from './service-account-watches.js';

export interface PullSecretCaches {
  namespaces: Informer<NamespaceLike>;
  /** The Secrets the RobotAccount controller wrote (label-selected). */
  secrets: Informer<SecretLike>;
  serviceAccounts: ServiceAccountWatches;
}

export interface InjectionResult {
  /** Namespaces that hold this RobotAccount's pull secret. */
  namespaces: number;
  /** `namespace/secret (why)` for each target where a Secret Wharf may not touch has the name. */
  conflicts: string[];
}

/** Namespaces handled at once: a rotation reaches many namespaces in parallel, but not all at once. */
const PARALLEL = 8;
/** Attempts at a ServiceAccount patch that loses races with other writers. */
const PATCH_ATTEMPTS = 5;

export class PullSecretInjector {
  constructor(
    private readonly client: KubeClient,
    private readonly caches: PullSecretCaches,
    private readonly applier: Applier,
    private readonly log: Logger,
  ) {}

  /** Brings every target namespace to the credential, and removes the pull secret where it is no longer wanted. */
  async sync(obj: RobotAccountObject, credential: Credential, hosts: string[], signal: AbortSignal): Promise<InjectionResult> {
    const name = pullSecretName(obj);
    const targets = targetNamespaces(obj, this.caches.namespaces.list());
    const dockerConfig = dockerConfigJson(hosts, credential.username, credential.password);
    const outcomes = await inParallel(targets, (ns) => this.syncNamespace(obj, ns, name, dockerConfig, credential.rotatedAt, signal));
    const wanted = new Set(targets);
    const unwanted = this.caches.secrets
      .list()
      .filter((s) => belongsTo(s, obj, 'pull') && !(wanted.has(s.metadata.namespace!) && s.metadata.name === name) && !this.terminating(s.metadata.namespace!));
    const removals = await inParallel(unwanted, (s) => this.remove(obj, s, signal));
    const errors = [...outcomes, ...removals].filter((o): o is { error: unknown } => typeof o === 'object' && o !== null && 'error' in o).map((o) => o.error);
    if (errors.length > 0) throw errors.length === 1 ? errors[0] : new AggregateError(errors, `pull secrets: ${errors.length} namespaces failed: ${errors.map(String).join('; ')}`);
    const conflicts = outcomes.filter((o): o is { conflict: string } => typeof o === 'object' && o !== null && 'conflict' in o).map((o) => o.conflict);
    return { namespaces: outcomes.filter((o) => o === 'ok').length, conflicts };
  }

  /**
   * Finalizing: removes every pull secret of this RobotAccount and its ServiceAccount entries,
   * found by a label-selected list (fresh, not the cache), wherever an earlier run put them.
   */
  async cleanup(obj: RobotAccountObject, signal: AbortSignal): Promise<number> {
    const selector = `${ROBOT_SECRET_LABEL}=pull,${ROBOT_UID_LABEL}=${obj.metadata.uid}`;
    const list = await this.client.list<SecretLike>(RESOURCES.Secret, undefined, { labelSelector: selector }, signal);
    const results = await inParallel(list.items, (s) => this.remove(obj, s, signal));
    const errors = results.filter((r): r is { error: unknown } => typeof r === 'object' && r !== null && 'error' in r).map((r) => r.error);
    if (errors.length > 0) throw errors[0];
    return list.items.length;
  }

  private terminating(namespace: string): boolean {
    const ns = this.caches.namespaces.get(namespace);
    return !ns || isTerminating(ns);
  }

  private async syncNamespace(obj: RobotAccountObject, ns: string, name: string, dockerConfig: string, rotatedAt: string, signal: AbortSignal): Promise<'ok' | { conflict: string }> {
    // A Secret Wharf did not write is not in the label-selected cache: look before writing.
    const live = this.caches.secrets.get(`${ns}/${name}`) ?? (await this.readSecret(ns, name, signal));
    if (live && !belongsTo(live, obj, 'pull')) {
      const owner = live.metadata.labels?.[ROBOT_SECRET_LABEL] ? live.metadata.annotations?.[ROBOT_ACCOUNT_ANNOTATION] : undefined;
      return { conflict: `${ns}/${name} (${owner ? `belongs to RobotAccount ${owner}` : 'not created by Wharf'})` };
    }
    const wanted = wantedServiceAccounts(obj);
    const recorded = live ? recordedServiceAccounts(live) : [];
    const stale = recorded.filter((sa) => !wanted.includes(sa));
    // Record every ServiceAccount that may get an entry before patching any, so that a restart
    // in between still knows where to remove it from.
    await this.writeSecret(renderPullSecret(obj, ns, dockerConfig, rotatedAt, [...wanted, ...stale]), live, signal);
    for (const sa of wanted) await this.setEntry(ns, sa, name, true, signal);
    for (const sa of stale) await this.setEntry(ns, sa, name, false, signal);
    if (stale.length > 0) await this.writeSecret(renderPullSecret(obj, ns, dockerConfig, rotatedAt, wanted), await this.readSecret(ns, name, signal), signal);
    return 'ok';
  }

  private async writeSecret(desired: SecretLike, live: SecretLike | undefined, signal: AbortSignal): Promise<void> {
    if (live) {
      await this.applier.apply(desired, live, signal);
      return;
    }
    try {
      // Create, not apply: an apply would take over a Secret someone made meanwhile.
      await this.client.create(withAppliedHash(desired), signal);
    } catch (err) {
      // Someone made it meanwhile: the next pass sees whose it is.
      if (isAlreadyExists(err)) throw new Error(`Secret ${desired.metadata.namespace}/${desired.metadata.name} appeared while being created; looking again`);
      throw err;
    }
  }

  /** Removes the entries this Secret recorded (and the ones the spec lists), then the Secret itself (only if it is still the same one). */
  private async remove(obj: RobotAccountObject, secret: SecretLike, signal: AbortSignal): Promise<void> {
    const ns = secret.metadata.namespace!;
    const name = secret.metadata.name;
    for (const sa of new Set([...recordedServiceAccounts(secret), ...wantedServiceAccounts(obj)])) await this.setEntry(ns, sa, name, false, signal);
    try {
      await this.client.delete(RESOURCES.Secret, ns, name, { uid: secret.metadata.uid!, signal });
      this.log.info({ namespace: ns, secret: name, robotAccount: `${obj.metadata.namespace}/${obj.metadata.name}` }, 'removed pull secret');
    } catch (err) {
      // Gone already, or replaced by another object of that name (a different uid): not ours to delete.
      if (!isNotFound(err) && !isConflict(err)) throw err;
    }
  }

  /** Adds or removes the imagePullSecrets entry with a patch guarded by resourceVersion, re-reading and retrying when it loses a race. */
  private async setEntry(ns: string, saName: string, secretName: string, want: boolean, signal: AbortSignal): Promise<void> {
    let sa = await this.caches.serviceAccounts.get(ns, saName, signal);
    for (let attempt = 1; sa; attempt++) {
      const ops = imagePullSecretPatch(sa, secretName, want);
      if (!ops) return;
      try {
        await this.client.jsonPatch(RESOURCES.ServiceAccount, ns, saName, ops, { signal });
        this.log.info({ namespace: ns, serviceAccount: saName, secret: secretName, added: want }, want ? 'added imagePullSecrets entry' : 'removed imagePullSecrets entry');
        return;
      } catch (err) {
        if (isNotFound(err)) return;
        if (!isConflict(err) || attempt >= PATCH_ATTEMPTS) throw err;
      }
      sa = await this.caches.serviceAccounts.read(ns, saName, signal);
    }
  }

  private readSecret(ns: string, name: string, signal: AbortSignal): Promise<SecretLike | undefined> {
    return this.client.find<SecretLike>(RESOURCES.Secret, ns, name, signal);
  }
}

/** Runs `work` on every item, PARALLEL at a time; a failure is returned as `{error}` so the other items still run. */
async function inParallel<T, R>(items: T[], work: (item: T) => Promise<R>): Promise<(R | { error: unknown })[]> {
  const results: (R | { error: unknown })[] = new Array(items.length);
  let next = 0;
  const runner = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = await work(items[i]!);
      } catch (error) {
        results[i] = { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, runner));
  return results;
}
