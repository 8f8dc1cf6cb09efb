// Adds and removes finalizers with a JSON merge patch guarded by resourceVersion: it never
// creates an object (unlike apply), and a concurrent change makes it fail with 409 so the
// reconcile retries on fresh data.
import type { KubeClient } from '../kube/client.js';
import type { ResourceType } from '../kube/resources.js';
import type { KubeObject } from '../kube/types.js';

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return obj.metadata.finalizers?.includes(finalizer) ?? false;
}

export async function addFinalizer<T extends KubeObject>(client: KubeClient, t: ResourceType, obj: T, finalizer: string, signal?: AbortSignal): Promise<T> {
  if (hasFinalizer(obj, finalizer)) return obj;
  const finalizers = [...(obj.metadata.finalizers ?? []), finalizer];
  return client.mergePatch<T>(t, obj.metadata.namespace, obj.metadata.name, { metadata: { finalizers, resourceVersion: obj.metadata.resourceVersion } }, { signal });
}

export async function removeFinalizer<T extends KubeObject>(client: KubeClient, t: ResourceType, obj: T, finalizer: string, signal?: AbortSignal): Promise<T> {
  if (!hasFinalizer(obj, finalizer)) return obj;
  const finalizers = (obj.metadata.finalizers ?? []).filter((f) => f !== finalizer);
  return client.mergePatch<T>(t, obj.metadata.namespace, obj.metadata.name, { metadata: { finalizers, resourceVersion: obj.metadata.resourceVersion } }, { signal });
}
