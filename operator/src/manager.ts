// Wires the operator together: client, health server, leader election, and — while leading —
// informers, the work queues and the controllers (Registry, Project, RobotAccount, ReplicationRule).
import { setMaxListeners } from 'node:events';
import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { API_VERSION } from './api/group.js';
import { RegistryReconciler, type RegistryCaches } from './controllers/registry.js';
import { RegistryConnections } from './controllers/registry-connection.js';
import { referencedObjectInformers } from './controllers/registry-references.js';
import { NodeMirror, type DaemonSetLike } from './controllers/node-mirror.js';
import { ProjectReconciler, projectsReferencingSecret } from './controllers/project.js';
import { PullSecretInjector } from './controllers/pull-secrets.js';
import { RobotAccountReconciler } from './controllers/robot-account.js';
import { ReplicationRuleReconciler, rulesReferencingSecret } from './controllers/replication-rule.js';
import { ServiceAccountWatches } from './controllers/service-account-watches.js';
import type { ReplicationRuleObject, RobotAccountObject } from './api/types.js';
import type { SecretLike } from './resources/robot-account/credentials.js';
import { ROBOT_SECRETS_SELECTOR, robotAccountKeyOf } from './resources/robot-account/names.js';
import { targetsNamespace, wantedServiceAccounts, type NamespaceLike } from './resources/robot-account/pull-secret.js';
import type { ProjectObject } from './resources/project/render.js';
import type { DeploymentLike } from './controllers/registry-status.js';
import { KubeClient } from './kube/client.js';
import { RESOURCES, type ResourceType } from './kube/resources.js';
import { objectKey, type KubeObject } from './kube/types.js';
import type { OperatorOptions } from './options.js';
import { VERSION } from './options.js';
import { MANAGED_BY, type Registry } from './resources/registry/index.js';
import { Applier } from './runtime/apply.js';
import { Controller } from './runtime/controller.js';
import { EventRecorder } from './runtime/events.js';
import { startHealthServer } from './runtime/health.js';
import { Informer } from './runtime/informer.js';
import { LeaderElector } from './runtime/leader.js';
import { OperatorMetrics } from './runtime/metrics.js';
import { ownerKey } from './runtime/owners.js';
import { WorkQueue } from './runtime/workqueue.js';

/** How often an object stalled on something outside it (a missing Registry, user or Secret) is looked at again. */
const STALLED_RECHECK_MS = 30_000;

export interface RunningOperator {
  port: number;
  metrics: OperatorMetrics;
  /** Resolves when everything has stopped after the signal aborted. */
  done: Promise<void>;
}

export async function startOperator(options: OperatorOptions, log: Logger, signal: AbortSignal): Promise<RunningOperator> {
  const kc = new KubeConfig();
  if (options.kubeconfig) kc.loadFromFile(options.kubeconfig);
  else kc.loadFromDefault();
  const metrics = new OperatorMetrics();
  const client = new KubeClient(kc, { userAgent: `wharf-operator/${VERSION} (${options.identity})`, fieldManager: 'wharf-operator', observe: metrics.observeRequest });

  let leading = !options.leaderElect;
  let synced = false;
  const health = await startHealthServer(
    options.healthAddr,
    {
      live: () => true,
      ready: () => (leading && !synced ? { ok: false, detail: 'leader: caches syncing' } : { ok: true, detail: leading ? 'leader: ok' : 'standby: ok' }),
    },
    metrics,
  );
  log.info({ addr: options.healthAddr, port: health.port, identity: options.identity }, 'health server listening');

  const runControllers = async (leadSignal: AbortSignal) => {
    leading = true;
    metrics.leader.set(1);
    try {
      await runAllControllers(client, options, metrics, log, leadSignal, () => (synced = true));
    } finally {
      synced = false;
      leading = !options.leaderElect;
      metrics.leader.set(0);
    }
  };

  const done = (async () => {
    if (options.leaderElect) {
      const elector = new LeaderElector(
        client,
        {
          namespace: options.namespace,
          name: options.leaseName,
          identity: options.identity,
          leaseDurationMs: options.leaseDurationMs,
          renewDeadlineMs: options.renewDeadlineMs,
          retryPeriodMs: options.retryPeriodMs,
          onStartedLeading: runControllers,
          onLeaderChange: (leader, isMe) => log.info({ leader, isMe }, 'leader observed'),
        },
        log,
      );
      await elector.run(signal);
    } else {
      await runControllers(signal);
    }
    await new Promise<void>((r) => health.server.close(() => r()));
    client.close();
  })();
  return { port: health.port, metrics, done };
}

