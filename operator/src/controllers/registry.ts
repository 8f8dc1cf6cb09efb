// The Registry reconciler. One pass (cluster-api's skeleton):
//   get the Registry from the cache (gone → done: owner references clean up);
//   being deleted → finalize; else ensure the finalizer;
//   try { ensure generated Secrets → read referenced Secrets/ConfigMaps → render → apply → prune }
//   finally { compute conditions, write status if it changed }.
// observedGeneration moves only when this generation was fully evaluated (converging, ready or
// stalled on a user error), never on a transient failure. Errors requeue with backoff.
import type { Logger } from 'pino';
import { API_VERSION } from '../api/group.js';
import type { RegistryStatus } from '../api/registry.js';
import type { KubeClient } from '../kube/client.js';
import { isAlreadyExists, isInvalid, isNotFound } from '../kube/errors.js';
import { RESOURCES, type ResourceType } from '../kube/resources.js';
import type { KubeObject } from '../kube/types.js';
import {
  generateSecretValues,
  names,
  render,
  renderAdminSecret,
  renderTokenKeySecret,
  commonLabels,
  imageVersion,
  withDefaults,
  digestReferencedData,
  referencesOf,
  type Registry,
} from '../resources/registry/index.js';
import { TOKEN_KEY_FILE } from '../resources/registry/model.js';
import { Applier, stableStringify } from '../runtime/apply.js';
import { sleep } from '../runtime/backoff.js';
import { applySummary, type Summary } from '../runtime/conditions.js';
import type { ReconcileResult, Reconciler } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import { addFinalizer, hasFinalizer, removeFinalizer } from '../runtime/finalizers.js';
import { errorText, type Informer } from '../runtime/informer.js';
import { ownerKey, ownerReference } from '../runtime/owners.js';
import { UserError } from '../runtime/user-error.js';
import type { NodeMirror } from './node-mirror.js';
import { RegistryConnections } from './registry-connection.js';
import { deploymentSummary, workloadStatus, type DeploymentLike } from './registry-status.js';

export const REGISTRY_FINALIZER = 'wharf.dev/registry';
/** How often a Registry waiting for a user-created Secret looks again. */
export const MISSING_SECRET_RECHECK_MS = 10_000;
/** How often a ready external Registry's /readyz is checked again. */
export const EXTERNAL_HEALTH_INTERVAL_MS = 60_000;

type SecretLike = KubeObject & { data?: Record<string, string> };

export interface RegistryCaches {
  registries: Informer<Registry>;
  deployments: Informer<DeploymentLike>;
  services: Informer;
  configmaps: Informer;
  secrets: Informer;
  pvcs: Informer;
  pdbs: Informer;
  ingresses: Informer;
  daemonsets: Informer;
}

export interface RegistryReconcilerOptions {
  defaultImage: string;
  /** Fault injection for tests: a pause before each apply, to stop the process mid-reconcile. */
  stepDelayMs?: number;
}

export class RegistryReconciler implements Reconciler {
  private readonly applier: Applier;

  constructor(
    private readonly client: KubeClient,
    private readonly caches: RegistryCaches,
    private readonly events: EventRecorder,
    private readonly options: RegistryReconcilerOptions,
    private readonly log: Logger,
    private readonly connections: RegistryConnections,
    applier?: Applier,
    /** The node agent (spec.nodeMirror); without it, nodeMirror is not reconciled. */
    private readonly nodeMirror?: NodeMirror,
  ) {
    this.applier = applier ?? new Applier(client);
  }

