// Registry.spec.nodeMirror on the real control plane, with the operator as a real process under
// config/rbac: the node agent's DaemonSet and ConfigMap appear with the right
// content (hosts from the proxy projects' mirrorOf, the Service's ClusterIP as endpoint, no API
// access for the agent), status.nodeMirror follows the DaemonSet's status, and turning nodeMirror
// off or deleting the Registry runs the removal mode until every node is clean, then deletes.
// The test control plane has no kubelet and runs no DaemonSet controller: the test writes the
// DaemonSet's status itself (standing in for that controller), as kubelet.ts does for pods. The
// agent's own behaviour on a node is in unit/node-agent*.test.ts and node-agent-main.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describe as describeAudit, operatorWrites } from './support/audit.js';
import { adminClients, controlPlane } from './support/context.js';
import { apply, createNamespace, getObject, HttpError, raw, waitFor, type Clients } from './support/kube.js';
import { OperatorProcess, operatorKubeconfig } from './support/operator.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

const API = 'wharf.dev/v1alpha1';
const AGENT_IMAGE = 'registry.example.test/wharf/wharf-operator:9.9.9';
const MAIN = 'dist/operator/src/node-agent/main.js';

let c: Clients;
let ns: string;
let op: OperatorProcess;

const regRef = (name: string) => ({ apiVersion: API, kind: 'Registry', metadata: { name, namespace: ns } });
const getRegistry = (name: string) => getObject<Any>(c, regRef(name));
const path = (kind: string, name = '') => {
  const base = kind === 'daemonsets' ? `/apis/apps/v1/namespaces/${ns}/daemonsets` : `/api/v1/namespaces/${ns}/${kind}`;
  return name ? `${base}/${name}` : base;
};
async function getRaw(p: string): Promise<Any | undefined> {
  try {
    return await raw<Any>(c, 'GET', p);
  } catch (err) {
    if (err instanceof HttpError && err.code === 404) return undefined;
    throw err;
  }
}
const daemonSet = () => getRaw(path('daemonsets', 'reg-node-agent'));
const agentConfig = async () => JSON.parse((await getRaw(path('configmaps', 'reg-node-agent')))?.data?.['config.json'] ?? 'null');

/** Writes the DaemonSet's status as the DaemonSet controller would, for `desired` nodes of which `ready` run the latest template, Ready. */
async function reportNodes(desired: number, ready: number, updated = desired): Promise<void> {
  const ds = await daemonSet();
  await raw(c, 'PATCH', `${path('daemonsets', 'reg-node-agent')}/status`, {
    status: { observedGeneration: ds.metadata.generation, desiredNumberScheduled: desired, currentNumberScheduled: desired, numberMisscheduled: 0, numberReady: ready, updatedNumberScheduled: updated, numberAvailable: ready },
  }, 'application/merge-patch+json');
}

async function waitRegistry(check: (r: Any) => boolean, what: string, timeoutMs = 30_000): Promise<Any> {
  return waitFor(`Registry reg ${what}`, async () => {
    const r = await getRegistry('reg');
    return r && r.status?.observedGeneration === r.metadata.generation && check(r) ? r : undefined;
  }, timeoutMs);
}

function proxyProject(name: string, registry: string, mirrorOf?: string[]): Any {
  return { apiVersion: API, kind: 'Project', metadata: { name, namespace: ns }, spec: { registryRef: { name: registry }, ...(mirrorOf && { proxyCache: { provider: 'docker-hub', url: 'https://registry-1.docker.io', mirrorOf } }) } };
}

beforeAll(async () => {
  c = adminClients();
  const kubeconfig = await operatorKubeconfig(c);
  ns = await createNamespace(c, 'node-mirror');
  op = await OperatorProcess.start({ kubeconfig, identity: 'node-mirror-op', args: ['--lease-name', 'node-mirror', '--watch-namespace', ns, '--resync', '3'], env: { WHARF_NODE_AGENT_IMAGE: AGENT_IMAGE } });
});

afterAll(async () => {
  await op?.stop();
});

