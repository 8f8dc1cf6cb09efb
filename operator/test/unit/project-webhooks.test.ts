import { describe, expect, it } from 'vitest';
import type { ProjectObject } from '../../src/resources/project/render.js';
import { renderWebhooks, webhookSecretRefs } from '../../src/resources/project/webhooks.js';

const project = (webhooks: unknown[]): ProjectObject =>
  ({
    apiVersion: 'wharf.dev/v1alpha1',
    kind: 'Project',
    metadata: { name: 'team', namespace: 'ci' },
    spec: { registryRef: { name: 'main' }, visibility: 'private', adopt: false, deletionPolicy: 'Retain', webhooks },
  }) as unknown as ProjectObject;

describe('Project webhooks render', () => {
  const obj = project([
    { name: 'ci', url: 'https://ci.example.com/h', format: 'cloudevents', events: ['artifact.pushed'], enabled: true, authHeaderSecretRef: { name: 's', key: 'auth' }, hmacSecretRef: { name: 's', key: 'hmac' } },
    { name: 'ops', url: 'https://ops.example.com/h', format: 'harbor', events: ['quota.warning'], enabled: false, hmacSecretRef: { name: 's', key: 'hmac' } },
  ]);

  it('lists each referenced Secret key once', () => {
    expect(webhookSecretRefs(obj)).toEqual([
      { name: 's', key: 'auth' },
      { name: 's', key: 'hmac' },
    ]);
  });

  it('renders the API bodies with the Secret values, "" for credentials the spec does not name, and the manager', () => {
    const values: Record<string, string> = { 's/auth': 'Bearer t', 's/hmac': 'k' };
    const rendered = renderWebhooks(obj, (ref) => values[`${ref.name}/${ref.key}`]!);
    expect(rendered).toEqual([
      { name: 'ci', body: { url: 'https://ci.example.com/h', format: 'cloudevents', events: ['artifact.pushed'], enabled: true, authHeader: 'Bearer t', secret: 'k', managedBy: 'ci/team' } },
      { name: 'ops', body: { url: 'https://ops.example.com/h', format: 'harbor', events: ['quota.warning'], enabled: false, authHeader: '', secret: 'k', managedBy: 'ci/team' } },
    ]);
    // Pure: the same input renders byte-identical output.
    expect(JSON.stringify(renderWebhooks(obj, (ref) => values[`${ref.name}/${ref.key}`]!))).toBe(JSON.stringify(rendered));
    expect(renderWebhooks(project([]), () => '')).toEqual([]);
  });
});
