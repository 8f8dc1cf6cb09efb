// Registry lifecycle on the real control plane, with the operator running as a real process under
// the RBAC of config/rbac: create (objects asserted field by field, status, finalizer, events),
// spec changes (objects and config checksum follow; PDB and Ingress come and go), deletion
// (Deployment stopped first, finalizer released, owned objects garbage-collected).
import { createPrivateKey } from 'node:crypto';
import { load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, createNamespace, getObject, installCrds, raw, waitFor, type Clients } from './support/kube.js';
import { adminClients } from './support/context.js';
import { markPodsReady } from './support/kubelet.js';
import { OperatorProcess, operatorKubeconfig } from './support/operator.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

let c: Clients;
let ns: string;
let op: OperatorProcess;

const regRef = (name: string) => ({ apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name, namespace: ns } });
const obj = (apiVersion: string, kind: string, name: string) => ({ apiVersion, kind, metadata: { name, namespace: ns } });
const get = <T = Any>(apiVersion: string, kind: string, name: string) => getObject<T>(c, obj(apiVersion, kind, name));
const getRegistry = (name: string) => getObject<Any>(c, regRef(name));

async function waitObserved(name: string, check: (r: Any) => boolean = () => true, timeoutMs = 30_000): Promise<Any> {
  return waitFor(`Registry ${name} observed`, async () => {
    const r = await getRegistry(name);
    return r && r.status?.observedGeneration === r.metadata.generation && check(r) ? r : undefined;
  }, timeoutMs);
}

beforeAll(async () => {
  c = adminClients();
  await installCrds(c);
  const kubeconfig = await operatorKubeconfig(c);
  ns = await createNamespace(c, 'lifecycle');
  op = await OperatorProcess.start({ kubeconfig, identity: 'lifecycle-op', args: ['--lease-name', 'lifecycle', '--watch-namespace', ns] });
});

afterAll(async () => {
  await op?.stop();
});

