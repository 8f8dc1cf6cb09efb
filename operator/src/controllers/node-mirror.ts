// The node agent of a Registry (Registry.spec.nodeMirror), part of the Registry reconcile: render
// the DaemonSet and its ConfigMap (resources/node-agent/render.ts), apply them,
// and report the DaemonSet's progress in status.nodeMirror.
//
// Hosts: spec.nodeMirror.hosts, or else the mirrorOf of the Projects in the Registry's namespace
// that reference it and have a proxyCache (from their spec, whether or not they are in sync: a
// host that no project mirrors yet gets 404 NAME_UNKNOWN from the registry, and containerd falls
// back to the upstream).
// Endpoint: spec.nodeMirror.endpoint, or else http://<the registry Service's ClusterIP>:<port>.
// containerd runs in the node's network namespace, where cluster DNS names do not resolve but
// ClusterIPs are routed by kube-proxy (or its replacement) like any pod's traffic; a NodePort,
// hostPort or load balancer URL is set explicitly.
//
// Removal: when nodeMirror is turned off (or removed) and the Registry's DaemonSet is still
// there, or when the Registry is deleted, the DaemonSet is switched to its removal mode (each pod
// removes the files in an init container, then only waits), and deleted, with its ConfigMap,
// once every scheduled node runs a Ready removal pod. The preStop hook of the
// agent also removes the files when a pod goes; the removal mode is what makes it certain. A node
// that never runs the removal pod (NotReady, cordoned with no toleration) holds the deletion
// until it does, or until the DaemonSet is deleted by hand.
import { API_VERSION } from '../api/group.js';
import type { RegistryStatus } from '../api/registry.js';
import type { KubeClient } from '../kube/client.js';
import { isNotFound } from '../kube/errors.js';
import { RESOURCES, type ResourceType } from '../kube/resources.js';
import type { KubeObject } from '../kube/types.js';
import { VERSION } from '../options.js';
import { nodeAgentName, renderNodeAgent, type NodeAgentInput } from '../resources/node-agent/index.js';
import type { ProjectObject } from '../resources/project/render.js';
import type { Registry } from '../resources/registry/index.js';
import type { Applier } from '../runtime/apply.js';
import type { EventRecorder } from '../runtime/events.js';
import type { Informer } from '../runtime/informer.js';
import { ownerKey } from '../runtime/owners.js';
import { UserError } from '../runtime/user-error.js';

export type NodeMirrorStatus = NonNullable<RegistryStatus['nodeMirror']>;

export interface DaemonSetLike extends KubeObject {
  spec?: {
    template?: {
      spec?: {
        nodeSelector?: Record<string, string>;
        tolerations?: Record<string, unknown>[];
        imagePullSecrets?: { name: string }[];
        volumes?: { name: string; hostPath?: { path: string } }[];
      };
    };
  };
  status?: { observedGeneration?: number; desiredNumberScheduled?: number; numberReady?: number; updatedNumberScheduled?: number };
}

export interface NodeMirrorCaches {
  daemonsets: Informer<DaemonSetLike>;
  configmaps: Informer;
  projects: Informer<ProjectObject>;
}

export interface NodeMirrorOptions {
  /** The operator's image: the agent is its second entry point. */
  image: string;
}

/** The hosts the nodes send to the registry (sorted, lower case, deduplicated). Pure. */
export function mirroredHosts(reg: Registry, projects: ProjectObject[]): string[] {
  const listed = reg.spec.nodeMirror?.hosts
    ?? projects
      .filter((p) => p.metadata.namespace === reg.metadata.namespace && p.spec.registryRef.name === reg.metadata.name && !p.metadata.deletionTimestamp)
      .flatMap((p) => p.spec.proxyCache?.mirrorOf ?? []);
  return [...new Set(listed.map((h) => h.trim().toLowerCase()))].sort();
}

