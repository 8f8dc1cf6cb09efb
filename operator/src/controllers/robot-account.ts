// The RobotAccount reconciler: a RobotAccount → a robot in its Registry, its credentials Secret,
// and its pull secrets in the target namespaces. One pass:
//   get the RobotAccount (gone → done); being deleted → finalize; else ensure the finalizer;
//   try { find the Registry → connect → check the credentials Secret's name is free →
//         read the robot → check ownership → create or update it → make sure the credentials
//         Secret holds the current secret (rotating when it cannot, or when a rotation is due)
//         → inject pull secrets } finally { conditions and status }.
// The registry shows a secret once: every secret received is written to the credentials Secret
// in the same pass. If that write never happens (the operator stopped), the next pass finds the
// Secret stale and rotates again, so no Secret is left with an empty or stale password.
import type { Logger } from 'pino';
import type { RobotAccountStatus } from '../api/robotaccount.js';
import type { RobotAccountObject } from '../api/types.js';
import type { KubeClient } from '../kube/client.js';
import { isConflict, isNotFound } from '../kube/errors.js';
import { RESOURCES } from '../kube/resources.js';
import {
  credentialState,
  graceSeconds,
  registryHosts,
  renderCredentialsSecret,
  rotateRequest,
  rotationDue,
  type Credential,
  type SecretLike,
} from '../resources/robot-account/credentials.js';
import { belongsTo, credentialsSecretName, robotManager, ROBOT_SECRET_LABEL, ROBOT_UID_LABEL } from '../resources/robot-account/names.js';
import { renderRobot, robotDifferences, type DesiredRobot, type LiveRobot } from '../resources/robot-account/render.js';
import type { Registry } from '../resources/registry/index.js';
import type { Applier } from '../runtime/apply.js';
import { Backoff, sleep } from '../runtime/backoff.js';
import type { ReconcileResult, Reconciler } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import { addFinalizer, hasFinalizer, removeFinalizer } from '../runtime/finalizers.js';
import type { Informer } from '../runtime/informer.js';
import { UserError } from '../runtime/user-error.js';
import { reconcileWithStatus, type WorkOutcome } from './content-status.js';
import type { PullSecretInjector } from './pull-secrets.js';
import type { RegistryConnections } from './registry-connection.js';
import { RobotEndpoint, type RotateOptions } from './robot-endpoint.js';

export const ROBOT_ACCOUNT_FINALIZER = 'wharf.dev/robot-account';

/** The longest requeue for a rotation that is due later (timers cannot wait for weeks; the resync also looks). */
const MAX_ROTATION_WAIT_MS = 86_400_000;
/** Attempts at writing a secret just received: it exists nowhere else. */
const WRITE_ATTEMPTS = 5;

export interface RobotAccountCaches {
  robotAccounts: Informer<RobotAccountObject>;
  registries: Informer<Registry>;
  /** The Secrets this controller wrote (label-selected). */
  secrets: Informer<SecretLike>;
}

export interface RobotAccountReconcilerOptions {
  /** How often a Stalled RobotAccount is looked at again. */
  recheckMs: number;
  /** Tests only: a pause after a secret is received and before it is written (for kill -9 tests). */
  stepDelayMs?: number;
}

export class RobotAccountReconciler implements Reconciler {
  constructor(
    private readonly client: KubeClient,
    private readonly caches: RobotAccountCaches,
    private readonly connections: RegistryConnections,
    private readonly injector: PullSecretInjector,
    private readonly applier: Applier,
    private readonly events: EventRecorder,
    private readonly options: RobotAccountReconcilerOptions,
    private readonly log: Logger,
  ) {}

  async reconcile(key: string, signal: AbortSignal): Promise<ReconcileResult> {
    const cached = this.caches.robotAccounts.get(key);
    if (!cached) return {};
    if (cached.metadata.deletionTimestamp) return this.finalize(cached, signal);
    const current = hasFinalizer(cached, ROBOT_ACCOUNT_FINALIZER) ? cached : await addFinalizer(this.client, RESOURCES.RobotAccount, cached, ROBOT_ACCOUNT_FINALIZER, signal);
    return reconcileWithStatus<RobotAccountStatus>({
      client: this.client,
      resource: RESOURCES.RobotAccount,
      object: current,
      events: this.events,
      recheckMs: this.options.recheckMs,
      signal,
      work: () => this.sync(current, signal),
    });
  }