describe('Registry lifecycle', () => {
  it('creates the expected objects and status for a minimal Registry', async () => {
    await apply(c, { ...regRef('reg'), spec: {} });
    const reg = await waitObserved('reg', (r) => r.status?.configHash);
    const uid = reg.metadata.uid;
    const owner = { apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', name: 'reg', uid, controller: true, blockOwnerDeletion: true };
    const selector = { 'app.kubernetes.io/name': 'wharf-registry', 'app.kubernetes.io/instance': 'reg' };

    // Registry: finalizer and status.
    expect(reg.metadata.finalizers).toEqual(['wharf.dev/registry']);
    expect(reg.status).toMatchObject({
      observedGeneration: 1,
      endpoint: `http://reg.${ns}.svc:5000`,
      image: 'ghcr.io/wharf-dev/wharf-registry:0.1.0',
      version: '0.1.0',
      adminSecretName: 'reg-admin',
      replicas: expect.any(Number),
      readyReplicas: 0,
    });
    const cond = Object.fromEntries(reg.status.conditions.map((x: Any) => [x.type, x]));
    expect(cond.Ready).toMatchObject({ status: 'False', observedGeneration: 1 });
    expect(cond.Reconciling).toMatchObject({ status: 'True', observedGeneration: 1 });
    expect(cond.Stalled).toBeUndefined();

    // ConfigMap: the registry config file, per registry/CONFIG.md.
    const cm = await get('v1', 'ConfigMap', 'reg-config');
    expect(cm.metadata.ownerReferences).toEqual([owner]);
    expect(cm.metadata.labels).toMatchObject({ ...selector, 'app.kubernetes.io/managed-by': 'wharf-operator', 'app.kubernetes.io/version': '0.1.0' });
    expect(load(cm.data['config.yaml'])).toEqual({
      addr: '0.0.0.0:5000',
      dataDir: '/var/lib/wharf',
      logLevel: 'info',
      storage: { driver: 'filesystem', filesystem: { dir: '/var/lib/wharf/blobs' } },
      // No realm: the registry names the host each client reached it at (registry-data.test.ts has the PVC's reclaim policy).
      auth: { service: `reg.${ns}.svc:5000`, tokenKeyFile: '/etc/wharf/token/key.pem' },
    });

    // Generated Secrets.
    const admin = await get('v1', 'Secret', 'reg-admin');
    expect(admin.metadata.ownerReferences).toEqual([owner]);
    expect(Buffer.from(admin.data.username, 'base64').toString()).toBe('admin');
    expect(Buffer.from(admin.data.password, 'base64').toString().length).toBeGreaterThanOrEqual(40);
    const tokenKey = await get('v1', 'Secret', 'reg-token-key');
    const key = createPrivateKey(Buffer.from(tokenKey.data['key.pem'], 'base64').toString());
    expect(key.asymmetricKeyType).toBe('ec');
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');

    // Data volume.
    const pvc = await get('v1', 'PersistentVolumeClaim', 'reg-data');
    expect(pvc.metadata.ownerReferences).toBeUndefined(); // reclaimPolicy Retain (registry-data.test.ts)
    expect(pvc.spec.accessModes).toEqual(['ReadWriteOnce']);
    expect(pvc.spec.resources.requests.storage).toBe('10Gi');

    // Service.
    const svc = await get('v1', 'Service', 'reg');
    expect(svc.metadata.ownerReferences).toEqual([owner]);
    expect(svc.spec.type).toBe('ClusterIP');
    expect(svc.spec.selector).toEqual(selector);
    expect(svc.spec.ports).toEqual([{ name: 'http', port: 5000, targetPort: 'http', protocol: 'TCP' }]);

    // Deployment.
    const dep = await get('apps/v1', 'Deployment', 'reg');
    expect(dep.metadata.ownerReferences).toEqual([owner]);
    expect(dep.spec.replicas).toBe(1);
    expect(dep.spec.strategy).toEqual({ type: 'Recreate' });
    expect(dep.spec.selector).toEqual({ matchLabels: selector });
    const tpl = dep.spec.template;
    expect(tpl.metadata.annotations['wharf.dev/config-hash']).toBe(reg.status.configHash);
    expect(tpl.spec.automountServiceAccountToken).toBe(false);
    expect(tpl.spec.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      fsGroup: 1000,
      fsGroupChangePolicy: 'OnRootMismatch',
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const ctr = tpl.spec.containers[0];
    expect(ctr.name).toBe('registry');
    expect(ctr.image).toBe('ghcr.io/wharf-dev/wharf-registry:0.1.0');
    expect(ctr.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } });
    expect(ctr.ports).toEqual([{ name: 'http', containerPort: 5000, protocol: 'TCP' }]);
    expect(ctr.env).toEqual([
      { name: 'WHARF_CONFIG_FILE', value: '/etc/wharf/config/config.yaml' },
      { name: 'WHARF_ADMIN_PASSWORD_FILE', value: '/etc/wharf/admin/password' },
    ]);
    expect(ctr.resources).toEqual({ requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } });
    expect(ctr.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http', scheme: 'HTTP' });
    expect(ctr.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http', scheme: 'HTTP' });
    expect(ctr.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'http', scheme: 'HTTP' });
    expect(Object.fromEntries(ctr.volumeMounts.map((m: Any) => [m.name, m.mountPath]))).toEqual({
      config: '/etc/wharf/config',
      admin: '/etc/wharf/admin',
      'token-key': '/etc/wharf/token',
      data: '/var/lib/wharf',
      tmp: '/tmp',
    });
    const vols = Object.fromEntries(tpl.spec.volumes.map((v: Any) => [v.name, v]));
    expect(vols.config.configMap.name).toBe('reg-config');
    expect(vols.data.persistentVolumeClaim).toEqual({ claimName: 'reg-data' });
    expect(vols.admin.secret.secretName).toBe('reg-admin');
    expect(vols['token-key'].secret.secretName).toBe('reg-token-key');

    // Single replica: no PDB; no Ingress unless asked.
    expect(await get('policy/v1', 'PodDisruptionBudget', 'reg')).toBeUndefined();
    expect(await get('networking.k8s.io/v1', 'Ingress', 'reg')).toBeUndefined();

    // Every object is owned through server-side apply by the operator's one field manager.
    for (const o of [cm, svc, dep, pvc]) {
      const managers = (o.metadata.managedFields as Any[]).filter((m) => m.operation === 'Apply').map((m) => m.manager);
      expect(managers).toEqual(['wharf-operator']);
    }

    // Events for the Registry.
    const events = await raw<Any>(c, 'GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events?fieldSelector=regarding.name=reg,regarding.kind=Registry`);
    const reasons = events.items.map((e: Any) => e.reason);
    expect(reasons).toContain('Created');
    expect(reasons).toContain('SecretGenerated');
    for (const e of events.items) expect(e).toMatchObject({ reportingController: 'wharf.dev/operator', reportingInstance: 'lifecycle-op', type: 'Normal' });
  });

  it('becomes Ready when the Deployment becomes available', async () => {
    await waitFor('a registry pod', async () => ((await markPodsReady(c, ns, 'app.kubernetes.io/instance=reg')) > 0 ? true : undefined), 30_000);
    const reg = await waitObserved('reg', (r) => r.status.conditions.some((x: Any) => x.type === 'Ready' && x.status === 'True'));
    expect(reg.status.readyReplicas).toBe(1);
    expect(reg.status.conditions.map((x: Any) => x.type)).toEqual(['Ready']);
    expect(reg.status.conditions[0].reason).toBe('Available');
  });

  it('follows spec changes: the config and its checksum change, and the generated secrets stay', async () => {
    const before = await getRegistry('reg');
    const passwordBefore = (await get('v1', 'Secret', 'reg-admin')).data.password;
    const hashBefore = before.status.configHash;
    await apply(c, { ...regRef('reg'), spec: { logLevel: 'debug', resources: { requests: { cpu: '200m', memory: '256Mi' }, limits: { memory: '1Gi' } } } });
    const after = await waitObserved('reg', (r) => r.status.configHash !== hashBefore);
    expect(after.metadata.generation).toBe(before.metadata.generation + 1);
    expect(load((await get('v1', 'ConfigMap', 'reg-config')).data['config.yaml'])).toMatchObject({ logLevel: 'debug' });
    const dep = await get('apps/v1', 'Deployment', 'reg');
    expect(dep.spec.template.metadata.annotations['wharf.dev/config-hash']).toBe(after.status.configHash);
    expect(dep.spec.template.spec.containers[0].resources).toEqual({ requests: { cpu: '200m', memory: '256Mi' }, limits: { memory: '1Gi' } });
    expect((await get('v1', 'Secret', 'reg-admin')).data.password).toBe(passwordBefore);
  });

  it('adds and removes the Ingress with spec.ingress', async () => {
    await apply(c, { ...regRef('reg'), spec: { logLevel: 'debug', ingress: { enabled: true, host: 'registry.example.test', className: 'nginx', tlsSecretName: 'tls' } } });
    const reg = await waitObserved('reg', (r) => r.status.externalEndpoint);
    expect(reg.status.externalEndpoint).toBe('https://registry.example.test');
    const ing = await get('networking.k8s.io/v1', 'Ingress', 'reg');
    expect(ing.spec).toEqual({
      ingressClassName: 'nginx',
      tls: [{ hosts: ['registry.example.test'], secretName: 'tls' }],
      rules: [{ host: 'registry.example.test', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'reg', port: { name: 'http' } } } }] } }],
    });
    expect(load((await get('v1', 'ConfigMap', 'reg-config')).data['config.yaml'])).toMatchObject({
      auth: { service: 'registry.example.test', realm: 'https://registry.example.test/token' },
    });
    await apply(c, { ...regRef('reg'), spec: { logLevel: 'debug' } });
    await waitFor('Ingress removed', async () => ((await get('networking.k8s.io/v1', 'Ingress', 'reg')) ? undefined : true), 30_000);
    const after = await waitObserved('reg', (r) => !r.status.externalEndpoint);
    expect(after.status.externalEndpoint).toBeUndefined();
  });

  it('runs an HA Registry on external PostgreSQL and S3 with a PodDisruptionBudget', async () => {
    await apply(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'pg', namespace: ns }, stringData: { dsn: 'postgres://u:p@db:5432/wharf' } } as Any);
    await apply(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's3', namespace: ns }, stringData: { accessKeyID: 'a', secretAccessKey: 'b' } } as Any);
    await apply(c, {
      ...regRef('ha'),
      spec: {
        replicas: 3,
        database: { type: 'external', external: { secretRef: { name: 'pg' } } },
        storage: { type: 's3', s3: { endpoint: 'http://minio:9000', bucket: 'blobs', secretRef: { name: 's3' } } },
      },
    });
    const reg = await waitObserved('ha', (r) => r.status?.configHash);
    expect(reg.status.conditions.find((x: Any) => x.type === 'Stalled')).toBeUndefined();
    const dep = await get('apps/v1', 'Deployment', 'ha');
    expect(dep.spec.replicas).toBe(3);
    expect(dep.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    const env = dep.spec.template.spec.containers[0].env;
    expect(env).toContainEqual({ name: 'WHARF_DATABASE_URL', valueFrom: { secretKeyRef: { name: 'pg', key: 'dsn' } } });
    expect(env).toContainEqual({ name: 'WHARF_S3_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: 's3', key: 'accessKeyID' } } });
    expect(env).toContainEqual({ name: 'WHARF_S3_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: 's3', key: 'secretAccessKey' } } });
    expect(dep.spec.template.spec.volumes.find((v: Any) => v.name === 'data')).toEqual({ name: 'data', emptyDir: {} });
    expect(await get('v1', 'PersistentVolumeClaim', 'ha-data')).toBeUndefined();
    expect(load((await get('v1', 'ConfigMap', 'ha-config')).data['config.yaml'])).toMatchObject({
      storage: { driver: 's3', s3: { endpoint: 'http://minio:9000', bucket: 'blobs', region: 'us-east-1', forcePathStyle: true, redirect: false } },
    });
    const pdb = await get('policy/v1', 'PodDisruptionBudget', 'ha');
    expect(pdb.spec).toMatchObject({ maxUnavailable: 1, selector: { matchLabels: { 'app.kubernetes.io/instance': 'ha' } } });

    await apply(c, { ...regRef('ha'), spec: { ...((await getRegistry('ha')).spec), replicas: 1 } });
    await waitObserved('ha', (r) => r.spec.replicas === 1);
    await waitFor('PDB removed after scaling to 1', async () => ((await get('policy/v1', 'PodDisruptionBudget', 'ha')) ? undefined : true), 30_000);
  });

  // Each rotation below changes only the user's Secret or ConfigMap, never the Registry: the
  // operator runs with the default 10-minute resync, so only its watch of referenced objects can
  // roll the pods within the 30 s the waits allow.
  const templateHash = async (name: string): Promise<string> => (await get('apps/v1', 'Deployment', name)).spec.template.metadata.annotations['wharf.dev/config-hash'];
  async function expectRollAfter(what: string, change: () => Promise<unknown>): Promise<string> {
    const generation = (await getRegistry('ha')).metadata.generation;
    const before = await templateHash('ha');
    await change();
    const after = await waitFor(`pod template checksum to change after ${what}`, async () => {
      const h = await templateHash('ha');
      return h !== before ? h : undefined;
    }, 30_000);
    const reg = await waitObserved('ha', (r) => r.status.configHash === after);
    expect(reg.metadata.generation, 'the Registry itself did not change').toBe(generation);
    return after;
  }
  const secret = (name: string, data: Record<string, string>, labels?: Record<string, string>) =>
    apply(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns, ...(labels && { labels }) }, stringData: data } as Any);

  it('rolls the pods when only a referenced Secret changes: the DSN, then the S3 keys', async () => {
    await expectRollAfter('rotating the DSN Secret', () => secret('pg', { dsn: 'postgres://u:rotated@db:5432/wharf' }));
    await expectRollAfter('rotating the S3 Secret', () => secret('s3', { accessKeyID: 'a2', secretAccessKey: 'b2' }));
  });

  it('does not roll the pods when a referenced Secret changes outside the keys they read', async () => {
    const before = await templateHash('ha');
    const reconciles = await op.metric('wharf_operator_reconcile_total', { controller: 'registry', result: 'success' });
    // A label and a key nobody reads: the Secret's resourceVersion moves, the values read do not.
    await secret('pg', { dsn: 'postgres://u:rotated@db:5432/wharf', unrelated: 'x' }, { team: 'platform' });
    await waitFor('the Registry reconciled after the Secret change', async () =>
      (await op.metric('wharf_operator_reconcile_total', { controller: 'registry', result: 'success' })) > reconciles ? true : undefined, 30_000);
    expect(await templateHash('ha')).toBe(before);
  });

  it('rolls the pods when only the database CA ConfigMap changes, and mounts it for the registry', async () => {
    const ca = (pem: string) => apply(c, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'pg-ca', namespace: ns }, data: { 'ca.crt': pem } } as Any);
    await ca('-----BEGIN CERTIFICATE-----\none\n-----END CERTIFICATE-----\n');
    const spec = (await getRegistry('ha')).spec;
    await apply(c, { ...regRef('ha'), spec: { ...spec, database: { type: 'external', external: { secretRef: { name: 'pg' }, caConfigMapRef: { name: 'pg-ca' } } } } });
    await waitObserved('ha', (r) => r.spec.database.external.caConfigMapRef);
    const pod = (await get('apps/v1', 'Deployment', 'ha')).spec.template.spec;
    expect(pod.volumes).toContainEqual({ name: 'database-ca', configMap: { name: 'pg-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }], defaultMode: 420 } });
    expect(pod.containers[0].volumeMounts).toContainEqual({ name: 'database-ca', mountPath: '/etc/wharf/database-ca', readOnly: true });
    expect(load((await get('v1', 'ConfigMap', 'ha-config')).data['config.yaml'])).toMatchObject({ database: { caFile: '/etc/wharf/database-ca/ca.crt' } });
    await expectRollAfter('replacing the CA in its ConfigMap', () => ca('-----BEGIN CERTIFICATE-----\ntwo\n-----END CERTIFICATE-----\n'));
  });

  it('is Stalled within seconds when a referenced Secret disappears, and recovers when it is back', async () => {
    await raw(c, 'DELETE', `/api/v1/namespaces/${ns}/secrets/s3`);
    const stalled = await waitFor('Registry ha Stalled', async () => {
      const r = await getRegistry('ha');
      return r.status.conditions.find((x: Any) => x.type === 'Stalled' && x.status === 'True') ? r : undefined;
    }, 30_000);
    expect(stalled.status.conditions.find((x: Any) => x.type === 'Stalled')).toMatchObject({ reason: 'SecretNotFound', message: 'Secret s3 (S3 credentials) not found' });
    await secret('s3', { accessKeyID: 'a2', secretAccessKey: 'b2' });
    await waitObserved('ha', (r) => !r.status.conditions.some((x: Any) => x.type === 'Stalled'));
  });

  it('corrects drift: a field changed by someone else is set back, a deleted object is recreated', async () => {
    await raw(c, 'PATCH', `/apis/apps/v1/namespaces/${ns}/deployments/reg?fieldManager=someone-else`, { spec: { replicas: 4 } }, 'application/merge-patch+json');
    await waitFor('replicas set back to 1', async () => ((await get('apps/v1', 'Deployment', 'reg')).spec.replicas === 1 ? true : undefined), 30_000);
    const svc = await get('v1', 'Service', 'reg');
    await raw(c, 'DELETE', `/api/v1/namespaces/${ns}/services/reg`);
    const again = await waitFor('Service recreated', async () => {
      const s2 = await get('v1', 'Service', 'reg');
      return s2 && s2.metadata.uid !== svc.metadata.uid ? s2 : undefined;
    }, 30_000);
    expect(again.spec.ports).toEqual(svc.spec.ports);
  });

  it('deletes: stops the Deployment, releases the finalizer, and garbage-collects owned objects', async () => {
    const started = Date.now();
    await raw(c, 'DELETE', `/apis/wharf.dev/v1alpha1/namespaces/${ns}/registries/reg`);
    await waitFor('Registry gone', async () => ((await getRegistry('reg')) ? undefined : true), 60_000);
    const owned: [string, string, string][] = [
      ['apps/v1', 'Deployment', 'reg'],
      ['v1', 'Service', 'reg'],
      ['v1', 'ConfigMap', 'reg-config'],
      ['v1', 'Secret', 'reg-admin'],
      ['v1', 'Secret', 'reg-token-key'],
    ];
    await waitFor('owned objects garbage-collected', async () => {
      for (const [av, k, n] of owned) if (await get(av, k, n)) return undefined;
      return true;
    }, 60_000);
    console.log(`[operator] Registry deletion and garbage collection took ${Date.now() - started} ms`);
    const events = await raw<Any>(c, 'GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events?fieldSelector=regarding.name=reg,regarding.kind=Registry`);
    expect(events.items.map((e: Any) => e.reason)).toContain('Stopping');
    expect(op.running).toBe(true);
  });

  it('serves /healthz, /readyz and /metrics', async () => {
    expect((await fetch(`http://127.0.0.1:${op.port}/healthz`)).status).toBe(200);
    expect(await op.readyz()).toBe(200);
    const text = await op.metricsText();
    for (const name of [
      'wharf_operator_kube_requests_total',
      'wharf_operator_reconcile_total',
      'wharf_operator_reconcile_duration_seconds_bucket',
      'wharf_operator_workqueue_depth',
      'wharf_operator_leader',
      'wharf_operator_applies_total',
      'wharf_operator_process_cpu_seconds_total',
    ]) expect(text, name).toContain(name);
    expect(await op.metric('wharf_operator_leader')).toBe(1);
    expect(await op.metric('wharf_operator_reconcile_total', { controller: 'registry', result: 'success' })).toBeGreaterThan(0);
  });
});
