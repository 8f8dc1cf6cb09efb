// The resource types the operator talks to, and their REST paths. A static table instead of
// discovery: the operator only ever uses these.
import { GROUP, VERSION } from '../api/group.js';

export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

const rt = (group: string, version: string, kind: string, plural: string, namespaced = true): ResourceType => ({ group, version, kind, plural, namespaced });

export const RESOURCES = {
  Namespace: rt('', 'v1', 'Namespace', 'namespaces', false),
  ConfigMap: rt('', 'v1', 'ConfigMap', 'configmaps'),
  Secret: rt('', 'v1', 'Secret', 'secrets'),
  Service: rt('', 'v1', 'Service', 'services'),
  ServiceAccount: rt('', 'v1', 'ServiceAccount', 'serviceaccounts'),
  PersistentVolumeClaim: rt('', 'v1', 'PersistentVolumeClaim', 'persistentvolumeclaims'),
  Pod: rt('', 'v1', 'Pod', 'pods'),
  Deployment: rt('apps', 'v1', 'Deployment', 'deployments'),
  ReplicaSet: rt('apps', 'v1', 'ReplicaSet', 'replicasets'),
  DaemonSet: rt('apps', 'v1', 'DaemonSet', 'daemonsets'),
  PodDisruptionBudget: rt('policy', 'v1', 'PodDisruptionBudget', 'poddisruptionbudgets'),
  Ingress: rt('networking.k8s.io', 'v1', 'Ingress', 'ingresses'),
  Lease: rt('coordination.k8s.io', 'v1', 'Lease', 'leases'),
  Event: rt('events.k8s.io', 'v1', 'Event', 'events'),
  CustomResourceDefinition: rt('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', false),
  Registry: rt(GROUP, VERSION, 'Registry', 'registries'),
  Project: rt(GROUP, VERSION, 'Project', 'projects'),
  RobotAccount: rt(GROUP, VERSION, 'RobotAccount', 'robotaccounts'),
  ReplicationRule: rt(GROUP, VERSION, 'ReplicationRule', 'replicationrules'),
} as const satisfies Record<string, ResourceType>;

export type KindName = keyof typeof RESOURCES;

export function apiVersionOf(t: ResourceType): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

export function resourceByKind(apiVersion: string, kind: string): ResourceType {
  const found = Object.values(RESOURCES).find((r) => r.kind === kind && apiVersionOf(r) === apiVersion);
  if (!found) throw new Error(`unknown resource ${apiVersion} ${kind}`);
  return found;
}

/** /api/v1/namespaces/ns/configmaps/name/status and friends. */
export function resourcePath(t: ResourceType, namespace?: string, name?: string, subresource?: string): string {
  const base = t.group ? `/apis/${t.group}/${t.version}` : `/api/${t.version}`;
  let path = base;
  if (t.namespaced && namespace) path += `/namespaces/${encodeURIComponent(namespace)}`;
  path += `/${t.plural}`;
  if (name) path += `/${encodeURIComponent(name)}`;
  if (subresource) path += `/${subresource}`;
  return path;
}
