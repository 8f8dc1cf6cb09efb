// An idle RobotAccount (and Project) writes nothing: with a managed project, the robot, its
// credentials Secret, pull secrets in two namespaces and ServiceAccount entries converged, and a 2 s resync (so it keeps reconciling),
// 60 s show no write by the operator in the apiserver's audit log (apart from its Lease) and no
// write request in the registry's own request counter.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describe as describeAudit, operatorWrites } from './support/audit.js';
import { adminClients, controlPlane } from './support/context.js';
import { apply, createNamespace, getObject, raw, waitFor, type Clients } from './support/kube.js';
import { OperatorProcess, operatorKubeconfig } from './support/operator.js';
import { applyExternalRegistry, countsAdded, RegistryProcess } from './support/registry-process.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

let c: Clients;
let ns: string;
let op: OperatorProcess;
let registry: RegistryProcess;

const API = 'wharf.dev/v1alpha1';
const IDLE_MS = 60_000;

beforeAll(async () => {
  c = adminClients();
  registry = await RegistryProcess.start();
  const kubeconfig = await operatorKubeconfig(c);
  ns = await createNamespace(c, 'robot-idle');
  await applyExternalRegistry(c, ns, registry);
  await registry.ok('PUT', '/projects/idle', {});
  op = await OperatorProcess.start({ kubeconfig, identity: 'robot-idle-op', args: ['--lease-name', 'robot-idle', '--watch-namespace', ns, '--resync', '2'] });
});

afterAll(async () => {
  await op?.stop();
  await registry?.stop();
});

describe('idle RobotAccount and Project', () => {
  it('makes no apiserver write and no registry write for 60 s once converged, while reconciling', async () => {
    const targets = [await createNamespace(c, 'idle-a'), await createNamespace(c, 'idle-b')];
    await apply(c, {
      apiVersion: API,
      kind: 'RobotAccount',
      metadata: { name: 'ci', namespace: ns },
      spec: {
        registryRef: { name: 'ext' },
        level: 'project',
        project: 'idle',
        permissions: [{ project: 'idle', access: [{ resource: 'repository', action: 'pull' }] }],
        rotation: { intervalDays: 30 },
        pullSecret: { namespaces: targets, serviceAccounts: ['default'] },
      },
    } as Any);
    await apply(c, {
      apiVersion: API,
      kind: 'Project',
      metadata: { name: 'idle-managed', namespace: ns },
      spec: { registryRef: { name: 'ext' }, visibility: 'private', quota: { storage: '5Gi' }, members: [{ kind: 'User', name: 'admin', role: 'projectAdmin' }] },
    } as Any);
    await waitFor('Project idle-managed Ready', async () => {
      const p = await getObject<Any>(c, { apiVersion: API, kind: 'Project', metadata: { name: 'idle-managed', namespace: ns } });
      return p?.status?.observedGeneration === p?.metadata.generation && p.status.conditions?.some((x: Any) => x.type === 'Ready' && x.status === 'True') ? true : undefined;
    }, 60_000, 200);
    await waitFor('converged: Ready, and both default ServiceAccounts hold the entry', async () => {
      const r = await getObject<Any>(c, { apiVersion: API, kind: 'RobotAccount', metadata: { name: 'ci', namespace: ns } });
      if (!(r?.status?.observedGeneration === r?.metadata.generation && r.status.conditions?.some((x: Any) => x.type === 'Ready' && x.status === 'True'))) return undefined;
      for (const t of targets) {
        const sa = await raw<Any>(c, 'GET', `/api/v1/namespaces/${t}/serviceaccounts/default`).catch(() => undefined);
        if (!sa?.imagePullSecrets?.some((e: Any) => e.name === 'ci-pull')) return undefined;
      }
      return true;
    }, 60_000, 200);
    const reconciles = () => op.metric('wharf_operator_reconcile_total', { controller: 'robotaccount' });
    // Settled: a few resync rounds in which nothing was written.
    await waitFor('a quiet stretch', async () => {
      const since = new Date();
      const before = await reconciles();
      await waitFor('two resync rounds', async () => ((await reconciles()) >= before + 2 ? true : undefined), 30_000, 100);
      return operatorWrites(controlPlane().auditLog, 'robot-idle-op', since).filter((e) => e.objectRef?.resource !== 'leases').length === 0 ? true : undefined;
    }, 60_000, 0);

    const since = new Date();
    const reconcilesBefore = await reconciles();
    const projectReconcilesBefore = await op.metric('wharf_operator_reconcile_total', { controller: 'project' });
    const registryBefore = await registry.writeCounts();
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const writes = operatorWrites(controlPlane().auditLog, 'robot-idle-op', since);
    const others = writes.filter((e) => e.objectRef?.resource !== 'leases');
    const registryDuring = countsAdded(await registry.writeCounts(), registryBefore);
    const reconciled = (await reconciles()) - reconcilesBefore;
    const projectReconciles = (await op.metric('wharf_operator_reconcile_total', { controller: 'project' })) - projectReconcilesBefore;
    console.log(
      `[operator] RobotAccount idle for ${IDLE_MS / 1000} s: ${others.length} apiserver writes (besides ${writes.length - others.length} Lease renewals), ` +
        `${Object.values(registryDuring).reduce((a, b) => a + b, 0)} registry writes, ${reconciled} RobotAccount and ${projectReconciles} Project reconciles`,
    );
    expect(others.map(describeAudit)).toEqual([]);
    expect(registryDuring).toEqual({});
    // The window was really observed: the operator kept reconciling (2 s resync) and leading.
    expect(reconciled).toBeGreaterThanOrEqual(15);
    expect(projectReconciles).toBeGreaterThanOrEqual(15);
    expect(writes.length - others.length).toBeGreaterThan(5);
  });
});
