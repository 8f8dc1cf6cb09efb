// The generated CRDs are current, install into the real apiserver, accept every example, and
// reject invalid objects with the CEL rule's message.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { renderCrdFiles } from '../src/api/generate.js';
import { HttpError, ROOT, apply, createNamespace, installCrds, raw, readYamlDocs, type Clients } from './support/kube.js';
import { adminClients } from './support/context.js';

let c: Clients;
let ns: string;

beforeAll(async () => {
  c = adminClients();
  await installCrds(c);
  ns = await createNamespace(c, 'crds');
});

describe('generated CRD YAML', () => {
  it('matches what operator/src/api generates (run `make crds` after changing a schema)', () => {
    const files = renderCrdFiles();
    const committed = readdirSync(join(ROOT, 'crds')).filter((f) => f.endsWith('.yaml')).sort();
    expect(committed).toEqual([...files.keys()].sort());
    for (const [name, content] of files) expect(readFileSync(join(ROOT, 'crds', name), 'utf8'), name).toBe(content);
  });
});

describe('CRDs in the apiserver', () => {
  it('serve all four kinds with short names, categories and the status subresource', async () => {
    const list = await c.custom.listNamespacedCustomObject({ group: 'wharf.dev', version: 'v1alpha1', namespace: ns, plural: 'registries' });
    expect((list as { items: unknown[] }).items).toEqual([]);
    const discovery = await raw(c, 'GET', '/apis/wharf.dev/v1alpha1');
    const resources = (discovery as { resources: { name: string; kind: string; shortNames?: string[]; categories?: string[] }[] }).resources;
    const byName = Object.fromEntries(resources.map((r) => [r.name, r]));
    expect(Object.keys(byName).sort()).toEqual(
      ['projects', 'projects/status', 'registries', 'registries/status', 'replicationrules', 'replicationrules/status', 'robotaccounts', 'robotaccounts/status'].sort(),
    );
    expect(byName.registries!.shortNames).toEqual(['wreg']);
    expect(byName.robotaccounts!.shortNames).toEqual(['robot']);
    for (const r of ['registries', 'projects', 'robotaccounts', 'replicationrules']) expect(byName[r]!.categories).toEqual(['wharf']);
  });

  it('apply every example, and defaults fill in the minimal Registry', async () => {
    const files = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.yaml')).sort();
    expect(files.length).toBeGreaterThanOrEqual(5);
    const kinds = new Set<string>();
    for (const file of files) {
      for (const doc of readYamlDocs(join(ROOT, 'examples', file))) {
        doc.metadata = { ...doc.metadata, namespace: ns };
        const applied = await apply(c, doc);
        expect(applied.metadata?.uid, `${file} ${doc.kind}/${doc.metadata.name}`).toBeTruthy();
        kinds.add(doc.kind!);
      }
    }
    expect([...kinds].filter((k) => k !== 'Secret').sort()).toEqual(['Project', 'Registry', 'ReplicationRule', 'RobotAccount']);
    const minimal = (await c.custom.getNamespacedCustomObject({ group: 'wharf.dev', version: 'v1alpha1', namespace: ns, plural: 'registries', name: 'registry' })) as {
      spec: Record<string, unknown>;
    };
    expect(minimal.spec).toMatchObject({
      replicas: 1,
      logLevel: 'info',
      database: { type: 'embedded' },
      storage: { type: 'filesystem' },
      persistence: { size: '10Gi' },
      service: { type: 'ClusterIP', port: 5000 },
      ingress: { enabled: false },
    });
  });
});

const registry = (name: string, spec: unknown): KubernetesObject & { spec: unknown } => ({ apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name }, spec });
const external = { type: 'external', external: { secretRef: { name: 'pg' } } };
const s3 = { type: 's3', s3: { endpoint: 'http://minio:9000', bucket: 'blobs', secretRef: { name: 's3' } } };

