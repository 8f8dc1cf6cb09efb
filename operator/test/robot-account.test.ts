// The RobotAccount controller and pull-secret injection against a real registry process (token
// auth, reached as an external Registry) and the real control plane, with the operator as a real
// process under config/rbac: skopeo, given nothing but an injected .dockerconfigjson, pulls from a
// private project and is refused a push; rotation reaches every target namespace and the old
// secret works for the grace window only; namespaces that start or stop matching, Secrets and
// ServiceAccount entries removed by hand, foreign Secrets, and deletion leaving nothing behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClients } from './support/context.js';
import { argoHealth } from './support/argocd.js';
import { computeKStatus } from './support/kstatus.js';
import { apply, createNamespace, getObject, HttpError, raw, waitFor, type Clients } from './support/kube.js';
import { copyWith, dockerConfigFor, pullWith, pushImage } from './support/oci-clients.js';
import { imagePullSecretPatch } from '../src/resources/robot-account/pull-secret.js';
import { OperatorProcess, operatorKubeconfig } from './support/operator.js';
import { applyExternalRegistry, REGISTRY_ADMIN_PASSWORD, RegistryProcess } from './support/registry-process.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

let c: Clients;
let ns: string;
let op: OperatorProcess;
let registry: RegistryProcess;
let host: string;
let image: string;
/** Target namespaces: app1 selected by label, app2 by name. */
let app1: string;
let app2: string;

const API = 'wharf.dev/v1alpha1';
const GRACE_SECONDS = 15;
const robotRef = (name: string) => ({ apiVersion: API, kind: 'RobotAccount', metadata: { name, namespace: ns } });
const getRobot = (name: string) => getObject<Any>(c, robotRef(name));
const condition = (obj: Any, type: string) => obj?.status?.conditions?.find((x: Any) => x.type === type);
const secretPath = (namespace: string, name: string) => `/api/v1/namespaces/${namespace}/secrets/${name}`;
const saPath = (namespace: string, name: string) => `/api/v1/namespaces/${namespace}/serviceaccounts/${name}`;

async function getSecret(namespace: string, name: string): Promise<Any | undefined> {
  return getObject<Any>(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace } });
}
const decode = (secret: Any, key: string): string => Buffer.from(secret.data[key], 'base64').toString('utf8');
/** The password in an injected pull Secret's .dockerconfigjson (for the registry's host). */
const pullPassword = (secret: Any): string => JSON.parse(decode(secret, '.dockerconfigjson')).auths[host].password;
const entries = async (namespace: string, sa: string): Promise<string[]> => ((await raw<Any>(c, 'GET', saPath(namespace, sa))).imagePullSecrets ?? []).map((e: Any) => e.name);

async function waitRobot(name: string, check: (r: Any) => boolean, what: string, timeoutMs = 60_000): Promise<Any> {
  return waitFor(`RobotAccount ${name} ${what}`, async () => {
    const r = await getRobot(name);
    return r && r.status?.observedGeneration === r.metadata.generation && check(r) ? r : undefined;
  }, timeoutMs, 200);
}
const isReady = (r: Any) => condition(r, 'Ready')?.status === 'True';

async function events(name: string, reason: string): Promise<string[]> {
  const list = await raw<{ items: Any[] }>(c, 'GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events`);
  return list.items.filter((e) => e.regarding?.kind === 'RobotAccount' && e.regarding?.name === name && e.reason === reason).map((e) => e.note as string);
}

async function labelNamespace(name: string, labels: Record<string, string | null>): Promise<void> {
  await raw(c, 'PATCH', `/api/v1/namespaces/${name}`, { metadata: { labels } }, 'application/merge-patch+json');
}

async function createServiceAccount(namespace: string, name: string, body: Record<string, unknown> = {}): Promise<void> {
  await raw(c, 'POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace }, ...body });
}

/** The kube-controller-manager creates `default` in every namespace; wait for it. */
async function defaultServiceAccount(namespace: string): Promise<void> {
  await waitFor(`ServiceAccount default in ${namespace}`, async () => ((await getObject(c, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace } })) ? true : undefined), 30_000, 200);
}

