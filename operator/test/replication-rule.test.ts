// The ReplicationRule controller on the real control plane, with the operator as a real process
// under config/rbac: the source is a real registry process reached as an external Registry, the
// destination a second real registry process (token auth) on loopback. A rule becomes a remote
// registry and a policy in the source; wrong credentials make a failing execution and an Event;
// wharf.dev/run runs it (an image pushed to the source arrives at the destination with the same
// digest) and runs it again on a new value but not after a restart; a Secret changed on its own
// is sent again within seconds; deleting the rule removes the policy and the remote registry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClients } from './support/context.js';
import { apply, createNamespace, getObject, raw, waitFor, type Clients } from './support/kube.js';
import { computeKStatus } from './support/kstatus.js';
import { digestOf, dockerConfigFor, pushImage } from './support/oci-clients.js';
import { OperatorProcess, operatorKubeconfig } from './support/operator.js';
import { applyExternalRegistry, REGISTRY_ADMIN_PASSWORD, RegistryProcess } from './support/registry-process.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

let c: Clients;
let ns: string;
let kubeconfig: string;
let op: OperatorProcess;
let source: RegistryProcess;
let destination: RegistryProcess;

const API = 'wharf.dev/v1alpha1';
const ruleRef = (name: string) => ({ apiVersion: API, kind: 'ReplicationRule', metadata: { name, namespace: ns } });
const getRule = (name: string) => getObject<Any>(c, ruleRef(name));
const condition = (obj: Any, type: string) => obj?.status?.conditions?.find((x: Any) => x.type === type);
const host = (r: RegistryProcess) => new URL(r.url).host;
const adminAuth = (r: RegistryProcess) => dockerConfigFor(host(r), 'admin', REGISTRY_ADMIN_PASSWORD);

async function waitRule(name: string, check: (r: Any) => boolean, what: string, timeoutMs = 90_000): Promise<Any> {
  return waitFor(`ReplicationRule ${name} ${what}`, async () => {
    const r = await getRule(name);
    return r && r.status?.observedGeneration === r.metadata.generation && check(r) ? r : undefined;
  }, timeoutMs);
}

async function events(name: string, reason: string): Promise<string[]> {
  const list = await raw<{ items: Any[] }>(c, 'GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events`);
  return list.items.filter((e) => e.regarding?.kind === 'ReplicationRule' && e.regarding?.name === name && e.reason === reason).map((e) => e.note as string);
}

async function credentialsSecret(password: string): Promise<void> {
  await apply(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'destination-credentials', namespace: ns }, stringData: { username: 'admin', password } } as never);
}

async function requestRun(value: string): Promise<void> {
  await raw(c, 'PATCH', `/apis/wharf.dev/v1alpha1/namespaces/${ns}/replicationrules/to-destination`, { metadata: { annotations: { 'wharf.dev/run': value } } }, 'application/merge-patch+json');
}

const executionsOf = async (policy: string): Promise<Any[]> => (await source.ok('GET', `/replication/executions?policy=${encodeURIComponent(policy)}`)).items;

beforeAll(async () => {
  c = adminClients();
  [source, destination] = await Promise.all([RegistryProcess.start(), RegistryProcess.start()]);
  kubeconfig = await operatorKubeconfig(c);
  ns = await createNamespace(c, 'replication');
  await applyExternalRegistry(c, ns, source);
  for (const r of [source, destination]) await r.ok('PUT', '/projects/team', { public: false });
  await pushImage(`${host(source)}/team/app:v1`, adminAuth(source));
  op = await OperatorProcess.start({ kubeconfig, identity: 'replication-op', args: ['--lease-name', 'replication', '--watch-namespace', ns, '--resync', '600'] });
}, 240_000);

afterAll(async () => {
  await op?.stop();
  await Promise.all([source?.stop(), destination?.stop()]);
});

