import { actorOf } from '../auth/identities.js';
import { projectsWith, type Principal, type Role } from '../auth/policy.js';
import type { Metadata } from '../metadata/index.js';
import type { GroupMember, Member, Project, ProjectSpec } from '../metadata/projects.js';
import { MirrorHostTakenError, type ProxyCacheConfig, type ProxyCacheRecord } from '../metadata/proxy-caches.js';
import { ociError } from '../oci/errors.js';
import { proxyCacheRecord, proxyCacheView, type ProxyCacheInput, type ProxyCacheView } from '../proxy/settings.js';
import { defaultProxyCacheRetention } from '../lifecycle/retention-policy.js';
import { requireInProject, requireSystem, visibleTo } from './access.js';
import type { AuditLog } from './audit.js';
import { checkGroupName, checkProjectName, checkUsername } from './names.js';

export interface ProjectView extends Project {
  usedBytes: number;
  repositories: number;
  /** The upstream of a proxy-cache project (password left out); null for an ordinary project. */
  proxyCache: ProxyCacheView | null;
}

/** A project as PUT takes it: `proxyCache` null makes it an ordinary project again, undefined leaves it. */
export interface ProjectInput extends ProjectSpec {
  proxyCache?: ProxyCacheInput | null;
}

/** Whether writing `record` would change `existing` (a password given is compared too). Pure. */
function proxyCacheChanges(existing: ProxyCacheConfig | undefined, record: ProxyCacheRecord | null): boolean {
  if (record === null) return existing !== undefined;
  if (!existing) return true;
  return (
    existing.provider !== record.provider ||
    existing.url !== record.url ||
    existing.username !== record.username ||
    (record.password !== undefined && existing.password !== record.password) ||
    existing.insecure !== record.insecure ||
    existing.mirrorOf.join(',') !== record.mirrorOf.join(',') ||
    existing.manifestTtlSeconds !== record.manifestTtlSeconds
  );
}

/** What the audit log keeps of new proxy settings: never the password, only whether one was set. */
function auditedProxyCache(record: ProxyCacheRecord): Record<string, unknown> {
  const { password, mirrorHosts: _hosts, manifestTtlSeconds, ...rest } = record;
  return { ...rest, manifestTTLSeconds: manifestTtlSeconds, ...(password !== undefined && { passwordSet: password !== null }) };
}

function mirrorHostTaken(err: MirrorHostTakenError) {
  return ociError('CONFLICT', { host: err.host, project: err.project }, { message: `proxyCache.mirrorOf: host ${err.host} is already mirrored by project "${err.project}"; a host can be mirrored by one project` });
}

export interface PageQuery {
  limit: number;
  after?: string;
}

/** Projects, their quotas and members, as the management API sees them. */
export class ProjectService {
  constructor(
    private readonly meta: Metadata,
    private readonly audit: AuditLog,
    /** Called after a project's content was deleted (in-process caches of manifests). */
    private readonly onContentDeleted: () => void = () => undefined,
    /** Called after a project's proxy-cache settings, visibility or quota changed (in-process caches of the settings, which carry the latter two). */
    private readonly onProxyChanged: () => void = () => undefined,
  ) {}

  private async view(project: Project): Promise<ProjectView> {
    return (await this.views([project]))[0]!;
  }

  private async views(projects: Project[]): Promise<ProjectView[]> {
    const names = projects.map((p) => p.name);
    const [usage, proxies] = await Promise.all([this.meta.projects.usageOf(names), this.meta.proxyCaches.byProjects(names)]);
    return projects.map((p) => {
      const proxy = proxies.get(p.name);
      return { ...p, ...(usage.get(p.name) ?? { usedBytes: 0, repositories: 0 }), proxyCache: proxy ? proxyCacheView(proxy) : null };
    });
  }

  private record(principal: Principal, action: string, resource: string, detail?: Record<string, unknown>) {
    this.audit.record({ actor: actorOf(principal), action, resourceType: 'project', resource, project: resource, outcome: 'success', ...(detail && { detail }) });
  }

  /** The projects `principal` may read, filtered in the database (a page costs a page, not the table). */
  async list(principal: Principal, page: PageQuery): Promise<{ items: ProjectView[]; next?: string }> {
    const readable = projectsWith(principal, 'project:read');
    const rows = await this.meta.projects.list({ limit: page.limit + 1, ...(page.after !== undefined && { after: page.after }), ...(readable !== 'all' && { visible: readable }) });
    const items = await this.views(rows.slice(0, page.limit));
    return rows.length > page.limit ? { items, next: items[items.length - 1]!.name } : { items };
  }