  private registryFor(obj: RobotAccountObject): Registry {
    const name = obj.spec.registryRef.name;
    const registry = this.caches.registries.get(`${obj.metadata.namespace}/${name}`);
    if (!registry) throw new UserError('RegistryNotFound', `Registry ${name} not found in namespace ${obj.metadata.namespace}`);
    return registry;
  }

  private async sync(obj: RobotAccountObject, signal: AbortSignal): Promise<WorkOutcome<RobotAccountStatus>> {
    const registry = this.registryFor(obj);
    const desired = renderRobot(obj);
    const robots = new RobotEndpoint(await this.connections.client(registry, signal), desired);
    // Checked before any secret is received: a secret with nowhere to go would be lost.
    let secret = await this.credentialsSecret(obj, signal);
    const ensured = await this.ensureRobot(obj, robots, desired, signal);
    let robot = ensured.robot;
    let credential: Credential;
    let fresh = false;
    let rotatedBecause: string | undefined;
    if (ensured.secret !== undefined) {
      credential = { username: desired.fullName, password: ensured.secret, rotatedAt: robot.rotatedAt, rotateSeen: rotateRequest(obj) };
      fresh = true;
    } else {
      const decision = await this.credentialDecision(obj, secret, robot, signal);
      secret = decision.secret;
      if ('credential' in decision) {
        credential = decision.credential;
      } else {
        const rotated = await robots.rotate(decision.rotate, signal);
        robot = rotated.robot;
        credential = { username: desired.fullName, password: rotated.secret, rotatedAt: robot.rotatedAt, rotateSeen: rotateRequest(obj) };
        fresh = true;
        rotatedBecause = decision.why;
      }
    }
    if (fresh && this.options.stepDelayMs) await sleep(this.options.stepDelayMs, signal);
    await this.writeCredentials(obj, credential, registry, secret, fresh, signal);
    // Reported once the secret is safe in the Secret: nothing else goes between receiving and writing it.
    if (ensured.secret !== undefined) await this.events.record(obj, 'Normal', 'Created', `Created robot ${desired.fullName} in the registry`);
    if (rotatedBecause) {
      this.log.info({ robot: desired.fullName, why: rotatedBecause }, 'rotated robot secret');
      await this.events.record(obj, 'Normal', 'Rotated', `Rotated the secret of ${desired.fullName}: ${rotatedBecause}`);
    }
    const next = rotationDue(obj, credential, Date.now()).recheckInMs;
    return this.inject(obj, robot, credential, registry, next === undefined ? undefined : Math.min(next, MAX_ROTATION_WAIT_MS), signal);
  }

  /** The robot, created (with its secret, shown this once) or brought to the spec; one made by hand or managed by another object is left alone. */
  private async ensureRobot(obj: RobotAccountObject, robots: RobotEndpoint, desired: DesiredRobot, signal: AbortSignal): Promise<{ robot: LiveRobot; secret?: string }> {
    const live = await robots.get(signal);
    if (!live) return robots.put(desired.body, signal);
    if (live.managedBy !== desired.body.managedBy) {
      if (live.managedBy) throw new UserError('RobotOwnedElsewhere', `robot "${desired.fullName}" is managed by RobotAccount ${live.managedBy}`);
      throw new UserError('RobotExists', `robot "${desired.fullName}" already exists in the registry and no RobotAccount manages it; delete it there or set spec.robotName`);
    }
    return { robot: await this.update(obj, robots, desired, live, signal) };
  }

