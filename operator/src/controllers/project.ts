// The Project reconciler: a Project object → a project in its Registry, through the management
// API. One pass:
//   get the Project (gone → done); being deleted → finalize; else ensure the finalizer;
//   try { find the Registry → connect → read the registry's side → check ownership →
//         apply the differences → report drift } finally { conditions and status }.
// The registry records `<namespace>/<name>` as the project's manager, so a second object naming
// the same project, or a project made by hand, is never taken over silently.
//
// spec.proxyCache is sent as the project's `proxyCache`, with the username and password read from
// credentialsSecretRef. The registry never shows the password back, so the Project's status
// records which version of the Secret (uid/resourceVersion) it last sent: the password is sent
// again when that version changes (the Secret is watched, metadata only), when the registry holds
// none, or with any other change of the settings — never on an idle pass. No value derived from
// the password is kept anywhere (a digest in the status would let anyone who can read Projects
// test guesses offline).
import type { Logger } from 'pino';
import type { ProjectStatus } from '../api/project.js';
import type { KubeClient } from '../kube/client.js';
import { isNotFound } from '../kube/errors.js';
import { RESOURCES } from '../kube/resources.js';
import { objectKey, type KubeObject } from '../kube/types.js';
import { must, type RegistryClient } from '../registry-client/client.js';
import {
  projectDifferences,
  projectManager,
  projectName,
  proxyCacheBody,
  proxyCacheDifferences,
  renderProject,
  renderProxyCache,
  type DesiredProject,
  type DesiredProxyCache,
  type LiveProject,
  type ProjectObject,
  type Role,
  type UpstreamCredentials,
} from '../resources/project/render.js';
import type { Registry } from '../resources/registry/index.js';
import type { ReconcileResult, Reconciler } from '../runtime/controller.js';
import type { EventRecorder } from '../runtime/events.js';
import { addFinalizer, hasFinalizer, removeFinalizer } from '../runtime/finalizers.js';
import type { Informer } from '../runtime/informer.js';
import { UserError } from '../runtime/user-error.js';
import type { RegistryConnections } from './registry-connection.js';
import { reconcileWithStatus } from './content-status.js';
import { syncWebhooks } from './project-webhooks.js';
import { webhookSecretRefs } from '../resources/project/webhooks.js';
import { applyLifecycle } from './project-lifecycle.js';

export const PROJECT_FINALIZER = 'wharf.dev/project';

export interface ProjectCaches {
  projects: Informer<ProjectObject>;
  registries: Informer<Registry>;
}

export interface ProjectReconcilerOptions {
  /** How often a Stalled Project (missing Registry or user) is looked at again. */
  recheckMs: number;
}

/** Keys of the Projects whose proxyCache.credentialsSecretRef names this Secret. */
export function projectsReferencingSecret(projects: Informer<ProjectObject>, secret: KubeObject): string[] {
  return projects
    .list(secret.metadata.namespace)
    .filter((p) => p.spec.proxyCache?.credentialsSecretRef?.name === secret.metadata.name || webhookSecretRefs(p).some((ref) => ref.name === secret.metadata.name))
    .map(objectKey);
}

type SecretLike = KubeObject & { data?: Record<string, string> };

export class ProjectReconciler implements Reconciler {
  constructor(
    private readonly client: KubeClient,
    private readonly caches: ProjectCaches,
    private readonly connections: RegistryConnections,
    private readonly events: EventRecorder,
    private readonly options: ProjectReconcilerOptions,
    private readonly log: Logger,
  ) {}

  async reconcile(key: string, signal: AbortSignal): Promise<ReconcileResult> {
    const cached = this.caches.projects.get(key);
    if (!cached) return {};
    if (cached.metadata.deletionTimestamp) return this.finalize(cached, signal);
    const current = hasFinalizer(cached, PROJECT_FINALIZER) ? cached : await addFinalizer(this.client, RESOURCES.Project, cached, PROJECT_FINALIZER, signal);
    return reconcileWithStatus<ProjectStatus>({
      client: this.client,
      resource: RESOURCES.Project,
      object: current,
      events: this.events,
      recheckMs: this.options.recheckMs,
      signal,
      work: () => this.sync(current, signal),
    });
  }

  private registryFor(obj: ProjectObject): Registry {
    const name = obj.spec.registryRef.name;
    const registry = this.caches.registries.get(`${obj.metadata.namespace}/${name}`);
    if (!registry) throw new UserError('RegistryNotFound', `Registry ${name} not found in namespace ${obj.metadata.namespace}`);
    return registry;
  }

