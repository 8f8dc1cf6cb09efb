// Kill the operator (SIGKILL) in the middle of a reconcile, start it again, and it converges: the
// objects it had not reached are created, the status is written, and the Secrets it had already
// generated are kept, not regenerated.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClients } from './support/context.js';
import { apply, createNamespace, getObject, waitFor, type Clients } from './support/kube.js';
import { OperatorProcess, operatorKubeconfig } from './support/operator.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

let c: Clients;
let ns: string;
let kubeconfig: string;
const running: OperatorProcess[] = [];

beforeAll(async () => {
  c = adminClients();
  kubeconfig = await operatorKubeconfig(c);
  ns = await createNamespace(c, 'restart');
});

afterAll(async () => {
  for (const op of running) if (op.running) await op.stop();
});

const get = (apiVersion: string, kind: string, name: string) => getObject<Any>(c, { apiVersion, kind, metadata: { name, namespace: ns } });

describe('operator restart', () => {
  it('converges after being killed mid-reconcile', async () => {
    const args = ['--lease-name', 'restart', '--watch-namespace', ns];
    // A pause before each apply (fault-injection knob) makes "mid-reconcile" deterministic.
    const first = await OperatorProcess.start({ kubeconfig, identity: 'restart-op', args, env: { WHARF_OPERATOR_STEP_DELAY_MS: '1500' } });
    running.push(first);
    await apply(c, { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name: 'reg', namespace: ns }, spec: {} } as Any);
    await waitFor('the first object of the reconcile', async () => ((await get('v1', 'ConfigMap', 'reg-config')) ? true : undefined), 30_000, 50);
    await first.kill();

    // Killed between steps: the ConfigMap and Secrets exist, the Deployment and status do not.
    const password = (await get('v1', 'Secret', 'reg-admin')).data.password;
    const tokenKey = (await get('v1', 'Secret', 'reg-token-key')).data['key.pem'];
    expect(await get('apps/v1', 'Deployment', 'reg')).toBeUndefined();
    expect((await get('wharf.dev/v1alpha1', 'Registry', 'reg')).status?.observedGeneration).toBeUndefined();

    // Same identity, as a restarted container in the same pod: it takes its own lease back at once.
    const second = await OperatorProcess.start({ kubeconfig, identity: 'restart-op', args });
    running.push(second);
    const reg = await waitFor('convergence after restart', async () => {
      const r = await get('wharf.dev/v1alpha1', 'Registry', 'reg');
      const waiting = r?.status?.conditions?.some((x: Any) => x.type === 'Reconciling' && x.reason === 'WaitingForReplicas');
      return r?.status?.observedGeneration === r?.metadata.generation && r.status.configHash && waiting ? r : undefined;
    }, 30_000);
    for (const [av, k, n] of [['v1', 'Service', 'reg'], ['v1', 'PersistentVolumeClaim', 'reg-data'], ['apps/v1', 'Deployment', 'reg']] as const) {
      expect(await get(av, k, n), `${k} ${n}`).toBeDefined();
    }
    const dep = await get('apps/v1', 'Deployment', 'reg');
    expect(dep.spec.template.metadata.annotations['wharf.dev/config-hash']).toBe(reg.status.configHash);
    expect((await get('v1', 'Secret', 'reg-admin')).data.password).toBe(password);
    expect((await get('v1', 'Secret', 'reg-token-key')).data['key.pem']).toBe(tokenKey);
    expect(reg.status.conditions.find((x: Any) => x.type === 'Ready')).toMatchObject({ status: 'False', reason: 'WaitingForReplicas', message: '0 of 1 replicas ready' });
  });
});
