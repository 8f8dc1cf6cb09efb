// Renders the CRD YAML files committed under crds/. `make crds` runs it; a test fails when the
// committed files differ from what this produces.
import { dump } from 'js-yaml';
import { crdName, renderCrd } from './crd.js';
import { KINDS } from './kinds.js';

const HEADER = '# Generated from operator/src/api by `make crds`. Do not edit.\n';

/** file name → content for everything under crds/. */
export function renderCrdFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const def of KINDS) {
    const yaml = dump(renderCrd(def), { lineWidth: -1, noRefs: true });
    files.set(`${crdName(def)}.yaml`, HEADER + '---\n' + yaml);
  }
  const kustomization = { apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: [...files.keys()] };
  files.set('kustomization.yaml', HEADER + dump(kustomization, { lineWidth: -1 }));
  return files;
}