describe('ReplicationRule (source: external Registry process; destination: a second registry process on loopback)', () => {
  let policy: string;

  it('creates the remote registry and the policy; wrong credentials make a failing execution, shown in status and as an Event', async () => {
    await credentialsSecret('not-the-password');
    await apply(c, {
      ...ruleRef('to-destination'),
      metadata: { ...ruleRef('to-destination').metadata, annotations: { 'wharf.dev/run': 'first' } },
      spec: {
        registryRef: { name: 'ext' },
        mode: 'push',
        remote: { provider: 'wharf', url: destination.url, credentialsSecretRef: { name: 'destination-credentials' } },
        filters: [{ type: 'name', value: 'team/**' }, { type: 'tag', value: 'v*' }],
        destination: { flattening: 'none' },
      },
    } as Any);
    policy = `${ns}.to-destination`;
    const failed = await waitRule('to-destination', (r) => r.status?.lastExecution?.phase === 'Failed', 'failed execution');
    expect(failed.metadata.finalizers).toEqual(['wharf.dev/replication-rule']);
    expect(failed.status).toMatchObject({ remoteRegistry: policy, policy, lastRunRequest: 'first' });
    expect(failed.status.lastExecution).toMatchObject({ trigger: 'manual', failedTasks: expect.any(Number) });
    expect(failed.status.lastExecution.failedTasks + (failed.status.lastExecution.message ? 1 : 0)).toBeGreaterThan(0);
    expect(failed.status.lastExecution.endTime).toBeDefined();
    expect(condition(failed, 'Ready')).toMatchObject({ status: 'True', reason: 'Synced' });
    // A failed execution is the policy's result, not the object's health: kstatus stays Current.
    expect(computeKStatus(failed).status).toBe('Current');
    expect(condition(failed, 'Ready').message).toContain(`last execution ${failed.status.lastExecution.id} Failed`);

    const remote = await source.ok('GET', `/registries/${encodeURIComponent(policy)}`);
    expect(remote).toMatchObject({ provider: 'wharf', url: destination.url, username: 'admin', passwordSet: true, insecure: false, description: `Managed by ReplicationRule ${ns}/to-destination` });
    expect(JSON.stringify(remote)).not.toContain('not-the-password');
    const p = await source.ok('GET', `/replication/policies/${encodeURIComponent(policy)}`);
    expect(p).toMatchObject({
      mode: 'push',
      registry: policy,
      filters: { name: { matches: ['team/**'], excludes: [] }, tag: { matches: ['v*'], excludes: [] } },
      destination: { flattening: 'none' },
      trigger: { type: 'manual' },
      enabled: true,
      override: true,
      copyReferrers: true,
    });
    const notes = await waitFor('ExecutionFailed event', async () => {
      const n = await events('to-destination', 'ExecutionFailed');
      return n.length > 0 ? n : undefined;
    }, 30_000);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toContain(`Execution ${failed.status.lastExecution.id} failed`);
    expect(await executionsOf(policy)).toHaveLength(1);
    // Created once: the passes that followed (their cache still without the new status) wrote nothing.
    expect((await events('to-destination', 'Created')).sort()).toEqual([`Created policy ${policy}`, `Created remote registry ${policy} (${destination.url})`]);
    expect(await events('to-destination', 'Updated')).toEqual([]);
  });

  it('with the Secret fixed, a new wharf.dev/run value replicates: the image arrives at the destination with the same digest, and status shows the execution', async () => {
    const first = (await getRule('to-destination')).status.lastExecution.id;
    await credentialsSecret(REGISTRY_ADMIN_PASSWORD);
    await requestRun('second');
    const done = await waitRule('to-destination', (r) => r.status?.lastExecution?.id !== first && r.status?.lastExecution?.phase === 'Succeeded', 'succeeded execution');
    expect(done.status.lastRunRequest).toBe('second');
    expect(done.status.lastExecution).toMatchObject({ trigger: 'manual', phase: 'Succeeded', artifacts: 1, tasks: 1, failedTasks: 0 });
    expect(done.status.lastExecution.bytes).toBeGreaterThan(0);
    expect(Date.parse(done.status.lastExecution.endTime)).toBeGreaterThanOrEqual(Date.parse(done.status.lastExecution.startTime));
    const want = await digestOf(`${host(source)}/team/app:v1`, adminAuth(source));
    expect(want).toMatch(/^sha256:/);
    expect(await digestOf(`${host(destination)}/team/app:v1`, adminAuth(destination))).toBe(want);
    expect(await events('to-destination', 'ExecutionStarted')).toHaveLength(2);
  });

  it('changing wharf.dev/run again runs it again; a restarted operator does not run the handled value once more', async () => {
    await pushImage(`${host(source)}/team/app:v2`, adminAuth(source));
    const previous = (await getRule('to-destination')).status.lastExecution.id;
    await requestRun('third');
    const done = await waitRule('to-destination', (r) => r.status?.lastExecution?.id !== previous && r.status?.lastExecution?.phase === 'Succeeded', 'third execution');
    expect(done.status.lastRunRequest).toBe('third');
    expect(await digestOf(`${host(destination)}/team/app:v2`, adminAuth(destination))).toBe(await digestOf(`${host(source)}/team/app:v2`, adminAuth(source)));
    expect(await executionsOf(policy)).toHaveLength(3);

    await op.stop();
    op = await OperatorProcess.start({ kubeconfig, identity: 'replication-op', args: ['--lease-name', 'replication', '--watch-namespace', ns, '--resync', '600'] });
    // The new process reconciles the rule (a success counted) and starts nothing.
    await waitFor('restarted operator reconciled the rule', async () => ((await op.metric('wharf_operator_reconcile_total', { controller: 'replicationrule' })) > 0 ? true : undefined), 60_000);
    expect(await executionsOf(policy)).toHaveLength(3);
  });

  it('a Secret changed on its own reaches the registry within seconds (metadata-only watch), and its new credentials replicate', async () => {
    // The rule is idle here: its last execution finished and a manual rule is not polled, so only
    // the Secret watch can bring it back before the 10-minute resync.
    await destination.ok('PUT', '/users/sync', { password: 'sync-password-0123' });
    await destination.ok('PUT', '/projects/team/members/sync', { role: 'developer' });
    const before = (await getRule('to-destination')).status.credentialsDigest;
    await apply(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'destination-credentials', namespace: ns }, stringData: { username: 'sync', password: 'sync-password-0123' } } as never);
    const after = await waitRule('to-destination', (r) => r.status?.credentialsDigest !== before, 'new credentials digest', 30_000);
    expect(after.status.credentialsDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(after)).not.toContain('sync-password-0123');
    expect(await source.ok('GET', `/registries/${encodeURIComponent(policy)}`)).toMatchObject({ username: 'sync', passwordSet: true });
    expect(await events('to-destination', 'Updated')).toContainEqual(expect.stringMatching(/username "admin" → "sync"; credentials from the Secret changed$/));
    expect(await executionsOf(policy)).toHaveLength(3); // a changed Secret is not a run request

    await pushImage(`${host(source)}/team/app:v3`, adminAuth(source));
    const previous = after.status.lastExecution.id;
    await requestRun('fourth');
    await waitRule('to-destination', (r) => r.status?.lastExecution?.id !== previous && r.status?.lastExecution?.phase === 'Succeeded', 'execution with the new credentials');
    expect(await digestOf(`${host(destination)}/team/app:v3`, adminAuth(destination))).toBe(await digestOf(`${host(source)}/team/app:v3`, adminAuth(source)));
  });

  it('a missing credentials Secret is Stalled, naming it, then Ready once it exists; a remote registry made by hand is not taken over', async () => {
    const spec = { registryRef: { name: 'ext' }, mode: 'push', remote: { provider: 'wharf', url: destination.url, credentialsSecretRef: { name: 'later-credentials' } } };
    await apply(c, { ...ruleRef('later'), spec } as Any);
    const stalled = await waitRule('later', (r) => condition(r, 'Stalled')?.status === 'True', 'stalled');
    expect(condition(stalled, 'Stalled')).toMatchObject({ reason: 'SecretNotFound', message: 'Secret later-credentials (remote registry credentials) not found' });
    expect(computeKStatus(stalled).status).toBe('Failed');
    expect((await source.api('GET', `/registries/${encodeURIComponent(`${ns}.later`)}`)).status).toBe(404);
    await apply(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'later-credentials', namespace: ns }, stringData: { username: 'admin', password: REGISTRY_ADMIN_PASSWORD } } as never);
    const ready = await waitRule('later', (r) => condition(r, 'Ready')?.status === 'True', 'ready once the Secret exists', 30_000);
    expect(computeKStatus(ready).status).toBe('Current');
    expect(condition(ready, 'Ready').message).toContain('no execution yet');

    await source.ok('PUT', `/registries/${encodeURIComponent(`${ns}.by-hand`)}`, { provider: 'docker-registry', url: 'http://127.0.0.1:1', description: 'made by hand' });
    await apply(c, { ...ruleRef('by-hand'), spec: { ...spec, remote: { provider: 'wharf', url: destination.url } } } as Any);
    const refused = await waitRule('by-hand', (r) => condition(r, 'Stalled')?.status === 'True', 'stalled on a foreign remote registry');
    expect(condition(refused, 'Stalled')).toMatchObject({ reason: 'RemoteRegistryExists' });
    await raw(c, 'DELETE', `/apis/wharf.dev/v1alpha1/namespaces/${ns}/replicationrules/by-hand`);
    await waitFor('by-hand deleted', async () => ((await getRule('by-hand')) ? undefined : true), 60_000);
    expect(await source.ok('GET', `/registries/${encodeURIComponent(`${ns}.by-hand`)}`)).toMatchObject({ description: 'made by hand', url: 'http://127.0.0.1:1' });
  });

  it('deleting the rule removes the policy and its remote registry', async () => {
    await raw(c, 'DELETE', `/apis/wharf.dev/v1alpha1/namespaces/${ns}/replicationrules/to-destination`);
    await waitFor('rule deleted', async () => ((await getRule('to-destination')) ? undefined : true), 60_000);
    expect((await source.api('GET', `/replication/policies/${encodeURIComponent(policy)}`)).status).toBe(404);
    expect((await source.api('GET', `/registries/${encodeURIComponent(policy)}`)).status).toBe(404);
    // What was replicated stays at the destination.
    expect(await digestOf(`${host(destination)}/team/app:v1`, adminAuth(destination))).toMatch(/^sha256:/);
  });
});
