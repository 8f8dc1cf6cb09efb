// The node agent's DaemonSet and its ConfigMap for one Registry: pure and deterministic. The
// agent reaches no API server (its config comes from the ConfigMap, mounted as a file, and its pods
// mount no service-account token, hence no RBAC at all). They run as the namespace's default
// ServiceAccount: an account of their own would give them nothing without a token, and would need
// the operator to create and delete ServiceAccounts cluster-wide, which it may not. The agent
// only writes under containerd's config_path on the node, mounted from the host, and removes what
// it wrote in its preStop hook. The Registry reconciler (controllers/node-mirror.ts) renders it
// from Registry.spec.nodeMirror.
//
// Removal mode (`removing`): the same DaemonSet, whose pods remove the files in an init container
// (`cleanup <dir>`, no config needed) and then only wait (`wait`). A pod is Ready only after its
// init container succeeded, so the DaemonSet's numberReady counts the nodes that are clean: the
// operator deletes the DaemonSet once every scheduled node is.
import { createHash } from 'node:crypto';
import type { KubeObject, OwnerReference } from '../../kube/types.js';
import type { NodeAgentConfig } from '../../node-agent/config.js';
import type { WharfEndpoint } from '../../node-agent/hosts-toml.js';
import type { WriteMode } from '../../node-agent/writer.js';

export const NODE_AGENT_CONFIG_DIR = '/etc/wharf-node-agent';
/** Where containerd's config_path of the node is mounted in the agent. */
export const HOST_CONFIG_MOUNT = '/host/containerd-certs.d';
export const DEFAULT_CONFIG_PATH = '/etc/containerd/certs.d';
export const NODE_AGENT_CONFIG_HASH = 'wharf.dev/config-hash';
const MAIN = 'dist/operator/src/node-agent/main.js';

export interface NodeAgentInput {
  registry: { name: string; namespace: string; uid: string };
  /** The operator's image: the agent is its second entry point. */
  image: string;
  version: string;
  /** Upstream hosts to mirror (the proxy projects' mirrorOf). */
  hosts: string[];
  /** Where nodes reach Wharf: a NodePort, a hostPort or a load balancer. */
  endpoint: WharfEndpoint;
  /** containerd's config_path on the nodes. */
  configPath?: string;
  mode?: WriteMode;
  nodeSelector?: Record<string, string>;
  tolerations?: Record<string, unknown>[];
  imagePullSecrets?: { name: string }[];
  /** Render the removal mode (see above) instead of the agent. */
  removing?: boolean;
}

export function nodeAgentName(registry: string): string {
  return `${registry}-node-agent`;
}

function selector(registry: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'wharf-node-agent', 'app.kubernetes.io/instance': registry };
}

/** What the agent writes into its files as their owner: two Registries on one node leave each other's files alone. */
export function nodeAgentOwner(registry: { name: string; namespace: string }): string {
  return `${registry.namespace}/${registry.name}`;
}

/** The agent's config.json: hosts sorted and deduplicated, so that the same input gives the same bytes. */
export function nodeAgentConfig(input: NodeAgentInput): string {
  const config: NodeAgentConfig = {
    configPath: HOST_CONFIG_MOUNT,
    hosts: [...new Set(input.hosts)].sort().map((host) => ({ host })),
    endpoint: { url: input.endpoint.url, ...(input.endpoint.ca && { ca: input.endpoint.ca }), ...(input.endpoint.skipVerify && { skipVerify: true }) },
    mode: input.mode ?? 'replace',
    intervalSeconds: 30,
    owner: nodeAgentOwner(input.registry),
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

export function renderNodeAgent(input: NodeAgentInput): KubeObject[] {
  const { registry } = input;
  const name = nodeAgentName(registry.name);
  const owner: OwnerReference[] = [{ apiVersion: 'wharf.dev/v1alpha1', kind: 'Registry', name: registry.name, uid: registry.uid, controller: true, blockOwnerDeletion: true }];
  const labels = { ...selector(registry.name), 'app.kubernetes.io/component': 'node-agent', 'app.kubernetes.io/part-of': 'wharf', 'app.kubernetes.io/managed-by': 'wharf-operator', 'app.kubernetes.io/version': input.version };
  const config = nodeAgentConfig(input);
  const hash = createHash('sha256').update(config).digest('hex').slice(0, 32);
  const configMap: KubeObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: registry.namespace, labels, ownerReferences: owner }, data: { 'config.json': config } };
  const node = (...command: string[]) => ['node', MAIN, ...command];
  const securityContext = { runAsUser: 0, runAsGroup: 0, runAsNonRoot: false, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };
  const hostMount = { name: 'containerd-certs-d', mountPath: HOST_CONFIG_MOUNT };
  const hostVolume = { name: 'containerd-certs-d', hostPath: { path: input.configPath ?? DEFAULT_CONFIG_PATH, type: 'DirectoryOrCreate' } };
  const resources = { requests: { cpu: '5m', memory: '32Mi' }, limits: { memory: '128Mi' } };
  const removal = {
    initContainers: [{ name: 'remove-mirror-config', image: input.image, command: node('cleanup', HOST_CONFIG_MOUNT, nodeAgentOwner(registry)), resources, securityContext, volumeMounts: [hostMount] }],
    containers: [{ name: 'node-agent', image: input.image, command: node('wait'), resources, securityContext }],
    volumes: [hostVolume],
  };
  const daemonSet: KubeObject = {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name, namespace: registry.namespace, labels, ownerReferences: owner },
    spec: {
      selector: { matchLabels: selector(registry.name) },
      updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '10%' } },
      template: {
        metadata: { labels, annotations: { [NODE_AGENT_CONFIG_HASH]: input.removing ? 'removing' : hash } },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
          ...(input.nodeSelector && { nodeSelector: input.nodeSelector }),
          ...(input.tolerations && { tolerations: input.tolerations }),
          ...(input.imagePullSecrets && { imagePullSecrets: input.imagePullSecrets }),
          terminationGracePeriodSeconds: 30,
          ...(input.removing ? removal : {
          containers: [
            {
              name: 'node-agent',
              image: input.image,
              command: node('run'),
              env: [{ name: 'WHARF_NODE_AGENT_CONFIG', value: `${NODE_AGENT_CONFIG_DIR}/config.json` }],
              // Removes Wharf's files and restores the ones it set aside when the pod goes.
              lifecycle: { preStop: { exec: { command: node('cleanup') } } },
              resources,
              // Root, to write the root-owned host directory, but with no capability at all:
              // it writes only files whose owner it is (root), like any unprivileged owner.
              securityContext,
              volumeMounts: [{ name: 'config', mountPath: NODE_AGENT_CONFIG_DIR, readOnly: true }, hostMount],
            },
          ],
          volumes: [{ name: 'config', configMap: { name } }, hostVolume],
          }),
        },
      },
    },
  };
  return [configMap, daemonSet];
}