/** The URL the nodes reach the registry at. Pure. */
export function nodeMirrorEndpoint(reg: Registry, service: KubeObject | undefined): string {
  if (reg.spec.nodeMirror?.endpoint) return reg.spec.nodeMirror.endpoint;
  const clusterIP = (service as { spec?: { clusterIP?: string } } | undefined)?.spec?.clusterIP;
  if (!clusterIP || clusterIP === 'None') throw new UserError('NodeMirrorEndpointUnknown', 'the registry Service has no ClusterIP yet; set spec.nodeMirror.endpoint to the URL the nodes reach the registry at');
  const host = clusterIP.includes(':') ? `[${clusterIP}]` : clusterIP;
  return `http://${host}:${reg.spec.service.port}`;
}

/** The DaemonSet controller has seen the latest template and every scheduled node runs it, Ready. Pure. */
export function allNodesUpdated(ds: DaemonSetLike): boolean {
  const st = ds.status ?? {};
  const desired = st.desiredNumberScheduled ?? 0;
  return (st.observedGeneration ?? 0) >= (ds.metadata.generation ?? 1) && (st.updatedNumberScheduled ?? 0) >= desired && (st.numberReady ?? 0) >= desired;
}

/** Nodes whose agent is Ready and runs the current template (0 until the controller has seen it). Pure. */
export function nodesConfigured(ds: DaemonSetLike): number {
  const st = ds.status ?? {};
  if ((st.observedGeneration ?? 0) < (ds.metadata.generation ?? 1)) return 0;
  return Math.min(st.numberReady ?? 0, st.updatedNumberScheduled ?? 0);
}

export class NodeMirror {
  constructor(
    private readonly client: KubeClient,
    private readonly applier: Applier,
    private readonly caches: NodeMirrorCaches,
    private readonly events: EventRecorder,
    private readonly options: NodeMirrorOptions,
  ) {}

  /**
   * Brings the node agent in line with spec.nodeMirror (spec with defaults); returns
   * status.nodeMirror, or undefined when there is no agent.
   */
  async reconcile(reg: Registry, service: KubeObject | undefined, signal: AbortSignal): Promise<NodeMirrorStatus | undefined> {
    const nm = reg.spec.nodeMirror;
    if (!nm?.enabled) return this.remove(reg, signal);
    const hosts = mirroredHosts(reg, this.caches.projects.list(reg.metadata.namespace));
    const url = nodeMirrorEndpoint(reg, service);
    const input: NodeAgentInput = {
      ...this.base(reg),
      hosts,
      endpoint: { url, ...(nm.caFiles && { ca: nm.caFiles }), ...(nm.skipVerify && { skipVerify: true }) },
      configPath: nm.configPath,
      mode: nm.mode,
      ...(nm.nodeSelector && { nodeSelector: nm.nodeSelector }),
      ...(nm.tolerations && { tolerations: nm.tolerations as Record<string, unknown>[] }),
    };
    const ds = await this.applyAll(reg, renderNodeAgent(input), signal);
    return { hosts, endpoint: url, nodesDesired: ds.status?.desiredNumberScheduled ?? 0, nodesConfigured: nodesConfigured(ds) };
  }

  /**
   * The Registry is being deleted: true once nothing of the agent is left on the nodes (the
   * DaemonSet is gone or its removal pods ran everywhere, and it is deleted).
   */
  async finalize(reg: Registry, signal: AbortSignal): Promise<boolean> {
    return (await this.remove(reg, signal)) === undefined;
  }

