// The pure Registry render: deterministic (byte-identical output for the same input), and the
// desired objects follow the spec.
import { describe, expect, it } from 'vitest';
import { configChecksum, digestReferencedData, imageVersion, referencesObject, referencesOf, render, withDefaults, type Registry, type RenderInputs } from '../../src/resources/registry/index.js';
import { renderConfigFile } from '../../src/resources/registry/config.js';
import { load } from 'js-yaml';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

const inputs: RenderInputs = { defaultImage: 'example.test/wharf-registry:1.2.3', referencedDataDigest: 'digest-0' };

function registry(spec: Record<string, unknown> = {}, name = 'reg'): Registry {
  return {
    apiVersion: 'wharf.dev/v1alpha1',
    kind: 'Registry',
    metadata: { name, namespace: 'team', uid: '0b7c0c52-0000-4000-8000-000000000001', generation: 1 },
    spec: withDefaults(spec as Any),
  };
}

const byKind = (objs: Any[]) => Object.fromEntries(objs.map((o) => [o.kind, o]));

describe('render', () => {
  it('is deterministic: same input, byte-identical output, whatever the key order of the input', () => {
    const spec = { replicas: 1, logLevel: 'debug', ingress: { enabled: true, host: 'r.example.test', className: 'nginx' }, nodeSelector: { b: '2', a: '1' } };
    const reordered = { nodeSelector: { a: '1', b: '2' }, ingress: { className: 'nginx', host: 'r.example.test', enabled: true }, logLevel: 'debug', replicas: 1 };
    const a = JSON.stringify(render(registry(spec), inputs));
    const b = JSON.stringify(render(registry(spec), inputs));
    expect(a).toBe(b);
    expect(render(registry(reordered), inputs).configHash).toBe(render(registry(spec), inputs).configHash);
    expect(JSON.stringify(render(structuredClone(registry(spec)), structuredClone(inputs)))).toBe(a);
  });

  it('renders the minimal Registry: ConfigMap, PVC, Service, Deployment; no PDB, no Ingress', () => {
    const r = render(registry(), inputs);
    expect(r.objects.map((o) => o.kind)).toEqual(['ConfigMap', 'PersistentVolumeClaim', 'Service', 'Deployment']);
    expect(r.unwanted).toEqual([{ kind: 'PodDisruptionBudget', name: 'reg' }, { kind: 'Ingress', name: 'reg' }]);
    expect(r.version).toBe('1.2.3');
    expect(r.endpoint).toBe('http://reg.team.svc:5000');
    const { Deployment: dep } = byKind(r.objects);
    expect(dep.spec.strategy).toEqual({ type: 'Recreate' });
    expect(dep.spec.template.spec.containers[0].image).toBe('example.test/wharf-registry:1.2.3');
    expect(dep.metadata.ownerReferences[0]).toMatchObject({ kind: 'Registry', name: 'reg', controller: true });
  });

  it('renders an HA Registry: secret refs as env, no PVC, rolling updates and a PDB', () => {
    const r = render(
      registry({
        replicas: 3,
        image: 'example.test/wharf-registry@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
        database: { type: 'external', external: { secretRef: { name: 'pg' } } },
        storage: { type: 's3', s3: { endpoint: 'https://s3.example.test', bucket: 'b', secretRef: { name: 's3' } } },
      }),
      { ...inputs, referencedDataDigest: 'digest-1' },
    );
    expect(r.objects.map((o) => o.kind)).toEqual(['ConfigMap', 'Service', 'Deployment', 'PodDisruptionBudget']);
    expect(r.version).toBe('0123456789ab');
    const { Deployment: dep, PodDisruptionBudget: pdb, ConfigMap: cm } = byKind(r.objects);
    expect(dep.spec.strategy.type).toBe('RollingUpdate');
    expect(dep.spec.template.spec.containers[0].env.map((e: Any) => e.name)).toEqual([
      'WHARF_CONFIG_FILE',
      'WHARF_ADMIN_PASSWORD_FILE',
      'WHARF_DATABASE_URL',
      'WHARF_S3_ACCESS_KEY_ID',
      'WHARF_S3_SECRET_ACCESS_KEY',
    ]);
    expect(pdb.spec.maxUnavailable).toBe(1);
    const config = load(cm.data['config.yaml']) as Any;
    expect(config.storage).toEqual({ driver: 's3', s3: { endpoint: 'https://s3.example.test', bucket: 'b', region: 'us-east-1', forcePathStyle: true, redirect: false } });
    expect(config.database).toBeUndefined(); // the DSN is a secret: env only
  });

  it('leaves S3 endpoint and credentials to AWS defaults when unset (e.g. IAM roles for service accounts)', () => {
    const r = render(registry({ database: { type: 'external', external: { secretRef: { name: 'pg' } } }, storage: { type: 's3', s3: { bucket: 'b', region: 'eu-west-1', redirect: true } } }), inputs);
    const { Deployment: dep, ConfigMap: cm } = byKind(r.objects);
    expect(dep.spec.template.spec.containers[0].env.map((e: Any) => e.name)).toEqual(['WHARF_CONFIG_FILE', 'WHARF_ADMIN_PASSWORD_FILE', 'WHARF_DATABASE_URL']);
    expect((load(cm.data['config.yaml']) as Any).storage).toEqual({ driver: 's3', s3: { bucket: 'b', region: 'eu-west-1', forcePathStyle: true, redirect: true } });
  });

  it('changes the config checksum with the configuration and referenced data, not with replicas, resources or scheduling', () => {
    const base = render(registry(), inputs).configHash;
    expect(render(registry({ logLevel: 'debug' }), inputs).configHash).not.toBe(base);
    expect(render(registry({ replicas: 0, resources: { limits: { memory: '1Gi' } }, nodeSelector: { a: 'b' }, tolerations: [{ operator: 'Exists' }] }), inputs).configHash).toBe(base);
    const ext = registry({ database: { type: 'external', external: { secretRef: { name: 'pg' } } } });
    expect(render(ext, { ...inputs, referencedDataDigest: 'a' }).configHash).not.toBe(render(ext, { ...inputs, referencedDataDigest: 'b' }).configHash);
    expect(configChecksum('a', { ...inputs, referencedDataDigest: 'x' })).toBe(configChecksum('a', { ...inputs, referencedDataDigest: 'x' }));
  });

  it('digests the referenced data keyed with the token key: any value or key changes it, order does not, and the key is needed to test a guess', () => {
    const data = { 'Secret/pg/dsn': 'cG9zdGdyZXM6Ly91OnBAZGIvdw==', 'Secret/s3/accessKeyID': 'YQ==' };
    const d = digestReferencedData('token-key', data);
    expect(digestReferencedData('token-key', { 'Secret/s3/accessKeyID': 'YQ==', 'Secret/pg/dsn': 'cG9zdGdyZXM6Ly91OnBAZGIvdw==' })).toBe(d);
    expect(digestReferencedData('token-key', { ...data, 'Secret/pg/dsn': 'cm90YXRlZA==' })).not.toBe(d);
    expect(digestReferencedData('token-key', { ...data, 'ConfigMap/ca/ca.crt': 'LS0t' })).not.toBe(d);
    expect(digestReferencedData('another-key', data)).not.toBe(d);
    expect(d).toMatch(/^[0-9a-f]{64}$/);
  });

  it('lists what a Registry references: DSN, database CA (Secret or ConfigMap), S3 keys, or an external registry\'s credentials', () => {
    const ha = withDefaults({
      database: { type: 'external', external: { secretRef: { name: 'pg' }, caConfigMapRef: { name: 'pg-ca' } } },
      storage: { type: 's3', s3: { bucket: 'b', secretRef: { name: 's3', accessKeyIDKey: 'id' } } },
      imagePullSecrets: [{ name: 'pull' }],
      ingress: { enabled: true, host: 'r.example.test', tlsSecretName: 'tls' },
    } as Any);
    expect(referencesOf(ha)).toEqual([
      { kind: 'Secret', name: 'pg', keys: ['dsn'], what: 'database DSN' },
      { kind: 'ConfigMap', name: 'pg-ca', keys: ['ca.crt'], what: 'database CA' },
      { kind: 'Secret', name: 's3', keys: ['id', 'secretAccessKey'], what: 'S3 credentials' },
    ]);
    expect(referencesObject(ha, 'ConfigMap', 'pg-ca')).toBe(true);
    expect(referencesObject(ha, 'Secret', 'pg-ca')).toBe(false);
    expect(referencesObject(ha, 'Secret', 'tls')).toBe(false); // the ingress controller's, not the pods'
    expect(referencesOf(withDefaults({ database: { type: 'external', external: { secretRef: { name: 'pg' }, caSecretRef: { name: 'cnpg-ca' } } } } as Any))[1]).toEqual({
      kind: 'Secret',
      name: 'cnpg-ca',
      keys: ['ca.crt'],
      what: 'database CA',
    });
    expect(referencesOf(withDefaults({ external: { url: 'https://r.example.test', credentialsSecretRef: { name: 'admin' } } } as Any))).toEqual([
      { kind: 'Secret', name: 'admin', keys: ['username', 'password'], what: 'registry credentials' },
    ]);
    expect(referencesOf(withDefaults({} as Any))).toEqual([]);
  });

  it('mounts the database CA from a Secret or a ConfigMap and points the config file at it', () => {
    for (const [ref, source] of [
      [{ caSecretRef: { name: 'cnpg-ca' } }, { secret: { secretName: 'cnpg-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }] } }],
      [{ caConfigMapRef: { name: 'bundle', key: 'root.pem' } }, { configMap: { name: 'bundle', items: [{ key: 'root.pem', path: 'ca.crt' }] } }],
    ] as const) {
      const r = render(registry({ database: { type: 'external', external: { secretRef: { name: 'pg' }, ...ref } } }), inputs);
      const { Deployment: dep, ConfigMap: cm } = byKind(r.objects);
      const pod = dep.spec.template.spec;
      expect(pod.volumes).toContainEqual({ name: 'database-ca', ...source });
      expect(pod.containers[0].volumeMounts).toContainEqual({ name: 'database-ca', mountPath: '/etc/wharf/database-ca', readOnly: true });
      expect((load(cm.data['config.yaml']) as Any).database).toEqual({ caFile: '/etc/wharf/database-ca/ca.crt' });
    }
    const plain = byKind(render(registry({ database: { type: 'external', external: { secretRef: { name: 'pg' } } } }), inputs).objects);
    expect(plain.Deployment.spec.template.spec.volumes.map((v: Any) => v.name)).not.toContain('database-ca');
    expect((load(plain.ConfigMap.data['config.yaml']) as Any).database).toBeUndefined();
  });

  it('renders the service account, pod annotations, node selector, tolerations and affinity into the pod template', () => {
    const affinity = {
      nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['amd64'] }] }] } },
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { 'app.kubernetes.io/instance': 'reg' } } } },
        ],
      },
    };
    const tolerations = [{ key: 'dedicated', operator: 'Equal', value: 'registry', effect: 'NoSchedule' }];
    const r = render(
      registry({
        serviceAccountName: 'wharf-registry-s3',
        podAnnotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/wharf', 'wharf.dev/config-hash': 'mine' },
        nodeSelector: { 'node-role.example.test/registry': 'true' },
        tolerations,
        affinity,
      }),
      inputs,
    );
    const { Deployment: dep } = byKind(r.objects);
    const tpl = dep.spec.template;
    expect(tpl.metadata.annotations).toEqual({ 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/wharf', 'wharf.dev/config-hash': r.configHash });
    expect(tpl.spec).toMatchObject({ serviceAccountName: 'wharf-registry-s3', nodeSelector: { 'node-role.example.test/registry': 'true' }, tolerations, affinity });
    expect(tpl.spec.automountServiceAccountToken).toBe(false);
    const plain = byKind(render(registry(), inputs).objects).Deployment.spec.template;
    for (const field of ['serviceAccountName', 'nodeSelector', 'tolerations', 'affinity']) expect(plain.spec[field], field).toBeUndefined();
    expect(Object.keys(plain.metadata.annotations)).toEqual(['wharf.dev/config-hash']);
  });

  it('names no token realm without an ingress: the registry names the host each client reached it at, never the cluster DNS name', () => {
    const config = load(renderConfigFile(registry())) as Any;
    expect(config.auth).toEqual({ service: 'reg.team.svc:5000', tokenKeyFile: '/etc/wharf/token/key.pem' });
    expect(renderConfigFile(registry({ service: { type: 'NodePort', port: 5000 } }))).not.toContain('realm');
  });

  it('keeps the data volume by default (no owner, so garbage collection leaves it), owns it with reclaimPolicy Delete', () => {
    const pvcOf = (spec: Record<string, unknown>) => byKind(render(registry(spec), inputs).objects).PersistentVolumeClaim;
    const retained = pvcOf({});
    expect(retained.metadata.name).toBe('reg-data');
    expect(retained.metadata.ownerReferences).toBeUndefined();
    expect(pvcOf({ persistence: { reclaimPolicy: 'Retain' } })).toEqual(retained);
    const owned = pvcOf({ persistence: { reclaimPolicy: 'Delete' } });
    expect(owned.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Registry', name: 'reg', uid: '0b7c0c52-0000-4000-8000-000000000001', controller: true })]);
    expect({ ...owned, metadata: { ...owned.metadata, ownerReferences: undefined } }).toEqual({ ...retained, metadata: { ...retained.metadata, ownerReferences: undefined } });
  });

  it('derives the token service and realm from the ingress, unless set', () => {
    const withIngress = load(renderConfigFile(registry({ ingress: { enabled: true, host: 'r.example.test', tlsSecretName: 'tls' } }))) as Any;
    expect(withIngress.auth).toMatchObject({ service: 'r.example.test', realm: 'https://r.example.test/token' });
    const explicit = load(renderConfigFile(registry({ auth: { service: 'svc', realm: 'https://login.example.test/auth' } }))) as Any;
    expect(explicit.auth).toMatchObject({ service: 'svc', realm: 'https://login.example.test/auth' });
  });

  it('reads image versions', () => {
    expect(imageVersion('r.example.test:5000/wharf/registry:v1.0.0')).toBe('v1.0.0');
    expect(imageVersion('r.example.test:5000/wharf/registry')).toBe('latest');
    expect(imageVersion('registry:2@sha256:abc')).toBe('2');
  });

  it('applies the same defaults as the CRD schema', () => {
    expect(withDefaults({} as Any)).toEqual({
      replicas: 1,
      logLevel: 'info',
      database: { type: 'embedded' },
      storage: { type: 'filesystem' },
      persistence: { size: '10Gi', reclaimPolicy: 'Retain' },
      service: { type: 'ClusterIP', port: 5000 },
      ingress: { enabled: false },
      auth: {},
    });
  });
});