  private async sync(obj: ProjectObject, signal: AbortSignal) {
    const credentials = obj.spec.proxyCache?.credentialsSecretRef ? await this.readCredentials(obj, obj.spec.proxyCache.credentialsSecretRef.name, signal) : undefined;
    const desiredProxy = renderProxyCache(obj.spec.proxyCache, credentials);
    const desired = renderProject(obj);
    const api = await this.connections.client(this.registryFor(obj), signal);
    const live = await readProject(api, desired.name, signal);
    if (live && live.managedBy !== desired.managedBy) {
      if (live.managedBy) throw new UserError('ProjectOwnedElsewhere', `project "${desired.name}" is managed by Project ${live.managedBy}`);
      if (!obj.spec.adopt) throw new UserError('ProjectExists', `project "${desired.name}" already exists in the registry; set spec.adopt: true to manage it`);
    }
    const missingUsers = await this.missingUsers(api, desired, live, signal);
    const wanted: DesiredProject = { ...desired, users: new Map([...desired.users].filter(([u]) => !missingUsers.includes(u))) };
    const proxyChanges = proxyCacheDifferences(live?.proxyCache ?? null, desiredProxy, obj.status?.proxyCache?.credentialsVersion);
    const changes = live ? [...projectDifferences(live, wanted), ...proxyChanges] : [];
    await applyProject(api, wanted, live, proxyChanges.length > 0 ? desiredProxy : undefined, signal);
    const policyChanges = await applyLifecycle(api, desired.name, obj.spec, signal);
    const webhookChanges = await syncWebhooks(this.client, api, obj, desired.name, signal);
    await this.report(obj, live, [...changes, ...(live ? policyChanges : []), ...webhookChanges]);
    const view = must('get project', await api.api.GET('/api/v1/projects/{project}', { params: { path: { project: desired.name } }, signal }));
    const fields: Partial<ProjectStatus> = {
      projectName: desired.name,
      projectId: view.id,
      usage: { storageBytes: view.usedBytes, repositories: view.repositories },
      proxyCache: credentials ? { credentialsVersion: credentials.version } : undefined,
    };
    if (missingUsers.length > 0) {
      return { fields, userError: new UserError('UserNotFound', `users not found in the registry: ${missingUsers.join(', ')}; the other members are applied`) };
    }
    return { fields, summary: { state: 'ready' as const, reason: 'Synced', message: `Project ${desired.name} is in sync` } };
  }

  /** The upstream credentials from the Project's Secret (read with a GET; the operator caches no Secret data). */
  private async readCredentials(obj: ProjectObject, name: string, signal: AbortSignal): Promise<UpstreamCredentials> {
    let secret: SecretLike;
    try {
      secret = await this.client.get<SecretLike>(RESOURCES.Secret, obj.metadata.namespace, name, signal);
    } catch (err) {
      if (isNotFound(err)) throw new UserError('CredentialsSecretNotFound', `Secret ${name} (spec.proxyCache.credentialsSecretRef) not found`);
      throw err;
    }
    const value = (key: string) => (secret.data?.[key] ? Buffer.from(secret.data[key], 'base64').toString('utf8') : '');
    const missing = ['username', 'password'].filter((k) => value(k) === '');
    if (missing.length > 0) throw new UserError('CredentialsSecretKeyMissing', `Secret ${name} (spec.proxyCache.credentialsSecretRef) has no ${missing.join(' and no ')} key`);
    return { username: value('username'), password: value('password'), version: `${secret.metadata.uid}/${secret.metadata.resourceVersion}` };
  }

  /** Users named as members that the registry does not know (reads only; asked again each pass). */
  private async missingUsers(api: RegistryClient, desired: DesiredProject, live: LiveProject | undefined, signal: AbortSignal): Promise<string[]> {
    const missing: string[] = [];
    for (const user of [...desired.users.keys()].sort()) {
      if (live?.users.has(user)) continue;
      const res = await api.api.GET('/api/v1/users/{username}', { params: { path: { username: user } }, signal });
      if (res.response.status === 404) missing.push(user);
      else must(`get user ${user}`, res);
    }
    return missing;
  }

  /** An Event for what changed: drift (someone edited the registry by hand) or a spec update. */
  private async report(obj: ProjectObject, live: LiveProject | undefined, changes: string[]): Promise<void> {
    if (!live) {
      await this.events.record(obj, 'Normal', 'Created', `Created project ${projectName(obj)} in the registry`);
      return;
    }
    if (live.managedBy !== projectManager(obj)) await this.events.record(obj, 'Normal', 'Adopted', `Adopted existing project ${projectName(obj)}`);
    if (changes.length === 0) return;
    const drift = obj.status?.observedGeneration === obj.metadata.generation;
    if (drift) {
      this.log.info({ project: projectName(obj), changes }, 'reverted changes made outside the Project object');
      await this.events.record(obj, 'Warning', 'DriftReverted', `Reverted changes made outside this object: ${changes.join('; ')}`);
    } else {
      await this.events.record(obj, 'Normal', 'Updated', `Updated project ${projectName(obj)}: ${changes.join('; ')}`);
    }
  }

