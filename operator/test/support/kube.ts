// Test-side access to the control plane, through @kubernetes/client-node's own API clients (not
// the operator's REST client), so that assertions do not share code with what they check.
import { readFileSync, readdirSync } from 'node:fs';
import { request, type RequestOptions } from 'node:https';
import { join, resolve } from 'node:path';
import {
  ApiextensionsV1Api,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { loadAll } from 'js-yaml';
import { waitFor } from './processes.js';

export const ROOT = resolve(import.meta.dirname, '../../..');

export function adminConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export function clientsFor(kubeconfigPath: string) {
  return clients(adminConfig(kubeconfigPath));
}

export function clients(kc: KubeConfig) {
  return {
    kc,
    objects: KubernetesObjectApi.makeApiClient(kc),
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    ext: kc.makeApiClient(ApiextensionsV1Api),
    coordination: kc.makeApiClient(CoordinationV1Api),
  };
}

export type Clients = ReturnType<typeof clients>;

export function readYamlDocs(path: string): KubernetesObject[] {
  return (loadAll(readFileSync(path, 'utf8')) as (KubernetesObject | null)[]).filter((d): d is KubernetesObject => !!d);
}

/** Raised by raw() for non-2xx answers; `body` is the apiserver's Status text. */
export class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly body: string,
  ) {
    super(`HTTP ${code}: ${body.slice(0, 500)}`);
  }
}

/**
 * A raw JSON request with the kubeconfig's credentials. (client-node's typed serializers drop
 * keys they do not model, such as x-kubernetes-validations in a CRD, so objects are sent as is.)
 */
export async function raw<T = unknown>(c: Clients, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
  const opts: RequestOptions = { method, headers: { Accept: 'application/json' } };
  await c.kc.applyToHTTPSOptions(opts);
  const server = c.kc.getCurrentCluster()!.server;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  if (payload) opts.headers = { ...opts.headers, 'Content-Type': contentType };
  return new Promise<T>((resolvePromise, reject) => {
    const req = request(`${server}${path}`, opts, (res) => {
      let text = '';
      // Decoded as one stream: a character split across two chunks stays whole (Event notes carry '→').
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        if ((res.statusCode ?? 0) >= 300) reject(new HttpError(res.statusCode ?? 0, text));
        else resolvePromise((text ? JSON.parse(text) : undefined) as T);
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const PLURALS: Record<string, string> = {
  CustomResourceDefinition: 'customresourcedefinitions', Namespace: 'namespaces', Secret: 'secrets', ConfigMap: 'configmaps',
  ServiceAccount: 'serviceaccounts', ClusterRole: 'clusterroles', ClusterRoleBinding: 'clusterrolebindings', Role: 'roles',
  RoleBinding: 'rolebindings', Deployment: 'deployments', Service: 'services', Registry: 'registries', Project: 'projects',
  RobotAccount: 'robotaccounts', ReplicationRule: 'replicationrules', Lease: 'leases', Pod: 'pods',
  PersistentVolumeClaim: 'persistentvolumeclaims', PodDisruptionBudget: 'poddisruptionbudgets', Ingress: 'ingresses', ReplicaSet: 'replicasets', PodTemplate: 'podtemplates',
};
const CLUSTER_SCOPED = new Set(['CustomResourceDefinition', 'Namespace', 'ClusterRole', 'ClusterRoleBinding']);

export function pathOf(obj: { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string } }, withName = true): string {
  const plural = PLURALS[obj.kind!];
  if (!plural) throw new Error(`test support: no path for kind ${obj.kind}`);
  const base = obj.apiVersion!.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
  const ns = CLUSTER_SCOPED.has(obj.kind!) ? '' : `/namespaces/${obj.metadata!.namespace ?? 'default'}`;
  return `${base}${ns}/${plural}${withName ? `/${obj.metadata!.name}` : ''}`;
}

/** Server-side apply as the test's own field manager. */
export async function apply<T extends KubernetesObject>(c: Clients, obj: T): Promise<T> {
  return raw<T>(c, 'PATCH', `${pathOf(obj)}?fieldManager=wharf-test&force=true`, obj, 'application/apply-patch+yaml');
}

export async function getObject<T = KubernetesObject>(c: Clients, obj: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }): Promise<T | undefined> {
  try {
    return await raw<T>(c, 'GET', pathOf(obj));
  } catch (err) {
    if (err instanceof HttpError && err.code === 404) return undefined;
    throw err;
  }
}

export async function installCrds(c: Clients): Promise<string[]> {
  const dir = join(ROOT, 'crds');
  const names: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.wharf.dev.yaml')).sort()) {
    for (const doc of readYamlDocs(join(dir, file))) {
      await apply(c, doc);
      names.push(doc.metadata!.name!);
    }
  }
  for (const name of names) {
    await waitFor(`CRD ${name} Established`, async () => {
      const crd = await c.ext.readCustomResourceDefinition({ name });
      return crd.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True') ? true : undefined;
    }, 30_000);
  }
  return names;
}

let nsCounter = 0;
export async function createNamespace(c: Clients, prefix: string): Promise<string> {
  const name = `${prefix}-${process.pid}-${++nsCounter}`;
  await c.core.createNamespace({ body: { metadata: { name } } });
  return name;
}

export { waitFor };