const ciSpec = () => ({
  registryRef: { name: 'ext' },
  level: 'project',
  project: 'team',
  description: 'CI pulls',
  permissions: [{ project: 'team', access: [{ resource: 'repository', action: 'pull' }] }],
  expiresInDays: 30,
  rotation: { graceSeconds: GRACE_SECONDS },
  pullSecret: { namespaces: [app2], namespaceSelector: { matchLabels: { [`robots-${process.pid}`]: 'yes' } }, serviceAccounts: ['default', 'builder'] },
});
const TARGET_LABEL = () => `robots-${process.pid}`;

beforeAll(async () => {
  c = adminClients();
  registry = await RegistryProcess.start();
  host = new URL(registry.url).host;
  const kubeconfig = await operatorKubeconfig(c);
  ns = await createNamespace(c, 'robots');
  app1 = await createNamespace(c, 'app1');
  app2 = await createNamespace(c, 'app2');
  await labelNamespace(app1, { [TARGET_LABEL()]: 'yes' });
  await applyExternalRegistry(c, ns, registry);
  await registry.ok('PUT', '/projects/team', { public: false });
  image = `${host}/team/app:v1`;
  await pushImage(image, dockerConfigFor(host, 'admin', REGISTRY_ADMIN_PASSWORD));
  // builder in app1 already holds another pull secret: it must keep it.
  await createServiceAccount(app1, 'builder', { metadata: { name: 'builder', namespace: app1, labels: { keep: 'me' } }, imagePullSecrets: [{ name: 'theirs' }] });
  await defaultServiceAccount(app1);
  await defaultServiceAccount(app2);
  op = await OperatorProcess.start({ kubeconfig, identity: 'robots-op', args: ['--lease-name', 'robots', '--watch-namespace', ns, '--resync', '3'] });
});

afterAll(async () => {
  await op?.stop();
  await registry?.stop();
});

