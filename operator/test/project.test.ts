// The Project controller against a real registry process (token auth, reached as an external
// Registry) and the real control plane, with the operator as a real process under config/rbac:
// create and update asserted field by field through the registry's API, missing users named,
// drift reverted and reported, ownership, adoption, and both deletion policies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClients } from './support/context.js';
import { apply, createNamespace, getObject, raw, waitFor, type Clients } from './support/kube.js';
import { argoHealth } from './support/argocd.js';
import { computeKStatus } from './support/kstatus.js';
import { OperatorProcess, operatorKubeconfig } from './support/operator.js';
import { applyExternalRegistry, RegistryProcess } from './support/registry-process.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

let c: Clients;
let ns: string;
let op: OperatorProcess;
let registry: RegistryProcess;

const API = 'wharf.dev/v1alpha1';
const projectRef = (name: string) => ({ apiVersion: API, kind: 'Project', metadata: { name, namespace: ns } });
const getProject = (name: string) => getObject<Any>(c, projectRef(name));
const condition = (obj: Any, type: string) => obj?.status?.conditions?.find((x: Any) => x.type === type);

async function waitProject(name: string, check: (p: Any) => boolean, what = 'observed', timeoutMs = 60_000): Promise<Any> {
  return waitFor(`Project ${name} ${what}`, async () => {
    const p = await getProject(name);
    return p && p.status?.observedGeneration === p.metadata.generation && check(p) ? p : undefined;
  }, timeoutMs);
}

