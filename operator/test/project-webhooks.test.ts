// Project.spec.webhooks against a real registry process and the real control plane, with the
// operator as a real process under config/rbac: each webhook shows up in the registry's API
// field by field, its credentials come from the referenced Secret keys, webhooks dropped from
// the spec are removed while hand-made ones stay, and a missing Secret stalls the Project.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, waitFor, type Clients } from './support/kube.js';
import { condition, ProjectFixture } from './support/project-fixture.js';
import type { RegistryProcess } from './support/registry-process.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

let f: ProjectFixture;
let c: Clients;
let ns: string;
let registry: RegistryProcess;
const projectRef = (name: string) => f.projectRef(name);
const waitProject = (name: string, check: (p: Any) => boolean, what?: string) => f.waitProject(name, check, what);

const ciHook = {
  name: 'ci',
  url: 'https://hooks.example.com/wharf',
  format: 'cloudevents',
  events: ['artifact.pushed', 'tag.created', 'quota.exceeded'],
  authHeaderSecretRef: { name: 'hook-creds', key: 'authorization' },
  hmacSecretRef: { name: 'hook-creds', key: 'hmac' },
};
const auditHook = { name: 'audit', url: 'https://audit.example.com/in', events: ['artifact.deleted'], enabled: false };

beforeAll(async () => {
  f = await ProjectFixture.start('webhooks', {
    prepare: async (client, namespace) =>
      void (await client.core.createNamespacedSecret({
        namespace,
        body: { metadata: { name: 'hook-creds' }, stringData: { authorization: 'Bearer receiver-token', hmac: 'hmac-key-from-secret' } },
      })),
  });
  ({ c, ns, registry } = f);
});

afterAll(() => f?.stop());

describe('Project.spec.webhooks', () => {
  it('shows up in the registry API field by field, credentials from the Secret', async () => {
    await apply(c, { ...projectRef('hooked'), spec: { registryRef: { name: 'ext' }, webhooks: [ciHook, auditHook] } } as Any);
    await waitProject('hooked', (x) => condition(x, 'Ready')?.status === 'True', 'ready');

    const { items } = await registry.ok('GET', '/projects/hooked/webhooks');
    expect(items.map((w: Any) => w.name)).toEqual(['audit', 'ci']);
    const [audit, ci] = items;
    expect(ci).toMatchObject({
      name: 'ci',
      url: 'https://hooks.example.com/wharf',
      format: 'cloudevents',
      events: ['artifact.pushed', 'tag.created', 'quota.exceeded'],
      enabled: true,
      authHeaderSet: true,
      secretSet: true,
      managedBy: `${ns}/hooked`,
    });
    expect(audit).toMatchObject({ name: 'audit', url: 'https://audit.example.com/in', format: 'harbor', events: ['artifact.deleted'], enabled: false, authHeaderSet: false, secretSet: false, managedBy: `${ns}/hooked` });

    // The stored credentials are the Secret's values: sending exactly them again writes nothing.
    const same = await registry.ok('PUT', '/projects/hooked/webhooks/ci', {
      url: ci.url,
      format: ci.format,
      events: ci.events,
      enabled: true,
      authHeader: 'Bearer receiver-token',
      secret: 'hmac-key-from-secret',
      managedBy: `${ns}/hooked`,
    });
    expect(same.updatedAt).toBe(ci.updatedAt);
    const other = await registry.ok('PUT', '/projects/hooked/webhooks/ci', { url: ci.url, format: ci.format, events: ci.events, secret: 'not-the-secret-value', managedBy: `${ns}/hooked` });
    expect(other.updatedAt).not.toBe(ci.updatedAt);
    // ...and the operator puts the Secret's value back at its next pass (resync 3 s).
    const restored = await waitFor('the operator to rewrite the HMAC key', async () => {
      const now = await registry.ok('GET', '/projects/hooked/webhooks/ci');
      return now.updatedAt !== other.updatedAt ? now : undefined;
    }, 30_000);
    const check = await registry.ok('PUT', '/projects/hooked/webhooks/ci', { url: ci.url, format: ci.format, events: ci.events, secret: 'hmac-key-from-secret', managedBy: `${ns}/hooked` });
    expect(check.updatedAt).toBe(restored.updatedAt);
  });

  it('removes the webhooks it made that the spec drops, and leaves hand-made ones alone', async () => {
    await registry.ok('PUT', '/projects/hooked/webhooks/manual', { url: 'https://manual.example.com/x', events: ['artifact.pushed'] });
    await apply(c, { ...projectRef('hooked'), spec: { registryRef: { name: 'ext' }, webhooks: [{ ...ciHook, events: ['artifact.pushed'] }] } } as Any);
    await waitFor('audit removed', async () => {
      const names = (await registry.ok('GET', '/projects/hooked/webhooks')).items.map((w: Any) => w.name);
      return names.join(',') === 'ci,manual' ? true : undefined;
    }, 30_000);
    expect((await registry.ok('GET', '/projects/hooked/webhooks/ci')).events).toEqual(['artifact.pushed']);
    expect((await registry.ok('GET', '/projects/hooked/webhooks/manual')).managedBy).toBeNull();
  });

  it('stalls, naming the Secret, when a referenced Secret is missing', async () => {
    await apply(c, { ...projectRef('broken'), spec: { registryRef: { name: 'ext' }, webhooks: [{ ...ciHook, hmacSecretRef: { name: 'no-such-secret', key: 'hmac' } }] } } as Any);
    const p = await waitProject('broken', (x) => condition(x, 'Stalled')?.status === 'True');
    expect(condition(p, 'Stalled')).toMatchObject({ reason: 'SecretNotFound', message: `Secret no-such-secret referenced by spec.webhooks not found in namespace ${ns}` });
  });
});
