// The Secrets a Registry references, on the real control plane: the metadata-only informer the
// operator watches them with keeps no Secret data (nor kubectl's last-applied copy of it) yet sees
// every change; and an external Registry (a real registry process with token auth) reconnects with
// new credentials as soon as only its credentials Secret changes. The operator runs as a real
// process under config/rbac with the default 10-minute resync and does not retry refused
// credentials on a timer, so only the watch can bring the changes in within the waits below.
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubeClient } from '../src/kube/client.js';
import { RESOURCES } from '../src/kube/resources.js';
import { Informer, type EventType } from '../src/runtime/informer.js';
import { adminClients, controlPlane } from './support/context.js';
import { apply, createNamespace, getObject, raw, waitFor, type Clients } from './support/kube.js';
import { OperatorProcess, operatorKubeconfig } from './support/operator.js';
import { REGISTRY_ADMIN_PASSWORD, RegistryProcess } from './support/registry-process.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

const API = 'wharf.dev/v1alpha1';
let c: Clients;
let ns: string;

beforeAll(async () => {
  c = adminClients();
  ns = await createNamespace(c, 'references');
});

describe('metadata-only informer', () => {
  const stop = new AbortController();
  let client: KubeClient;
  afterAll(() => {
    stop.abort();
    client?.close();
  });

  it('caches a Secret without its data or annotations, and sees a change of its data', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(controlPlane().adminKubeconfig);
    client = new KubeClient(kc, { userAgent: 'references-test', fieldManager: 'references-test' });
    const value = 'postgres://u:very-secret-password@db/wharf';
    // As `kubectl apply` (client-side) leaves it: the whole object, data included, in an annotation.
    const lastApplied = JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'dsn', namespace: ns }, stringData: { dsn: value } });
    await apply(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'dsn', namespace: ns, labels: { team: 'a' }, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': lastApplied } }, stringData: { dsn: value } } as Any);
    const informer = new Informer(client, { resource: RESOURCES.Secret, namespace: ns, metadataOnly: true }, pino({ level: 'silent' }));
    const events: { type: EventType; rv?: string }[] = [];
    informer.onEvent((type, obj) => obj.metadata.name === 'dsn' && events.push({ type, rv: obj.metadata.resourceVersion }));
    const run = informer.run(stop.signal);
    await informer.waitForSync();
    const cached = informer.get(`${ns}/dsn`)!;
    expect(cached).toEqual({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'dsn', namespace: ns, uid: expect.any(String), resourceVersion: expect.any(String), labels: { team: 'a' } } });
    expect(JSON.stringify(informer.list())).not.toContain('very-secret-password');

    await apply(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'dsn', namespace: ns }, stringData: { dsn: 'postgres://u:rotated@db/wharf' } } as Any);
    const live = (await getObject<Any>(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'dsn', namespace: ns } }))!;
    await waitFor('the change seen by the informer', async () => (informer.get(`${ns}/dsn`)?.metadata.resourceVersion === live.metadata.resourceVersion ? true : undefined), 30_000);
    expect(events.map((e) => e.type)).toEqual(['ADDED', 'MODIFIED']);
    expect(JSON.stringify(informer.list())).not.toContain('rotated');

    await raw(c, 'DELETE', `/api/v1/namespaces/${ns}/secrets/dsn`);
    await waitFor('the deletion seen by the informer', async () => (informer.get(`${ns}/dsn`) ? undefined : true), 30_000);
    expect(events.at(-1)!.type).toBe('DELETED');
    stop.abort();
    await run;
  });
});

describe('external Registry credentials', () => {
  let op: OperatorProcess;
  let registry: RegistryProcess;
  const getRegistry = () => getObject<Any>(c, { apiVersion: API, kind: 'Registry', metadata: { name: 'ext', namespace: ns } });
  const condition = (r: Any, type: string) => r?.status?.conditions?.find((x: Any) => x.type === type);
  const credentials = (password: string) =>
    apply(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ext-admin', namespace: ns }, stringData: { username: 'admin', password } } as Any);
  const waitFor_ = (what: string, check: (r: Any) => boolean) =>
    waitFor(`Registry ext ${what}`, async () => {
      const r = await getRegistry();
      return r && check(r) ? r : undefined;
    }, 30_000);

  beforeAll(async () => {
    registry = await RegistryProcess.start();
    const kubeconfig = await operatorKubeconfig(c);
    op = await OperatorProcess.start({ kubeconfig, identity: 'references-op', args: ['--lease-name', 'references', '--watch-namespace', ns] });
  });

  afterAll(async () => {
    await op?.stop();
    await registry?.stop();
  });

  it('is Stalled while the registry rejects the credentials, and Ready once only the Secret is fixed', async () => {
    await credentials('not-the-password');
    await apply(c, { apiVersion: API, kind: 'Registry', metadata: { name: 'ext', namespace: ns }, spec: { external: { url: registry.url, credentialsSecretRef: { name: 'ext-admin' } } } } as Any);
    const stalled = await waitFor_('Stalled on rejected credentials', (r) => condition(r, 'Stalled')?.status === 'True');
    expect(condition(stalled, 'Stalled')).toMatchObject({ reason: 'CredentialsRejected', message: 'The external registry rejected the credentials in Secret ext-admin' });
    expect(condition(stalled, 'Ready').status).toBe('False');
    expect(JSON.stringify(stalled.status)).not.toContain('not-the-password');

    await credentials(REGISTRY_ADMIN_PASSWORD);
    const ready = await waitFor_('Ready with the new credentials', (r) => condition(r, 'Ready')?.status === 'True');
    expect(ready.metadata.generation).toBe(stalled.metadata.generation);
    expect(condition(ready, 'Stalled')).toBeUndefined();
  });

  it('follows a password rotation: the registry and the Secret change, the operator signs in with the new password', async () => {
    const rotated = 'rotated-admin-password-0123';
    await registry.ok('PUT', '/users/admin', { password: rotated, currentPassword: REGISTRY_ADMIN_PASSWORD });
    await credentials(rotated);
    // The old password no longer works, so Ready after this change means the new one was used.
    const signIn = (password: string) => fetch(`${registry.url}/api/v1/users?limit=1`, { headers: { Authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` } });
    expect((await signIn(REGISTRY_ADMIN_PASSWORD)).status).toBe(401);
    await credentials('wrong-again');
    await waitFor_('Stalled after the Secret went wrong', (r) => condition(r, 'Stalled')?.reason === 'CredentialsRejected');
    await credentials(rotated);
    await waitFor_('Ready after the rotated password reached the Secret', (r) => condition(r, 'Ready')?.status === 'True');
    const events = await raw<{ items: Any[] }>(c, 'GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events`);
    const warnings = events.items.filter((e) => e.regarding?.name === 'ext' && e.reason === 'CredentialsRejected');
    expect(warnings.length).toBeGreaterThan(0);
    for (const e of warnings) expect(JSON.stringify(e)).not.toMatch(/not-the-password|wrong-again|rotated-admin/);
  });
});