  /** The credentials Secret if it is ours or absent; a Secret of that name Wharf did not write stops everything before a secret is received. */
  private async credentialsSecret(obj: RobotAccountObject, signal: AbortSignal): Promise<SecretLike | undefined> {
    const name = credentialsSecretName(obj);
    const secret = this.caches.secrets.get(`${obj.metadata.namespace}/${name}`) ?? (await this.readSecret(obj.metadata.namespace!, name, signal));
    if (secret && !belongsTo(secret, obj, 'credentials')) {
      throw new UserError('SecretNameTaken', `Secret ${name} already exists and was not written for this RobotAccount; delete it or set spec.secretName`);
    }
    return secret;
  }

  /** Spec changes, or changes made in the registry by hand, are applied and reported. */
  private async update(obj: RobotAccountObject, robots: RobotEndpoint, desired: DesiredRobot, live: LiveRobot, signal: AbortSignal): Promise<LiveRobot> {
    const changes = robotDifferences(live, desired);
    if (changes.length === 0) return live;
    const { robot } = await robots.put(desired.body, signal);
    if (obj.status?.observedGeneration === obj.metadata.generation) {
      this.log.info({ robot: desired.fullName, changes }, 'reverted changes made outside the RobotAccount object');
      await this.events.record(obj, 'Warning', 'DriftReverted', `Reverted changes made outside this object: ${changes.join('; ')}`);
    } else {
      await this.events.record(obj, 'Normal', 'Updated', `Updated robot ${desired.fullName}: ${changes.join('; ')}`);
    }
    return robot;
  }

  /**
   * Keep the Secret's credential, or rotate, and how: a current credential is kept until a
   * rotation is due, which then keeps the replaced secret for the grace window (the copies hold
   * it); a stale one (a rotation whose secret never reached the Secret) is replaced with
   * keepPrevious, so the secret the copies still hold keeps its window; a missing or edited
   * one is replaced with the grace window (the copies may hold the current secret).
   * Before rotating, the Secret is read again: the cache may not show our own last write yet.
   */
  private async credentialDecision(
    obj: RobotAccountObject,
    cached: SecretLike | undefined,
    robot: LiveRobot,
    signal: AbortSignal,
  ): Promise<{ secret: SecretLike | undefined } & ({ credential: Credential } | { rotate: RotateOptions; why: string })> {
    let secret = cached;
    let state = credentialState(obj, secret, robot);
    if (state.state !== 'current') {
      secret = await this.credentialsSecret(obj, signal);
      state = credentialState(obj, secret, robot);
    }
    const grace: RotateOptions = { graceSeconds: graceSeconds(obj) };
    if (state.state === 'unusable') return { secret, rotate: grace, why: state.why };
    if (state.state === 'stale') {
      return { secret, rotate: { keepPrevious: true }, why: `Secret ${credentialsSecretName(obj)} holds an earlier secret (a rotation whose secret was not stored, or one made by hand)` };
    }
    const due = rotationDue(obj, state.credential, Date.now());
    if (due.reason) return { secret, rotate: grace, why: due.reason };
    return { secret, credential: state.credential };
  }