describe('RobotAccount', () => {
  it('creates the robot, the credentials Secret and a pull secret in each target namespace, with ServiceAccount entries', async () => {
    // An anonymous pull of the private project is refused: what follows proves the credential.
    expect((await pullWith('{"auths":{}}', image)).ok).toBe(false);
    await apply(c, { ...robotRef('ci'), spec: ciSpec() } as Any);
    const r = await waitRobot('ci', isReady, 'Ready');
    const robot = await registry.ok('GET', '/projects/team/robots/ci');
    expect(robot).toMatchObject({
      name: 'robot$team+ci',
      description: 'CI pulls',
      disabled: false,
      durationDays: 30,
      managedBy: `${ns}/ci`,
      permissions: [{ namespace: 'team', access: [{ resource: 'repository', action: 'pull' }] }],
    });
    expect(r.status).toMatchObject({ robotName: 'robot$team+ci', robotId: robot.id, expiresAt: robot.expiresAt, lastRotationTime: robot.rotatedAt, secretName: 'ci-robot', pullSecretNamespaces: 2 });
    expect(r.metadata.finalizers).toEqual(['wharf.dev/robot-account']);
    expect(condition(r, 'Ready').message).toBe('Robot robot$team+ci is in sync; pull secret in 2 namespaces');

    const creds = await getSecret(ns, 'ci-robot');
    expect(creds.type).toBe('kubernetes.io/dockerconfigjson');
    expect(decode(creds, 'username')).toBe('robot$team+ci');
    const password = decode(creds, 'password');
    expect(password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(JSON.parse(decode(creds, '.dockerconfigjson'))).toEqual({
      auths: { [host]: { username: 'robot$team+ci', password, auth: Buffer.from(`robot$team+ci:${password}`).toString('base64') } },
    });
    expect(creds.metadata.ownerReferences).toMatchObject([{ kind: 'RobotAccount', name: 'ci', uid: r.metadata.uid, controller: true }]);

    for (const target of [app1, app2]) {
      const pull = await getSecret(target, 'ci-pull');
      expect(pull.type).toBe('kubernetes.io/dockerconfigjson');
      expect(Object.keys(pull.data)).toEqual(['.dockerconfigjson']);
      expect(decode(pull, '.dockerconfigjson')).toBe(decode(creds, '.dockerconfigjson'));
      expect(pull.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'wharf-operator', 'wharf.dev/robot-secret': 'pull' });
      expect(pull.metadata.annotations['wharf.dev/robot-account']).toBe(`${ns}/ci`);
      expect(pull.metadata.ownerReferences).toBeUndefined();
      await waitFor(`default in ${target} has the entry`, async () => ((await entries(target, 'default')).includes('ci-pull') ? true : undefined), 30_000, 200);
    }
    // builder exists only in app1, and keeps its own entry first.
    expect(await entries(app1, 'builder')).toEqual(['theirs', 'ci-pull']);
    expect((await raw<Any>(c, 'GET', saPath(app1, 'builder'))).metadata.labels).toEqual({ keep: 'me' });
  });

  it('skopeo, given only the injected .dockerconfigjson, pulls from the private project and is refused a push', async () => {
    const pull = decode(await getSecret(app1, 'ci-pull'), '.dockerconfigjson');
    const pulled = await pullWith(pull, image);
    expect(pulled.output).not.toMatch(/denied|unauthorized/i);
    expect(pulled.ok).toBe(true);
    const pushed = await copyWith(pull, image, `${host}/team/app:from-robot`);
    expect(pushed.ok).toBe(false);
    expect(pushed.output).toMatch(/denied|unauthorized|authentication required/i);
    expect((await pullWith(pull, `${host}/team/app:from-robot`)).ok).toBe(false);
  });

  it('gives a ServiceAccount created later its entry, and restores a removed entry and a deleted pull secret', async () => {
    await createServiceAccount(app2, 'builder');
    await waitFor('builder in app2 has the entry', async () => ((await entries(app2, 'builder')).includes('ci-pull') ? true : undefined), 30_000, 200);

    const sa = await raw<Any>(c, 'GET', saPath(app2, 'default'));
    const at = sa.imagePullSecrets.findIndex((e: Any) => e.name === 'ci-pull');
    await raw(c, 'PATCH', saPath(app2, 'default'), [{ op: 'remove', path: `/imagePullSecrets/${at}` }], 'application/json-patch+json');
    await waitFor('entry restored', async () => ((await entries(app2, 'default')).includes('ci-pull') ? true : undefined), 30_000, 200);

    const before = await getSecret(app2, 'ci-pull');
    const rotationBefore = (await getRobot('ci')).status.lastRotationTime;
    await raw(c, 'DELETE', secretPath(app2, 'ci-pull'));
    const back = await waitFor('pull secret back', async () => {
      const s = await getSecret(app2, 'ci-pull');
      return s && s.metadata.uid !== before.metadata.uid ? s : undefined;
    }, 30_000, 200);
    // Restored from the credentials Secret: the same secret, no rotation.
    expect(back.data).toEqual(before.data);
    expect((await getRobot('ci')).status.lastRotationTime).toBe(rotationBefore);

    await raw(c, 'PATCH', secretPath(app2, 'ci-pull'), { data: { '.dockerconfigjson': Buffer.from('{"auths":{}}').toString('base64') } }, 'application/merge-patch+json');
    await waitFor('edited pull secret restored', async () => ((await getSecret(app2, 'ci-pull'))?.data['.dockerconfigjson'] === before.data['.dockerconfigjson'] ? true : undefined), 30_000, 200);
  });

  it('patches imagePullSecrets only while the ServiceAccount is as read: the apiserver refuses the patch (409) after another change', async () => {
    const app5 = await createNamespace(c, 'app5');
    await createServiceAccount(app5, 'shared', { imagePullSecrets: [{ name: 'a' }] });
    const read = await raw<Any>(c, 'GET', saPath(app5, 'shared'));
    await raw(c, 'PATCH', saPath(app5, 'shared'), { imagePullSecrets: [{ name: 'a' }, { name: 'b' }] }, 'application/merge-patch+json');
    const stale = raw(c, 'PATCH', saPath(app5, 'shared'), imagePullSecretPatch(read, 'ci-pull', true), 'application/json-patch+json');
    await expect(stale).rejects.toMatchObject({ code: 409 });
    const fresh = await raw<Any>(c, 'GET', saPath(app5, 'shared'));
    const patched = await raw<Any>(c, 'PATCH', saPath(app5, 'shared'), imagePullSecretPatch(fresh, 'ci-pull', true), 'application/json-patch+json');
    expect(patched.imagePullSecrets).toEqual([{ name: 'a' }, { name: 'b' }, { name: 'ci-pull' }]);
  });

  it('injects into a namespace labelled to match, and removes Secret and entry when it stops matching, leaving other entries alone', async () => {
    const app3 = await createNamespace(c, 'app3');
    await defaultServiceAccount(app3);
    await createServiceAccount(app3, 'builder', { secrets: [{ name: 'token-ref' }], imagePullSecrets: [{ name: 'first' }, { name: 'second' }] });
    await labelNamespace(app3, { [TARGET_LABEL()]: 'yes' });
    await waitFor('pull secret and entries in app3', async () => {
      const ok = (await getSecret(app3, 'ci-pull')) && (await entries(app3, 'default')).includes('ci-pull') && (await entries(app3, 'builder')).includes('ci-pull');
      return ok ? true : undefined;
    }, 30_000, 200);
    expect(await entries(app3, 'builder')).toEqual(['first', 'second', 'ci-pull']);
    await waitRobot('ci', (r) => r.status.pullSecretNamespaces === 3, '3 namespaces');

    await labelNamespace(app3, { [TARGET_LABEL()]: null });
    await waitFor('pull secret and entries gone from app3', async () => {
      const gone = !(await getSecret(app3, 'ci-pull')) && !(await entries(app3, 'default')).includes('ci-pull') && !(await entries(app3, 'builder')).includes('ci-pull');
      return gone ? true : undefined;
    }, 30_000, 200);
    const builder = await raw<Any>(c, 'GET', saPath(app3, 'builder'));
    expect(builder.imagePullSecrets).toEqual([{ name: 'first' }, { name: 'second' }]);
    expect(builder.secrets).toEqual([{ name: 'token-ref' }]);
    await waitRobot('ci', (r) => r.status.pullSecretNamespaces === 2, '2 namespaces');
  });

  it('after wharf.dev/rotate changes, every target namespace holds the new secret; the old one pulls during the grace window and not after', async () => {
    const oldConfig = decode(await getSecret(app1, 'ci-pull'), '.dockerconfigjson');
    const oldPassword = decode(await getSecret(ns, 'ci-robot'), 'password');
    const before = await getRobot('ci');
    await raw(c, 'PATCH', `/apis/${API}/namespaces/${ns}/robotaccounts/ci`, { metadata: { annotations: { 'wharf.dev/rotate': 'first' } } }, 'application/merge-patch+json');
    const newPassword = await waitFor('every copy rotated', async () => {
      const creds = decode(await getSecret(ns, 'ci-robot'), 'password');
      if (creds === oldPassword) return undefined;
      for (const target of [app1, app2]) if (pullPassword(await getSecret(target, 'ci-pull')) !== creds) return undefined;
      return creds;
    }, 30_000, 100);
    const robot = await registry.ok('GET', '/projects/team/robots/ci');
    expect(Date.parse(robot.graceEndsAt) - Date.parse(robot.rotatedAt)).toBe(GRACE_SECONDS * 1000);
    const after = await waitRobot('ci', (r) => r.status.lastRotationTime === robot.rotatedAt, 'status shows the rotation');
    expect(after.status.lastRotationTime).not.toBe(before.status.lastRotationTime);
    expect(await events('ci', 'Rotated')).toContain('Rotated the secret of robot$team+ci: annotation wharf.dev/rotate changed to "first"');
    expect((await getSecret(ns, 'ci-robot')).metadata.annotations['wharf.dev/rotate-seen']).toBe('first');

    // Inside the window (the registry says until when) the old secret still pulls …
    expect(Date.now()).toBeLessThan(Date.parse(robot.graceEndsAt));
    expect((await pullWith(oldConfig, image)).ok).toBe(true);
    expect((await pullWith(dockerConfigFor(host, 'robot$team+ci', newPassword), image)).ok).toBe(true);
    // … and once it has closed, it does not.
    const refused = await waitFor('the old secret refused', async () => {
      const outcome = await pullWith(oldConfig, image);
      return outcome.ok ? undefined : outcome;
    }, 60_000, 1000);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(robot.graceEndsAt));
    expect(refused.output).toMatch(/denied|unauthorized|authentication required/i);
    expect((await pullWith(decode(await getSecret(app2, 'ci-pull'), '.dockerconfigjson'), image)).ok).toBe(true);
  });

  it('with graceSeconds 0 a rotation cuts the old secret off at once', async () => {
    const oldConfig = decode(await getSecret(app1, 'ci-pull'), '.dockerconfigjson');
    const oldPassword = pullPassword(await getSecret(app1, 'ci-pull'));
    await apply(c, { ...robotRef('ci'), metadata: { ...robotRef('ci').metadata, annotations: { 'wharf.dev/rotate': 'leaked' } }, spec: { ...ciSpec(), rotation: { graceSeconds: 0 } } } as Any);
    await waitFor('every copy rotated', async () => {
      for (const target of [app1, app2]) if (pullPassword(await getSecret(target, 'ci-pull')) === oldPassword) return undefined;
      return true;
    }, 30_000, 100);
    expect((await registry.ok('GET', '/projects/team/robots/ci')).graceEndsAt).toBeNull();
    expect((await pullWith(oldConfig, image)).ok).toBe(false);
    expect((await pullWith(decode(await getSecret(app1, 'ci-pull'), '.dockerconfigjson'), image)).ok).toBe(true);
    await waitRobot('ci', isReady, 'Ready');
  });

  it('restores a deleted or edited credentials Secret by rotating, and the pull secrets follow', async () => {
    for (const damage of ['delete', 'edit'] as const) {
      const old = await getSecret(ns, 'ci-robot');
      const oldPassword = decode(old, 'password');
      if (damage === 'delete') await raw(c, 'DELETE', secretPath(ns, 'ci-robot'));
      else await raw(c, 'PATCH', secretPath(ns, 'ci-robot'), { data: { password: Buffer.from('typed-by-hand-0123456789').toString('base64') } }, 'application/merge-patch+json');
      const restored = await waitFor(`credentials Secret restored after ${damage}`, async () => {
        const s = await getSecret(ns, 'ci-robot');
        const p = s && decode(s, 'password');
        return p && p !== oldPassword && p !== 'typed-by-hand-0123456789' ? p : undefined;
      }, 30_000, 100);
      await waitFor('pull secrets follow', async () => {
        for (const target of [app1, app2]) if (pullPassword(await getSecret(target, 'ci-pull')) !== restored) return undefined;
        return true;
      }, 30_000, 100);
      expect((await pullWith(dockerConfigFor(host, 'robot$team+ci', restored), image)).ok).toBe(true);
    }
    const notes = (await events('ci', 'Rotated')).join('\n');
    expect(notes).toContain('Secret ci-robot is missing');
    expect(notes).toContain('Secret ci-robot was edited');
  });

  it('reverts a change made to the robot by hand and says so', async () => {
    await registry.ok('PUT', '/projects/team/robots/ci', { description: 'changed by hand', permissions: [{ access: [{ resource: 'repository', action: 'push' }] }] });
    await waitFor('robot reverted', async () => {
      const robot = await registry.ok('GET', '/projects/team/robots/ci');
      return robot.description === 'CI pulls' && robot.permissions[0].access[0].action === 'pull' ? true : undefined;
    }, 30_000, 200);
    const notes = (await waitFor('DriftReverted event', async () => {
      const n = (await events('ci', 'DriftReverted')).join('\n');
      return n ? n : undefined;
    }, 30_000)).toString();
    expect(notes).toContain('description "changed by hand" → "CI pulls"');
  });

  it('leaves a foreign Secret of the pull-secret name untouched and names it, while the other namespaces converge', async () => {
    const app4 = await createNamespace(c, 'app4');
    await defaultServiceAccount(app4);
    const foreign = await raw<Any>(c, 'POST', `/api/v1/namespaces/${app4}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ci-pull' }, stringData: { note: 'mine' } });
    await labelNamespace(app4, { [TARGET_LABEL()]: 'yes' });
    const stalled = await waitRobot('ci', (r) => condition(r, 'Stalled')?.status === 'True', 'Stalled');
    expect(condition(stalled, 'Stalled')).toMatchObject({
      reason: 'PullSecretConflict',
      message: `pull secret not written where a Secret of that name exists that this RobotAccount does not own: ${app4}/ci-pull (not created by Wharf); 2 other namespaces have it`,
    });
    expect(stalled.status.pullSecretNamespaces).toBe(2);
    expect(condition(stalled, 'Ready').status).toBe('False');
    const still = await raw<Any>(c, 'GET', secretPath(app4, 'ci-pull'));
    expect(still.metadata.resourceVersion).toBe(foreign.metadata.resourceVersion);
    expect(still.data).toEqual(foreign.data);
    expect(await entries(app4, 'default')).toEqual([]);

    // A second RobotAccount naming the same Secret in app2: Stalled, naming the first; app2 keeps ci's Secret.
    const ciSecret = await getSecret(app2, 'ci-pull');
    await apply(c, {
      ...robotRef('other'),
      spec: { registryRef: { name: 'ext' }, level: 'project', project: 'team', permissions: [{ project: 'team', access: [{ resource: 'repository', action: 'pull' }] }], pullSecret: { secretName: 'ci-pull', namespaces: [app2] } },
    } as Any);
    const other = await waitRobot('other', (r) => condition(r, 'Stalled')?.status === 'True', 'Stalled');
    expect(condition(other, 'Stalled').message).toContain(`${app2}/ci-pull (belongs to RobotAccount ${ns}/ci)`);
    await raw(c, 'DELETE', `/apis/${API}/namespaces/${ns}/robotaccounts/other`);
    await waitFor('other deleted', async () => ((await getRobot('other')) ? undefined : true), 30_000, 200);
    expect((await getSecret(app2, 'ci-pull')).metadata.uid).toBe(ciSecret.metadata.uid);
    expect((await registry.api('GET', '/projects/team/robots/other')).status).toBe(404);

    // Once the foreign Secret is gone, app4 converges.
    await raw(c, 'DELETE', secretPath(app4, 'ci-pull'));
    await waitRobot('ci', (r) => isReady(r) && r.status.pullSecretNamespaces === 3, 'Ready in 3 namespaces');
    expect((await getSecret(app4, 'ci-pull')).metadata.labels['wharf.dev/robot-secret']).toBe('pull');
    await labelNamespace(app4, { [TARGET_LABEL()]: null });
    await waitFor('app4 cleaned', async () => ((await getSecret(app4, 'ci-pull')) ? undefined : true), 30_000, 200);
  });

  it('does not take over a robot made by hand, nor one another RobotAccount manages', async () => {
    await registry.ok('PUT', '/projects/team/robots/manual', { description: 'by hand', permissions: [{ access: [{ resource: 'repository', action: 'pull' }] }] });
    await apply(c, { ...robotRef('manual'), spec: { registryRef: { name: 'ext' }, level: 'project', project: 'team', permissions: [{ project: 'team', access: [{ resource: 'repository', action: 'push' }] }] } } as Any);
    const manual = await waitRobot('manual', (r) => condition(r, 'Stalled')?.status === 'True', 'Stalled');
    expect(condition(manual, 'Stalled').reason).toBe('RobotExists');
    expect(await registry.ok('GET', '/projects/team/robots/manual')).toMatchObject({ description: 'by hand', managedBy: null });

    await apply(c, { ...robotRef('ci-copy'), spec: { ...ciSpec(), robotName: 'ci', pullSecret: undefined } } as Any);
    const copy = await waitRobot('ci-copy', (r) => condition(r, 'Stalled')?.status === 'True', 'Stalled');
    expect(condition(copy, 'Stalled')).toMatchObject({ reason: 'RobotOwnedElsewhere', message: `robot "robot$team+ci" is managed by RobotAccount ${ns}/ci` });
    expect(await getSecret(ns, 'ci-copy-robot')).toBeUndefined();
    for (const name of ['manual', 'ci-copy']) await raw(c, 'DELETE', `/apis/${API}/namespaces/${ns}/robotaccounts/${name}`);
    await waitFor('both deleted', async () => ((await getRobot('manual')) || (await getRobot('ci-copy')) ? undefined : true), 30_000, 200);
    // Neither deleted a robot it does not manage.
    expect((await registry.api('GET', '/projects/team/robots/manual')).status).toBe(200);
    expect((await registry.api('GET', '/projects/team/robots/ci')).status).toBe(200);
  });

  it('manages a system robot the same way, and disables it when asked', async () => {
    const spec = { registryRef: { name: 'ext' }, level: 'system', robotName: `mirror-${process.pid}`, permissions: [{ project: '*', access: [{ resource: 'repository', action: 'pull' }] }] };
    await apply(c, { ...robotRef('mirror'), spec } as Any);
    const r = await waitRobot('mirror', isReady, 'Ready');
    const name = `robot$mirror-${process.pid}`;
    expect(r.status.robotName).toBe(name);
    expect(await registry.ok('GET', `/robots/mirror-${process.pid}`)).toMatchObject({ name, project: null, disabled: false, managedBy: `${ns}/mirror` });
    const creds = await getSecret(ns, 'mirror-robot');
    expect(decode(creds, 'username')).toBe(name);
    expect((await pullWith(decode(creds, '.dockerconfigjson'), image)).ok).toBe(true);

    await apply(c, { ...robotRef('mirror'), spec: { ...spec, disabled: true } } as Any);
    await waitFor('robot disabled', async () => ((await registry.ok('GET', `/robots/mirror-${process.pid}`)).disabled ? true : undefined), 30_000, 200);
    expect((await pullWith(decode(creds, '.dockerconfigjson'), image)).ok).toBe(false);

    await raw(c, 'DELETE', `/apis/${API}/namespaces/${ns}/robotaccounts/mirror`);
    await waitFor('mirror deleted', async () => ((await getRobot('mirror')) ? undefined : true), 30_000, 200);
    expect((await registry.api('GET', `/robots/mirror-${process.pid}`)).status).toBe(404);
    expect(await getSecret(ns, 'mirror-robot')).toBeUndefined();
  });

  it('deleting the RobotAccount removes the robot, every Secret and every entry, and keeps the other entries', async () => {
    const uid = (await getRobot('ci')).metadata.uid;
    await raw(c, 'DELETE', `/apis/${API}/namespaces/${ns}/robotaccounts/ci`);
    await waitFor('RobotAccount gone', async () => ((await getRobot('ci')) ? undefined : true), 60_000, 200);
    expect((await registry.api('GET', '/projects/team/robots/ci')).status).toBe(404);
    const left = await raw<{ items: Any[] }>(c, 'GET', `/api/v1/secrets?labelSelector=${encodeURIComponent(`wharf.dev/robot-account-uid=${uid}`)}`);
    expect(left.items.map((s) => `${s.metadata.namespace}/${s.metadata.name}`)).toEqual([]);
    for (const target of [app1, app2]) {
      expect(await entries(target, 'default')).toEqual([]);
      expect(await entries(target, 'builder')).toEqual(target === app1 ? ['theirs'] : []);
    }
    await expect(raw(c, 'GET', secretPath(ns, 'ci-robot'))).rejects.toBeInstanceOf(HttpError);
  });
});

describe('RobotAccount health for GitOps tools', () => {
  // kstatus (Flux, kubectl wait) and the Argo CD health check (config/argocd/health.lua) agree at each step.
  const health = (r: Any) => ({ kstatus: computeKStatus(r).status, argo: argoHealth(r).status, kstatusMessage: computeKStatus(r).message, argoMessage: argoHealth(r).message });
  const spec = (description: string) => ({
    registryRef: { name: 'later' },
    level: 'project',
    project: 'team',
    description,
    permissions: [{ project: 'team', access: [{ resource: 'repository', action: 'pull' }] }],
  });

  it('is Failed/Degraded while its Registry is missing, Current/Healthy once in sync, and InProgress/Progressing on a new generation', async () => {
    const created = await apply(c, { ...robotRef('gitops'), spec: spec('first') } as Any);
    expect(argoHealth(created).status).toBe('Progressing');

    const failed = health(await waitRobot('gitops', (r) => condition(r, 'Stalled')?.status === 'True', 'Stalled'));
    expect(failed).toMatchObject({ kstatus: 'Failed', argo: 'Degraded' });
    expect(failed.argoMessage).toBe(failed.kstatusMessage);
    expect(failed.kstatusMessage).toContain('later');

    await apply(c, { apiVersion: API, kind: 'Registry', metadata: { name: 'later', namespace: ns }, spec: { external: { url: registry.url, credentialsSecretRef: { name: 'wharf-admin' } } } } as Any);
    expect(health(await waitRobot('gitops', isReady, 'Ready'))).toMatchObject({ kstatus: 'Current', argo: 'Healthy' });

    const changed = await apply(c, { ...robotRef('gitops'), spec: spec('second') } as Any);
    expect(health(changed)).toMatchObject({ kstatus: 'InProgress', argo: 'Progressing' });
    expect(health(await waitRobot('gitops', isReady, 'Ready'))).toMatchObject({ kstatus: 'Current', argo: 'Healthy' });
    expect((await registry.ok('GET', '/projects/team/robots/gitops')).description).toBe('second');
  });
});
