// The webhooks part of a Project pass: resolve the referenced Secret keys, PUT each webhook
// (the registry writes nothing when a policy is unchanged, so re-sending it every pass keeps
// rotated Secret values flowing without remembering them), and delete the webhooks this
// Project made that its spec no longer lists. Webhooks made by hand are left alone.
import type { KubeClient } from '../kube/client.js';
import { RESOURCES } from '../kube/resources.js';
import { must, type RegistryClient } from '../registry-client/client.js';
import { projectManager, type ProjectObject } from '../resources/project/render.js';
import { renderWebhooks, webhookSecretRefs, type SecretKeyRef } from '../resources/project/webhooks.js';
import type { SecretLike } from '../resources/robot-account/credentials.js';
import { UserError } from '../runtime/user-error.js';

async function readSecretKeys(client: KubeClient, namespace: string, refs: SecretKeyRef[], signal: AbortSignal): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  const secrets = new Map<string, SecretLike | undefined>();
  for (const ref of refs) {
    if (!secrets.has(ref.name)) secrets.set(ref.name, await client.find<SecretLike>(RESOURCES.Secret, namespace, ref.name, signal));
    const secret = secrets.get(ref.name);
    if (!secret) throw new UserError('SecretNotFound', `Secret ${ref.name} referenced by spec.webhooks not found in namespace ${namespace}`);
    const encoded = secret.data?.[ref.key];
    if (encoded === undefined) throw new UserError('SecretKeyNotFound', `Secret ${ref.name} has no key ${ref.key} (referenced by spec.webhooks)`);
    values.set(`${ref.name}/${ref.key}`, Buffer.from(encoded, 'base64').toString('utf8').trim());
  }
  return values;
}

/** Returns one line per webhook created, updated or removed. */
export async function syncWebhooks(kube: KubeClient, api: RegistryClient, obj: ProjectObject, project: string, signal: AbortSignal): Promise<string[]> {
  const values = await readSecretKeys(kube, obj.metadata.namespace!, webhookSecretRefs(obj), signal);
  const desired = renderWebhooks(obj, (ref) => values.get(`${ref.name}/${ref.key}`)!);
  const live = await listWebhooks(api, project, signal);
  const changes: string[] = [];
  for (const { name, body } of desired) {
    const owner = live.get(name);
    if (owner !== undefined && owner !== null && owner !== body.managedBy) throw new UserError('WebhookOwnedElsewhere', `webhook "${name}" in project "${project}" is managed by ${owner}`);
    const res = await api.api.PUT('/api/v1/projects/{project}/webhooks/{webhook}', { params: { path: { project, webhook: name } }, body, signal });
    if (res.response.status === 400) throw new UserError('InvalidWebhook', `webhook "${name}": ${(res.error as { errors?: { message: string }[] } | undefined)?.errors?.[0]?.message ?? 'refused by the registry'}`);
    must(`put webhook ${name}`, res);
    if (res.response.status === 201) changes.push(`webhook ${name} created`);
  }
  const wanted = new Set(desired.map((w) => w.name));
  for (const [name, owner] of live) {
    if (wanted.has(name) || owner !== projectManager(obj)) continue;
    const res = await api.api.DELETE('/api/v1/projects/{project}/webhooks/{webhook}', { params: { path: { project, webhook: name } }, signal });
    if (res.response.status !== 404) must(`delete webhook ${name}`, res);
    changes.push(`webhook ${name} removed`);
  }
  return changes;
}

/** name → managedBy of every webhook in the project. */
async function listWebhooks(api: RegistryClient, project: string, signal: AbortSignal): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  let after: string | undefined;
  do {
    const page = must(`list webhooks of ${project}`, await api.api.GET('/api/v1/projects/{project}/webhooks', { params: { path: { project }, query: { limit: 500, ...(after && { after }) } }, signal }));
    for (const w of page.items) out.set(w.name, w.managedBy);
    after = page.next;
  } while (after);
  return out;
}