  /**
   * Writes the credentials Secret (skipped when unchanged). A secret just received exists
   * nowhere else, so its write is retried here a few times before the pass gives up (the next
   * pass would have to rotate again).
   */
  private async writeCredentials(obj: RobotAccountObject, credential: Credential, registry: Registry, live: SecretLike | undefined, fresh: boolean, signal: AbortSignal): Promise<void> {
    const desired = renderCredentialsSecret(obj, credential, registryHosts(registry));
    const backoff = new Backoff(200, 2_000);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.applier.apply(desired, live, signal);
        break;
      } catch (err) {
        if (!fresh || attempt >= WRITE_ATTEMPTS || signal.aborted) throw err;
        this.log.warn({ secret: desired.metadata.name, attempt, err: (err as Error).message }, 'writing a new robot secret failed; retrying');
        await sleep(backoff.next(), signal);
      }
    }
    await this.pruneCredentials(obj, signal);
  }

  /** Credentials Secrets of this RobotAccount under an earlier spec.secretName. */
  private async pruneCredentials(obj: RobotAccountObject, signal: AbortSignal): Promise<void> {
    const name = credentialsSecretName(obj);
    for (const old of this.caches.secrets.list(obj.metadata.namespace)) {
      if (!belongsTo(old, obj, 'credentials') || old.metadata.name === name) continue;
      await this.deleteSecret(old, signal);
    }
  }

  private async inject(obj: RobotAccountObject, robot: LiveRobot, credential: Credential, registry: Registry, requeueAfterMs: number | undefined, signal: AbortSignal): Promise<WorkOutcome<RobotAccountStatus>> {
    const injection = await this.injector.sync(obj, credential, registryHosts(registry), signal);
    const fields: Partial<RobotAccountStatus> = {
      robotName: robot.name,
      robotId: robot.id,
      expiresAt: robot.expiresAt ?? undefined,
      lastRotationTime: credential.rotatedAt,
      secretName: credentialsSecretName(obj),
      pullSecretNamespaces: injection.namespaces,
    };
    const timing = requeueAfterMs !== undefined ? { requeueAfterMs } : {};
    if (robot.expiresAt && Date.parse(robot.expiresAt) <= Date.now()) {
      return { fields, ...timing, userError: new UserError('RobotExpired', `robot ${robot.name} expired at ${robot.expiresAt}; raise spec.expiresInDays (it counts from creation)`) };
    }
    if (injection.conflicts.length > 0) {
      const others = injection.namespaces === 1 ? '1 other namespace has it' : `${injection.namespaces} other namespaces have it`;
      return {
        fields,
        ...timing,
        userError: new UserError('PullSecretConflict', `pull secret not written where a Secret of that name exists that this RobotAccount does not own: ${injection.conflicts.join(', ')}; ${others}`),
      };
    }
    const where = obj.spec.pullSecret ? `; pull secret in ${injection.namespaces} namespace${injection.namespaces === 1 ? '' : 's'}` : '';
    return { fields, ...timing, summary: { state: 'ready', reason: 'Synced', message: `Robot ${robot.name} is in sync${where}` } };
  }

  /**
   * Deletion: pull secrets and ServiceAccount entries first (found by label), then the robot
   * (only if this object manages it), then the credentials Secret; then the finalizer goes. A
   * restart anywhere in between redoes the remaining steps.
   */
  private async finalize(obj: RobotAccountObject, signal: AbortSignal): Promise<ReconcileResult> {
    if (!hasFinalizer(obj, ROBOT_ACCOUNT_FINALIZER)) return {};
    const removed = await this.injector.cleanup(obj, signal);
    const registry = this.caches.registries.get(`${obj.metadata.namespace}/${obj.spec.registryRef.name}`);
    if (registry && !registry.metadata.deletionTimestamp) {
      const robots = new RobotEndpoint(await this.connections.client(registry, signal), renderRobot(obj));
      const live = await robots.get(signal);
      if (live?.managedBy === robotManager(obj)) await robots.delete(signal);
    }
    const selector = `${ROBOT_SECRET_LABEL}=credentials,${ROBOT_UID_LABEL}=${obj.metadata.uid}`;
    const credentials = await this.client.list<SecretLike>(RESOURCES.Secret, obj.metadata.namespace, { labelSelector: selector }, signal);
    for (const s of credentials.items) await this.deleteSecret(s, signal);
    try {
      await removeFinalizer(this.client, RESOURCES.RobotAccount, obj, ROBOT_ACCOUNT_FINALIZER, signal);
    } catch (err) {
      // A pass on a stale cache after an earlier pass released it: the object is gone.
      if (isNotFound(err)) return {};
      throw err;
    }
    this.log.info({ robotAccount: `${obj.metadata.namespace}/${obj.metadata.name}`, pullSecrets: removed }, 'robot account finalized');
    return {};
  }

  private async deleteSecret(secret: SecretLike, signal: AbortSignal): Promise<void> {
    try {
      await this.client.delete(RESOURCES.Secret, secret.metadata.namespace, secret.metadata.name, { uid: secret.metadata.uid!, signal });
    } catch (err) {
      if (!isNotFound(err) && !isConflict(err)) throw err;
    }
  }

  private readSecret(ns: string, name: string, signal: AbortSignal): Promise<SecretLike | undefined> {
    return this.client.find<SecretLike>(RESOURCES.Secret, ns, name, signal);
  }
}