describe('Registry.spec.nodeMirror', () => {
  it('renders the node agent for the mirrorOf of the proxy projects that reference the Registry, with no API access', async () => {
    await apply(c, proxyProject('hub', 'reg', ['docker.io']));
    await apply(c, proxyProject('gh', 'reg', ['ghcr.io', 'quay.io', 'docker.io']));
    await apply(c, proxyProject('elsewhere', 'other', ['gcr.io']));
    await apply(c, proxyProject('plain', 'reg'));
    await apply(c, {
      ...regRef('reg'),
      spec: { nodeMirror: { enabled: true, mode: 'prepend', nodeSelector: { 'node-role.example/worker': 'true' }, tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }] } },
    } as Any);
    const reg = await waitRegistry((r) => r.status?.nodeMirror, 'with status.nodeMirror');
    const service = await getRaw(path('services', 'reg'));
    const endpoint = `http://${service.spec.clusterIP}:5000`;
    expect(reg.status.nodeMirror).toEqual({ hosts: ['docker.io', 'ghcr.io', 'quay.io'], endpoint, nodesDesired: 0, nodesConfigured: 0 });

    const owner = { apiVersion: API, kind: 'Registry', name: 'reg', uid: reg.metadata.uid, controller: true, blockOwnerDeletion: true };
    expect(await agentConfig()).toEqual({ configPath: '/host/containerd-certs.d', hosts: [{ host: 'docker.io' }, { host: 'ghcr.io' }, { host: 'quay.io' }], endpoint: { url: endpoint }, mode: 'prepend', intervalSeconds: 30, owner: `${ns}/reg` });
    const ds = await daemonSet();
    expect(ds.metadata.ownerReferences).toEqual([owner]);
    const pod = ds.spec.template.spec;
    expect(pod).toMatchObject({ automountServiceAccountToken: false, nodeSelector: { 'node-role.example/worker': 'true' }, tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }] });
    expect(pod.containers).toHaveLength(1);
    expect(pod.containers[0]).toMatchObject({ image: AGENT_IMAGE, command: ['node', MAIN, 'run'], lifecycle: { preStop: { exec: { command: ['node', MAIN, 'cleanup'] } } } });
    expect(pod.volumes).toContainEqual({ name: 'containerd-certs-d', hostPath: { path: '/etc/containerd/certs.d', type: 'DirectoryOrCreate' } });

    // Least privilege: the pods carry no service-account token at all (the default account, never mounted), and no ServiceAccount is made.
    expect(pod.serviceAccountName).toBeUndefined();
    expect(JSON.stringify(pod.volumes)).not.toContain('serviceAccountToken');
    expect(await getRaw(path('serviceaccounts', 'reg-node-agent'))).toBeUndefined();
    expect((await getRaw(path('configmaps', 'reg-node-agent'))).metadata.ownerReferences).toEqual([owner]);
  });

  it('reports nodesDesired and nodesConfigured from the DaemonSet status', async () => {
    await reportNodes(3, 2);
    const reg = await waitRegistry((r) => r.status?.nodeMirror?.nodesDesired === 3, 'with 3 nodes');
    expect(reg.status.nodeMirror).toMatchObject({ nodesDesired: 3, nodesConfigured: 2 });
    await reportNodes(3, 3, 2);
    expect((await waitRegistry((r) => r.status?.nodeMirror?.nodesConfigured === 2 && r.status.nodeMirror.nodesDesired === 3, 'updated 2 of 3')).status.nodeMirror.hosts).toHaveLength(3);
    await reportNodes(3, 3);
    await waitRegistry((r) => r.status?.nodeMirror?.nodesConfigured === 3, 'all 3 configured');
  });

  it('follows a new proxy project and an explicit endpoint, CA and hosts; idle passes write nothing', async () => {
    const before = (await daemonSet()).spec.template.metadata.annotations['wharf.dev/config-hash'];
    await apply(c, proxyProject('k8s', 'reg', ['registry.k8s.io']));
    await waitFor('registry.k8s.io mirrored', async () => ((await agentConfig())?.hosts.some((h: Any) => h.host === 'registry.k8s.io') ? true : undefined), 30_000);
    // The ConfigMap is applied before the DaemonSet: the pod template's hash follows within the same pass.
    await waitFor('the pod template rolled', async () => ((await daemonSet()).spec.template.metadata.annotations['wharf.dev/config-hash'] !== before ? true : undefined), 30_000);
    await waitRegistry((r) => r.status?.nodeMirror?.hosts.includes('registry.k8s.io') && r.status.nodeMirror.nodesConfigured === 0, 'rolling to the new hosts');

    const reg = await getRegistry('reg');
    await apply(c, { ...regRef('reg'), spec: { nodeMirror: { ...reg.spec.nodeMirror, hosts: ['registry.example:5000'], endpoint: 'https://wharf.example.test', caFiles: ['/etc/wharf/ca.crt'], configPath: '/etc/containerd/hosts.d' } } } as Any);
    await waitFor('explicit settings', async () => {
      const config = await agentConfig();
      return JSON.stringify(config?.hosts) === JSON.stringify([{ host: 'registry.example:5000' }]) ? config : undefined;
    }, 30_000).then((config) => expect(config.endpoint).toEqual({ url: 'https://wharf.example.test', ca: ['/etc/wharf/ca.crt'] }));
    const hostsDir = { name: 'containerd-certs-d', hostPath: { path: '/etc/containerd/hosts.d', type: 'DirectoryOrCreate' } };
    await waitFor('the DaemonSet mounts the new directory', async () => ((await daemonSet()).spec.template.spec.volumes.some((v: Any) => JSON.stringify(v) === JSON.stringify(hostsDir)) ? true : undefined), 30_000);
    await reportNodes(2, 2);
    await waitRegistry((r) => r.status?.nodeMirror?.nodesConfigured === 2 && r.status.nodeMirror.endpoint === 'https://wharf.example.test', 'configured with explicit settings');

    const writes = async () => {
      const since = new Date();
      await new Promise((r) => setTimeout(r, 7_000)); // two resyncs (every 3 s)
      return operatorWrites(controlPlane().auditLog, 'node-mirror-op', since).filter((e) => e.objectRef?.resource !== 'leases').map(describeAudit);
    };
    await waitFor('a quiet window', async () => ((await writes()).length === 0 ? true : undefined), 40_000, 0);
  });

  it('CEL refuses caFiles with skipVerify, and nodeMirror on an external Registry', async () => {
    await expect(apply(c, { ...regRef('bad'), spec: { nodeMirror: { enabled: true, caFiles: ['/ca.crt'], skipVerify: true } } } as Any)).rejects.toThrow(/set nodeMirror.caFiles or skipVerify, not both/);
    await expect(apply(c, { ...regRef('bad'), spec: { external: { url: 'https://wharf.example.test', credentialsSecretRef: { name: 'x' } }, nodeMirror: { enabled: true } } } as Any)).rejects.toThrow(/an external Registry deploys nothing/);
  });

  it('the schema refuses what the agent could not write: hosts that are not host names, credentials in the endpoint, control characters or dot segments in paths', async () => {
    const bad = (nodeMirror: Any) => apply(c, { ...regRef('bad'), spec: { nodeMirror: { enabled: true, ...nodeMirror } } } as Any);
    for (const host of ['docker..io', 'mirror.-x.example', '.docker.io', 'registry.example:99999', 'registry.example:0']) await expect(bad({ hosts: [host] }), host).rejects.toThrow(/hosts\[0\].*should match|hosts\[0\]: Invalid value/);
    await expect(apply(c, proxyProject('bad', 'reg', ['docker..io']))).rejects.toThrow(/mirrorOf\[0\]/);
    await expect(bad({ endpoint: 'https://user:secret@wharf.example.test' })).rejects.toThrow(/endpoint/);
    await expect(bad({ configPath: '/etc/containerd/certs.d\n' })).rejects.toThrow(/configPath/);
    await expect(bad({ configPath: '/etc/containerd/../certs.d' })).rejects.toThrow(/configPath must be a clean absolute path/);
    // Sent as JSON: a YAML apply could not carry the character at all.
    const body = { ...regRef('bad'), spec: { nodeMirror: { enabled: true, caFiles: ['/etc/ca\u007f.crt'] } } };
    await expect(raw(c, 'POST', `/apis/wharf.dev/v1alpha1/namespaces/${ns}/registries`, body)).rejects.toThrow(/caFiles\[0\]/);
  });

  it('turning nodeMirror off runs the removal mode until every node is clean, then deletes the agent', async () => {
    const reg = await getRegistry('reg');
    await apply(c, { ...regRef('reg'), spec: { nodeMirror: { ...reg.spec.nodeMirror, enabled: false } } } as Any);
    const removing = await waitRegistry((r) => r.status?.nodeMirror?.removing === true, 'removing');
    expect(removing.status.nodeMirror).toMatchObject({ hosts: [], removing: true });
    const ds = await daemonSet();
    const pod = ds.spec.template.spec;
    expect(pod.initContainers).toEqual([expect.objectContaining({ name: 'remove-mirror-config', image: AGENT_IMAGE, command: ['node', MAIN, 'cleanup', '/host/containerd-certs.d', `${ns}/reg`], volumeMounts: [{ name: 'containerd-certs-d', mountPath: '/host/containerd-certs.d' }] })]);
    expect(pod.containers.map((x: Any) => x.command)).toEqual([['node', MAIN, 'wait']]);
    // Same nodes, same directory as the agent that wrote the files.
    expect(pod.volumes).toEqual([{ name: 'containerd-certs-d', hostPath: { path: '/etc/containerd/hosts.d', type: 'DirectoryOrCreate' } }]);
    expect(pod.nodeSelector).toEqual({ 'node-role.example/worker': 'true' });

    // One node has not run its removal pod yet: everything stays.
    await reportNodes(2, 1);
    await new Promise((r) => setTimeout(r, 4_000));
    expect(await daemonSet()).toBeDefined();
    await reportNodes(2, 2);
    await waitFor('agent deleted', async () => (!(await daemonSet()) && !(await getRaw(path('configmaps', 'reg-node-agent'))) ? true : undefined), 30_000);
    const after = await waitRegistry((r) => !r.status?.nodeMirror, 'without status.nodeMirror');
    expect(after.status.nodeMirror).toBeUndefined();
    const events = await raw<Any>(c, 'GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events`);
    expect(events.items.filter((e: Any) => e.reason === 'NodeMirrorRemoved').map((e: Any) => e.note)).toContain('Removed the mirror configuration from 2 nodes');
  });

  it('deleting the Registry removes the nodes\' files before the Registry goes', async () => {
    const reg = await getRegistry('reg');
    await apply(c, { ...regRef('reg'), spec: { nodeMirror: { ...reg.spec.nodeMirror, enabled: true } } } as Any);
    await waitFor('agent back', async () => ((await daemonSet())?.spec.template.spec.containers[0].command[2] === 'run' ? true : undefined), 30_000);
    await raw(c, 'DELETE', `/apis/${API}/namespaces/${ns}/registries/reg`);
    await waitFor('removal mode', async () => ((await daemonSet())?.spec.template.spec.initContainers ? true : undefined), 60_000);
    expect((await getRegistry('reg'))?.metadata.deletionTimestamp).toBeDefined();
    // Until the DaemonSet says every node ran its removal pod, the Registry stays (finalizer held).
    await reportNodes(1, 0);
    await new Promise((r) => setTimeout(r, 4_000));
    expect((await getRegistry('reg'))?.metadata.finalizers).toEqual(['wharf.dev/registry']);
    await reportNodes(1, 1);
    await waitFor('Registry gone', async () => ((await getRegistry('reg')) ? undefined : true), 60_000);
    await waitFor('agent gone', async () => ((await daemonSet()) ? undefined : true), 60_000);
  });
});
