// The user's Secrets and ConfigMaps a Registry depends on: what the registry pods read at start
// (DSN, S3 keys, database CA), or, for an external Registry, the credentials the operator signs
// in with. A change to any of them must reach the pods (a new config checksum) or the connection.
// Not listed: imagePullSecrets (the kubelet reads them at each pull) and ingress.tlsSecretName
// (the ingress controller watches it): neither needs the pods restarted.
import { createHmac } from 'node:crypto';
import type { RegistrySpec } from '../../api/registry.js';

export interface Reference {
  kind: 'Secret' | 'ConfigMap';
  name: string;
  /** Keys that must be present, and whose values are digested. */
  keys: string[];
  /** What it is for, in messages. */
  what: string;
}

/** References of a spec with defaults applied (keys default to the schema's names). */
export function referencesOf(spec: RegistrySpec): Reference[] {
  const refs: Reference[] = [];
  if (spec.external) {
    const r = spec.external.credentialsSecretRef;
    refs.push({ kind: 'Secret', name: r.name, keys: [r.usernameKey, r.passwordKey], what: 'registry credentials' });
    return refs;
  }
  const db = spec.database.type === 'external' ? spec.database.external : undefined;
  if (db) {
    refs.push({ kind: 'Secret', name: db.secretRef.name, keys: [db.secretRef.key], what: 'database DSN' });
    if (db.caSecretRef) refs.push({ kind: 'Secret', name: db.caSecretRef.name, keys: [db.caSecretRef.key], what: 'database CA' });
    if (db.caConfigMapRef) refs.push({ kind: 'ConfigMap', name: db.caConfigMapRef.name, keys: [db.caConfigMapRef.key], what: 'database CA' });
  }
  const s3 = spec.storage.type === 's3' ? spec.storage.s3?.secretRef : undefined;
  if (s3) refs.push({ kind: 'Secret', name: s3.name, keys: [s3.accessKeyIDKey, s3.secretAccessKeyKey], what: 'S3 credentials' });
  return refs;
}

/** Whether the spec references the Secret or ConfigMap `name`. */
export function referencesObject(spec: RegistrySpec, kind: Reference['kind'], name: string): boolean {
  return referencesOf(spec).some((r) => r.kind === kind && r.name === name);
}

/**
 * A digest of the values the pods read, for the config checksum in the pod template. It is an
 * HMAC keyed with the Registry's generated token signing key, so the annotation, which anyone who
 * can read Deployments sees, gives no way to test guesses of a weak DSN password offline.
 * `values` maps `<Kind>/<name>/<key>` to the value; the order does not matter.
 */
export function digestReferencedData(hmacKey: string, values: Record<string, string>): string {
  const h = createHmac('sha256', hmacKey);
  for (const id of Object.keys(values).sort()) h.update(id).update('\0').update(values[id]!).update('\0');
  return h.digest('hex');
}
