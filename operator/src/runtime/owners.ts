// Maps an owned object back to the key of its controlling owner.
import type { KubeObject, OwnerReference } from '../kube/types.js';

export function controllerOf(obj: KubeObject): OwnerReference | undefined {
  return obj.metadata.ownerReferences?.find((r) => r.controller === true);
}

/** namespace/name of the controlling owner when it is of the given apiVersion and kind. */
export function ownerKey(obj: KubeObject, apiVersion: string, kind: string): string | undefined {
  const ref = controllerOf(obj);
  if (!ref || ref.kind !== kind || ref.apiVersion !== apiVersion) return undefined;
  return `${obj.metadata.namespace}/${ref.name}`;
}

export function ownerReference(owner: KubeObject): OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}
