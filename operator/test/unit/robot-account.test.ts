// The pure half of the RobotAccount controller and of pull-secret injection: the robot asked of
// the registry, the credentials Secret and what it says about the secret it holds, when a
// rotation is due, which namespaces are targets, the pull Secret, and the one-entry JSON patch of
// a ServiceAccount's imagePullSecrets. Deterministic output for the same input.
import { describe, expect, it } from 'vitest';
import type { RobotAccountObject } from '../../src/api/types.js';
import { withDefaults, type Registry } from '../../src/resources/registry/index.js';
import {
  credentialState,
  DIGEST_ANNOTATION,
  dockerConfigJson,
  registryHosts,
  renderCredentialsSecret,
  rotationDue,
  ROTATED_AT_ANNOTATION,
  type Credential,
} from '../../src/resources/robot-account/credentials.js';
import { belongsTo, credentialsSecretName, pullSecretName, robotAccountKeyOf, robotFullName } from '../../src/resources/robot-account/names.js';
import { imagePullSecretPatch, recordedServiceAccounts, renderPullSecret, targetNamespaces, type NamespaceLike } from '../../src/resources/robot-account/pull-secret.js';
import { renderRobot, robotDifferences, type LiveRobot } from '../../src/resources/robot-account/render.js';
import { matchesLabelSelector } from '../../src/runtime/label-selector.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

const UID = '6f1d2c3b-0000-4000-8000-00000000000a';

function robot(spec: Record<string, unknown> = {}, meta: Record<string, unknown> = {}): RobotAccountObject {
  return {
    apiVersion: 'wharf.dev/v1alpha1',
    kind: 'RobotAccount',
    metadata: { name: 'ci', namespace: 'platform', uid: UID, generation: 1, ...meta },
    spec: {
      registryRef: { name: 'reg' },
      level: 'project',
      project: 'team-a',
      permissions: [{ project: 'team-a', access: [{ resource: 'repository', action: 'pull' }] }],
      expiresInDays: -1,
      disabled: false,
      ...spec,
    } as Any,
  };
}

const registry = (spec: Record<string, unknown> = {}): Registry => ({
  apiVersion: 'wharf.dev/v1alpha1',
  kind: 'Registry',
  metadata: { name: 'reg', namespace: 'platform', uid: 'r' },
  spec: withDefaults(spec as Any),
});

const ns = (name: string, labels: Record<string, string> = {}, extra: Partial<NamespaceLike> = {}): NamespaceLike => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels }, ...extra });

const credential: Credential = { username: 'robot$team-a+ci', password: 'pw-0123456789abcdef', rotatedAt: '2026-01-01T00:00:00.000Z' };

const liveRobot = (over: Partial<LiveRobot> = {}): LiveRobot => ({
  id: 'id',
  name: 'robot$team-a+ci',
  description: '',
  disabled: false,
  durationDays: -1,
  expiresAt: null,
  permissions: [{ namespace: 'team-a', access: [{ resource: 'repository', action: 'pull' }] }],
  managedBy: 'platform/ci',
  rotatedAt: credential.rotatedAt,
  graceEndsAt: null,
  ...over,
});

describe('robot names and the robot asked of the registry', () => {
  it('names project and system robots the Harbor way, with default Secret names', () => {
    expect(robotFullName(robot())).toBe('robot$team-a+ci');
    expect(robotFullName(robot({ level: 'system', project: undefined, robotName: 'mirror' }))).toBe('robot$mirror');
    expect(credentialsSecretName(robot())).toBe('ci-robot');
    expect(pullSecretName(robot())).toBe('ci-pull');
    expect(credentialsSecretName(robot({ secretName: 'creds' }))).toBe('creds');
    expect(pullSecretName(robot({ pullSecret: { secretName: 'regcred', namespaces: ['x'] } }))).toBe('regcred');
  });

  it('maps permissions, expiry, description and disabled, and records the manager', () => {
    const r = renderRobot(robot({ description: 'CI', disabled: true, expiresInDays: 90 }));
    expect(r).toEqual({
      project: 'team-a',
      name: 'ci',
      fullName: 'robot$team-a+ci',
      body: { description: 'CI', disabled: true, durationDays: 90, permissions: [{ namespace: 'team-a', access: [{ resource: 'repository', action: 'pull' }] }], managedBy: 'platform/ci' },
    });
  });

  it('lists what differs, in words, and nothing when in sync', () => {
    const desired = renderRobot(robot({ description: 'CI', expiresInDays: 90 }));
    expect(robotDifferences(liveRobot({ description: 'CI', durationDays: 90 }), desired)).toEqual([]);
    expect(robotDifferences(liveRobot({ disabled: true, permissions: [] }), desired)).toEqual([
      'description "" → "CI"',
      'enabled',
      'expiry -1 → 90 days',
      'permissions [none] → [team-a: repository:pull]',
    ]);
  });
});

