// The operator loses the apiserver (a TCP proxy in between is cut): it stops leading within the
// renew deadline, before its lease can expire for a standby, instead of carrying on blind; it
// stays alive and healthy, and when the network comes back it leads again and reconciles what
// changed meanwhile.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClients, controlPlane } from './support/context.js';
import { apply, createNamespace, getObject, raw, waitFor, type Clients } from './support/kube.js';
import { OPERATOR_NAMESPACE, OperatorProcess, operatorKubeconfig } from './support/operator.js';
import { freePort } from './support/processes.js';
import { CuttableProxy } from './support/proxy.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

let c: Clients;
let ns: string;
let op: OperatorProcess;
let proxy: CuttableProxy;

beforeAll(async () => {
  c = adminClients();
  const direct = await operatorKubeconfig(c);
  ns = await createNamespace(c, 'resilience');
  const server = controlPlane().server;
  proxy = new CuttableProxy(await freePort(), Number(new URL(server).port));
  await proxy.up();
  const viaProxy = direct.replace(/\.kubeconfig$/, '-proxy.kubeconfig');
  writeFileSync(viaProxy, readFileSync(direct, 'utf8').replace(server, `https://127.0.0.1:${proxy.port}`), { mode: 0o600 });
  op = await OperatorProcess.start({ kubeconfig: viaProxy, identity: 'resilience-op', args: ['--lease-name', 'resilience', '--watch-namespace', ns] });
});

afterAll(async () => {
  await op?.stop();
});

const lease = async () => (await raw<Any>(c, 'GET', `/apis/coordination.k8s.io/v1/namespaces/${OPERATOR_NAMESPACE}/leases/resilience`)).spec;
const registry = () => getObject<Any>(c, { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name: 'reg', namespace: ns } });
const applyRegistry = (spec: unknown) => apply(c, { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name: 'reg', namespace: ns }, spec } as Any);

describe('losing the apiserver', () => {
  it('stops leading before its lease can expire, stays up, and recovers when the network returns', async () => {
    await waitFor('leader', async () => ((await op.metric('wharf_operator_leader')) === 1 ? true : undefined), 20_000);
    await applyRegistry({});
    await waitFor('converged', async () => ((await registry())?.status?.observedGeneration === 1 ? true : undefined), 30_000);

    await proxy.cut();
    // Judged on the operator's own clock, not on how fast the test noticed: from its last renewal
    // that reached the apiserver (the Lease as stored, read directly) to the log line it writes
    // once its work has stopped. That must come before the lease (15 s) can expire for a standby.
    const stopped = await waitFor('leadership given up', async () => op.logEntries().find((e) => e.msg === 'lost the leader lease; campaigning again'), 60_000);
    expect(await op.metric('wharf_operator_leader')).toBe(0);
    const lastRenewal = Date.parse((await lease()).renewTime);
    const seconds = (stopped.time - lastRenewal) / 1000;
    console.log(`[operator] apiserver unreachable: stopped leading ${seconds.toFixed(1)} s after its last renewal (renew deadline 10 s, lease 15 s)`);
    expect(seconds).toBeLessThan(15);
    expect(op.running).toBe(true);
    expect((await fetch(`http://127.0.0.1:${op.port}/healthz`)).status).toBe(200);

    // A change made while the operator cannot reach the apiserver: it keeps campaigning (a
    // failed read of the Lease after the change proves it was running all along) and does nothing else.
    const failedReads = () => op.logEntries().filter((e) => e.msg === 'reading the leader lease failed').length;
    const before = failedReads();
    await applyRegistry({ logLevel: 'debug' });
    await waitFor('a failed lease read after the change', async () => (failedReads() > before ? true : undefined), 30_000);
    expect((await registry()).status.observedGeneration).toBe(1);
    expect(op.running).toBe(true);

    await proxy.up();
    await waitFor('leading again', async () => ((await op.metric('wharf_operator_leader')) === 1 ? true : undefined), 30_000);
    const reg = await waitFor('caught up', async () => {
      const r = await registry();
      return r?.status?.observedGeneration === 2 ? r : undefined;
    }, 30_000);
    expect(reg.status.configHash).toBeDefined();
    expect(op.running).toBe(true);
  });
});
