// Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics and defaults:
// leaseDuration 15 s, renewDeadline 10 s, retryPeriod 2 s.
// - A candidate tries to acquire every retryPeriod. It may take the lease when nobody holds it,
//   or when the record has not changed for leaseDuration by its own clock (so clock skew between
//   machines does not matter).
// - The leader renews every retryPeriod. If it cannot renew for renewDeadline, it stops leading
//   (its work is aborted) and becomes a candidate again; the process does not exit.
// - On shutdown the leader releases the lease, so a successor takes over at its next retry.
// Every update carries the resourceVersion it was based on, so two candidates never both win.
import type { Logger } from 'pino';
import type { KubeClient } from '../kube/client.js';
import { isConflict, isNotFound } from '../kube/errors.js';
import { RESOURCES } from '../kube/resources.js';
import type { KubeObject } from '../kube/types.js';
import { sleep } from './backoff.js';
import { errorText } from './informer.js';
import { microTime } from './time.js';

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Runs while leading; its signal aborts when leadership ends. */
  onStartedLeading: (signal: AbortSignal) => Promise<void>;
  onLeaderChange?: (leader: string | undefined, isMe: boolean) => void;
}

export class LeaderElector {
  private observedRecord = '';
  private observedAt = 0;
  private leading = false;
  private lastLeader: string | undefined;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: LeaderElectionOptions,
    private readonly log: Logger,
  ) {
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    if (this.leaseDurationMs <= this.renewDeadlineMs || this.renewDeadlineMs <= this.retryPeriodMs) {
      throw new Error('leader election needs leaseDuration > renewDeadline > retryPeriod');
    }
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Campaigns, leads, and campaigns again after losing the lease, until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (!(await this.acquire(signal))) break;
      const lead = new AbortController();
      const stopLead = () => lead.abort();
      signal.addEventListener('abort', stopLead, { once: true });
      this.setLeading(true);
      this.log.info({ lease: this.opts.name, identity: this.opts.identity }, 'became leader');
      const work = this.opts.onStartedLeading(lead.signal).catch((err) => this.log.error({ err: errorText(err) }, 'leader work failed'));
      const lost = await this.renewLoop(signal, lead.signal);
      lead.abort();
      signal.removeEventListener('abort', stopLead);
      await work;
      this.setLeading(false);
      if (lost) {
        this.log.warn({ lease: this.opts.name }, 'lost the leader lease; campaigning again');
      } else {
        await this.release();
      }
    }
  }

  private setLeading(v: boolean): void {
    this.leading = v;
  }

  private async acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      if (await this.tryAcquireOrRenew(AbortSignal.timeout(this.renewDeadlineMs))) return true;
      await sleep(this.retryPeriodMs * (1 + Math.random() * 0.2), signal);
    }
    return false;
  }

  /** Renews every retryPeriod; returns true when the lease was lost, false on shutdown. */
  private async renewLoop(signal: AbortSignal, lead: AbortSignal): Promise<boolean> {
    let lastRenew = Date.now();
    while (!signal.aborted && !lead.aborted) {
      await sleep(this.retryPeriodMs, signal);
      if (signal.aborted) return false;
      // An attempt may not outlive the renew deadline: a leader stuck on a slow apiserver must
      // stop leading before its lease can expire for the others.
      const remaining = Math.max(1, this.renewDeadlineMs - (Date.now() - lastRenew));
      if (await this.tryAcquireOrRenew(AbortSignal.timeout(remaining))) {
        lastRenew = Date.now();
      } else if (!this.leading || Date.now() - lastRenew > this.renewDeadlineMs || this.lastLeader !== this.opts.identity) {
        return true;
      }
    }
    return !signal.aborted;
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const now = new Date();
    const { namespace, name, identity } = this.opts;
    const wanted: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.round(this.leaseDurationMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    let lease: Lease;
    try {
      lease = await this.client.get<Lease>(RESOURCES.Lease, namespace, name, signal);
    } catch (err) {
      if (!isNotFound(err)) {
        this.log.warn({ err: errorText(err) }, 'reading the leader lease failed');
        return false;
      }
      try {
        await this.client.create<Lease>({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec: wanted }, signal);
        this.observe(wanted);
        return true;
      } catch (createErr) {
        if (!isConflict(createErr)) this.log.warn({ err: errorText(createErr) }, 'creating the leader lease failed');
        return false;
      }
    }
    const current = lease.spec ?? {};
    this.observe(current);
    const held = !!current.holderIdentity;
    const mine = current.holderIdentity === identity;
    const expired = Date.now() - this.observedAt > (current.leaseDurationSeconds ?? 15) * 1000;
    if (held && !mine && !expired) return false;
    const next: LeaseSpec = mine
      ? { ...current, renewTime: wanted.renewTime, leaseDurationSeconds: wanted.leaseDurationSeconds }
      : { ...wanted, leaseTransitions: (current.leaseTransitions ?? 0) + 1 };
    try {
      await this.client.replace<Lease>({ ...lease, spec: next }, signal);
      this.observe(next);
      return true;
    } catch (err) {
      if (!isConflict(err)) this.log.warn({ err: errorText(err) }, 'updating the leader lease failed');
      return false;
    }
  }

  private observe(spec: LeaseSpec): void {
    const raw = JSON.stringify(spec);
    if (raw !== this.observedRecord) {
      this.observedRecord = raw;
      this.observedAt = Date.now();
    }
    const leader = spec.holderIdentity || undefined;
    if (leader !== this.lastLeader) {
      this.lastLeader = leader;
      this.opts.onLeaderChange?.(leader, leader === this.opts.identity);
    }
  }

  /** Gives the lease up so that a successor need not wait for it to expire. */
  private async release(): Promise<void> {
    try {
      const lease = await this.client.get<Lease>(RESOURCES.Lease, this.opts.namespace, this.opts.name);
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      const now = microTime();
      await this.client.replace<Lease>({ ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now } });
      this.log.info({ lease: this.opts.name }, 'released the leader lease');
    } catch (err) {
      this.log.warn({ err: errorText(err) }, 'releasing the leader lease failed');
    }
  }
}