  async reconcile(key: string, signal: AbortSignal): Promise<ReconcileResult> {
    const cached = this.caches.registries.get(key);
    if (!cached) return {};
    if (cached.metadata.deletionTimestamp) return this.finalize(cached, signal);
    const current = hasFinalizer(cached, REGISTRY_FINALIZER) ? cached : await addFinalizer(this.client, RESOURCES.Registry, cached, REGISTRY_FINALIZER, signal);
    const reg: Registry = { ...current, spec: withDefaults(current.spec) };
    const generation = current.metadata.generation;

    let summary: Summary = { state: 'progressing', reason: 'Reconciling', message: 'Reconciling' };
    let observedGeneration = current.status?.observedGeneration;
    let fields: Partial<RegistryStatus> = this.carriedStatus(current);
    let failure: unknown;
    let requeueAfterMs: number | undefined;
    try {
      if (reg.spec.external) {
        ({ summary, fields, requeueAfterMs } = await this.observeExternal(reg, signal));
        observedGeneration = generation;
      } else {
        ({ summary, fields } = await this.deploy(reg, current, signal));
        observedGeneration = generation;
      }
    } catch (err) {
      if (signal.aborted) throw err;
      if (err instanceof UserError) {
        summary = { state: 'stalled', reason: err.reason, message: err.message };
        observedGeneration = generation;
        requeueAfterMs = MISSING_SECRET_RECHECK_MS;
        await this.events.record(current, 'Warning', err.reason, err.message);
      } else if (isInvalid(err)) {
        summary = { state: 'stalled', reason: 'ApplyRejected', message: errorText(err) };
        observedGeneration = generation;
        await this.events.record(current, 'Warning', 'ApplyRejected', errorText(err));
      } else {
        failure = err;
        summary = { state: 'progressing', reason: 'Retrying', message: `Retrying after an error: ${errorText(err)}` };
      }
    } finally {
      if (!signal.aborted) {
        const status: RegistryStatus = {
          ...(observedGeneration !== undefined ? { observedGeneration } : {}),
          conditions: applySummary(current.status?.conditions, summary, generation),
          ...fields,
        };
        try {
          await this.writeStatus(current, status, signal);
        } catch (err) {
          failure ??= err;
        }
      }
    }
    if (failure) throw failure;
    return requeueAfterMs !== undefined ? { requeueAfterMs } : {};
  }

  /** A managed Registry: generated Secrets, then render and apply, then prune what is no longer wanted. */
  private async deploy(reg: Registry, current: Registry, signal: AbortSignal): Promise<{ summary: Summary; fields: Partial<RegistryStatus> }> {
    const generated = await this.ensureGeneratedSecrets(reg, signal);
    const referenced = await this.readReferencedData(reg, signal);
    const referencedDataDigest = digestReferencedData(generated.tokenKey, { ...generated.values, ...referenced });
    const rendered = render(reg, { defaultImage: this.options.defaultImage, referencedDataDigest });
    let deployment: DeploymentLike | undefined;
    let service: KubeObject | undefined;
    for (const desired of rendered.objects) {
      if (this.options.stepDelayMs) await sleep(this.options.stepDelayMs, signal);
      const live = this.cacheFor(desired.kind).get(`${desired.metadata.namespace}/${desired.metadata.name}`);
      const { object, changed } = await this.applier.apply(desired, live, signal);
      if (changed) await this.events.record(current, 'Normal', live ? 'Updated' : 'Created', `${live ? 'Updated' : 'Created'} ${desired.kind} ${desired.metadata.name}`);
      if (desired.kind === 'Deployment') deployment = object as DeploymentLike;
      if (desired.kind === 'Service' && desired.metadata.name === names(reg.metadata.name).service) service = object;
    }
    for (const u of rendered.unwanted) await this.deleteIfOwned(current, u.kind === 'PodDisruptionBudget' ? RESOURCES.PodDisruptionBudget : RESOURCES.Ingress, u.name, signal);
    // The cache may hold a newer Deployment status than the apply answer (or the apply was skipped).
    const cachedDeploy = this.caches.deployments.get(`${reg.metadata.namespace}/${names(reg.metadata.name).deployment}`);
    if (cachedDeploy && deployment && Number(cachedDeploy.metadata.resourceVersion) > Number(deployment.metadata.resourceVersion)) deployment = cachedDeploy;
    const fields: Partial<RegistryStatus> = {
      endpoint: rendered.endpoint,
      ...(rendered.externalEndpoint ? { externalEndpoint: rendered.externalEndpoint } : {}),
      image: rendered.image,
      version: rendered.version,
      ...workloadStatus(deployment),
      configHash: rendered.configHash,
      adminSecretName: names(reg.metadata.name).adminSecret,
    };
    const nodeMirror = await this.nodeMirror?.reconcile(reg, service, signal);
    if (nodeMirror) fields.nodeMirror = nodeMirror;
    return { summary: deploymentSummary(reg.spec.replicas, deployment), fields };
  }

