// The robot's credentials Secret (username, password, .dockerconfigjson) and the decisions about
// it: is the Secret's password the robot's current secret, and is a rotation due. The registry
// shows a secret once, so the Secret is the only copy; these functions decide from it, the
// registry's robot (when its secret was set) and the RobotAccount alone.
import { createHash } from 'node:crypto';
import type { RobotAccountObject } from '../../api/types.js';
import type { KubeObject } from '../../kube/types.js';
import { ownerReference } from '../../runtime/owners.js';
import { endpoints, type Registry } from '../registry/index.js';
import { belongsTo, credentialsSecretName, ROBOT_ACCOUNT_ANNOTATION, robotFullName, robotManager, robotSecretLabels, ROTATE_ANNOTATION } from './names.js';
import type { LiveRobot } from './render.js';

/** When the registry set the secret the Secret holds (the robot's `rotatedAt` then). */
export const ROTATED_AT_ANNOTATION = 'wharf.dev/rotated-at';
/** The wharf.dev/rotate value the secret in the Secret answers. */
export const ROTATE_SEEN_ANNOTATION = 'wharf.dev/rotate-seen';
/** SHA-256 of username:password, so that a hand-edited password is noticed (the secret is 32 random bytes: the digest reveals nothing). */
export const DIGEST_ANNOTATION = 'wharf.dev/credential-sha256';

export const DOCKER_CONFIG_KEY = '.dockerconfigjson';
export const DOCKER_CONFIG_TYPE = 'kubernetes.io/dockerconfigjson';
export const DEFAULT_GRACE_SECONDS = 3600;
const DAY_MS = 86_400_000;

export interface Credential {
  username: string;
  password: string;
  /** The registry's `rotatedAt` for this secret. */
  rotatedAt: string;
  /** The wharf.dev/rotate value this secret answers; undefined when none was set. */
  rotateSeen?: string | undefined;
}

export interface SecretLike extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined) => (s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8'));
const digest = (username: string, password: string) => createHash('sha256').update(`${username}:${password}`).digest('hex');

/** The hosts (host[:port]) a Registry is pulled from: its Service endpoint and Ingress host, or an external URL, and its spec.pullHosts. */
export function registryHosts(reg: Registry): string[] {
  const managed = reg.spec.external ? undefined : endpoints(reg);
  const urls = reg.spec.external ? [reg.spec.external.url] : [managed!.endpoint, managed!.externalEndpoint];
  const hosts = urls.filter((u): u is string => !!u).map((u) => new URL(u).host);
  return [...new Set([...hosts, ...(reg.spec.pullHosts ?? [])])];
}

/** A kubernetes.io/dockerconfigjson document for `hosts`, with `auth` (what the kubelet and containerd read). */
export function dockerConfigJson(hosts: string[], username: string, password: string): string {
  const entry = { username, password, auth: b64(`${username}:${password}`) };
  return JSON.stringify({ auths: Object.fromEntries(hosts.map((h) => [h, entry])) });
}

/** The credentials Secret in the RobotAccount's namespace, owned by it (garbage-collected with it). */
export function renderCredentialsSecret(obj: RobotAccountObject, credential: Credential, hosts: string[]): SecretLike {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: credentialsSecretName(obj),
      namespace: obj.metadata.namespace!,
      labels: robotSecretLabels(obj, 'credentials'),
      annotations: {
        [ROBOT_ACCOUNT_ANNOTATION]: robotManager(obj),
        [ROTATED_AT_ANNOTATION]: credential.rotatedAt,
        [DIGEST_ANNOTATION]: digest(credential.username, credential.password),
        ...(credential.rotateSeen !== undefined && { [ROTATE_SEEN_ANNOTATION]: credential.rotateSeen }),
      },
      ownerReferences: [ownerReference(obj)],
    },
    type: DOCKER_CONFIG_TYPE,
    data: { username: b64(credential.username), password: b64(credential.password), [DOCKER_CONFIG_KEY]: b64(dockerConfigJson(hosts, credential.username, credential.password)) },
  };
}

/**
 * What the credentials Secret holds, judged against the registry's robot:
 * - `current`: an intact credential for the robot's current secret;
 * - `stale`: intact, but for an earlier secret (a rotation whose secret never reached the Secret:
 *   the operator stopped in between, or someone rotated by hand). The copies may still hold it.
 * - `unusable`: missing, or edited by hand (`why` says which).
 */
export type CredentialState = { state: 'current'; credential: Credential } | { state: 'stale'; credential: Credential } | { state: 'unusable'; why: string };

export function credentialState(obj: RobotAccountObject, secret: SecretLike | undefined, live: LiveRobot): CredentialState {
  if (!secret || !belongsTo(secret, obj, 'credentials')) return { state: 'unusable', why: `Secret ${credentialsSecretName(obj)} is missing` };
  const username = unb64(secret.data?.username);
  const password = unb64(secret.data?.password);
  const annotations = secret.metadata.annotations ?? {};
  const rotatedAt = annotations[ROTATED_AT_ANNOTATION];
  if (username !== robotFullName(obj) || !password || !rotatedAt || annotations[DIGEST_ANNOTATION] !== digest(username, password)) {
    return { state: 'unusable', why: `Secret ${credentialsSecretName(obj)} was edited` };
  }
  const credential: Credential = { username, password, rotatedAt, rotateSeen: annotations[ROTATE_SEEN_ANNOTATION] };
  return Date.parse(rotatedAt) === Date.parse(live.rotatedAt) ? { state: 'current', credential } : { state: 'stale', credential };
}

/** Why a rotation of a current credential is due now (undefined: not due), and when to look again. */
export function rotationDue(obj: RobotAccountObject, credential: Credential, now: number): { reason?: string; recheckInMs?: number } {
  const requested = obj.metadata.annotations?.[ROTATE_ANNOTATION];
  if (requested !== undefined && requested !== credential.rotateSeen) return { reason: `annotation ${ROTATE_ANNOTATION} changed to ${JSON.stringify(requested)}` };
  const days = obj.spec.rotation?.intervalDays;
  if (days === undefined) return {};
  const dueAt = Date.parse(credential.rotatedAt) + days * DAY_MS;
  if (now >= dueAt) return { reason: `the secret is ${days} day${days === 1 ? '' : 's'} old` };
  return { recheckInMs: dueAt - now };
}

/** The wharf.dev/rotate value a new secret answers. */
export function rotateRequest(obj: RobotAccountObject): string | undefined {
  return obj.metadata.annotations?.[ROTATE_ANNOTATION];
}

export function graceSeconds(obj: RobotAccountObject): number {
  return obj.spec.rotation?.graceSeconds ?? DEFAULT_GRACE_SECONDS;
}