  async get(principal: Principal, name: string): Promise<ProjectView> {
    return this.view(requireInProject(principal, name, await this.meta.projects.get(name), 'project:read'));
  }

  /**
   * Create-or-update by name; idempotent. Creating, changing quotas and changing the
   * upstream of a proxy-cache project need a system administrator (an upstream makes the
   * registry fetch from a URL of the caller's choosing). Input is checked before
   * anything is written; a project created by a request whose proxy settings then
   * conflict is removed again.
   */
  async put(principal: Principal, name: string, input: ProjectInput): Promise<{ project: ProjectView; created: boolean }> {
    checkProjectName(name);
    const { proxyCache, ...spec } = input;
    const record = proxyCache === undefined ? undefined : proxyCache === null ? null : proxyCacheRecord(proxyCache);
    const existing = await this.meta.projects.get(name);
    // A project the caller cannot see is answered as if absent: creating needs an administrator.
    if (!visibleTo(principal, existing)) requireSystem(principal, 'project:create');
    else requireInProject(principal, name, existing, 'project:update');
    if (spec.storageLimit !== undefined && spec.storageLimit !== (existing?.storageLimit ?? -1)) requireSystem(principal, 'quota:write');
    const existingProxy = existing ? await this.meta.proxyCaches.byProject(name) : undefined;
    const proxyChanges = record !== undefined && proxyCacheChanges(existingProxy, record);
    if (proxyChanges) requireSystem(principal, 'project:create');
    if (record) await this.checkMirrorHosts(name, record);
    const result = await this.meta.projects.upsert(name, spec);
    if ('managedByOther' in result) {
      throw ociError('CONFLICT', { project: name, managedBy: result.managedByOther }, { message: `project "${name}" is managed by ${JSON.stringify(result.managedByOther)}` });
    }
    const { project, created } = result;
    if (proxyChanges) await this.writeProxyCache(project, record!, created);
    // The cached proxy settings carry the project's visibility and storage limit too.
    else if (existingProxy && project.updatedAt.getTime() !== existing!.updatedAt.getTime()) this.onProxyChanged();
    // A project that becomes a proxy cache gets Harbor's default retention, unless it has a policy.
    if (proxyChanges && record && !existingProxy) await this.meta.lifecycle.setRetentionPolicy(project.id, defaultProxyCacheRetention(), true);
    const detail = { ...spec, ...(record !== undefined && { proxyCache: record && auditedProxyCache(record) }) };
    if (created) this.record(principal, 'create', name, detail);
    else if (project.updatedAt.getTime() !== existing!.updatedAt.getTime() || proxyChanges) this.record(principal, 'update', name, detail);
    return { project: await this.view(project), created };
  }

  /** Refuses mirror hosts another project claims, before anything is written. */
  private async checkMirrorHosts(name: string, record: ProxyCacheRecord): Promise<void> {
    for (const host of record.mirrorHosts) {
      const owner = await this.meta.proxyCaches.byMirrorHost(host);
      if (owner && owner.project !== name) throw mirrorHostTaken(new MirrorHostTakenError(host, owner.project));
    }
  }

  private async writeProxyCache(project: Project, record: ProxyCacheRecord | null, created: boolean): Promise<void> {
    try {
      if (record === null) await this.meta.proxyCaches.remove(project.id);
      else await this.meta.proxyCaches.set(project.id, record);
    } catch (err) {
      // Lost a race for a mirror host: a project this request created goes again.
      if (created) await this.meta.projects.delete(project.name).catch(() => undefined);
      if (err instanceof MirrorHostTakenError) throw mirrorHostTaken(err);
      throw err;
    } finally {
      this.onProxyChanged();
    }
  }

  /** Deletes an empty project, or with `withContent` the project and everything in it. */
  async delete(principal: Principal, name: string, withContent = false): Promise<void> {
    requireInProject(principal, name, await this.meta.projects.get(name), 'project:delete');
    const result = await this.meta.projects.delete(name, withContent);
    if (result === 'missing') throw ociError('RESOURCE_NOT_FOUND', { project: name }, { message: `project "${name}" not found` });
    if (result === 'not-empty') throw ociError('CONFLICT', { project: name }, { message: `project "${name}" still holds artifacts or blobs; delete them first, or pass deleteContent=true` });
    if (withContent) this.onContentDeleted();
    this.onProxyChanged();
    this.record(principal, 'delete', name, withContent ? { withContent } : undefined);
  }

