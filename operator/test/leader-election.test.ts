// Two operators share one Lease: only the leader reconciles and writes; when the leader dies
// (SIGKILL, no release) the standby takes over once the lease expires (15 s lease, 2 s retry);
// when a leader stops gracefully (SIGTERM) it releases the lease and a standby takes over at its
// next retry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describe as describeAudit, operatorWrites } from './support/audit.js';
import { adminClients, controlPlane } from './support/context.js';
import { apply, createNamespace, getObject, raw, waitFor, type Clients } from './support/kube.js';
import { OPERATOR_NAMESPACE, OperatorProcess, operatorKubeconfig } from './support/operator.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

const LEASE = 'leader-test';
let c: Clients;
let ns: string;
let kubeconfig: string;
const running: OperatorProcess[] = [];

beforeAll(async () => {
  c = adminClients();
  kubeconfig = await operatorKubeconfig(c);
  ns = await createNamespace(c, 'leader');
});

afterAll(async () => {
  for (const op of running) if (op.running) await op.stop();
});

const start = async (identity: string) => {
  const op = await OperatorProcess.start({ kubeconfig, identity, args: ['--lease-name', LEASE, '--watch-namespace', ns] });
  running.push(op);
  return op;
};
const holder = async () => (await raw<Any>(c, 'GET', `/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_NAMESPACE}/leases/${LEASE}`)).spec;
const registry = (name: string) => getObject<Any>(c, { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name, namespace: ns } });
const converged = (name: string, check: (r: Any) => boolean = () => true) =>
  waitFor(`Registry ${name} reconciled`, async () => {
    const r = await registry(name);
    return r?.status?.observedGeneration === r?.metadata.generation && check(r) ? r : undefined;
  }, 30_000);

describe('leader election', () => {
  let a: OperatorProcess;
  let b: OperatorProcess;

  it('only the leader reconciles', async () => {
    a = await start('op-a');
    await waitFor('op-a leads', async () => ((await a.metric('wharf_operator_leader')) === 1 ? true : undefined), 20_000);
    b = await start('op-b');
    const since = new Date();
    await apply(c, { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name: 'reg', namespace: ns }, spec: {} } as Any);
    await converged('reg');
    expect((await holder()).holderIdentity).toBe('op-a');
    expect(await b.metric('wharf_operator_leader')).toBe(0);
    expect(await b.metric('wharf_operator_reconcile_total')).toBe(0);
    expect(await a.metric('wharf_operator_reconcile_total')).toBeGreaterThan(0);
    // The standby only reads the Lease: the apiserver saw no write from it.
    expect(operatorWrites(controlPlane().auditLog, 'op-b', since).map(describeAudit)).toEqual([]);
    expect(operatorWrites(controlPlane().auditLog, 'op-a', since).filter((e) => e.objectRef?.namespace === ns).length).toBeGreaterThan(0);
    expect(await b.readyz()).toBe(200);
  });

  it('the standby takes over within the lease duration after the leader is killed', async () => {
    // Watch the Lease to know when op-a last renewed before it died.
    let lastRenewByA = 0;
    const poll = setInterval(() => {
      holder().then((s) => {
        if (s.holderIdentity === 'op-a') lastRenewByA = Math.max(lastRenewByA, Date.parse(s.renewTime));
      }, () => undefined);
    }, 200);
    await waitFor('a renewal by op-a', async () => (lastRenewByA > 0 ? true : undefined), 10_000, 100);
    await new Promise((r) => setTimeout(r, 1000));
    const killedAt = Date.now();
    await a.kill();
    const tookOverAt = await waitFor('op-b leads', async () => ((await b.metric('wharf_operator_leader')) === 1 ? Date.now() : undefined), 40_000, 100);
    clearInterval(poll);
    const sinceKill = (tookOverAt - killedAt) / 1000;
    const sinceRenew = (tookOverAt - lastRenewByA) / 1000;
    console.log(`[operator] takeover after SIGKILL: ${sinceKill.toFixed(1)} s after the kill, ${sinceRenew.toFixed(1)} s after op-a's last renewal (lease 15 s, retry 2 s)`);
    // The lease is honoured: no takeover before it expired...
    expect(sinceRenew).toBeGreaterThanOrEqual(15);
    // ...and taken within the lease duration plus two retry periods of the standby (2 s, jittered
    // by up to 20%: one to see the last renewal, one to find the lease expired), and 3 s of slack
    // for request latency on a loaded machine.
    expect(sinceRenew).toBeLessThanOrEqual(15 + 2.4 + 2.4 + 3);
    expect((await holder()).holderIdentity).toBe('op-b');
    expect((await holder()).leaseTransitions).toBeGreaterThanOrEqual(1);

    // The new leader reconciles.
    await apply(c, { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name: 'reg', namespace: ns }, spec: { logLevel: 'debug' } } as Any);
    const reg = await converged('reg', (r) => r.metadata.generation === 2);
    expect(reg.status.observedGeneration).toBe(2);
    expect(await b.metric('wharf_operator_reconcile_total')).toBeGreaterThan(0);
  });

  it('a gracefully stopped leader releases the lease and a standby takes over at its next retry', async () => {
    const cOp = await start('op-c');
    await new Promise((r) => setTimeout(r, 500));
    expect(await cOp.metric('wharf_operator_leader')).toBe(0);
    const stoppedAt = Date.now();
    expect(await b.stop()).toBe(0);
    const tookOverAt = await waitFor('op-c leads', async () => ((await cOp.metric('wharf_operator_leader')) === 1 ? Date.now() : undefined), 20_000, 100);
    // When op-b's release landed, from its own log (pino JSON lines with a time in ms).
    const released = b
      .logs(500)
      .split('\n')
      .map((line) => {
        try {
          return JSON.parse(line) as { msg?: string; time?: number };
        } catch {
          return {};
        }
      })
      .find((e) => e.msg === 'released the leader lease');
    const releasedAt = released?.time ?? 0;
    const sinceStop = (tookOverAt - stoppedAt) / 1000;
    const sinceRelease = (tookOverAt - releasedAt) / 1000;
    console.log(`[operator] takeover after SIGTERM: ${sinceStop.toFixed(1)} s after the signal, ${sinceRelease.toFixed(1)} s after the release`);
    expect(releasedAt, 'op-b released the lease').toBeGreaterThan(0);
    // One retry period of the standby (2 s + 20% jitter), and 1 s of slack for a loaded machine.
    expect(sinceRelease).toBeLessThanOrEqual(2.4 + 1);
    await apply(c, { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name: 'reg', namespace: ns }, spec: { logLevel: 'warn' } } as Any);
    await converged('reg', (r) => r.metadata.generation === 3);
  });
});
