// What the render functions take: a Registry (spec with apiserver defaults applied) and inputs
// decided elsewhere (default image, versions of referenced Secrets). Everything is explicit so
// render() stays pure and deterministic.
import { Value } from '@sinclair/typebox/value';
import { API_VERSION } from '../../api/group.js';
import { RegistrySpec, type RegistryStatus } from '../../api/registry.js';
import type { KubeObject } from '../../kube/types.js';

export interface Registry extends KubeObject {
  spec: RegistrySpec;
  status?: RegistryStatus;
}

export interface RenderInputs {
  /** Image used when spec.image is unset. */
  defaultImage: string;
  /**
   * A digest of the data the pods read from Secrets and ConfigMaps at start (DSN, S3 keys,
   * database CA, generated admin password and token key), so that rotating any of them changes
   * the config checksum and rolls the pods. Computed by the reconciler (referenced-data.ts).
   */
  referencedDataDigest: string;
}

/** Fills in the schema defaults the apiserver would apply (the same TypeBox schema). */
export function withDefaults(spec: Partial<RegistrySpec> | undefined): RegistrySpec {
  const value = Value.Default(RegistrySpec, structuredClone(spec ?? {})) as RegistrySpec;
  return value;
}

export function isRegistry(obj: KubeObject): obj is Registry {
  return obj.apiVersion === API_VERSION && obj.kind === 'Registry';
}

/** The registry keeps local state (needs the data volume, runs one writer) unless both dependencies are external. */
export function hasLocalState(spec: RegistrySpec): boolean {
  return spec.database.type === 'embedded' || spec.storage.type === 'filesystem';
}

export const CONTAINER_PORT = 5000;
export const DATA_DIR = '/var/lib/wharf';
export const CONFIG_DIR = '/etc/wharf/config';
export const ADMIN_DIR = '/etc/wharf/admin';
export const TOKEN_DIR = '/etc/wharf/token';
export const TOKEN_KEY_FILE = 'key.pem';
export const DATABASE_CA_DIR = '/etc/wharf/database-ca';
export const DATABASE_CA_FILE = 'ca.crt';
/** Path of the registry's token endpoint (the auth realm). */
export const TOKEN_PATH = '/token';
export const RUN_AS_USER = 1000;
