import { actorOf } from '../auth/identities.js';
import type { Principal } from '../auth/policy.js';
import type { Metadata } from '../metadata/index.js';
import type { Project } from '../metadata/projects.js';
import type { Delivery, Webhook, WebhookStore } from '../metadata/webhooks.js';
import { ociError } from '../oci/errors.js';
import { requireInProject } from '../services/access.js';
import type { AuditLog } from '../services/audit.js';
import type { PageQuery } from '../services/projects.js';
import type { WebhookEventType } from './events.js';
import type { WebhookFormat } from './formats.js';
import { checkTargetUrl } from './targets.js';

/** A webhook as the API shows it: whether credentials are set, never their values. */
export interface WebhookView {
  id: string;
  name: string;
  url: string;
  format: WebhookFormat;
  events: string[];
  enabled: boolean;
  authHeaderSet: boolean;
  secretSet: boolean;
  managedBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface WebhookInput {
  url: string;
  format?: WebhookFormat | undefined;
  events: WebhookEventType[];
  enabled?: boolean | undefined;
  /** Write-only. Absent keeps the stored value; '' removes it. */
  authHeader?: string | undefined;
  /** Write-only HMAC key. Absent keeps the stored value; '' removes it. */
  secret?: string | undefined;
  /** Who manages the webhook declaratively; '' clears it, absent leaves it. */
  managedBy?: string | undefined;
}

export type DeliveryView = Omit<Delivery, 'seq' | 'webhookId'>;

const NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

function view(webhook: Webhook): WebhookView {
  const { authHeader, secret, projectId: _project, ...shown } = webhook;
  return { ...shown, authHeaderSet: authHeader !== null, secretSet: secret !== null };
}

const deliveryView = ({ seq: _seq, webhookId: _webhook, ...shown }: Delivery): DeliveryView => shown;

/** A credential given as '' clears it; absent keeps it. */
const credential = (value: string | undefined) => (value === undefined ? undefined : value === '' ? null : value);

/**
 * Webhook policies of a project, for its administrators (project:update, which also
 * guards reading them: targets and event choices are the project's configuration).
 */
export class WebhookService {
  constructor(
    private readonly meta: Metadata,
    private readonly store: WebhookStore,
    private readonly audit: AuditLog,
    private readonly allowPrivateTargets: boolean,
  ) {}

  private async project(principal: Principal, name: string): Promise<Project> {
    return requireInProject(principal, name, await this.meta.projects.get(name), 'project:update');
  }

  private async webhook(projectId: string, project: string, name: string): Promise<Webhook> {
    const webhook = await this.store.get(projectId, name);
    if (!webhook) throw ociError('RESOURCE_NOT_FOUND', { project, webhook: name }, { message: `webhook "${name}" not found in project "${project}"` });
    return webhook;
  }

  async list(principal: Principal, project: string, page: PageQuery): Promise<{ items: WebhookView[]; next?: string }> {
    const { id } = await this.project(principal, project);
    const rows = await this.store.list(id, page.limit + 1, page.after);
    const items = rows.slice(0, page.limit).map(view);
    return rows.length > page.limit ? { items, next: items[items.length - 1]!.name } : { items };
  }

  async get(principal: Principal, project: string, name: string): Promise<WebhookView> {
    const { id } = await this.project(principal, project);
    return view(await this.webhook(id, project, name));
  }

  async put(principal: Principal, project: string, name: string, input: WebhookInput): Promise<{ webhook: WebhookView; created: boolean }> {
    const found = await this.project(principal, project);
    if (!NAME.test(name) || name.length > 63) {
      throw ociError('INVALID_REQUEST', { webhook: name }, { message: `webhook name ${JSON.stringify(name)} must be 1-63 lower-case letters, digits and single . _ - between them` });
    }
    checkTargetUrl(input.url, this.allowPrivateTargets);
    const authHeader = credential(input.authHeader);
    if (authHeader && /[\r\n]/.test(authHeader)) throw ociError('INVALID_REQUEST', undefined, { message: 'authHeader must be a single line' });
    const { webhook, created, changed } = await this.store.put(found.id, name, {
      url: input.url,
      format: input.format ?? 'harbor',
      events: [...new Set(input.events)],
      enabled: input.enabled ?? true,
      ...(authHeader !== undefined && { authHeader }),
      ...(input.secret !== undefined && { secret: credential(input.secret) }),
      ...(input.managedBy !== undefined && { managedBy: input.managedBy === '' ? null : input.managedBy }),
    });
    if (changed) this.audit.record({ actor: actorOf(principal), action: created ? 'create' : 'update', resourceType: 'webhook', resource: name, project, outcome: 'success' });
    return { webhook: view(webhook), created };
  }

  async delete(principal: Principal, project: string, name: string): Promise<void> {
    const { id } = await this.project(principal, project);
    if (!(await this.store.delete(id, name))) throw ociError('RESOURCE_NOT_FOUND', { project, webhook: name }, { message: `webhook "${name}" not found in project "${project}"` });
    this.audit.record({ actor: actorOf(principal), action: 'delete', resourceType: 'webhook', resource: name, project, outcome: 'success' });
  }

  /** The delivery log, newest first; `after` is the previous page's `next`. */
  async deliveries(principal: Principal, project: string, name: string, page: PageQuery): Promise<{ items: DeliveryView[]; next?: string }> {
    const { id } = await this.project(principal, project);
    const webhook = await this.webhook(id, project, name);
    const before = page.after === undefined ? undefined : Number(page.after);
    if (before !== undefined && !Number.isSafeInteger(before)) throw ociError('INVALID_REQUEST', { after: page.after }, { message: 'after must be the next value of a previous page' });
    const rows = await this.store.deliveries(webhook.id, page.limit + 1, before);
    const page1 = rows.slice(0, page.limit);
    const items = page1.map(deliveryView);
    return rows.length > page.limit ? { items, next: String(page1[page1.length - 1]!.seq) } : { items };
  }
}
