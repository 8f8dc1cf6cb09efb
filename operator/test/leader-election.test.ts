// Two operators share one Lease: only the leader reconciles and writes; when the leader dies
// (SIGKILL, no release) the standby takes over once the lease expires (15 s lease, 2 s retry);
// when a leader stops gracefully (SIGTERM) it releases the lease and a standby takes over at its
// next retry.
//
// Timing is judged on the apiserver's audit log, not on the test's clock: the times the
// apiserver received each Lease write, and how many times (each read of the Lease is one
// attempt) a standby tried before it won. A loaded machine makes the standby try less often,
// never more, so the bounds hold however slow the machine is.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describe as describeAudit, leaseRequests, operatorWrites, receivedMicros, type AuditEvent } from './support/audit.js';
import { adminClients, controlPlane } from './support/context.js';
import { apply, createNamespace, getObject, raw, waitFor, type Clients } from './support/kube.js';
import { OPERATOR_NAMESPACE, OperatorProcess, operatorKubeconfig } from './support/operator.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

const LEASE = 'leader-test';
const LEASE_SECONDS = 15;
const RETRY_SECONDS = 2;
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

/** `identity`'s requests on the Lease, as the apiserver received them: reads are attempts; writes create, renew, take over or release it. */
const leaseLog = (identity: string) => leaseRequests(controlPlane().auditLog, identity, LEASE);
const reads = (identity: string) => leaseLog(identity).filter((e) => e.verb === 'get');
const writes = (identity: string) => leaseLog(identity).filter((e) => e.verb === 'create' || e.verb === 'update');
const between = (events: AuditEvent[], after: AuditEvent, upTo: AuditEvent) => events.filter((e) => receivedMicros(e) > receivedMicros(after) && receivedMicros(e) <= receivedMicros(upTo));
/** Waits until `identity` has read the Lease `more` times beyond `seen`: it is campaigning. */
const attempted = (identity: string, seen: number, more = 1) =>
  waitFor(`${identity} to try for the lease`, async () => (reads(identity).length >= seen + more ? true : undefined), 20_000);

describe('leader election', () => {
  let a: OperatorProcess;
  let b: OperatorProcess;

  it('only the leader reconciles', async () => {
    a = await start('op-a');
    await waitFor('op-a leads', async () => ((await a.metric('wharf_operator_leader')) === 1 ? true : undefined), 20_000);
    const since = new Date();
    b = await start('op-b');
    // op-b campaigns: it reads the Lease, finds op-a holding it, and keeps trying.
    await attempted('op-b', 0);
    await apply(c, { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name: 'reg', namespace: ns }, spec: {} } as Any);
    await converged('reg');
    // op-b was still campaigning after op-a reconciled, so what follows covers all that time.
    await attempted('op-b', reads('op-b').length);
    expect((await holder()).holderIdentity).toBe('op-a');
    expect(await b.metric('wharf_operator_leader')).toBe(0);
    expect(await b.metric('wharf_operator_reconcile_total')).toBe(0);
    expect(await a.metric('wharf_operator_reconcile_total')).toBeGreaterThan(0);
    // The standby only reads the Lease: the apiserver saw no write from it.
    expect(operatorWrites(controlPlane().auditLog, 'op-b', since).map(describeAudit)).toEqual([]);
    expect(operatorWrites(controlPlane().auditLog, 'op-a', since).filter((e) => e.objectRef?.namespace === ns).length).toBeGreaterThan(0);
    expect(await b.readyz()).toBe(200);
  });

  it('the standby takes over once the lease has expired, at its first try after that, when the leader is killed', async () => {
    await a.kill();
    await waitFor('op-b leads', async () => ((await b.metric('wharf_operator_leader')) === 1 ? true : undefined), 60_000);
    // op-a's last write is its last renewal (SIGKILL: no release); op-b's first write took the lease.
    const lastRenewal = writes('op-a').at(-1)!;
    const takeover = writes('op-b')[0]!;
    expect(lastRenewal, 'op-a renewed the lease').toBeDefined();
    expect(takeover, 'op-b wrote the lease').toBeDefined();
    const gap = (receivedMicros(takeover) - receivedMicros(lastRenewal)) / 1e6;
    const tries = between(reads('op-b'), lastRenewal, takeover);
    console.log(`[operator] takeover after SIGKILL: op-b wrote the lease ${gap.toFixed(1)} s after op-a's last renewal, on its read number ${tries.length} since then (lease ${LEASE_SECONDS} s, retry ${RETRY_SECONDS} s)`);
    // The lease is honoured: op-b took it only once op-a's record had stood for the lease duration.
    expect(gap).toBeGreaterThanOrEqual(LEASE_SECONDS);
    // ...and at the first try after that. Each try starts at least a retry period after the one
    // before ended, so the 8th try after the one that first saw op-a's last record comes more
    // than 15 s after it, and finds the lease expired: at most 9 reads, and one more that may
    // have read the record just before that renewal landed.
    expect(tries.length).toBeLessThanOrEqual(Math.floor(LEASE_SECONDS / RETRY_SECONDS) + 3);
    expect((await holder()).holderIdentity).toBe('op-b');
    expect((await holder()).leaseTransitions).toBeGreaterThanOrEqual(1);

    // The new leader reconciles.
    await apply(c, { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name: 'reg', namespace: ns }, spec: { logLevel: 'debug' } } as Any);
    const reg = await converged('reg', (r) => r.metadata.generation === 2);
    expect(reg.status.observedGeneration).toBe(2);
    expect(await b.metric('wharf_operator_reconcile_total')).toBeGreaterThan(0);
  });

  it('a gracefully stopped leader releases the lease and a standby takes over at its next try', async () => {
    const cOp = await start('op-c');
    await attempted('op-c', 0);
    expect(await cOp.metric('wharf_operator_leader')).toBe(0);
    expect(await b.stop()).toBe(0);
    await waitFor('op-c leads', async () => ((await cOp.metric('wharf_operator_leader')) === 1 ? true : undefined), 20_000);
    // op-b's last write released the lease (its log says so); op-c's first write took it.
    expect(b.logEntries().some((e) => e.msg === 'released the leader lease'), 'op-b released the lease').toBe(true);
    const release = writes('op-b').at(-1)!;
    const takeover = writes('op-c')[0]!;
    expect(takeover, 'op-c wrote the lease').toBeDefined();
    const tries = between(reads('op-c'), release, takeover);
    console.log(`[operator] takeover after SIGTERM: op-c wrote the lease ${((receivedMicros(takeover) - receivedMicros(release)) / 1e6).toFixed(1)} s after the release, on its read number ${tries.length} since then`);
    // The first read after the release finds the lease free; one more may have raced with the release.
    expect(tries.length).toBeGreaterThanOrEqual(1);
    expect(tries.length).toBeLessThanOrEqual(2);
    await apply(c, { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name: 'reg', namespace: ns }, spec: { logLevel: 'warn' } } as Any);
    await converged('reg', (r) => r.metadata.generation === 3);
  });
});
