// config/ installs the operator: CRDs (the generated ones), least-privilege RBAC, the namespace and
// the operator Deployment all apply to the real apiserver. The RBAC is what every operator test
// runs under; here we also check what it does not allow.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load, loadAll } from 'js-yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { adminClients, controlPlane } from './support/context.js';
import { ROOT, apply, getObject, raw, type Clients } from './support/kube.js';
import { buildKustomization } from './support/kustomize.js';
import { OPERATOR_USER } from './support/operator.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

let c: Clients;
beforeAll(() => {
  c = adminClients();
});

async function can(verb: string, group: string, resource: string, namespace = 'default', subresource?: string): Promise<boolean> {
  const review = await raw<Any>(c, 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      user: OPERATOR_USER,
      groups: ['system:serviceaccounts', 'system:serviceaccounts:wharf-system', 'system:authenticated'],
      resourceAttributes: { verb, group, resource, namespace, ...(subresource ? { subresource } : {}) },
    },
  });
  return review.status.allowed === true;
}

describe('config/default', () => {
  const objects = buildKustomization(join(ROOT, 'config/default'));

  it('holds the CRDs from crds/, RBAC, the namespace and the operator Deployment, all in wharf-system', () => {
    const kinds = objects.map((o) => `${o.kind}/${o.metadata!.name}`).sort();
    expect(kinds).toEqual([
      'ClusterRole/wharf-operator',
      'ClusterRoleBinding/wharf-operator',
      'CustomResourceDefinition/projects.wharf.dev',
      'CustomResourceDefinition/registries.wharf.dev',
      'CustomResourceDefinition/replicationrules.wharf.dev',
      'CustomResourceDefinition/robotaccounts.wharf.dev',
      'Deployment/wharf-operator',
      'Namespace/wharf-system',
      'Role/wharf-operator-leader-election',
      'RoleBinding/wharf-operator-leader-election',
      'ServiceAccount/wharf-operator',
    ]);
    for (const o of objects) if (!['CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'Namespace'].includes(o.kind!)) expect(o.metadata!.namespace).toBe('wharf-system');
    const crd = objects.find((o) => o.metadata!.name === 'registries.wharf.dev');
    expect(crd).toEqual(load(readFileSync(join(ROOT, 'crds/registries.wharf.dev.yaml'), 'utf8')));
  });

  it('applies to the apiserver', async () => {
    const order = ['Namespace', 'CustomResourceDefinition', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Deployment'];
    for (const o of [...objects].sort((a, b) => order.indexOf(a.kind!) - order.indexOf(b.kind!))) await apply(c, o);
    const dep = await getObject<Any>(c, { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'wharf-operator', namespace: 'wharf-system' } });
    expect(dep.spec.template.spec.serviceAccountName).toBe('wharf-operator');
    expect(dep.spec.template.spec.containers[0].securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    // Scale it to zero again: there is no kubelet here, and the tests run their own operators.
    await raw(c, 'PATCH', '/apis/apps/v1/namespaces/wharf-system/deployments/wharf-operator', { spec: { replicas: 0 } }, 'application/merge-patch+json');
  });

  it('grants the operator what it uses and nothing more', async () => {
    expect(await can('watch', 'wharf.dev', 'registries')).toBe(true);
    expect(await can('patch', 'wharf.dev', 'registries', 'default', 'status')).toBe(true);
    expect(await can('create', 'apps', 'deployments')).toBe(true);
    expect(await can('create', '', 'secrets')).toBe(true);
    expect(await can('update', 'coordination.k8s.io', 'leases', 'wharf-system')).toBe(true);
    // RobotAccounts: pull secrets in any target namespace (applied, deleted when no longer
    // wanted), namespaces read, one imagePullSecrets entry patched into ServiceAccounts.
    expect(await can('patch', '', 'secrets', 'team-a')).toBe(true);
    expect(await can('delete', '', 'secrets', 'team-a')).toBe(true);
    expect(await can('watch', '', 'namespaces')).toBe(true);
    expect(await can('patch', '', 'serviceaccounts', 'team-a')).toBe(true);
    expect(await can('patch', 'wharf.dev', 'robotaccounts', 'default', 'status')).toBe(true);
    // The node agent (Registry.spec.nodeMirror): its DaemonSet and ConfigMap, deleted on removal.
    expect(await can('create', 'apps', 'daemonsets')).toBe(true);
    expect(await can('delete', 'apps', 'daemonsets')).toBe(true);
    expect(await can('delete', '', 'configmaps')).toBe(true);
    expect(await can('patch', 'wharf.dev', 'replicationrules', 'default')).toBe(true);
    expect(await can('patch', 'wharf.dev', 'replicationrules', 'default', 'status')).toBe(true);
    // Not granted:
    expect(await can('update', '', 'secrets')).toBe(false);
    expect(await can('update', '', 'serviceaccounts')).toBe(false);
    expect(await can('create', '', 'serviceaccounts')).toBe(false);
    expect(await can('delete', '', 'serviceaccounts')).toBe(false);
    expect(await can('patch', '', 'namespaces')).toBe(false);
    expect(await can('create', 'wharf.dev', 'robotaccounts')).toBe(false);
    expect(await can('create', 'wharf.dev', 'replicationrules')).toBe(false);
    expect(await can('delete', 'wharf.dev', 'replicationrules')).toBe(false);
    expect(await can('delete', '', 'persistentvolumeclaims')).toBe(false);
    expect(await can('create', 'wharf.dev', 'registries')).toBe(false);
    expect(await can('delete', 'wharf.dev', 'registries')).toBe(false);
    expect(await can('list', '', 'pods')).toBe(false);
    expect(await can('update', 'coordination.k8s.io', 'leases', 'default')).toBe(false);
    expect(await can('create', 'rbac.authorization.k8s.io', 'clusterroles')).toBe(false);
  });
});

describe('kubectl apply -k config/default', () => {
  const kubectl = (...args: string[]) =>
    execFileSync(join(ROOT, '.tools/bin/kubectl'), ['--kubeconfig', controlPlane().adminKubeconfig, ...args], { encoding: 'utf8', cwd: ROOT });

  it('kustomize renders what the test loader builds', () => {
    const rendered = loadAll(kubectl('kustomize', 'config/default')) as Any[];
    const key = (o: Any) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    const sort = (list: Any[]) => [...list].sort((a, b) => key(a).localeCompare(key(b)));
    expect(sort(rendered)).toEqual(sort(buildKustomization(join(ROOT, 'config/default'))));
  });

  it('installs with server-side apply, and is idempotent', () => {
    const first = kubectl('apply', '-k', 'config/default', '--server-side', '--field-manager=kubectl-install', '--force-conflicts');
    expect(first).toContain('customresourcedefinition.apiextensions.k8s.io/registries.wharf.dev serverside-applied');
    expect(first).toContain('deployment.apps/wharf-operator serverside-applied');
    const second = kubectl('apply', '-k', 'config/default', '--server-side', '--field-manager=kubectl-install', '--force-conflicts');
    expect(second.trim().split('\n').length).toBe(11);
    kubectl('-n', 'wharf-system', 'scale', 'deployment/wharf-operator', '--replicas=0');
    expect(kubectl('get', 'crd', '-l', 'app.kubernetes.io/part-of=wharf', '-o', 'name').trim().split('\n').sort()).toEqual([
      'customresourcedefinition.apiextensions.k8s.io/projects.wharf.dev',
      'customresourcedefinition.apiextensions.k8s.io/registries.wharf.dev',
      'customresourcedefinition.apiextensions.k8s.io/replicationrules.wharf.dev',
      'customresourcedefinition.apiextensions.k8s.io/robotaccounts.wharf.dev',
    ]);
  });

  it('every example passes server-side dry-run validation, and `kubectl get wharf` lists them', () => {
    const ns = `kubectl-${process.pid}`;
    kubectl('create', 'namespace', ns);
    kubectl('apply', '-n', ns, '--dry-run=server', '-f', 'examples/');
    kubectl('apply', '-n', ns, '--server-side', '-f', 'examples/');
    const names = kubectl('get', 'wharf', '-n', ns, '-o', 'name').trim().split('\n').sort();
    expect(names).toEqual([
      'project.wharf.dev/dockerhub',
      'project.wharf.dev/edge-ghcr',
      'project.wharf.dev/edge-hub',
      'project.wharf.dev/team-a',
      'project.wharf.dev/team-b',
      'registry.wharf.dev/edge',
      'registry.wharf.dev/registry',
      'registry.wharf.dev/registry-ha',
      'replicationrule.wharf.dev/team-a-to-dr',
      'replicationrule.wharf.dev/vendor-nightly',
      'robotaccount.wharf.dev/ci',
    ]);
    const columns = kubectl('get', 'wreg', '-n', ns).split('\n')[0]!.trim().split(/\s+/);
    expect(columns).toEqual(['NAME', 'READY', 'REPLICAS', 'AVAILABLE', 'VERSION', 'ENDPOINT', 'AGE']);
  });
});
