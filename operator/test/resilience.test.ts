// The operator loses the apiserver (a TCP proxy in between is cut): it stops leading within the
// renew deadline instead of carrying on blind, stays alive and healthy, and when the network comes
// back it leads again and reconciles what changed meanwhile.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClients, controlPlane } from './support/context.js';
import { apply, createNamespace, getObject, waitFor, type Clients } from './support/kube.js';
import { OperatorProcess, operatorKubeconfig } from './support/operator.js';
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

const registry = () => getObject<Any>(c, { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name: 'reg', namespace: ns } });
const applyRegistry = (spec: unknown) => apply(c, { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name: 'reg', namespace: ns }, spec } as Any);

describe('losing the apiserver', () => {
  it('stops leading within the renew deadline, stays up, and recovers when the network returns', async () => {
    await waitFor('leader', async () => ((await op.metric('wharf_operator_leader')) === 1 ? true : undefined), 20_000);
    await applyRegistry({});
    await waitFor('converged', async () => ((await registry())?.status?.observedGeneration === 1 ? true : undefined), 30_000);

    const cutAt = Date.now();
    await proxy.cut();
    const stoppedLeadingAt = await waitFor('leadership given up', async () => ((await op.metric('wharf_operator_leader')) === 0 ? Date.now() : undefined), 30_000, 100);
    const seconds = (stoppedLeadingAt - cutAt) / 1000;
    console.log(`[operator] apiserver unreachable: stopped leading after ${seconds.toFixed(1)} s (renew deadline 10 s)`);
    // It may not lead past the renew deadline (plus the retry period in which it noticed, and slack),
    // so that it has stopped before its lease (15 s) can expire for a standby.
    expect(seconds).toBeLessThanOrEqual(10 + 2 + 1);
    expect(op.running).toBe(true);
    expect((await fetch(`http://127.0.0.1:${op.port}/healthz`)).status).toBe(200);

    await applyRegistry({ logLevel: 'debug' });
    await new Promise((r) => setTimeout(r, 2000));
    expect((await registry()).status.observedGeneration).toBe(1);

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