  /**
   * Deletion: Delete removes the project and its content; Retain keeps both and releases the
   * project (clears its manager). A project this object does not manage is left alone, and a
   * Registry that is gone has nothing left to clean.
   */
  private async finalize(obj: ProjectObject, signal: AbortSignal): Promise<ReconcileResult> {
    if (!hasFinalizer(obj, PROJECT_FINALIZER)) return {};
    const registry = this.caches.registries.get(`${obj.metadata.namespace}/${obj.spec.registryRef.name}`);
    if (registry && !registry.metadata.deletionTimestamp) {
      const api = await this.connections.client(registry, signal);
      const name = projectName(obj);
      const live = await readProject(api, name, signal);
      if (live?.managedBy === projectManager(obj)) {
        if (obj.spec.deletionPolicy === 'Delete') {
          const res = await api.api.DELETE('/api/v1/projects/{project}', { params: { path: { project: name }, query: { deleteContent: true } }, signal });
          if (res.response.status !== 404) must(`delete project ${name}`, res);
        } else {
          must(`release project ${name}`, await api.api.PUT('/api/v1/projects/{project}', { params: { path: { project: name } }, body: { managedBy: '' }, signal }));
        }
        this.log.info({ project: name, policy: obj.spec.deletionPolicy }, 'project finalized');
      }
    }
    await removeFinalizer(this.client, RESOURCES.Project, obj, PROJECT_FINALIZER, signal);
    return {};
  }
}

/** The registry's side of a project, or undefined when it does not exist. */
async function readProject(client: RegistryClient, name: string, signal: AbortSignal): Promise<LiveProject | undefined> {
  const path = { project: name };
  const got = await client.api.GET('/api/v1/projects/{project}', { params: { path }, signal });
  if (got.response.status === 404) return undefined;
  const project = must(`get project ${name}`, got);
  const members = must(`list members of ${name}`, await client.api.GET('/api/v1/projects/{project}/members', { params: { path }, signal }));
  const groups = must(`list groups of ${name}`, await client.api.GET('/api/v1/projects/{project}/groups', { params: { path }, signal }));
  return {
    public: project.public,
    storageLimit: project.storageLimit,
    managedBy: project.managedBy ?? null,
    proxyCache: project.proxyCache ?? null,
    users: new Map(members.items.map((m) => [m.username, m.role as Role])),
    groups: new Map(groups.items.map((g) => [g.group, g.role as Role])),
  };
}

/**
 * Writes only what differs: the project's fields (with `proxy`, the proxy-cache settings to send,
 * when they differ), then each member whose role is missing or wrong, then removals.
 */
async function applyProject(client: RegistryClient, desired: DesiredProject, live: LiveProject | undefined, proxy: DesiredProxyCache | null | undefined, signal: AbortSignal): Promise<void> {
  const api = client.api;
  const path = { project: desired.name };
  if (!live || proxy !== undefined || live.public !== desired.public || live.storageLimit !== desired.storageLimit || live.managedBy !== desired.managedBy) {
    const body = { public: desired.public, storageLimit: desired.storageLimit, managedBy: desired.managedBy, ...(proxy !== undefined && { proxyCache: proxyCacheBody(proxy) }) };
    must(`put project ${desired.name}`, await api.PUT('/api/v1/projects/{project}', { params: { path }, body, signal }));
  }
  for (const [username, role] of desired.users) {
    if (live?.users.get(username) === role) continue;
    must(`put member ${username}`, await api.PUT('/api/v1/projects/{project}/members/{username}', { params: { path: { ...path, username } }, body: { role }, signal }));
  }
  for (const [group, role] of desired.groups) {
    if (live?.groups.get(group) === role) continue;
    must(`put group ${group}`, await api.PUT('/api/v1/projects/{project}/groups/{group}', { params: { path: { ...path, group } }, body: { role }, signal }));
  }
  for (const username of live?.users.keys() ?? []) {
    if (desired.users.has(username)) continue;
    const res = await api.DELETE('/api/v1/projects/{project}/members/{username}', { params: { path: { ...path, username } }, signal });
    if (res.response.status !== 404) must(`remove member ${username}`, res);
  }
  for (const group of live?.groups.keys() ?? []) {
    if (desired.groups.has(group)) continue;
    const res = await api.DELETE('/api/v1/projects/{project}/groups/{group}', { params: { path: { ...path, group } }, signal });
    if (res.response.status !== 404) must(`remove group ${group}`, res);
  }
}