  async quota(principal: Principal, name: string): Promise<{ limitBytes: number; usedBytes: number }> {
    const project = requireInProject(principal, name, await this.meta.projects.get(name), 'quota:read');
    return { limitBytes: project.storageLimit, usedBytes: await this.meta.projects.usage(name) };
  }

  async setQuota(principal: Principal, name: string, limitBytes: number): Promise<{ limitBytes: number; usedBytes: number }> {
    requireInProject(principal, name, await this.meta.projects.get(name), 'project:read');
    requireSystem(principal, 'quota:write');
    const before = await this.meta.projects.get(name);
    await this.meta.projects.upsert(name, { storageLimit: limitBytes });
    if (before?.storageLimit !== limitBytes) {
      this.onProxyChanged();
      this.audit.record({ actor: actorOf(principal), action: 'update', resourceType: 'quota', resource: name, project: name, outcome: 'success', detail: { limitBytes } });
    }
    return { limitBytes, usedBytes: await this.meta.projects.usage(name) };
  }

  async members(principal: Principal, name: string): Promise<Member[]> {
    const project = requireInProject(principal, name, await this.meta.projects.get(name), 'member:read');
    return this.meta.projects.members(project.id);
  }

  async setMember(principal: Principal, name: string, username: string, role: Role): Promise<{ member: Member; created: boolean }> {
    const project = requireInProject(principal, name, await this.meta.projects.get(name), 'member:write');
    const user = await this.meta.users.get(checkUsername(username));
    if (!user) throw ociError('RESOURCE_NOT_FOUND', { user: username }, { message: `user "${username}" not found` });
    const { created, changed } = await this.meta.projects.setMember(project.id, user.id, role);
    if (changed) this.audit.record({ actor: actorOf(principal), action: created ? 'create' : 'update', resourceType: 'member', resource: `${name}/${username}`, project: name, outcome: 'success', detail: { role } });
    return { member: { userId: user.id, username: user.username, role }, created };
  }

  async removeMember(principal: Principal, name: string, username: string): Promise<void> {
    const project = requireInProject(principal, name, await this.meta.projects.get(name), 'member:write');
    const user = await this.meta.users.get(username);
    if (!user || !(await this.meta.projects.removeMember(project.id, user.id))) {
      throw ociError('RESOURCE_NOT_FOUND', { member: username }, { message: `"${username}" is not a member of project "${name}"` });
    }
    this.audit.record({ actor: actorOf(principal), action: 'delete', resourceType: 'member', resource: `${name}/${username}`, project: name, outcome: 'success' });
  }

  async groups(principal: Principal, name: string): Promise<GroupMember[]> {
    const project = requireInProject(principal, name, await this.meta.projects.get(name), 'member:read');
    return this.meta.projects.groups(project.id);
  }

  /** Stores a group's role; it grants access once identities carry groups (OIDC). */
  async setGroup(principal: Principal, name: string, group: string, role: Role): Promise<{ member: GroupMember; created: boolean }> {
    const project = requireInProject(principal, name, await this.meta.projects.get(name), 'member:write');
    const { created, changed } = await this.meta.projects.setGroup(project.id, checkGroupName(group), role);
    if (changed) this.audit.record({ actor: actorOf(principal), action: created ? 'create' : 'update', resourceType: 'group-member', resource: `${name}/${group}`, project: name, outcome: 'success', detail: { role } });
    return { member: { group, role }, created };
  }

  async removeGroup(principal: Principal, name: string, group: string): Promise<void> {
    const project = requireInProject(principal, name, await this.meta.projects.get(name), 'member:write');
    if (!(await this.meta.projects.removeGroup(project.id, group))) {
      throw ociError('RESOURCE_NOT_FOUND', { group }, { message: `group "${group}" is not a member of project "${name}"` });
    }
    this.audit.record({ actor: actorOf(principal), action: 'delete', resourceType: 'group-member', resource: `${name}/${group}`, project: name, outcome: 'success' });
  }
}