async function events(name: string, reason: string): Promise<string[]> {
  const list = await raw<{ items: Any[] }>(c, 'GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events`);
  return list.items.filter((e) => e.regarding?.kind === 'Project' && e.regarding?.name === name && e.reason === reason).map((e) => e.note as string);
}

beforeAll(async () => {
  c = adminClients();
  registry = await RegistryProcess.start();
  const kubeconfig = await operatorKubeconfig(c);
  ns = await createNamespace(c, 'projects');
  await applyExternalRegistry(c, ns, registry);
  await registry.ok('PUT', '/users/alice', { password: 'alice-password-1234' });
  await registry.ok('PUT', '/users/bob', { password: 'bob-password-12345' });
  op = await OperatorProcess.start({ kubeconfig, identity: 'projects-op', args: ['--lease-name', 'projects', '--watch-namespace', ns, '--resync', '3'] });
});

afterAll(async () => {
  await op?.stop();
  await registry?.stop();
});

describe('external Registry', () => {
  it('deploys nothing and is Ready with the version the registry reports', async () => {
    const reg = await waitFor('Registry ext ready', async () => {
      const r = await getObject<Any>(c, { apiVersion: API, kind: 'Registry', metadata: { name: 'ext', namespace: ns } });
      return condition(r, 'Ready')?.status === 'True' ? r : undefined;
    }, 60_000);
    expect(reg.status).toMatchObject({ endpoint: registry.url, external: true, version: '0.1.0', adminSecretName: 'wharf-admin' });
    expect(condition(reg, 'Ready').message).toContain('version 0.1.0');
    const deployments = await raw<{ items: unknown[] }>(c, 'GET', `/apis/apps/v1/namespaces/${ns}/deployments`);
    expect(deployments.items).toEqual([]);
  });

  it('is refused by CEL with deployment fields', async () => {
    const bad = apply(c, { apiVersion: API, kind: 'Registry', metadata: { name: 'bad', namespace: ns }, spec: { external: { url: registry.url, credentialsSecretRef: { name: 'wharf-admin' } }, replicas: 3 } } as Any);
    await expect(bad).rejects.toThrow(/an external Registry deploys nothing/);
  });
});

describe('Project', () => {
  it('creates the project with visibility, quota in bytes and members; a missing user is named and the rest applied', async () => {
    await apply(c, {
      ...projectRef('team-a'),
      spec: {
        registryRef: { name: 'ext' },
        visibility: 'public',
        quota: { storage: '50Gi' },
        members: [
          { kind: 'User', name: 'alice', role: 'developer' },
          { kind: 'User', name: 'ghost', role: 'guest' },
          { kind: 'Group', name: 'oidc:platform', role: 'maintainer' },
        ],
      },
    } as Any);
    const p = await waitProject('team-a', (x) => condition(x, 'Stalled')?.status === 'True');
    expect(condition(p, 'Stalled')).toMatchObject({ reason: 'UserNotFound', message: 'users not found in the registry: ghost; the other members are applied' });
    expect(condition(p, 'Ready').status).toBe('False');
    const project = await registry.ok('GET', '/projects/team-a');
    expect(project).toMatchObject({ public: true, storageLimit: 50 * 2 ** 30, managedBy: `${ns}/team-a`, repositories: 0 });
    expect(p.status).toMatchObject({ projectName: 'team-a', projectId: project.id, usage: { storageBytes: 0, repositories: 0 } });
    expect((await registry.ok('GET', '/projects/team-a/members')).items.map((m: Any) => [m.username, m.role])).toEqual([['alice', 'developer']]);
    expect((await registry.ok('GET', '/projects/team-a/groups')).items).toEqual([{ group: 'oidc:platform', role: 'maintainer' }]);
    expect(p.metadata.finalizers).toEqual(['wharf.dev/project']);
  });

  it('applies a spec update and becomes Ready', async () => {
    const p = await getProject('team-a');
    await apply(c, {
      ...projectRef('team-a'),
      spec: { ...p.spec, visibility: 'private', quota: { storage: '1Gi' }, members: [{ kind: 'User', name: 'alice', role: 'maintainer' }, { kind: 'User', name: 'bob', role: 'guest' }] },
    } as Any);
    const ready = await waitProject('team-a', (x) => condition(x, 'Ready')?.status === 'True', 'ready');
    expect(condition(ready, 'Stalled')).toBeUndefined();
    expect(await registry.ok('GET', '/projects/team-a')).toMatchObject({ public: false, storageLimit: 2 ** 30 });
    expect((await registry.ok('GET', '/projects/team-a/members')).items.map((m: Any) => [m.username, m.role])).toEqual([['alice', 'maintainer'], ['bob', 'guest']]);
    expect((await registry.ok('GET', '/projects/team-a/groups')).items).toEqual([]);
    expect((await events('team-a', 'Updated')).join('\n')).toContain('visibility public → private');
  });

  it('reverts changes made by hand through the API at the next resync and says what it reverted', async () => {
    await registry.ok('PUT', '/projects/team-a', { public: true });
    await registry.ok('DELETE', '/projects/team-a/members/bob');
    await registry.ok('PUT', '/projects/team-a/members/alice', { role: 'guest' });
    await waitFor('drift reverted', async () => {
      const project = await registry.ok('GET', '/projects/team-a');
      const members = (await registry.ok('GET', '/projects/team-a/members')).items.map((m: Any) => [m.username, m.role]);
      return !project.public && JSON.stringify(members) === JSON.stringify([['alice', 'maintainer'], ['bob', 'guest']]) ? true : undefined;
    }, 30_000);
    const notes = await waitFor('DriftReverted event', async () => {
      const n = (await events('team-a', 'DriftReverted')).join('\n');
      return n.includes('visibility public → private') ? n : undefined;
    }, 30_000);
    expect(notes).toContain('user alice role guest → maintainer');
    expect(notes).toContain('user bob added as guest');
  });

  it('stalls a second Project naming the same project, naming the first', async () => {
    await apply(c, { ...projectRef('team-a-copy'), spec: { registryRef: { name: 'ext' }, projectName: 'team-a', visibility: 'public' } } as Any);
    const p = await waitProject('team-a-copy', (x) => condition(x, 'Stalled')?.status === 'True');
    expect(condition(p, 'Stalled')).toMatchObject({ reason: 'ProjectOwnedElsewhere', message: `project "team-a" is managed by Project ${ns}/team-a` });
    expect((await registry.ok('GET', '/projects/team-a')).public).toBe(false);
    await raw(c, 'DELETE', `/apis/wharf.dev/v1alpha1/namespaces/${ns}/projects/team-a-copy`);
    await waitFor('copy deleted', async () => ((await getProject('team-a-copy')) ? undefined : true), 30_000);
    expect(await registry.ok('GET', '/projects/team-a')).toMatchObject({ managedBy: `${ns}/team-a` });
  });

  it('adopts a project made by hand only with spec.adopt', async () => {
    await registry.ok('PUT', '/projects/legacy', { public: true });
    await apply(c, { ...projectRef('legacy'), spec: { registryRef: { name: 'ext' }, visibility: 'private' } } as Any);
    const stalled = await waitProject('legacy', (x) => condition(x, 'Stalled')?.status === 'True');
    expect(condition(stalled, 'Stalled')).toMatchObject({ reason: 'ProjectExists' });
    expect(await registry.ok('GET', '/projects/legacy')).toMatchObject({ public: true, managedBy: null });
    await apply(c, { ...projectRef('legacy'), spec: { registryRef: { name: 'ext' }, visibility: 'private', adopt: true } } as Any);
    await waitProject('legacy', (x) => condition(x, 'Ready')?.status === 'True', 'ready');
    expect(await registry.ok('GET', '/projects/legacy')).toMatchObject({ public: false, managedBy: `${ns}/legacy` });
    expect(await events('legacy', 'Adopted')).toEqual(['Adopted existing project legacy']);
  });

  it('Retain keeps the project and releases it; Delete removes it', async () => {
    await raw(c, 'DELETE', `/apis/wharf.dev/v1alpha1/namespaces/${ns}/projects/legacy`);
    await waitFor('legacy deleted', async () => ((await getProject('legacy')) ? undefined : true), 30_000);
    expect(await registry.ok('GET', '/projects/legacy')).toMatchObject({ public: false, managedBy: null });

    const p = await getProject('team-a');
    await apply(c, { ...projectRef('team-a'), spec: { ...p.spec, deletionPolicy: 'Delete' } } as Any);
    await waitProject('team-a', (x) => x.spec.deletionPolicy === 'Delete');
    await raw(c, 'DELETE', `/apis/wharf.dev/v1alpha1/namespaces/${ns}/projects/team-a`);
    await waitFor('team-a deleted', async () => ((await getProject('team-a')) ? undefined : true), 30_000);
    expect((await registry.api('GET', '/projects/team-a')).status).toBe(404);
  });
});

describe('Project health for GitOps tools', () => {
  // kstatus (Flux, kubectl wait) and the Argo CD health check (config/argocd/health.lua) agree at each step.
  const health = (p: Any) => ({ kstatus: computeKStatus(p).status, argo: argoHealth(p).status, kstatusMessage: computeKStatus(p).message, argoMessage: argoHealth(p).message });

  it('is Failed/Degraded while its Registry is missing, Current/Healthy once in sync, and InProgress/Progressing on a new generation', async () => {
    const created = await apply(c, { ...projectRef('gitops'), spec: { registryRef: { name: 'later' }, visibility: 'private' } } as Any);
    expect(argoHealth(created).status).toBe('Progressing');

    const failed = health(await waitProject('gitops', (x) => condition(x, 'Stalled')?.status === 'True'));
    expect(failed).toEqual({ kstatus: 'Failed', argo: 'Degraded', kstatusMessage: `Registry later not found in namespace ${ns}`, argoMessage: `Registry later not found in namespace ${ns}` });

    await apply(c, { apiVersion: API, kind: 'Registry', metadata: { name: 'later', namespace: ns }, spec: { external: { url: registry.url, credentialsSecretRef: { name: 'wharf-admin' } } } } as Any);
    const current = health(await waitProject('gitops', (x) => condition(x, 'Ready')?.status === 'True', 'ready'));
    expect(current).toMatchObject({ kstatus: 'Current', argo: 'Healthy', argoMessage: 'Project gitops is in sync' });

    const changed = await apply(c, { ...projectRef('gitops'), spec: { registryRef: { name: 'later' }, visibility: 'public' } } as Any);
    expect(health(changed)).toMatchObject({ kstatus: 'InProgress', argo: 'Progressing' });
    expect(health(await waitProject('gitops', (x) => condition(x, 'Ready')?.status === 'True', 'ready'))).toMatchObject({ kstatus: 'Current', argo: 'Healthy' });
    expect((await registry.ok('GET', '/projects/gitops')).public).toBe(true);
  });
});