async function runAllControllers(client: KubeClient, options: OperatorOptions, metrics: OperatorMetrics, log: Logger, signal: AbortSignal, onSynced: () => void): Promise<void> {
  const ns = options.watchNamespace;
  // Every informer, worker and queue waits on this signal; Node warns past 10 listeners.
  setMaxListeners(100, signal);
  const owned = (resource: ResourceType) => new Informer(client, { resource, namespace: ns, labelSelector: `app.kubernetes.io/managed-by=${MANAGED_BY}` }, log);
  const caches: RegistryCaches = {
    registries: new Informer<Registry>(client, { resource: RESOURCES.Registry, namespace: ns }, log),
    deployments: owned(RESOURCES.Deployment) as Informer<DeploymentLike>,
    services: owned(RESOURCES.Service),
    configmaps: owned(RESOURCES.ConfigMap),
    secrets: owned(RESOURCES.Secret),
    pvcs: owned(RESOURCES.PersistentVolumeClaim),
    pdbs: owned(RESOURCES.PodDisruptionBudget),
    ingresses: owned(RESOURCES.Ingress),
    daemonsets: owned(RESOURCES.DaemonSet),
  };
  const projects = new Informer<ProjectObject>(client, { resource: RESOURCES.Project, namespace: ns }, log);
  const robotAccounts = new Informer<RobotAccountObject>(client, { resource: RESOURCES.RobotAccount, namespace: ns }, log);
  const replicationRules = new Informer<ReplicationRuleObject>(client, { resource: RESOURCES.ReplicationRule, namespace: ns }, log);
  // Pull secrets go to other namespaces than the RobotAccount's: these watch the whole cluster.
  const robotSecrets = new Informer<SecretLike>(client, { resource: RESOURCES.Secret, labelSelector: ROBOT_SECRETS_SELECTOR }, log);
  const namespaces = new Informer<NamespaceLike>(client, { resource: RESOURCES.Namespace }, log);

  const registryQueue = new WorkQueue();
  const projectQueue = new WorkQueue();
  const robotQueue = new WorkQueue();
  const replicationQueue = new WorkQueue();
  // The Secrets Projects (proxy-cache credentials, webhook keys) and ReplicationRules (remote
  // credentials) name share the Registries' metadata-only Secret watch.
  const referenced = referencedObjectInformers(client, ns, caches.registries, (key) => registryQueue.add(key), log, (kind, obj) => {
    if (kind !== 'Secret') return;
    projectsReferencingSecret(projects, obj).forEach((key) => projectQueue.add(key));
    rulesReferencingSecret(replicationRules, obj).forEach((key) => replicationQueue.add(key));
  });
  const serviceAccounts = new ServiceAccountWatches(client, log, (sa) => {
    for (const r of robotAccounts.list()) {
      if (!wantedServiceAccounts(r).includes(sa.metadata.name)) continue;
      const namespace = namespaces.get(sa.metadata.namespace!);
      if (namespace && targetsNamespace(r, namespace)) robotQueue.add(objectKey(r));
    }
  });
  caches.registries.onEvent((_type, obj) => {
    registryQueue.add(objectKey(obj));
    // A Registry that appears, becomes ready or changes its endpoint moves its Projects and RobotAccounts too.
    for (const p of projects.list()) if (p.metadata.namespace === obj.metadata.namespace && p.spec.registryRef.name === obj.metadata.name) projectQueue.add(objectKey(p));
    for (const r of robotAccounts.list()) if (r.metadata.namespace === obj.metadata.namespace && r.spec.registryRef.name === obj.metadata.name) robotQueue.add(objectKey(r));
    for (const r of replicationRules.list()) if (r.metadata.namespace === obj.metadata.namespace && r.spec.registryRef.name === obj.metadata.name) replicationQueue.add(objectKey(r));
  });
  robotAccounts.onEvent((_type, obj) => {
    robotQueue.add(objectKey(obj));
    serviceAccounts.watchNames(robotAccounts.list().flatMap(wantedServiceAccounts), signal);
  });
  robotSecrets.onEvent((_type, obj) => {
    const key = robotAccountKeyOf(obj);
    if (key) robotQueue.add(key);
  });
  // A namespace that starts or stops matching (or appears, or goes) moves the RobotAccounts that target it, or did.
  namespaces.onEvent((_type, obj, old) => {
    const injectedHere = new Set(robotSecrets.list(obj.metadata.name).map(robotAccountKeyOf));
    for (const r of robotAccounts.list()) {
      if (targetsNamespace(r, obj) || (old && targetsNamespace(r, old)) || injectedHere.has(objectKey(r))) robotQueue.add(objectKey(r));
    }
  });
  for (const [name, inf] of Object.entries(caches)) {
    if (name === 'registries') continue;
    (inf as Informer).onEvent((_type, obj: KubeObject) => {
      const key = ownerKey(obj, API_VERSION, 'Registry');
      if (key) registryQueue.add(key);
    });
  }
  projects.onEvent((type, obj, old) => {
    projectQueue.add(objectKey(obj));
    // The hosts a Registry's node agent mirrors default to its proxy projects' mirrorOf.
    const mirrored = (p?: ProjectObject) => (p && !p.metadata.deletionTimestamp ? JSON.stringify([p.spec.registryRef.name, p.spec.proxyCache?.mirrorOf ?? []]) : '');
    if (type === 'MODIFIED' && mirrored(obj) === mirrored(old)) return;
    for (const p of [obj, old]) if (p?.spec.proxyCache?.mirrorOf?.length) registryQueue.add(`${p.metadata.namespace}/${p.spec.registryRef.name}`);
  });
  replicationRules.onEvent((_type, obj) => replicationQueue.add(objectKey(obj)));

  const informers = [...(Object.values(caches) as Informer[]), ...referenced, ...([projects, robotAccounts, replicationRules, robotSecrets, namespaces] as unknown as Informer[])];
  const informerRuns = informers.map((i) => i.run(signal));
  await Promise.race([Promise.all(informers.map((i) => i.waitForSync())), new Promise((r) => signal.addEventListener('abort', r, { once: true }))]);
  if (signal.aborted) {
    await Promise.all(informerRuns);
    return;
  }
  await serviceAccounts.waitForSync(signal);
  onSynced();
  log.info(
    { registries: caches.registries.list().length, projects: projects.list().length, robotAccounts: robotAccounts.list().length, replicationRules: replicationRules.list().length, namespaces: namespaces.list().length, serviceAccounts: serviceAccounts.sizes() },
    'caches synced; reconciling',
  );

  const events = new EventRecorder(client, 'wharf.dev/operator', options.identity, log);
  const connections = new RegistryConnections(client, log);
  const nodeMirror = new NodeMirror(client, new Applier(client, metrics), { daemonsets: caches.daemonsets as Informer<DaemonSetLike>, configmaps: caches.configmaps, projects }, events, { image: options.nodeAgentImage });
  const registryReconciler = new RegistryReconciler(client, caches, events, { defaultImage: options.defaultImage, stepDelayMs: options.stepDelayMs }, log, connections, new Applier(client, metrics), nodeMirror);
  const projectReconciler = new ProjectReconciler(client, { projects, registries: caches.registries }, connections, events, { recheckMs: STALLED_RECHECK_MS }, log);
  const applier = new Applier(client, metrics);
  const injector = new PullSecretInjector(client, { namespaces, secrets: robotSecrets, serviceAccounts }, applier, log);
  const robotReconciler = new RobotAccountReconciler(
    client,
    { robotAccounts, registries: caches.registries, secrets: robotSecrets },
    connections,
    injector,
    applier,
    events,
    { recheckMs: STALLED_RECHECK_MS, stepDelayMs: options.stepDelayMs },
    log,
  );
  const replicationReconciler = new ReplicationRuleReconciler(client, { rules: replicationRules, registries: caches.registries }, connections, events, { recheckMs: STALLED_RECHECK_MS }, log);
  const controllers = [
    new Controller({ name: 'registry', workers: options.workers }, registryQueue, registryReconciler, metrics, log),
    new Controller({ name: 'project', workers: options.workers }, projectQueue, projectReconciler, metrics, log),
    new Controller({ name: 'robotaccount', workers: options.workers }, robotQueue, robotReconciler, metrics, log),
    new Controller({ name: 'replicationrule', workers: options.workers }, replicationQueue, replicationReconciler, metrics, log),
  ];
  // The resync re-reads every object, so changes made in a registry by hand are found and reverted.
  const resync = options.resyncMs > 0
    ? setInterval(() => {
        caches.registries.list().forEach((r) => registryQueue.add(objectKey(r)));
        projects.list().forEach((p) => projectQueue.add(objectKey(p)));
        robotAccounts.list().forEach((r) => robotQueue.add(objectKey(r)));
        replicationRules.list().forEach((r) => replicationQueue.add(objectKey(r)));
      }, options.resyncMs)
    : undefined;
  try {
    await Promise.all(controllers.map((c) => c.run(signal)));
  } finally {
    if (resync) clearInterval(resync);
    await Promise.all(informerRuns);
    await serviceAccounts.stopAll();
    await connections.closeAll();
  }
}