  /** Removal mode until every node is clean, then delete; the status while it runs, undefined when done. */
  private async remove(reg: Registry, signal: AbortSignal): Promise<NodeMirrorStatus | undefined> {
    const name = nodeAgentName(reg.metadata.name);
    const live = this.owned(reg, this.caches.daemonsets, name) as DaemonSetLike | undefined;
    if (live && !live.metadata.deletionTimestamp) {
      const pod = live.spec?.template?.spec ?? {};
      const hostPath = pod.volumes?.find((v) => v.hostPath)?.hostPath?.path;
      // Where and on which nodes the agent ran, from the live DaemonSet: the spec may be gone.
      const input: NodeAgentInput = {
        ...this.base(reg),
        hosts: [],
        endpoint: { url: 'http://removing.invalid' },
        removing: true,
        ...(hostPath && { configPath: hostPath }),
        ...(pod.nodeSelector && { nodeSelector: pod.nodeSelector }),
        ...(pod.tolerations && { tolerations: pod.tolerations }),
      };
      const daemonSet = renderNodeAgent(input).find((o) => o.kind === 'DaemonSet')!;
      const ds = await this.applyOne(reg, daemonSet, live, signal);
      if (!allNodesUpdated(ds)) return { hosts: [], nodesDesired: ds.status?.desiredNumberScheduled ?? 0, nodesConfigured: nodesConfigured(ds), removing: true };
      await this.events.record(reg, 'Normal', 'NodeMirrorRemoved', `Removed the mirror configuration from ${ds.status?.desiredNumberScheduled ?? 0} nodes`);
    }
    await this.deleteOwned(reg, RESOURCES.DaemonSet, this.caches.daemonsets, name, signal);
    await this.deleteOwned(reg, RESOURCES.ConfigMap, this.caches.configmaps, name, signal);
    return undefined;
  }

  private base(reg: Registry): Pick<NodeAgentInput, 'registry' | 'image' | 'version' | 'imagePullSecrets'> {
    return {
      registry: { name: reg.metadata.name, namespace: reg.metadata.namespace!, uid: reg.metadata.uid! },
      image: this.options.image,
      version: VERSION,
      ...(reg.spec.imagePullSecrets && { imagePullSecrets: reg.spec.imagePullSecrets }),
    };
  }

  private async applyAll(reg: Registry, objects: KubeObject[], signal: AbortSignal): Promise<DaemonSetLike> {
    let ds: DaemonSetLike | undefined;
    // The ConfigMap first: the DaemonSet's pods mount it.
    for (const kind of ['ConfigMap', 'DaemonSet']) {
      const desired = objects.find((o) => o.kind === kind)!;
      const applied = await this.applyOne(reg, desired, this.cacheFor(kind).get(`${desired.metadata.namespace}/${desired.metadata.name}`), signal);
      if (kind === 'DaemonSet') ds = applied as DaemonSetLike;
    }
    return ds!;
  }

  private async applyOne(reg: Registry, desired: KubeObject, live: KubeObject | undefined, signal: AbortSignal): Promise<DaemonSetLike> {
    const { object, changed } = await this.applier.apply<DaemonSetLike>(desired, live, signal);
    if (changed) await this.events.record(reg, 'Normal', live ? 'Updated' : 'Created', `${live ? 'Updated' : 'Created'} ${desired.kind} ${desired.metadata.name}`);
    // The cache may hold a newer status than the apply answer (or the apply was skipped).
    const cached = this.cacheFor(desired.kind).get(`${desired.metadata.namespace}/${desired.metadata.name}`) as DaemonSetLike | undefined;
    return cached && Number(cached.metadata.resourceVersion) > Number(object.metadata.resourceVersion) ? cached : object;
  }

  private owned(reg: Registry, cache: Informer, name: string): KubeObject | undefined {
    const live = cache.get(`${reg.metadata.namespace}/${name}`);
    return live && ownerKey(live, API_VERSION, 'Registry') === `${reg.metadata.namespace}/${reg.metadata.name}` ? live : undefined;
  }

  private async deleteOwned(reg: Registry, t: ResourceType, cache: Informer, name: string, signal: AbortSignal): Promise<void> {
    const live = this.owned(reg, cache, name);
    if (!live || live.metadata.deletionTimestamp) return;
    try {
      await this.client.delete(t, reg.metadata.namespace, name, { uid: live.metadata.uid, signal });
      await this.events.record(reg, 'Normal', 'Deleted', `Deleted ${t.kind} ${name}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private cacheFor(kind: string): Informer {
    if (kind === 'DaemonSet') return this.caches.daemonsets;
    if (kind === 'ConfigMap') return this.caches.configmaps;
    throw new Error(`no cache for ${kind}`);
  }
}