  /**
   * An external Registry: nothing to deploy; Ready reflects its /readyz and whether it accepts the
   * credentials as an administrator's. An unreachable registry is progressing (retried), not
   * stalled: it may come back without any change here. Refused credentials are stalled and not
   * retried on a timer (each try would count as a failed login against the account's throttle):
   * a change to the credentials Secret, which the operator watches, or the resync retries.
   */
  private async observeExternal(reg: Registry, signal: AbortSignal): Promise<{ summary: Summary; fields: Partial<RegistryStatus>; requeueAfterMs?: number }> {
    const client = await this.connections.client(reg, signal);
    const secretName = reg.spec.external!.credentialsSecretRef.name;
    const fields: Partial<RegistryStatus> = { endpoint: reg.spec.external!.url, external: true, adminSecretName: secretName };
    try {
      const health = await client.readiness(signal);
      if (health.version) fields.version = health.version;
      if (!health.ready) return { summary: { state: 'progressing', reason: 'NotReady', message: `The external registry is not ready: ${health.detail}` }, fields, requeueAfterMs: MISSING_SECRET_RECHECK_MS };
      const refused = await client.administratorRefusal(signal);
      if (refused) {
        const reason = refused === 401 ? 'CredentialsRejected' : 'NotAnAdministrator';
        const message = refused === 401 ? `The external registry rejected the credentials in Secret ${secretName}` : `The user in Secret ${secretName} is not an administrator of the external registry`;
        await this.events.record(reg, 'Warning', reason, message);
        return { summary: { state: 'stalled', reason, message }, fields };
      }
      const summary: Summary = { state: 'ready', reason: 'Reachable', message: `The external registry answers /readyz${health.version ? ` (version ${health.version})` : ''}` };
      return { summary, fields, requeueAfterMs: EXTERNAL_HEALTH_INTERVAL_MS };
    } catch (err) {
      if (signal.aborted) throw err;
      return { summary: { state: 'progressing', reason: 'Unreachable', message: `The external registry does not answer: ${errorText(err)}` }, fields, requeueAfterMs: MISSING_SECRET_RECHECK_MS };
    }
  }

  /** Status fields kept from the last successful pass while this one could not compute them. */
  private carriedStatus(reg: Registry): Partial<RegistryStatus> {
    const { observedGeneration: _g, conditions: _c, ...rest } = reg.status ?? {};
    return rest;
  }

  private async writeStatus(reg: Registry, status: RegistryStatus, signal: AbortSignal): Promise<void> {
    if (stableStringify(status) === stableStringify(reg.status ?? {})) return;
    await this.client.apply({ apiVersion: API_VERSION, kind: 'Registry', metadata: { name: reg.metadata.name, namespace: reg.metadata.namespace }, status }, { subresource: 'status', signal });
  }

  /**
   * The values the pods read from the user's Secrets and ConfigMaps (`<Kind>/<name>/<key>` → value),
   * read from the apiserver (the informer caches only their metadata); a missing object or key is
   * a user error.
   */
  private async readReferencedData(reg: Registry, signal: AbortSignal): Promise<Record<string, string>> {
    const values: Record<string, string> = {};
    for (const ref of referencesOf(reg.spec)) {
      let obj: KubeObject & { data?: Record<string, string>; binaryData?: Record<string, string> };
      try {
        obj = await this.client.get(RESOURCES[ref.kind], reg.metadata.namespace, ref.name, signal);
      } catch (err) {
        if (isNotFound(err)) throw new UserError(`${ref.kind}NotFound`, `${ref.kind} ${ref.name} (${ref.what}) not found`);
        throw err;
      }
      for (const key of ref.keys) {
        const value = obj.data?.[key] ?? obj.binaryData?.[key];
        if (!value) throw new UserError(`${ref.kind}KeyNotFound`, `${ref.kind} ${ref.name} (${ref.what}) has no key ${key}`);
        values[`${ref.kind}/${ref.name}/${key}`] = value;
      }
    }
    return values;
  }

