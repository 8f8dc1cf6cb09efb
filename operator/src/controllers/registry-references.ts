// Watches the user's Secrets and ConfigMaps that Registries reference (resources/registry/
// references.ts), so that a rotated DSN, S3 key or database CA rolls the pods, and new external
// credentials are used, within seconds rather than at the next resync.
//
// The cache stays small: these informers list and watch metadata only (PartialObjectMetadata), so
// no Secret's data is ever sent to the operator or kept by it, only each object's name,
// resourceVersion and a few other metadata fields. Any change of an object a Registry references
// queues that Registry; its reconcile reads the referenced keys with a GET and compares their
// digest, so a change elsewhere in the object (a label, another key) queues it but rolls nothing.
// User objects carry no label of ours (and must not need one), so the watch cannot be narrowed
// by a selector; one watch per referenced name would multiply connections and be restarted on
// every spec change. Mapping an object back to its Registries scans the cached Registries of its
// namespace: there are few of them, and an index would have to be kept in step with their specs.
// The same Secret watch serves the Projects' proxy-cache credentials (`also`): one metadata-only
// watch of Secrets, however many kinds reference them.
import type { Logger } from 'pino';
import type { KubeClient } from '../kube/client.js';
import { RESOURCES } from '../kube/resources.js';
import { objectKey, type KubeObject } from '../kube/types.js';
import { referencesObject, withDefaults, type Reference, type Registry } from '../resources/registry/index.js';
import { Informer } from '../runtime/informer.js';

/** Keys of the Registries whose spec references this Secret or ConfigMap. */
export function registriesReferencing(registries: Informer<Registry>, kind: Reference['kind'], obj: KubeObject): string[] {
  return registries
    .list(obj.metadata.namespace)
    .filter((r) => referencesObject(withDefaults(r.spec), kind, obj.metadata.name))
    .map(objectKey);
}

/**
 * Metadata-only informers for Secrets and ConfigMaps whose every change queues the Registries that
 * reference the object, and calls `also` (other kinds that reference Secrets or ConfigMaps).
 */
export function referencedObjectInformers(
  client: KubeClient,
  namespace: string | undefined,
  registries: Informer<Registry>,
  enqueue: (key: string) => void,
  log: Logger,
  also?: (kind: Reference['kind'], obj: KubeObject) => void,
): Informer[] {
  return (['Secret', 'ConfigMap'] as const).map((kind) => {
    const informer = new Informer(client, { resource: RESOURCES[kind], namespace, metadataOnly: true }, log);
    informer.onEvent((_type, obj) => {
      registriesReferencing(registries, kind, obj).forEach(enqueue);
      also?.(kind, obj);
    });
    return informer;
  });
}