const INVALID: { name: string; obj: KubernetesObject; message: string }[] = [
  {
    name: 'replicas 3 with the embedded database',
    obj: registry('r1', { replicas: 3, storage: s3 }),
    message: 'replicas > 1 requires database.type external and storage.type s3',
  },
  {
    name: 'replicas 2 with filesystem storage',
    obj: registry('r2', { replicas: 2, database: external }),
    message: 'replicas > 1 requires database.type external and storage.type s3',
  },
  { name: 'external database without its secretRef', obj: registry('r3', { database: { type: 'external' } }), message: 'database.external must be set when, and only when, database.type is external' },
  { name: 's3 settings with filesystem storage', obj: registry('r4', { storage: { type: 'filesystem', s3: s3.s3 } }), message: 'storage.s3 must be set when, and only when, storage.type is s3' },
  { name: 'an ingress without a host', obj: registry('r5', { ingress: { enabled: true } }), message: 'ingress.host is required when ingress.enabled is true' },
  { name: 'a Registry name that cannot name a Service', obj: registry('9lives', {}), message: 'metadata.name must be a DNS-1035 label' },
  { name: 'an unknown storage type', obj: registry('r6', { storage: { type: 'nfs' } }), message: 'Unsupported value: "nfs"' },
  ...(['serviceAccountName', 'podAnnotations', 'tolerations', 'affinity'] as const).map((field, i) => ({
    name: `${field} on an external Registry`,
    obj: registry(`ext${i}`, {
      external: { url: 'https://r.example.test', credentialsSecretRef: { name: 'admin' } },
      [field]: { serviceAccountName: 'irsa', podAnnotations: { a: 'b' }, tolerations: [{ operator: 'Exists' }], affinity: { nodeAffinity: {} } }[field],
    }),
    message: 'an external Registry deploys nothing',
  })),
  {
    name: 'a database CA from both a Secret and a ConfigMap',
    obj: registry('ca2', { database: { type: 'external', external: { secretRef: { name: 'pg' }, caSecretRef: { name: 'a' }, caConfigMapRef: { name: 'b' } } } }),
    message: 'set database.external.caSecretRef or caConfigMapRef, not both',
  },
  { name: 'a toleration with an unknown effect', obj: registry('tol', { tolerations: [{ key: 'k', operator: 'Exists', effect: 'Sometimes' }] }), message: 'Unsupported value: "Sometimes"' },
  {
    name: 'a pod affinity term without a topology key',
    obj: registry('aff', { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { a: 'b' } } }] } } }),
    message: 'topologyKey: Required value',
  },
  {
    name: 'a project robot with permissions on another project',
    obj: {
      apiVersion: 'wharf.dev/v1alpha1',
      kind: 'RobotAccount',
      metadata: { name: 'ci' },
      spec: { registryRef: { name: 'registry' }, project: 'team-a', permissions: [{ project: 'team-b', access: [{ resource: 'repository', action: 'pull' }] }] },
    } as KubernetesObject,
    message: 'a project-level robot may only hold permissions on its own project',
  },
  {
    name: 'a robot that expires in 0 days',
    obj: {
      apiVersion: 'wharf.dev/v1alpha1',
      kind: 'RobotAccount',
      metadata: { name: 'ci2' },
      spec: { registryRef: { name: 'registry' }, level: 'system', expiresInDays: 0, permissions: [{ project: '*', access: [{ resource: 'repository', action: 'pull' }] }] },
    } as KubernetesObject,
    message: 'expiresInDays must be -1 (never) or a positive number of days',
  },
  {
    name: 'push on a tag',
    obj: {
      apiVersion: 'wharf.dev/v1alpha1',
      kind: 'RobotAccount',
      metadata: { name: 'ci3' },
      spec: { registryRef: { name: 'registry' }, level: 'system', permissions: [{ project: '*', access: [{ resource: 'tag', action: 'push' }] }] },
    } as KubernetesObject,
    message: 'pull and push apply only to the repository resource',
  },
  {
    name: 'an event-based pull replication',
    obj: {
      apiVersion: 'wharf.dev/v1alpha1',
      kind: 'ReplicationRule',
      metadata: { name: 'pull-events' },
      spec: { registryRef: { name: 'registry' }, mode: 'pull', remote: { url: 'https://ghcr.io' }, trigger: { type: 'eventBased' } },
    } as KubernetesObject,
    message: 'eventBased triggers apply only to push replication',
  },
  {
    name: 'a scheduled replication without a schedule',
    obj: {
      apiVersion: 'wharf.dev/v1alpha1',
      kind: 'ReplicationRule',
      metadata: { name: 'nightly' },
      spec: { registryRef: { name: 'registry' }, mode: 'pull', remote: { url: 'https://ghcr.io' }, trigger: { type: 'scheduled' } },
    } as KubernetesObject,
    message: 'trigger.schedule must be set when, and only when, trigger.type is scheduled',
  },
  {
    name: 'two resource filters',
    obj: {
      apiVersion: 'wharf.dev/v1alpha1',
      kind: 'ReplicationRule',
      metadata: { name: 'two-resources' },
      spec: { registryRef: { name: 'registry' }, mode: 'push', remote: { url: 'https://dr.example.com' }, filters: [{ type: 'resource', value: 'image' }, { type: 'resource', value: 'artifact' }] },
    } as KubernetesObject,
    message: 'at most one resource filter',
  },
  {
    name: 'an excluded resource type',
    obj: {
      apiVersion: 'wharf.dev/v1alpha1',
      kind: 'ReplicationRule',
      metadata: { name: 'no-images' },
      spec: { registryRef: { name: 'registry' }, mode: 'push', remote: { url: 'https://dr.example.com' }, filters: [{ type: 'resource', value: 'image', decoration: 'excludes' }] },
    } as KubernetesObject,
    message: 'excludes applies only to name, tag and label filters',
  },
  {
    name: 'a project member with an unknown role',
    obj: {
      apiVersion: 'wharf.dev/v1alpha1',
      kind: 'Project',
      metadata: { name: 'p1' },
      spec: { registryRef: { name: 'registry' }, members: [{ name: 'eve', role: 'owner' }] },
    } as KubernetesObject,
    message: 'Unsupported value: "owner"',
  },
];