  /**
   * Creates the admin and token-key Secrets when missing; never overwrites existing ones. Returns
   * their data (the pods read it at start, so it is part of the checksum) and the token key.
   */
  private async ensureGeneratedSecrets(reg: Registry, signal: AbortSignal): Promise<{ values: Record<string, string>; tokenKey: string }> {
    const n = names(reg.metadata.name);
    const ns = reg.metadata.namespace!;
    const labels = commonLabels(reg, imageVersion(reg.spec.image ?? this.options.defaultImage));
    const owner = [ownerReference(reg)];
    const values: Record<string, string> = {};
    for (const name of [n.adminSecret, n.tokenKeySecret]) {
      let secret = this.caches.secrets.get(`${ns}/${name}`) as SecretLike | undefined;
      if (!secret) {
        try {
          secret = await this.client.get<SecretLike>(RESOURCES.Secret, ns, name, signal); // exists; the cache has not seen it yet
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
      if (!secret) {
        const generated = generateSecretValues();
        const desired = (name === n.adminSecret ? renderAdminSecret(reg, generated, labels, owner) : renderTokenKeySecret(reg, generated, labels, owner)) as SecretLike;
        try {
          secret = await this.client.create(desired, signal);
          await this.events.record(reg, 'Normal', 'SecretGenerated', `Generated Secret ${name}`);
        } catch (err) {
          if (!isAlreadyExists(err)) throw err;
          secret = await this.client.get<SecretLike>(RESOURCES.Secret, ns, name, signal);
        }
      }
      for (const [key, value] of Object.entries(secret.data ?? {})) values[`Secret/${name}/${key}`] = value;
    }
    return { values, tokenKey: values[`Secret/${n.tokenKeySecret}/${TOKEN_KEY_FILE}`] ?? '' };
  }

  private async deleteIfOwned(reg: Registry, t: ResourceType, name: string, signal: AbortSignal): Promise<void> {
    const cache = this.cacheFor(t.kind);
    const live = cache.get(`${reg.metadata.namespace}/${name}`);
    if (!live || ownerKey(live, API_VERSION, 'Registry') !== `${reg.metadata.namespace}/${reg.metadata.name}`) return;
    try {
      await this.client.delete(t, reg.metadata.namespace, name, { uid: live.metadata.uid, signal });
      await this.events.record(reg, 'Normal', 'Deleted', `Deleted ${t.kind} ${name}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * Deletion: stop the registry first (delete its Deployment, foreground, so its pods are gone)
   * before the finalizer is released and garbage collection removes the data volume and
   * Secrets under it.
   */
  private async finalize(reg: Registry, signal: AbortSignal): Promise<ReconcileResult> {
    if (!hasFinalizer(reg, REGISTRY_FINALIZER)) return {};
    const deployName = names(reg.metadata.name).deployment;
    const deploy = this.caches.deployments.get(`${reg.metadata.namespace}/${deployName}`);
    if (deploy && ownerKey(deploy, API_VERSION, 'Registry') === `${reg.metadata.namespace}/${reg.metadata.name}`) {
      if (!deploy.metadata.deletionTimestamp) {
        try {
          await this.client.delete(RESOURCES.Deployment, reg.metadata.namespace, deployName, { propagationPolicy: 'Foreground', uid: deploy.metadata.uid, signal });
          await this.events.record(reg, 'Normal', 'Stopping', `Deleting Deployment ${deployName} before releasing the Registry`);
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
      return { requeueAfterMs: 2_000 };
    }
    // The nodes' files go before the Registry does (the node agent's removal mode).
    if (this.nodeMirror && !(await this.nodeMirror.finalize({ ...reg, spec: withDefaults(reg.spec) }, signal))) return { requeueAfterMs: 2_000 };
    await removeFinalizer(this.client, RESOURCES.Registry, reg, REGISTRY_FINALIZER, signal);
    this.log.info({ registry: `${reg.metadata.namespace}/${reg.metadata.name}` }, 'finalized');
    return {};
  }

  private cacheFor(kind: string): Informer {
    switch (kind) {
      case 'Deployment':
        return this.caches.deployments;
      case 'Service':
        return this.caches.services;
      case 'ConfigMap':
        return this.caches.configmaps;
      case 'Secret':
        return this.caches.secrets;
      case 'PersistentVolumeClaim':
        return this.caches.pvcs;
      case 'PodDisruptionBudget':
        return this.caches.pdbs;
      case 'Ingress':
        return this.caches.ingresses;
      case 'DaemonSet':
        return this.caches.daemonsets;
      default:
        throw new Error(`no cache for ${kind}`);
    }
  }
}

