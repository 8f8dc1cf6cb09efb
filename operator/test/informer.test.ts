// The informer against the real apiserver: list+watch, relist after 410 Gone, and recovery with
// backoff after the network to the apiserver goes away (a TCP proxy in between is cut), without
// ending the process.
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient } from '../src/kube/client.js';
import { Backoff } from '../src/runtime/backoff.js';
import { Informer, type EventType } from '../src/runtime/informer.js';
import { adminClients, controlPlane } from './support/context.js';
import { writeKubeconfig } from './support/kubeconfig.js';
import { apply, createNamespace, raw, waitFor, type Clients } from './support/kube.js';
import { freePort } from './support/processes.js';
import { CuttableProxy } from './support/proxy.js';
import { join } from 'node:path';

let c: Clients;
let ns: string;
let proxy: CuttableProxy;
let client: KubeClient;
const stop = new AbortController();
const log = pino({ level: 'silent' });

beforeAll(async () => {
  c = adminClients();
  ns = await createNamespace(c, 'informer');
  const cp = controlPlane();
  proxy = new CuttableProxy(await freePort(), Number(new URL(cp.server).port));
  await proxy.up();
  // Admin credentials, but through the proxy.
  const pki = cp.pkiDir;
  const path = writeKubeconfig(join(cp.workDir, 'proxy.kubeconfig'), `https://127.0.0.1:${proxy.port}`, cp.caCert, {
    clientCert: join(pki, 'admin.crt'),
    clientKey: join(pki, 'admin.key'),
  });
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  client = new KubeClient(kc, { userAgent: 'informer-test', fieldManager: 'informer-test', defaultTimeoutMs: 5000 });
});

afterAll(async () => {
  stop.abort();
  client?.close();
});

// PodTemplates: a plain namespaced type that the test control plane serves without watch cache.
const PODTEMPLATES = { group: '', version: 'v1', kind: 'PodTemplate', plural: 'podtemplates', namespaced: true };
const cm = (name: string, value: string) => ({
  apiVersion: 'v1',
  kind: 'PodTemplate',
  metadata: { name, namespace: ns, labels: { value } },
  template: { spec: { containers: [{ name: 'c', image: 'example.test/c' }] } },
});
const valueOf = (obj: { metadata: { labels?: Record<string, string> } }) => obj.metadata.labels?.value;

describe('Informer', () => {
  const seen: { type: EventType; name: string; value?: string }[] = [];
  let informer: Informer;
  let run: Promise<void>;

  it('lists, then watches changes', async () => {
    await apply(c, cm('before', '1'));
    informer = new Informer(client, { resource: PODTEMPLATES, namespace: ns, backoff: new Backoff(200, 2000) }, log);
    informer.onEvent((type, obj) => seen.push({ type, name: obj.metadata.name, value: valueOf(obj) }));
    run = informer.run(stop.signal);
    await informer.waitForSync();
    expect(informer.get(`${ns}/before`)).toBeDefined();
    await apply(c, cm('after', '1'));
    await apply(c, cm('after', '2'));
    await raw(c, 'DELETE', `/api/v1/namespaces/${ns}/podtemplates/before`);
    await waitFor('watch events', async () => (seen.some((e) => e.type === 'DELETED' && e.name === 'before') ? true : undefined), 10_000);
    expect(seen).toEqual([
      { type: 'ADDED', name: 'before', value: '1' },
      { type: 'ADDED', name: 'after', value: '1' },
      { type: 'MODIFIED', name: 'after', value: '2' },
      { type: 'DELETED', name: 'before', value: '1' },
    ]);
    expect(informer.stats.lists).toBe(1);
  });

  it('relists when the apiserver answers 410 Gone for an expired resourceVersion', async () => {
    // Wait until etcd compaction has made resourceVersion 1 expire.
    await waitFor('resourceVersion 1 expired', async () => {
      const res = await client.open({ method: 'GET', path: `/api/v1/namespaces/${ns}/podtemplates`, query: { watch: 1, resourceVersion: '1', timeoutSeconds: 1 } });
      let text = '';
      for await (const chunk of res) text += String(chunk);
      return res.statusCode === 410 || text.includes('"code":410') ? true : undefined;
    }, 30_000, 1000);
    informer.resumeFrom('1');
    await apply(c, cm('after-gone', 'x'));
    await waitFor('relist after 410', async () => (informer.stats.relistsOnGone > 0 && informer.get(`${ns}/after-gone`) ? true : undefined), 15_000);
    expect(informer.stats.lists).toBe(2);
    expect(informer.get(`${ns}/before`)).toBeUndefined();
  });

  it('reconnects with backoff after losing the apiserver, and catches up on what changed meanwhile', async () => {
    const errorsBefore = informer.stats.errors;
    await proxy.cut();
    await apply(c, cm('during-outage', 'y'));
    await raw(c, 'DELETE', `/api/v1/namespaces/${ns}/podtemplates/after`);
    // The informer has tried the apiserver since the change, and failed.
    await waitFor('a failed attempt during the outage', async () => (informer.stats.errors > errorsBefore ? true : undefined), 30_000, 50);
    expect(informer.get(`${ns}/during-outage`)).toBeUndefined();
    await proxy.up();
    await waitFor('catch up after the outage', async () => (informer.get(`${ns}/during-outage`) && !informer.get(`${ns}/after`) ? true : undefined), 15_000);
    expect(seen).toContainEqual({ type: 'DELETED', name: 'after', value: '2' });
    stop.abort();
    await run; // the loop ends only through its signal
  });
});
