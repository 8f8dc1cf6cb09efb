// config/ installs the operator: CRDs (the generated ones), least-privilege RBAC, the namespace and
// the operator Deployment all apply to the real apiserver. The RBAC is what every operator test
// runs under; here we also check what it does not allow.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { adminClients } from './support/context.js';
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
    // Not granted:
    expect(await can('update', '', 'secrets')).toBe(false);
    expect(await can('delete', '', 'secrets')).toBe(false);
    expect(await can('delete', '', 'persistentvolumeclaims')).toBe(false);
    expect(await can('create', 'wharf.dev', 'registries')).toBe(false);
    expect(await can('delete', 'wharf.dev', 'registries')).toBe(false);
    expect(await can('list', '', 'pods')).toBe(false);
    expect(await can('update', 'coordination.k8s.io', 'leases', 'default')).toBe(false);
    expect(await can('create', 'rbac.authorization.k8s.io', 'clusterroles')).toBe(false);
  });
});
