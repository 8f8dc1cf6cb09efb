// The node agent's DaemonSet and ConfigMap, rendered purely: deterministic, no API access
// (no token, so no RBAC), only containerd's config_path from the host, cleanup on preStop.
import { describe, expect, it } from 'vitest';
import { parseNodeAgentConfig } from '../../src/node-agent/index.js';
import { HOST_CONFIG_MOUNT, renderNodeAgent, type NodeAgentInput } from '../../src/resources/node-agent/index.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

const input: NodeAgentInput = {
  registry: { name: 'reg', namespace: 'wharf', uid: '0b7c0c52-0000-4000-8000-000000000001' },
  image: 'example.test/wharf-operator:1.2.3',
  version: '1.2.3',
  hosts: ['quay.io', 'docker.io', 'quay.io'],
  endpoint: { url: 'http://10.0.0.5:30500' },
};

describe('renderNodeAgent', () => {
  it('is deterministic, and the config hash follows the hosts', () => {
    const a = JSON.stringify(renderNodeAgent(input));
    expect(JSON.stringify(renderNodeAgent({ ...input, hosts: ['docker.io', 'quay.io'] }))).toBe(a);
    const other = renderNodeAgent({ ...input, hosts: ['docker.io'] }) as Any[];
    expect(other[1].spec.template.metadata.annotations['wharf.dev/config-hash']).not.toBe((renderNodeAgent(input) as Any[])[1].spec.template.metadata.annotations['wharf.dev/config-hash']);
  });

  it("renders a config the agent accepts, writing under the host's config_path", () => {
    const [configMap, daemonSet] = renderNodeAgent({ ...input, configPath: '/etc/containerd/hosts.d', mode: 'prepend', endpoint: { url: 'https://wharf.example', ca: ['/etc/wharf/ca.crt'] } }) as Any[];
    const config = parseNodeAgentConfig(JSON.parse(configMap.data['config.json']));
    expect(config).toEqual({ configPath: HOST_CONFIG_MOUNT, hosts: [{ host: 'docker.io' }, { host: 'quay.io' }], endpoint: { url: 'https://wharf.example', ca: ['/etc/wharf/ca.crt'] }, mode: 'prepend', intervalSeconds: 30, owner: `${input.registry.namespace}/${input.registry.name}`, invalidHosts: [] });
    const volumes = daemonSet.spec.template.spec.volumes;
    expect(volumes).toContainEqual({ name: 'containerd-certs-d', hostPath: { path: '/etc/containerd/hosts.d', type: 'DirectoryOrCreate' } });
    expect(volumes.filter((v: Any) => v.hostPath)).toHaveLength(1);
  });

  it('has no API access and no privilege, and cleans up in its preStop hook', () => {
    const daemonSet = (renderNodeAgent(input) as Any[])[1];
    const pod = daemonSet.spec.template.spec;
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.hostNetwork).toBeUndefined();
    const [container] = pod.containers;
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(container.securityContext.privileged).toBeUndefined();
    expect(container.command).toEqual(['node', 'dist/operator/src/node-agent/main.js', 'run']);
    expect(container.lifecycle.preStop.exec.command).toEqual(['node', 'dist/operator/src/node-agent/main.js', 'cleanup']);
    expect(daemonSet.metadata.ownerReferences[0]).toMatchObject({ kind: 'Registry', name: 'reg', controller: true });
  });
});

describe('renderNodeAgent: account and removal mode', () => {
  it('renders only the ConfigMap and the DaemonSet, whose pods use the default ServiceAccount without a token', () => {
    const objects = renderNodeAgent(input) as Any[];
    expect(objects.map((o) => o.kind)).toEqual(['ConfigMap', 'DaemonSet']);
    expect(objects[1].spec.template.spec.serviceAccountName).toBeUndefined();
    expect(objects[1].spec.template.spec.automountServiceAccountToken).toBe(false);
  });

  it('removes the files in an init container, then only waits, with the same host directory and no config', () => {
    const daemonSet = (renderNodeAgent({ ...input, removing: true, configPath: '/etc/containerd/hosts.d' }) as Any[])[1];
    const pod = daemonSet.spec.template.spec;
    expect(pod.initContainers.map((c: Any) => c.command)).toEqual([['node', 'dist/operator/src/node-agent/main.js', 'cleanup', HOST_CONFIG_MOUNT, `${input.registry.namespace}/${input.registry.name}`]]);
    expect(pod.containers.map((c: Any) => c.command)).toEqual([['node', 'dist/operator/src/node-agent/main.js', 'wait']]);
    expect(pod.volumes).toEqual([{ name: 'containerd-certs-d', hostPath: { path: '/etc/containerd/hosts.d', type: 'DirectoryOrCreate' } }]);
    expect(pod.initContainers[0].securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(daemonSet.spec.template.metadata.annotations['wharf.dev/config-hash']).toBe('removing');
  });
});