describe('validation', () => {
  it.each(INVALID)('rejects $name with the rule message', async ({ obj, message }) => {
    const err = await apply(c, { ...obj, metadata: { ...obj.metadata, namespace: ns } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, 'the apiserver accepted an invalid object').toBeInstanceOf(HttpError);
    const e = err as HttpError;
    expect(e.code).toBe(422);
    expect(statusMessage(e)).toContain(message);
  });

  it('accepts the pod fields and a database CA, and keeps them as written', async () => {
    const spec = {
      serviceAccountName: 'wharf-registry',
      podAnnotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/wharf' },
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'registry', effect: 'NoSchedule' }, { operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 30 }],
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['amd64', 'arm64'] }] }] },
          preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 10, preference: { matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['n1'] }] } }],
        },
        podAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 5, podAffinityTerm: { topologyKey: 'topology.kubernetes.io/zone', namespaces: ['db'], labelSelector: { matchLabels: { app: 'postgres' } } } }] },
        podAntiAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: [
            { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchExpressions: [{ key: 'app.kubernetes.io/instance', operator: 'In', values: ['pods'] }] }, matchLabelKeys: ['pod-template-hash'] },
          ],
        },
      },
      database: { type: 'external', external: { secretRef: { name: 'pg', key: 'dsn' }, caSecretRef: { name: 'cnpg-ca', key: 'ca.crt' } } },
    };
    const applied = (await apply(c, { ...registry('pods', spec), metadata: { name: 'pods', namespace: ns } })) as unknown as { spec: Record<string, unknown> };
    expect(applied.spec).toMatchObject(spec);
  });

  it('rejects changing storage.type and registryRef after creation', async () => {
    await apply(c, { ...registry('immutable', {}), metadata: { name: 'immutable', namespace: ns } });
    const err = (await apply(c, { ...registry('immutable', { storage: s3 }), metadata: { name: 'immutable', namespace: ns } }).catch((e: unknown) => e)) as HttpError;
    expect(err.code).toBe(422);
    expect(statusMessage(err)).toContain('storage.type is immutable');

    const project = { apiVersion: 'wharf.dev/v1alpha1', kind: 'Project', metadata: { name: 'moving', namespace: ns }, spec: { registryRef: { name: 'a' } } };
    await apply(c, project);
    const err2 = (await apply(c, { ...project, spec: { registryRef: { name: 'b' } } }).catch((e: unknown) => e)) as HttpError;
    expect(err2.code).toBe(422);
    expect(statusMessage(err2)).toContain('registryRef is immutable');
  });
});


function statusMessage(e: HttpError): string {
  return (JSON.parse(e.body) as { message: string }).message;
}