describe('credentials Secret', () => {
  it('holds username, password and a dockerconfigjson with auth for the endpoint and the Ingress host', () => {
    const hosts = registryHosts(registry({ ingress: { enabled: true, host: 'r.example.test' } }));
    expect(hosts).toEqual(['reg.platform.svc:5000', 'r.example.test']);
    expect(registryHosts(registry({ external: { url: 'https://wharf.example.test:8443', credentialsSecretRef: { name: 'a' } } }))).toEqual(['wharf.example.test:8443']);
    // spec.pullHosts: a NodePort address the nodes pull by, once even when repeated.
    expect(registryHosts(registry({ pullHosts: ['10.0.0.5:30500', 'reg.platform.svc:5000'] }))).toEqual(['reg.platform.svc:5000', '10.0.0.5:30500']);
    const secret = renderCredentialsSecret(robot(), credential, hosts);
    expect(secret.type).toBe('kubernetes.io/dockerconfigjson');
    const data = Object.fromEntries(Object.entries(secret.data!).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
    expect(data.username).toBe('robot$team-a+ci');
    expect(data.password).toBe(credential.password);
    const auth = Buffer.from(`robot$team-a+ci:${credential.password}`).toString('base64');
    expect(JSON.parse(data['.dockerconfigjson']!)).toEqual({
      auths: {
        'reg.platform.svc:5000': { username: 'robot$team-a+ci', password: credential.password, auth },
        'r.example.test': { username: 'robot$team-a+ci', password: credential.password, auth },
      },
    });
    expect(secret.metadata.ownerReferences).toEqual([{ apiVersion: 'wharf.dev/v1alpha1', kind: 'RobotAccount', name: 'ci', uid: UID, controller: true, blockOwnerDeletion: true }]);
    expect(belongsTo(secret, robot(), 'credentials')).toBe(true);
    expect(belongsTo(secret, robot({}, { uid: 'another' }), 'credentials')).toBe(false);
    expect(robotAccountKeyOf(secret)).toBe('platform/ci');
    expect(JSON.stringify(renderCredentialsSecret(structuredClone(robot()), { ...credential }, [...hosts]))).toBe(JSON.stringify(secret));
  });

  it('is current, stale (an earlier secret) or unusable (missing or edited)', () => {
    const obj = robot();
    const secret = renderCredentialsSecret(obj, credential, ['h']);
    expect(credentialState(obj, secret, liveRobot())).toEqual({ state: 'current', credential: { ...credential, rotateSeen: undefined } });
    expect(credentialState(obj, secret, liveRobot({ rotatedAt: '2026-02-01T00:00:00.000Z' })).state).toBe('stale');
    expect(credentialState(obj, undefined, liveRobot())).toEqual({ state: 'unusable', why: 'Secret ci-robot is missing' });
    const edited = structuredClone(secret);
    edited.data!.password = Buffer.from('typed by hand').toString('base64');
    expect(credentialState(obj, edited, liveRobot())).toEqual({ state: 'unusable', why: 'Secret ci-robot was edited' });
    const emptied = structuredClone(secret);
    emptied.data!.password = '';
    expect(credentialState(obj, emptied, liveRobot()).state).toBe('unusable');
    const noDate = structuredClone(secret);
    delete noDate.metadata.annotations![ROTATED_AT_ANNOTATION];
    expect(credentialState(obj, noDate, liveRobot()).state).toBe('unusable');
    const noDigest = structuredClone(secret);
    delete noDigest.metadata.annotations![DIGEST_ANNOTATION];
    expect(credentialState(obj, noDigest, liveRobot()).state).toBe('unusable');
    // A Secret of that name written for another RobotAccount is not this one's.
    expect(credentialState(robot({}, { uid: 'other' }), secret, liveRobot()).state).toBe('unusable');
  });

  it('rotates when wharf.dev/rotate changes and when the interval has passed, and says when to look again', () => {
    const day = 86_400_000;
    const at = Date.parse(credential.rotatedAt);
    expect(rotationDue(robot(), credential, at + 400 * day)).toEqual({});
    expect(rotationDue(robot({ rotation: { intervalDays: 30, graceSeconds: 60 } }), credential, at + day)).toEqual({ recheckInMs: 29 * day });
    expect(rotationDue(robot({ rotation: { intervalDays: 30, graceSeconds: 60 } }), credential, at + 30 * day)).toEqual({ reason: 'the secret is 30 days old' });
    const annotated = robot({}, { annotations: { 'wharf.dev/rotate': '2' } });
    expect(rotationDue(annotated, { ...credential, rotateSeen: '1' }, at).reason).toBe('annotation wharf.dev/rotate changed to "2"');
    expect(rotationDue(annotated, { ...credential, rotateSeen: '2' }, at)).toEqual({});
    expect(rotationDue(annotated, credential, at).reason).toContain('wharf.dev/rotate');
  });

  it('writes dockerconfigjson with a stable key order', () => {
    expect(dockerConfigJson(['a:1'], 'u', 'p')).toBe('{"auths":{"a:1":{"username":"u","password":"p","auth":"dTpw"}}}');
  });
});

describe('pull-secret targets', () => {
  it('evaluates label selectors as Kubernetes does', () => {
    expect(matchesLabelSelector({}, undefined)).toBe(true);
    expect(matchesLabelSelector({ matchLabels: { team: 'a' } }, { team: 'a', x: 'y' })).toBe(true);
    expect(matchesLabelSelector({ matchLabels: { team: 'a' } }, { team: 'b' })).toBe(false);
    const exprs = (operator: Any, values?: string[]) => ({ matchExpressions: [{ key: 'env', operator, ...(values && { values }) }] });
    expect(matchesLabelSelector(exprs('In', ['dev', 'prod']), { env: 'dev' })).toBe(true);
    expect(matchesLabelSelector(exprs('In', ['dev']), {})).toBe(false);
    expect(matchesLabelSelector(exprs('NotIn', ['dev']), {})).toBe(true);
    expect(matchesLabelSelector(exprs('NotIn', ['dev']), { env: 'dev' })).toBe(false);
    expect(matchesLabelSelector(exprs('Exists'), { env: '' })).toBe(true);
    expect(matchesLabelSelector(exprs('DoesNotExist'), { env: '' })).toBe(false);
  });

  it('targets named namespaces and selected ones, sorted, never a terminating one', () => {
    const obj = robot({ pullSecret: { namespaces: ['zeta', 'missing'], namespaceSelector: { matchLabels: { team: 'a' } } } });
    const all = [ns('zeta'), ns('beta', { team: 'a' }), ns('alpha', { team: 'a' }), ns('other', { team: 'b' }), ns('leaving', { team: 'a' }, { status: { phase: 'Terminating' } })];
    expect(targetNamespaces(obj, all)).toEqual(['alpha', 'beta', 'zeta']);
    expect(targetNamespaces(robot(), all)).toEqual([]);
  });

  it('renders the pull Secret: labelled, annotated with its RobotAccount and the ServiceAccounts it may be in, no owner reference', () => {
    const obj = robot({ pullSecret: { namespaces: ['app'], serviceAccounts: ['default'] } });
    const s = renderPullSecret(obj, 'app', dockerConfigJson(['h'], 'u', 'p'), credential.rotatedAt, ['default', 'builder', 'default']);
    expect(s.metadata).toEqual({
      name: 'ci-pull',
      namespace: 'app',
      labels: { 'app.kubernetes.io/managed-by': 'wharf-operator', 'app.kubernetes.io/part-of': 'wharf', 'wharf.dev/robot-secret': 'pull', 'wharf.dev/robot-account-uid': UID },
      annotations: { 'wharf.dev/robot-account': 'platform/ci', 'wharf.dev/rotated-at': credential.rotatedAt, 'wharf.dev/service-accounts': 'builder,default' },
    });
    expect(s.type).toBe('kubernetes.io/dockerconfigjson');
    expect(Object.keys(s.data!)).toEqual(['.dockerconfigjson']);
    expect(recordedServiceAccounts(s)).toEqual(['builder', 'default']);
    expect(belongsTo(s, obj, 'pull')).toBe(true);
    expect(belongsTo(s, obj, 'credentials')).toBe(false);
  });
});

describe('imagePullSecrets patch', () => {
  const sa = (list?: { name: string }[]) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'app', resourceVersion: '42' }, ...(list && { imagePullSecrets: list }) });

  it('adds only our entry, after the others, guarded by resourceVersion', () => {
    expect(imagePullSecretPatch(sa([{ name: 'theirs' }]), 'ci-pull', true)).toEqual([
      { op: 'replace', path: '/metadata/resourceVersion', value: '42' },
      { op: 'add', path: '/imagePullSecrets/-', value: { name: 'ci-pull' } },
    ]);
    expect(imagePullSecretPatch(sa(), 'ci-pull', true)).toEqual([
      { op: 'replace', path: '/metadata/resourceVersion', value: '42' },
      { op: 'add', path: '/imagePullSecrets', value: [{ name: 'ci-pull' }] },
    ]);
  });

  it('removes only our entry (each copy, from the end) and nothing else', () => {
    expect(imagePullSecretPatch(sa([{ name: 'ci-pull' }, { name: 'theirs' }, { name: 'ci-pull' }]), 'ci-pull', false)).toEqual([
      { op: 'replace', path: '/metadata/resourceVersion', value: '42' },
      { op: 'remove', path: '/imagePullSecrets/2' },
      { op: 'remove', path: '/imagePullSecrets/0' },
    ]);
  });

  it('is nothing when the entry already is as wanted', () => {
    expect(imagePullSecretPatch(sa([{ name: 'ci-pull' }]), 'ci-pull', true)).toBeUndefined();
    expect(imagePullSecretPatch(sa([{ name: 'theirs' }]), 'ci-pull', false)).toBeUndefined();
    expect(imagePullSecretPatch(sa(), 'ci-pull', false)).toBeUndefined();
  });
});
