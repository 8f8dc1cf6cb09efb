// kstatus, computed from the Registry's conditions and observedGeneration the way Flux and
// kstatus-based tools do, goes through InProgress → Current on creation, InProgress → Current on
// a spec change, Failed while a referenced Secret is missing, and back once it exists. At each
// step the Argo CD health check (config/argocd/health.lua, run by lua5.1) agrees.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClients } from './support/context.js';
import { apply, createNamespace, getObject, waitFor, type Clients } from './support/kube.js';
import { markPodsReady } from './support/kubelet.js';
import { computeKStatus, type KStatus } from './support/kstatus.js';
import { argoHealth } from './support/argocd.js';
import { OperatorProcess, operatorKubeconfig } from './support/operator.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

let c: Clients;
let ns: string;
let op: OperatorProcess;

beforeAll(async () => {
  c = adminClients();
  const kubeconfig = await operatorKubeconfig(c);
  ns = await createNamespace(c, 'kstatus');
  op = await OperatorProcess.start({ kubeconfig, identity: 'kstatus-op', args: ['--lease-name', 'kstatus', '--watch-namespace', ns] });
});

afterAll(async () => {
  await op?.stop();
});

const registry = (name: string) => getObject<Any>(c, { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name, namespace: ns } });
const apply2 = (name: string, spec: unknown) => apply(c, { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name, namespace: ns }, spec } as Any);

/** Waits until kstatus is `want` for the current generation and returns the computed result. */
async function until(name: string, want: KStatus, timeoutMs = 30_000) {
  return waitFor(`Registry ${name} ${want}`, async () => {
    const r = await registry(name);
    const k = r && computeKStatus(r);
    return k?.status === want && r.status?.observedGeneration === r.metadata.generation ? { ...k, obj: r } : undefined;
  }, timeoutMs).then((found) => {
    const argo = argoHealth(found.obj);
    expect(argo.status).toBe(ARGO_FOR[want]);
    if (want !== 'Current') expect(argo.message).toBe(found.message);
    return found;
  });
}

const ARGO_FOR: Record<KStatus, string> = { Current: 'Healthy', InProgress: 'Progressing', Failed: 'Degraded', Terminating: 'Progressing' };

describe('kstatus', () => {
  it('InProgress until the pods are ready, then Current', async () => {
    const created = await apply2('reg', {});
    expect(computeKStatus(created as Any).status).toBe('Current'); // no status yet: kstatus cannot tell
    expect(argoHealth(created).status).toBe('Progressing'); // Argo CD waits for the operator
    const progressing = await until('reg', 'InProgress');
    expect(progressing.obj.status.conditions.find((x: Any) => x.type === 'Reconciling')).toMatchObject({ status: 'True' });
    expect(progressing.obj.status.conditions.find((x: Any) => x.type === 'Ready')).toMatchObject({ status: 'False' });
    await waitFor('pod', async () => ((await markPodsReady(c, ns, 'app.kubernetes.io/instance=reg')) > 0 ? true : undefined), 30_000);
    const current = await until('reg', 'Current');
    expect(current.obj.status.conditions.find((x: Any) => x.type === 'Ready').status).toBe('True');
  });

  it('a spec change is InProgress (new generation, then rollout) until the new pod is ready', async () => {
    const updated = await apply2('reg', { logLevel: 'debug' });
    // The apply's answer is the object as written: a new generation, and the status from before it.
    expect([(updated as Any).metadata.generation, (updated as Any).status.observedGeneration]).toEqual([2, 1]);
    expect(computeKStatus(updated as Any).status).toBe('InProgress');
    await until('reg', 'InProgress');
    await waitFor('new pod ready', async () => {
      await markPodsReady(c, ns, 'app.kubernetes.io/instance=reg');
      const r = await registry('reg');
      return computeKStatus(r).status === 'Current' && r.status.observedGeneration === 2 ? true : undefined;
    }, 30_000, 500);
  });

  it('Failed while a referenced Secret is missing, then InProgress and Current once it exists', async () => {
    await apply2('ext', { database: { type: 'external', external: { secretRef: { name: 'missing-dsn' } } } });
    const failed = await until('ext', 'Failed');
    expect(failed.message).toBe('Secret missing-dsn (database DSN) not found');
    expect(failed.obj.status.conditions.find((x: Any) => x.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'SecretNotFound' });
    expect(failed.obj.status.conditions.find((x: Any) => x.type === 'Ready')).toMatchObject({ status: 'False', reason: 'SecretNotFound' });

    await apply(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'missing-dsn', namespace: ns }, stringData: { dsn: 'postgres://db/wharf' } } as Any);
    await until('ext', 'InProgress', 30_000);
    await waitFor('pod', async () => ((await markPodsReady(c, ns, 'app.kubernetes.io/instance=ext')) > 0 ? true : undefined), 30_000);
    await until('ext', 'Current');
  });
});
