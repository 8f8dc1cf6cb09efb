// A loader for the subset of kustomize that config/ uses (`resources` of files and directories,
// and `namespace`), so tests can apply config/ without a kustomize binary. It rejects any other
// kustomization field, so config/ cannot silently outgrow it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import { load } from 'js-yaml';
import { readYamlDocs } from './kube.js';

const CLUSTER_SCOPED = new Set(['CustomResourceDefinition', 'Namespace', 'ClusterRole', 'ClusterRoleBinding']);
// `configurations` only extends kustomize's images transformer, which this loader does not run.
const SUPPORTED = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'configurations']);

export function buildKustomization(dir: string): KubernetesObject[] {
  const file = join(dir, 'kustomization.yaml');
  const k = load(readFileSync(file, 'utf8')) as { resources?: string[]; namespace?: string } & Record<string, unknown>;
  for (const key of Object.keys(k)) if (!SUPPORTED.has(key)) throw new Error(`${file}: field ${key} is not supported by the test loader`);
  const out: KubernetesObject[] = [];
  for (const entry of k.resources ?? []) {
    const path = resolve(dirname(file), entry);
    if (!existsSync(path)) throw new Error(`${file}: ${entry} does not exist`);
    out.push(...(statSync(path).isDirectory() ? buildKustomization(path) : readYamlDocs(path)));
  }
  if (k.namespace) {
    for (const obj of out) {
      if (!CLUSTER_SCOPED.has(obj.kind!)) obj.metadata = { ...obj.metadata, namespace: k.namespace };
      // Like kustomize, point ServiceAccount subjects of bindings at the new namespace.
      const subjects = (obj as { subjects?: { kind: string; namespace?: string }[] }).subjects;
      for (const s of subjects ?? []) if (s.kind === 'ServiceAccount') s.namespace = k.namespace;
    }
  }
  return out;
}
