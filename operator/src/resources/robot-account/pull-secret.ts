// Pull-secret injection, the pure half: which namespaces a RobotAccount targets, the Secret each
// one gets, and the JSON patch that adds or removes Wharf's entry in a ServiceAccount's
// imagePullSecrets. That list is atomic for server-side apply (+listType=atomic), so an apply
// would take the whole list; a JSON patch guarded by resourceVersion touches one entry only.
import type { RobotAccountObject } from '../../api/types.js';
import type { JsonPatchOp } from '../../kube/client.js';
import type { KubeObject } from '../../kube/types.js';
import { matchesLabelSelector } from '../../runtime/label-selector.js';
import { DOCKER_CONFIG_KEY, DOCKER_CONFIG_TYPE, ROTATED_AT_ANNOTATION, type SecretLike } from './credentials.js';
import { pullSecretName, ROBOT_ACCOUNT_ANNOTATION, robotManager, robotSecretLabels } from './names.js';

/** The ServiceAccounts (names) that may hold an entry for a pull Secret: recorded on the Secret before any is patched. */
export const SERVICE_ACCOUNTS_ANNOTATION = 'wharf.dev/service-accounts';

export interface NamespaceLike extends KubeObject {
  status?: { phase?: string };
}

export interface ServiceAccountLike extends KubeObject {
  imagePullSecrets?: { name?: string }[];
}

export function isTerminating(ns: NamespaceLike): boolean {
  return !!ns.metadata.deletionTimestamp || ns.status?.phase === 'Terminating';
}

/** Whether the RobotAccount's pullSecret selects this namespace (by name or by labels); a terminating namespace is never a target. */
export function targetsNamespace(obj: RobotAccountObject, ns: NamespaceLike): boolean {
  const spec = obj.spec.pullSecret;
  if (!spec || isTerminating(ns)) return false;
  if (spec.namespaces?.includes(ns.metadata.name)) return true;
  return spec.namespaceSelector !== undefined && matchesLabelSelector(spec.namespaceSelector, ns.metadata.labels);
}

/** The namespaces (names, sorted) that get the pull secret. */
export function targetNamespaces(obj: RobotAccountObject, namespaces: NamespaceLike[]): string[] {
  return namespaces.filter((ns) => targetsNamespace(obj, ns)).map((ns) => ns.metadata.name).sort();
}

export function wantedServiceAccounts(obj: RobotAccountObject): string[] {
  return [...new Set(obj.spec.pullSecret?.serviceAccounts ?? [])].sort();
}

/** What a pull Secret records as possibly holding an entry. */
export function recordedServiceAccounts(secret: KubeObject): string[] {
  const text = secret.metadata.annotations?.[SERVICE_ACCOUNTS_ANNOTATION] ?? '';
  return text ? text.split(',').filter(Boolean) : [];
}

/** The Secret injected into one namespace. No owner reference: owner references cannot cross namespaces. */
export function renderPullSecret(obj: RobotAccountObject, namespace: string, dockerConfig: string, rotatedAt: string, serviceAccounts: string[]): SecretLike {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: pullSecretName(obj),
      namespace,
      labels: robotSecretLabels(obj, 'pull'),
      annotations: {
        [ROBOT_ACCOUNT_ANNOTATION]: robotManager(obj),
        [ROTATED_AT_ANNOTATION]: rotatedAt,
        [SERVICE_ACCOUNTS_ANNOTATION]: [...new Set(serviceAccounts)].sort().join(','),
      },
    },
    type: DOCKER_CONFIG_TYPE,
    data: { [DOCKER_CONFIG_KEY]: Buffer.from(dockerConfig, 'utf8').toString('base64') },
  };
}

/**
 * The JSON patch that makes `sa` hold (want) or not hold an imagePullSecrets entry for
 * `secretName`, touching nothing else; undefined when it already is so. The replace of
 * resourceVersion makes the apiserver refuse it (409) if the ServiceAccount changed since read.
 */
export function imagePullSecretPatch(sa: ServiceAccountLike, secretName: string, want: boolean): JsonPatchOp[] | undefined {
  const list = sa.imagePullSecrets ?? [];
  const at = list.flatMap((entry, i) => (entry.name === secretName ? [i] : []));
  if (want === at.length > 0) return undefined;
  const guard: JsonPatchOp = { op: 'replace', path: '/metadata/resourceVersion', value: sa.metadata.resourceVersion };
  if (want) return [guard, sa.imagePullSecrets ? { op: 'add', path: '/imagePullSecrets/-', value: { name: secretName } } : { op: 'add', path: '/imagePullSecrets', value: [{ name: secretName }] }];
  return [guard, ...at.reverse().map((i): JsonPatchOp => ({ op: 'remove', path: `/imagePullSecrets/${i}` }))];
}
