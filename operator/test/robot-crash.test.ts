// Crash safety of the RobotAccount controller: the operator is killed (SIGKILL) at random points
// of robot creation, rotation and deletion, 20 times, with a pause between receiving a secret and
// writing it (so that some kills land in that window). Restarted each time, it must end with no
// robot in the registry that no RobotAccount manages, no credentials or pull Secret whose secret
// the registry refuses, and no Secret or imagePullSecrets entry of a deleted RobotAccount.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClients } from './support/context.js';
import { apply, createNamespace, getObject, raw, waitFor, type Clients } from './support/kube.js';
import { OperatorProcess, operatorKubeconfig } from './support/operator.js';
import { applyExternalRegistry, RegistryProcess } from './support/registry-process.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

let c: Clients;
let ns: string;
let kubeconfig: string;
let registry: RegistryProcess;
let targets: string[];
let op: OperatorProcess | undefined;

const API = 'wharf.dev/v1alpha1';
const ROUNDS = 20;
const robotsPath = () => `/apis/${API}/namespaces/${ns}/robotaccounts`;
const decode = (secret: Any, key: string): string => Buffer.from(secret.data[key], 'base64').toString('utf8');

/** Whether the registry accepts the credentials: 403 (signed in, may not read the project) rather than 401. */
async function signsIn(username: string, password: string): Promise<boolean> {
  const res = await fetch(`${registry.url}/api/v1/projects/crash`, { headers: { Authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` } });
  if (res.status !== 401 && res.status !== 403) throw new Error(`unexpected ${res.status} for ${username}`);
  return res.status === 403;
}

const startOperator = () =>
  OperatorProcess.start({ kubeconfig, identity: 'crash-op', args: ['--lease-name', 'crash', '--watch-namespace', ns, '--resync', '5'], env: { WHARF_OPERATOR_STEP_DELAY_MS: '400' } });

function robotAccount(name: string): Any {
  return {
    apiVersion: API,
    kind: 'RobotAccount',
    metadata: { name, namespace: ns },
    spec: {
      registryRef: { name: 'ext' },
      level: 'project',
      project: 'crash',
      permissions: [{ project: 'crash', access: [{ resource: 'repository', action: 'pull' }] }],
      rotation: { graceSeconds: 600 },
      pullSecret: { namespaces: targets, serviceAccounts: ['default'] },
    },
  };
}

beforeAll(async () => {
  c = adminClients();
  registry = await RegistryProcess.start();
  kubeconfig = await operatorKubeconfig(c);
  ns = await createNamespace(c, 'crash');
  targets = [await createNamespace(c, 'crash-a'), await createNamespace(c, 'crash-b')];
  await applyExternalRegistry(c, ns, registry);
  await registry.ok('PUT', '/projects/crash', {});
});

afterAll(async () => {
  if (op?.running) await op.stop();
  await registry?.stop();
});

describe('RobotAccount crash safety', () => {
  it('after 20 kills at random points of creation, rotation and deletion, leaves no orphan robot, no failing credential and no leftover entry', async () => {
    const live = new Set<string>();
    let created = 0;
    const kills: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      op = await startOperator();
      // Create, rotate or delete; with nothing to rotate or delete, create.
      const pick = live.size === 0 ? 'create' : (['create', 'rotate', 'rotate', 'delete'] as const)[Math.floor(Math.random() * 4)]!;
      const names = [...live];
      const target = names[Math.floor(Math.random() * names.length)]!;
      if (pick === 'create') {
        const name = `r${++created}`;
        await apply(c, robotAccount(name));
        live.add(name);
      } else if (pick === 'rotate') {
        await raw(c, 'PATCH', `${robotsPath()}/${target}`, { metadata: { annotations: { 'wharf.dev/rotate': `round-${round}` } } }, 'application/merge-patch+json');
      } else {
        await raw(c, 'DELETE', `${robotsPath()}/${target}`);
        live.delete(target);
      }
      const after = Math.floor(Math.random() * 2000);
      await new Promise((r) => setTimeout(r, after));
      await op.kill();
      kills.push(`${pick} +${after}ms`);
    }
    console.log(`[operator] robot crash safety: killed after ${kills.join(', ')}`);

    op = await startOperator();
    // Converged: every RobotAccount Ready at its generation, every deleted one gone, and every
    // rotation answered by a pass that finished. A rotation request is an annotation, which does
    // not change the generation: a RobotAccount killed while rotating is still Ready from its
    // earlier pass until the new operator's pass has injected the new secret and written status.
    await waitFor('convergence', async () => {
      const list = await raw<{ items: Any[] }>(c, 'GET', robotsPath());
      if (list.items.length !== live.size) return undefined;
      const ready = list.items.every((r) => r.status?.observedGeneration === r.metadata.generation && r.status.conditions?.some((x: Any) => x.type === 'Ready' && x.status === 'True'));
      if (!ready) return undefined;
      for (const r of list.items) {
        const creds = await getObject<Any>(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${r.metadata.name}-robot`, namespace: ns } });
        const annotations = creds?.metadata.annotations ?? {};
        if (annotations['wharf.dev/rotate-seen'] !== r.metadata.annotations?.['wharf.dev/rotate']) return undefined;
        if (annotations['wharf.dev/rotated-at'] === undefined || r.status.lastRotationTime !== annotations['wharf.dev/rotated-at']) return undefined;
      }
      return true;
    }, 120_000, 500);

    // No orphan robots: the registry's robots are exactly the live RobotAccounts', each managed by its object.
    const robots = (await registry.ok('GET', '/projects/crash/robots?limit=500')).items;
    expect(robots.map((r: Any) => r.name).sort()).toEqual([...live].map((n) => `robot$crash+${n}`).sort());
    for (const r of robots) expect(r.managedBy).toBe(`${ns}/${r.name.slice('robot$crash+'.length)}`);

    // Every credentials Secret and every pull secret holds a secret the registry accepts, the same one.
    for (const name of live) {
      const creds = await getObject<Any>(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${name}-robot`, namespace: ns } });
      expect(creds, `${name}-robot`).toBeDefined();
      const password = decode(creds, 'password');
      expect(await signsIn(`robot$crash+${name}`, password), `${name}'s credentials`).toBe(true);
      for (const t of targets) {
        const pull = await getObject<Any>(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${name}-pull`, namespace: t } });
        const auth = Object.values(JSON.parse(decode(pull, '.dockerconfigjson')).auths)[0] as Any;
        expect(auth.password, `${t}/${name}-pull`).toBe(password);
      }
    }

    // No leftovers: only live RobotAccounts' Secrets, and only their entries.
    const secrets = await raw<{ items: Any[] }>(c, 'GET', `/api/v1/secrets?labelSelector=${encodeURIComponent('wharf.dev/robot-secret')}`);
    const ours = secrets.items.filter((s) => s.metadata.annotations?.['wharf.dev/robot-account']?.startsWith(`${ns}/`));
    const expected = [...live].flatMap((n) => [`${ns}/${n}-robot`, ...targets.map((t) => `${t}/${n}-pull`)]).sort();
    expect(ours.map((s) => `${s.metadata.namespace}/${s.metadata.name}`).sort()).toEqual(expected);
    for (const t of targets) {
      const sa = await raw<Any>(c, 'GET', `/api/v1/namespaces/${t}/serviceaccounts/default`);
      expect((sa.imagePullSecrets ?? []).map((e: Any) => e.name).sort(), `default in ${t}`).toEqual([...live].map((n) => `${n}-pull`).sort());
    }
  });
});
