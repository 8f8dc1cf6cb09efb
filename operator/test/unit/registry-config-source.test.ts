// The rendered ConfigMap is the only source of the settings it holds. The registry reads
// defaults < config file < environment, so any WHARF_* variable that the image (its Dockerfile's
// ENV) or the Deployment sets for a key of the file silently overrides the file: that is how the
// image's WHARF_ADDR and WHARF_DATA_DIR used to shadow the ConfigMap's addr and dataDir. Here the
// pod's environment is assembled as Kubernetes does (image ENV, then the container's env), the
// CONFIG.md table says which variables override which keys, and the registry's own loader reads
// the rendered file in that environment.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../registry/src/config.js';
import { render, withDefaults, type Registry } from '../../src/resources/registry/index.js';
import { imageEnv } from '../support/dockerfile.js';
import { ROOT } from '../support/kube.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

const work = mkdtempSync(join(tmpdir(), 'wharf-config-source-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const registry = (spec: Record<string, unknown>): Registry => ({
  apiVersion: 'wharf.dev/v1alpha1',
  kind: 'Registry',
  metadata: { name: 'reg', namespace: 'team', uid: '0b7c0c52-0000-4000-8000-000000000001', generation: 1 },
  spec: withDefaults(spec as Any),
});

const SPECS: Record<string, Record<string, unknown>> = {
  minimal: {},
  'HA on PostgreSQL with a CA and S3': {
    replicas: 2,
    logLevel: 'debug',
    database: { type: 'external', external: { secretRef: { name: 'pg' }, caSecretRef: { name: 'pg-ca' } } },
    storage: { type: 's3', s3: { endpoint: 'https://s3.example.test', bucket: 'blobs', secretRef: { name: 's3' } } },
    ingress: { enabled: true, host: 'r.example.test' },
  },
};

function rendered(spec: Record<string, unknown>) {
  const objects = render(registry(spec), { defaultImage: 'example.test/wharf-registry:1.0.0', referencedDataDigest: '' }).objects as Any[];
  const deployment = objects.find((o) => o.kind === 'Deployment');
  const container = deployment.spec.template.spec.containers[0];
  const configMap = objects.find((o) => o.kind === 'ConfigMap');
  return { deployment, container, file: configMap.data['config.yaml'] as string };
}

/** The pod's environment: the image's ENV, then the container's env over it (a secretKeyRef stands in as a placeholder). */
function podEnv(container: Any): Record<string, string> {
  const env = imageEnv(readFileSync(join(ROOT, 'build/registry.Dockerfile'), 'utf8'));
  for (const e of container.env as { name: string; value?: string }[]) env[e.name] = e.value ?? `<from a Secret: ${e.name}>`;
  return env;
}

/** CONFIG.md's table: each YAML key → the environment variables that override it. */
function overridingVariables(): Map<string, string[]> {
  const table = new Map<string, string[]>();
  for (const line of readFileSync(join(ROOT, 'registry/CONFIG.md'), 'utf8').split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4 || !cells[2]!.includes('`WHARF_')) continue;
    const ticked = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    for (const key of ticked(cells[1]!)) table.set(key, ticked(cells[2]!));
  }
  return table;
}

function leafKeys(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [prefix];
  return Object.entries(value).flatMap(([k, v]) => leafKeys(v, prefix ? `${prefix}.${k}` : k));
}

/** The registry's configuration as the pod would load it, the config file being `file`. */
function loadInPod(env: Record<string, string>, file: string) {
  const path = join(work, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, file);
  // The placeholders are not DSNs or keys; only the settings under test matter here.
  const { WHARF_DATABASE_URL: _u, WHARF_S3_ACCESS_KEY_ID: _a, WHARF_S3_SECRET_ACCESS_KEY: _s, WHARF_ADMIN_PASSWORD_FILE: _p, ...rest } = env;
  return loadConfig([], { ...rest, WHARF_CONFIG_FILE: path });
}

describe('the rendered config file is the only source of its settings', () => {
  it.each(Object.entries(SPECS))('%s: no variable of the image or the Deployment overrides a key of the file', (_name, spec) => {
    const { container, file } = rendered(spec);
    const env = podEnv(container);
    const table = overridingVariables();
    const keys = leafKeys(load(file));
    expect(keys).toContain('addr');
    expect(keys).toContain('dataDir');
    for (const key of keys) {
      expect(table.has(key), `${key} is documented in registry/CONFIG.md`).toBe(true);
      const shadowing = table.get(key)!.filter((name) => env[name] !== undefined);
      expect(shadowing, `variables overriding ${key} of the ConfigMap`).toEqual([]);
    }
  });

  it('the pod listens on the container port and keeps its data on the data volume, as the file says', () => {
    const { container, deployment, file } = rendered({});
    const config = loadInPod(podEnv(container), file);
    const dataMount = container.volumeMounts.find((m: Any) => m.name === 'data').mountPath;
    expect(`${config.host}:${config.port}`).toBe(`0.0.0.0:${container.ports[0].containerPort}`);
    expect(config.dataDir).toBe(dataMount);
    expect(config.storage).toEqual({ driver: 'filesystem', dir: `${dataMount}/blobs` });
    expect(deployment.spec.template.spec.volumes.find((v: Any) => v.name === 'data').persistentVolumeClaim).toEqual({ claimName: 'reg-data' });
  });

  it('a different addr or dataDir in the file is what the pod runs with', () => {
    const { container, file } = rendered({});
    const changed = dump({ ...(load(file) as object), addr: '0.0.0.0:5999', dataDir: '/srv/elsewhere' });
    const config = loadInPod(podEnv(container), changed);
    expect({ host: config.host, port: config.port, dataDir: config.dataDir }).toEqual({ host: '0.0.0.0', port: 5999, dataDir: '/srv/elsewhere' });
  });
});
