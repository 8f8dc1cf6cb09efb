// A Project's webhooks as the registry's management API takes them. Pure: the Secret values
// come in as arguments, resolved by the controller.
import type { WEBHOOK_EVENTS } from '../../api/project.js';
import type { ProjectObject } from './render.js';
import { projectManager } from './render.js';

export interface SecretKeyRef {
  name: string;
  key: string;
}

/** The body of PUT /projects/{p}/webhooks/{name}: credentials as given ('' removes one the spec no longer names). */
export interface DesiredWebhook {
  name: string;
  body: {
    url: string;
    format: 'harbor' | 'cloudevents';
    events: (typeof WEBHOOK_EVENTS)[number][];
    enabled: boolean;
    authHeader: string;
    secret: string;
    managedBy: string;
  };
}

/** The Secret keys the spec's webhooks reference, each once. */
export function webhookSecretRefs(obj: ProjectObject): SecretKeyRef[] {
  const refs = new Map<string, SecretKeyRef>();
  for (const w of obj.spec.webhooks ?? []) {
    for (const ref of [w.authHeaderSecretRef, w.hmacSecretRef]) if (ref) refs.set(`${ref.name}/${ref.key}`, { name: ref.name, key: ref.key });
  }
  return [...refs.values()];
}

export function renderWebhooks(obj: ProjectObject, secretValue: (ref: SecretKeyRef) => string): DesiredWebhook[] {
  return (obj.spec.webhooks ?? []).map((w) => ({
    name: w.name,
    body: {
      url: w.url,
      format: w.format,
      events: [...w.events],
      enabled: w.enabled,
      authHeader: w.authHeaderSecretRef ? secretValue(w.authHeaderSecretRef) : '',
      secret: w.hmacSecretRef ? secretValue(w.hmacSecretRef) : '',
      managedBy: projectManager(obj),
    },
  }));
}
