// The data volume of a Registry (blobs and the embedded database) and spec.persistence.reclaimPolicy,
// on the real control plane with kube-controller-manager's garbage collector and the operator as a
// real process:
//   - Retain (the default): deleting the Registry leaves the PVC; a Registry of the same name takes
//     the same PVC over (same uid), and its Deployment mounts it;
//   - Delete: the PVC is owned by the Registry and garbage-collected with it;
//   - a policy changed on a live Registry moves the owner reference accordingly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClients } from './support/context.js';
import { apply, createNamespace, getObject, installCrds, raw, waitFor, type Clients } from './support/kube.js';
import { OperatorProcess, operatorKubeconfig } from './support/operator.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

let c: Clients;
let ns: string;
let op: OperatorProcess;

const regRef = (name: string) => ({ apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', metadata: { name, namespace: ns } });
const get = (apiVersion: string, kind: string, name: string) => getObject<Any>(c, { apiVersion, kind, metadata: { name, namespace: ns } });
const pvc = (registry: string) => get('v1', 'PersistentVolumeClaim', `${registry}-data`);

async function applied(name: string, spec: Record<string, unknown>): Promise<Any> {
  await apply(c, { ...regRef(name), spec });
  return waitFor(`Registry ${name} observed`, async () => {
    const r = await getObject<Any>(c, regRef(name));
    return r && r.status?.observedGeneration === r.metadata.generation && r.status?.configHash ? r : undefined;
  }, 60_000);
}

/** Deletes the Registry and waits until the garbage collector removed what it owned (its ConfigMap). */
async function deleteRegistry(name: string): Promise<void> {
  await raw(c, 'DELETE', `/apis/wharf.dev/v1alpha1/namespaces/${ns}/registries/${name}`);
  await waitFor(`Registry ${name} and its owned objects gone`, async () => {
    if (await getObject(c, regRef(name))) return undefined;
    for (const [apiVersion, kind, object] of [['v1', 'ConfigMap', `${name}-config`], ['apps/v1', 'Deployment', name], ['v1', 'Secret', `${name}-admin`]] as const) {
      if (await get(apiVersion, kind, object)) return undefined;
    }
    return true;
  }, 90_000);
}

beforeAll(async () => {
  c = adminClients();
  await installCrds(c);
  ns = await createNamespace(c, 'data');
  op = await OperatorProcess.start({ kubeconfig: await operatorKubeconfig(c), identity: 'data-op', args: ['--lease-name', 'data', '--watch-namespace', ns] });
});

afterAll(async () => {
  await op?.stop();
});

describe('Registry data volume', () => {
  it('Retain (the default): the PVC outlives its Registry and a Registry of the same name takes it over', async () => {
    const first = await applied('keep', {});
    expect(first.spec.persistence.reclaimPolicy).toBe('Retain');
    const volume = await pvc('keep');
    expect(volume.metadata.ownerReferences).toBeUndefined();
    expect(volume.metadata.labels).toMatchObject({ 'app.kubernetes.io/instance': 'keep', 'app.kubernetes.io/managed-by': 'wharf-operator' });

    await deleteRegistry('keep');
    const left = await pvc('keep');
    expect(left?.metadata.uid).toBe(volume.metadata.uid);
    expect(left.metadata.deletionTimestamp).toBeUndefined();

    const second = await applied('keep', {});
    expect(second.metadata.uid).not.toBe(first.metadata.uid);
    const adopted = await pvc('keep');
    expect(adopted.metadata.uid).toBe(volume.metadata.uid);
    expect(adopted.metadata.ownerReferences).toBeUndefined();
    const deployment = await get('apps/v1', 'Deployment', 'keep');
    expect(deployment.spec.template.spec.volumes).toContainEqual(expect.objectContaining({ persistentVolumeClaim: { claimName: 'keep-data' } }));
    await deleteRegistry('keep');
    await raw(c, 'DELETE', `/api/v1/namespaces/${ns}/persistentvolumeclaims/keep-data`);
  });

  it('Delete: the PVC is owned by the Registry and garbage-collected with it', async () => {
    const reg = await applied('drop', { persistence: { reclaimPolicy: 'Delete' } });
    const volume = await pvc('drop');
    expect(volume.metadata.ownerReferences).toEqual([{ apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', name: 'drop', uid: reg.metadata.uid, controller: true, blockOwnerDeletion: true }]);
    await deleteRegistry('drop');
    // No pod uses it, so the pvc-protection controller releases it at once.
    await waitFor('PVC drop-data garbage-collected', async () => ((await pvc('drop')) ? undefined : true), 60_000);
  });

  it('a policy changed on a live Registry moves the owner reference', async () => {
    const reg = await applied('flip', { persistence: { reclaimPolicy: 'Delete' } });
    expect((await pvc('flip')).metadata.ownerReferences).toHaveLength(1);
    await applied('flip', { persistence: { reclaimPolicy: 'Retain' } });
    await waitFor('owner reference removed', async () => ((await pvc('flip')).metadata.ownerReferences === undefined ? true : undefined), 30_000);
    await applied('flip', { persistence: { reclaimPolicy: 'Delete' } });
    await waitFor('owner reference back', async () => ((await pvc('flip')).metadata.ownerReferences?.[0]?.uid === reg.metadata.uid ? true : undefined), 30_000);
    await deleteRegistry('flip');
    await waitFor('PVC flip-data garbage-collected', async () => ((await pvc('flip')) ? undefined : true), 60_000);
  });
});
