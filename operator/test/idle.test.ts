// An idle operator writes nothing to the apiserver. With converged Registries and a 2 s resync
// (so the operator keeps reconciling), the apiserver's audit log shows no write from the operator
// over ten resync rounds apart from renewing its leader Lease. Rounds are counted on the
// operator's reconcile metric, not timed: a slow machine makes them longer, not fewer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describe as describeAudit, operatorWrites } from './support/audit.js';
import { adminClients, controlPlane } from './support/context.js';
import { apply, createNamespace, getObject, waitFor, type Clients } from './support/kube.js';
import { markPodsReady } from './support/kubelet.js';
import { OperatorProcess, operatorKubeconfig } from './support/operator.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

let c: Clients;
let ns: string;
let op: OperatorProcess;

beforeAll(async () => {
  c = adminClients();
  const kubeconfig = await operatorKubeconfig(c);
  ns = await createNamespace(c, 'idle');
  op = await OperatorProcess.start({ kubeconfig, identity: 'idle-op', args: ['--lease-name', 'idle', '--watch-namespace', ns, '--resync', '2'] });
});

afterAll(async () => {
  await op?.stop();
});

describe('idle operator', () => {
  it('makes no writes over ten resync rounds once everything has converged', async () => {
    await apply(c, { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name: 'reg', namespace: ns }, spec: {} } as Any);
    await apply(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'pg', namespace: ns }, stringData: { dsn: 'postgres://db/wharf' } } as Any);
    await apply(c, {
      apiVersion: 'wharf.dev/v1alpha1',
      kind: 'Registry',
      metadata: { name: 'ext', namespace: ns },
      spec: { database: { type: 'external', external: { secretRef: { name: 'pg' } } }, ingress: { enabled: true, host: 'r.example.test' } },
    } as Any);
    for (const name of ['reg', 'ext']) {
      await waitFor(`Registry ${name} Ready`, async () => {
        await markPodsReady(c, ns, `app.kubernetes.io/instance=${name}`);
        const r = await getObject<Any>(c, { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name, namespace: ns } });
        return r?.status?.conditions?.some((x: Any) => x.type === 'Ready' && x.status === 'True') ? true : undefined;
      }, 30_000, 500);
    }
    const reconcileCount = () => op.metric('wharf_operator_reconcile_total');
    const writesBesidesLease = (since: Date) => operatorWrites(controlPlane().auditLog, 'idle-op', since).filter((e) => e.objectRef?.resource !== 'leases');
    /** Waits for a resync round: as many reconciles as there are Registries. */
    const round = async () => {
      const before = await reconcileCount();
      await waitFor('a resync round', async () => ((await reconcileCount()) >= before + 2 ? true : undefined), 30_000, 100);
    };
    // Converged: a whole round in which the operator wrote nothing but its Lease.
    await waitFor('a resync round without writes', async () => {
      const since = new Date();
      await round();
      const writes = writesBesidesLease(since);
      if (writes.length > 0) throw new Error(`the operator wrote ${writes.map(describeAudit).join(', ')}`);
      return true;
    }, 60_000, 0);

    const since = new Date();
    const reconcilesBefore = await reconcileCount();
    const unchangedBefore = await op.metric('wharf_operator_applies_total', { outcome: 'unchanged' });
    for (let i = 0; i < 10; i++) await round();
    const writes = operatorWrites(controlPlane().auditLog, 'idle-op', since);
    const leaseRenewals = writes.filter((e) => e.objectRef?.resource === 'leases');
    const others = writes.filter((e) => e.objectRef?.resource !== 'leases');
    const reconciles = (await reconcileCount()) - reconcilesBefore;
    const skippedApplies = (await op.metric('wharf_operator_applies_total', { outcome: 'unchanged' })) - unchangedBefore;
    console.log(
      `[operator] idle for 10 resync rounds: ${others.length} writes (besides ${leaseRenewals.length} leader-lease renewals), ${reconciles} reconciles, ${skippedApplies} applies skipped as unchanged`,
    );
    expect(others.map(describeAudit)).toEqual([]);
    // The window really was observed: the operator was alive, leading and reconciling.
    expect(leaseRenewals.length).toBeGreaterThan(5);
    expect(reconciles).toBeGreaterThanOrEqual(20);
    expect(skippedApplies).toBeGreaterThan(0);
  });
});
