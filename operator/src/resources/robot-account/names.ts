// Names, labels and annotations of what the RobotAccount controller writes. Every Secret it
// writes carries the labels below, so that the operator watches only its own Secrets and finds
// them after a restart by label, never by memory.
import type { RobotAccountObject } from '../../api/types.js';
import type { KubeObject } from '../../kube/types.js';
import { MANAGED_BY } from '../registry/names.js';

/** On every Secret the controller writes: `credentials` (the RobotAccount's own) or `pull` (injected). */
export const ROBOT_SECRET_LABEL = 'wharf.dev/robot-secret';
/** The UID of the RobotAccount a Secret belongs to (a label, so that a selector finds them all). */
export const ROBOT_UID_LABEL = 'wharf.dev/robot-account-uid';
/** `<namespace>/<name>` of the RobotAccount a Secret belongs to (owner references cannot cross namespaces). */
export const ROBOT_ACCOUNT_ANNOTATION = 'wharf.dev/robot-account';
/** Set or change it on a RobotAccount to rotate its secret now. */
export const ROTATE_ANNOTATION = 'wharf.dev/rotate';

export type RobotSecretRole = 'credentials' | 'pull';

/** What the registry records as the robot's manager, and what Secrets name as their RobotAccount. */
export function robotManager(obj: KubeObject): string {
  return `${obj.metadata.namespace}/${obj.metadata.name}`;
}

/** The robot's name without prefix. */
export function robotShortName(obj: RobotAccountObject): string {
  return obj.spec.robotName ?? obj.metadata.name;
}

/** Harbor's full robot name: robot$<project>+<name>, or robot$<name> for a system robot. */
export function robotFullName(obj: RobotAccountObject): string {
  return obj.spec.level === 'project' ? `robot$${obj.spec.project}+${robotShortName(obj)}` : `robot$${robotShortName(obj)}`;
}

export function credentialsSecretName(obj: RobotAccountObject): string {
  return obj.spec.secretName ?? `${obj.metadata.name}-robot`;
}

export function pullSecretName(obj: RobotAccountObject): string {
  return obj.spec.pullSecret?.secretName ?? `${obj.metadata.name}-pull`;
}

export function robotSecretLabels(obj: RobotAccountObject, role: RobotSecretRole): Record<string, string> {
  return {
    'app.kubernetes.io/managed-by': MANAGED_BY,
    'app.kubernetes.io/part-of': 'wharf',
    [ROBOT_SECRET_LABEL]: role,
    [ROBOT_UID_LABEL]: obj.metadata.uid!,
  };
}

/** The label selector of every Secret the controller writes (what its informer watches). */
export const ROBOT_SECRETS_SELECTOR = `${ROBOT_SECRET_LABEL} in (credentials,pull)`;

/** Whether `secret` was written by the controller for `obj` in the given role. */
export function belongsTo(secret: KubeObject, obj: RobotAccountObject, role: RobotSecretRole): boolean {
  const labels = secret.metadata.labels ?? {};
  return labels[ROBOT_SECRET_LABEL] === role && labels[ROBOT_UID_LABEL] === obj.metadata.uid;
}

/** The RobotAccount key (`namespace/name`) a Secret written by the controller names, if any. */
export function robotAccountKeyOf(secret: KubeObject): string | undefined {
  if (!secret.metadata.labels?.[ROBOT_SECRET_LABEL]) return undefined;
  const key = secret.metadata.annotations?.[ROBOT_ACCOUNT_ANNOTATION];
  return key && key.includes('/') ? key : undefined;
}
