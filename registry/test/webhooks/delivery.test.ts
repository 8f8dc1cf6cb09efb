import { createHmac } from 'node:crypto';
import { HTTP } from 'cloudevents';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, randomBlob } from '../support/oci.js';
import { PushClient, PushError } from '../support/push.js';
import { startRegistry, type RunningRegistry } from '../support/registry.js';
import { Receiver, waitFor, type Received } from './receiver.js';

const hmac = (secret: string, body: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
const json = (r: Received) => JSON.parse(r.body) as Record<string, any>;
const EVERY_EVENT = ['artifact.pushed', 'artifact.pulled', 'artifact.deleted', 'tag.created', 'quota.exceeded', 'quota.warning'];

async function api(registry: RunningRegistry, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${registry.url}/api/v1${path}`, {
    method,
    ...(body !== undefined && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
}

async function ok(res: Response | Promise<Response>): Promise<any> {
  const r = await res;
  const text = await r.text();
  if (r.status >= 300) throw new Error(`${r.status}: ${text}`);
  return text ? JSON.parse(text) : undefined;
}

describe('webhooks delivered from a registry to a receiver on loopback', () => {
  let registry: RunningRegistry;
  let receiver: Receiver;
  let target: string;

  beforeAll(async () => {
    receiver = new Receiver();
    target = await receiver.start();
    registry = await startRegistry({
      jobs: { pollIntervalMs: 50 },
      // Loopback receivers need private targets; short backoff and timeout keep the test quick.
      webhooks: { allowPrivateTargets: true, retryDelaySeconds: 0.05, timeoutMs: 2000, batchWindowMs: 50, maxAttempts: 6, registryHost: 'registry.example.com' },
    });
  });
  afterAll(async () => {
    await registry?.stop();
    await receiver?.stop();
  });

  it('sends Harbor and CloudEvents payloads for push, tag created and delete, signed with each webhook\'s secret', async () => {
    await ok(api(registry, 'PUT', '/projects/hooks', {}));
    const harbor = await ok(
      api(registry, 'PUT', '/projects/hooks/webhooks/harbor', { url: `${target}/harbor`, events: EVERY_EVENT, secret: 'harbor-secret', authHeader: 'Bearer receiver-token' }),
    );
    expect(harbor).toMatchObject({ name: 'harbor', format: 'harbor', enabled: true, secretSet: true, authHeaderSet: true });
    expect(JSON.stringify(harbor)).not.toContain('harbor-secret');
    expect(JSON.stringify(harbor)).not.toContain('receiver-token');
    await ok(api(registry, 'PUT', '/projects/hooks/webhooks/ce', { url: `${target}/ce`, format: 'cloudevents', events: EVERY_EVENT, secret: 'ce-secret' }));

    const client = new PushClient(registry.url);
    const image = await buildImage();
    await client.pushImage('hooks/app', '1', image);

    const push = await waitFor('the Harbor push delivery', () => receiver.at('/harbor').find((r) => json(r).type === 'PUSH_ARTIFACT'));
    expect(push.headers['content-type']).toBe('application/json');
    expect(push.headers['x-wharf-signature-256']).toBe(hmac('harbor-secret', push.body));
    expect(push.headers.authorization).toBe('Bearer receiver-token');
    expect(push.headers['x-wharf-event']).toBe('artifact.pushed');
    const payload = json(push);
    expect(payload.operator).toBe('anonymous');
    expect(Number.isInteger(payload.occur_at)).toBe(true);
    expect(Math.abs(payload.occur_at - Date.now() / 1000)).toBeLessThan(600);
    expect(payload.event_data).toEqual({
      resources: [{ digest: image.manifest.digest, tag: '1', resource_url: 'registry.example.com/hooks/app:1' }],
      repository: { name: 'app', namespace: 'hooks', repo_full_name: 'hooks/app', repo_type: 'private' },
    });
    const created = await waitFor('the Harbor tag-created delivery', () => receiver.at('/harbor').find((r) => json(r).type === 'CREATE_TAG'));
    expect(json(created).event_data.resources[0]).toMatchObject({ digest: image.manifest.digest, tag: '1' });

    const cePush = await waitFor('the CloudEvents push delivery', () => receiver.at('/ce').find((r) => r.headers['x-wharf-event'] === 'artifact.pushed'));
    expect(cePush.headers['content-type']).toBe('application/cloudevents+json');
    expect(cePush.headers['x-wharf-signature-256']).toBe(hmac('ce-secret', cePush.body));
    expect(cePush.headers.authorization).toBeUndefined();
    // The SDK's own parser accepts it as a structured CloudEvent.
    const event = HTTP.toEvent({ headers: cePush.headers as Record<string, string>, body: cePush.body }) as any;
    expect(event).toMatchObject({ specversion: '1.0', type: 'wharf.artifact.pushed', source: '/projects/hooks/webhooks/ce', subject: 'hooks/app', operator: 'anonymous' });
    expect(event.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Date(event.time).getTime()).not.toBeNaN();
    expect(event.data.resources).toEqual([{ digest: image.manifest.digest, tag: '1', resource_url: 'registry.example.com/hooks/app:1' }]);
    expect(event.data.repository.repo_full_name).toBe('hooks/app');

    // The same digest pushed again under the same tag is a push, not a new tag.
    await client.pushImage('hooks/app', '1', image);
    await client.deleteManifest('hooks/app', image.manifest.digest);
    const deleted = await waitFor('the Harbor delete delivery', () => receiver.at('/harbor').find((r) => json(r).type === 'DELETE_ARTIFACT'));
    expect(json(deleted).event_data.resources[0]).toEqual({ digest: image.manifest.digest, resource_url: `registry.example.com/hooks/app@${image.manifest.digest}` });
    await waitFor('the CloudEvents delete delivery', () => receiver.at('/ce').find((r) => r.headers['x-wharf-event'] === 'artifact.deleted'));
    await waitFor('both pushes', () => receiver.at('/harbor').filter((r) => json(r).type === 'PUSH_ARTIFACT').length === 2);
    expect(receiver.at('/harbor').filter((r) => json(r).type === 'CREATE_TAG')).toHaveLength(1);

    // The delivery log lists each delivery with its outcome, newest first, in pages.
    const first = await ok(api(registry, 'GET', '/projects/hooks/webhooks/harbor/deliveries?limit=2'));
    expect(first.items).toHaveLength(2);
    expect(first.next).toBeDefined();
    const rest = await ok(api(registry, 'GET', `/projects/hooks/webhooks/harbor/deliveries?limit=100&after=${first.next}`));
    const log = [...first.items, ...rest.items];
    expect(log.map((d: any) => d.eventType).sort()).toEqual(['artifact.deleted', 'artifact.pushed', 'artifact.pushed', 'tag.created']);
    for (const entry of log) expect(entry).toMatchObject({ status: 'delivered', attempts: 1, responseStatus: 200, lastError: null });
  });

  it('sends quota warning and quota exceeded events', async () => {
    await ok(api(registry, 'PUT', '/projects/quota', {}));
    await ok(api(registry, 'PUT', '/projects/quota/quota', { limitBytes: 10_000 }));
    await ok(api(registry, 'PUT', '/projects/quota/webhooks/watch', { url: `${target}/quota`, events: ['quota.exceeded', 'quota.warning'], secret: 'quota-secret' }));
    await ok(api(registry, 'PUT', '/projects/quota/webhooks/watch-ce', { url: `${target}/quota-ce`, format: 'cloudevents', events: ['quota.exceeded'], secret: 'quota-ce-secret' }));
    const client = new PushClient(registry.url);

    // 9 000 of 10 000 bytes: past the default 85 % warning threshold, within the limit.
    const big = randomBlob(9_000);
    await client.pushBlob('quota/app', big);
    const warning = await waitFor('the quota warning', () => receiver.at('/quota').find((r) => json(r).type === 'QUOTA_WARNING'));
    expect(warning.headers['x-wharf-signature-256']).toBe(hmac('quota-secret', warning.body));
    expect(json(warning).event_data).toMatchObject({
      resources: [{ digest: big.digest }],
      repository: { namespace: 'quota', repo_full_name: 'quota/app' },
      custom_attributes: { limit_bytes: 10_000, used_bytes: 0, needed_bytes: 9_000, warning_percent: 85 },
    });

    // 2 000 more do not fit.
    const refused = randomBlob(2_000);
    await expect(client.pushBlob('quota/app', refused)).rejects.toThrow(PushError);
    const exceeded = await waitFor('the quota exceeded event', () => receiver.at('/quota').find((r) => json(r).type === 'QUOTA_EXCEED'));
    expect(exceeded.headers['x-wharf-signature-256']).toBe(hmac('quota-secret', exceeded.body));
    expect(json(exceeded).event_data.custom_attributes).toMatchObject({ limit_bytes: 10_000, used_bytes: 9_000, needed_bytes: 2_000 });
    expect(json(exceeded).event_data.custom_attributes.Details).toContain('exceeded');
    const ce = await waitFor('the CloudEvents quota event', () => receiver.at('/quota-ce')[0]);
    expect(ce.headers['x-wharf-signature-256']).toBe(hmac('quota-ce-secret', ce.body));
    expect(json(ce)).toMatchObject({ specversion: '1.0', type: 'wharf.quota.exceeded' });
    // Only one warning: the threshold was crossed once.
    expect(receiver.at('/quota').filter((r) => json(r).type === 'QUOTA_WARNING')).toHaveLength(1);
  });

  it('retries a failing receiver with backoff: 500 three times, then delivered on the 4th attempt', async () => {
    receiver.on('/flaky', (nth) => (nth <= 3 ? 500 : 200));
    await ok(api(registry, 'PUT', '/projects/retry', {}));
    await ok(api(registry, 'PUT', '/projects/retry/webhooks/flaky', { url: `${target}/flaky`, events: ['artifact.pushed'], secret: 'flaky-secret' }));
    await new PushClient(registry.url).pushImage('retry/app', 'v1', await buildImage());

    const log = await waitFor('the delivery to succeed', async () => {
      const { items } = await ok(api(registry, 'GET', '/projects/retry/webhooks/flaky/deliveries'));
      return items[0]?.status === 'delivered' && items;
    });
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ eventType: 'artifact.pushed', status: 'delivered', attempts: 4, responseStatus: 200, lastError: null });
    const attempts = receiver.at('/flaky');
    expect(attempts).toHaveLength(4);
    // Every attempt is the same delivery: same id, same body, same signature.
    expect(new Set(attempts.map((a) => a.headers['x-wharf-delivery'])).size).toBe(1);
    expect(new Set(attempts.map((a) => a.body)).size).toBe(1);
    for (const a of attempts) expect(a.headers['x-wharf-signature-256']).toBe(hmac('flaky-secret', a.body));
  });

  it('batches pulls of a repository into one delivery, and sends none when pulls are not subscribed', async () => {
    await ok(api(registry, 'PUT', '/projects/pulls', {}));
    await ok(api(registry, 'PUT', '/projects/pulls/webhooks/pulls', { url: `${target}/pulls`, events: ['artifact.pulled'] }));
    await ok(api(registry, 'PUT', '/projects/pulls/webhooks/no-pulls', { url: `${target}/no-pulls`, events: ['artifact.pushed'] }));
    const client = new PushClient(registry.url);
    const image = await buildImage();
    await client.pushImage('pulls/app', 'a', image);
    await client.pushImage('pulls/app', 'b', image);
    await waitFor('the push deliveries', () => receiver.at('/no-pulls').length === 2);
    await Promise.all([client.manifest('pulls/app', 'a'), client.manifest('pulls/app', 'b'), client.manifest('pulls/app', 'a')]);
    const tags = () => new Set(receiver.at('/pulls').flatMap((r) => (json(r).event_data.resources as { tag: string }[]).map((x) => x.tag)));
    await waitFor('the pull deliveries', () => tags().size === 2);
    // Pulls that fall in one batch window share a delivery (mergePulls, unit-tested); never more deliveries than pulls.
    expect(receiver.at('/pulls').length).toBeLessThanOrEqual(3);
    expect(receiver.at('/pulls').every((r) => json(r).type === 'PULL_ARTIFACT')).toBe(true);
    expect(receiver.at('/no-pulls').every((r) => json(r).type === 'PUSH_ARTIFACT')).toBe(true);
  });

  it('sends retention.finished when a retention run ends, listing what it deleted', async () => {
    await ok(api(registry, 'PUT', '/projects/kept', {}));
    await ok(api(registry, 'PUT', '/projects/kept/webhooks/retention', { url: `${target}/retention`, events: ['retention.finished'] }));
    await ok(api(registry, 'PUT', '/projects/kept/retention', { rules: [{ template: 'latestPushedK', count: 1 }], schedule: null }));
    const client = new PushClient(registry.url);
    for (const tag of ['old', 'new']) await client.pushImage('kept/app', tag, await buildImage({ payloadSize: 64 }));
    const run = await ok(api(registry, 'POST', '/projects/kept/retention/runs', { dryRun: true }));
    const delivery = await waitFor('the retention delivery', () => receiver.at('/retention')[0]);
    expect(delivery.headers['x-wharf-event']).toBe('retention.finished');
    const payload = json(delivery);
    expect(payload.type).toBe('TAG_RETENTION');
    expect(JSON.stringify(payload)).toContain(run.id);
    expect(JSON.stringify(payload)).toContain('kept/app');
    expect(receiver.at('/retention')).toHaveLength(1);
  });

  it('refuses bad policies with a clear error and never returns credentials', async () => {
    const refused = async (body: unknown) => {
      const res = await api(registry, 'PUT', '/projects/hooks/webhooks/bad', body);
      expect(res.status).toBe(400);
      return ((await res.json()) as { errors: { message: string }[] }).errors[0]!.message;
    };
    expect(await refused({ url: 'ftp://example.com/x', events: ['artifact.pushed'] })).toMatch(/http/);
    expect(await refused({ url: 'https://user:pw@example.com/x', events: ['artifact.pushed'] })).toMatch(/credentials/);
    expect(await refused({ url: 'https://example.com/x', events: ['artifact.exploded'] })).toBeTruthy();
    expect(await refused({ url: 'https://example.com/x', events: [] })).toBeTruthy();
    const list = await ok(api(registry, 'GET', '/projects/hooks/webhooks'));
    expect(list.items.map((w: any) => w.name)).toEqual(['ce', 'harbor']);
    expect(JSON.stringify(list)).not.toMatch(/harbor-secret|ce-secret|receiver-token/);
    // An update without credentials keeps them; '' removes them.
    await ok(api(registry, 'PUT', '/projects/hooks/webhooks/harbor', { url: `${target}/harbor`, events: ['artifact.pushed'] }));
    expect(await ok(api(registry, 'GET', '/projects/hooks/webhooks/harbor'))).toMatchObject({ secretSet: true, authHeaderSet: true, events: ['artifact.pushed'] });
    await ok(api(registry, 'PUT', '/projects/hooks/webhooks/harbor', { url: `${target}/harbor`, events: ['artifact.pushed'], secret: '', authHeader: '' }));
    expect(await ok(api(registry, 'GET', '/projects/hooks/webhooks/harbor'))).toMatchObject({ secretSet: false, authHeaderSet: false });
    expect((await api(registry, 'DELETE', '/projects/hooks/webhooks/ce')).status).toBe(204);
    expect((await api(registry, 'GET', '/projects/hooks/webhooks/ce')).status).toBe(404);
  });
});

describe('webhook targets on private addresses', () => {
  let registry: RunningRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(() => registry?.stop());

  it('are refused unless the administrator allows them', async () => {
    await ok(api(registry, 'PUT', '/projects/ssrf', {}));
    for (const url of ['http://127.0.0.1:8080/hook', 'http://169.254.169.254/latest/meta-data', 'http://[::1]/hook', 'http://10.1.2.3/hook', 'http://localhost/hook']) {
      const res = await api(registry, 'PUT', '/projects/ssrf/webhooks/internal', { url, events: ['artifact.pushed'] });
      expect(res.status, url).toBe(400);
      expect(await res.text()).toContain('allowPrivateTargets');
    }
    expect((await api(registry, 'PUT', '/projects/ssrf/webhooks/public', { url: 'https://hooks.example.com/x', events: ['artifact.pushed'] })).status).toBe(201);
  });
});

describe('a webhook receiver that hangs', () => {
  let registry: RunningRegistry;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = new Receiver();
    receiver.on('/hang', () => 'hang');
    const target = await receiver.start();
    registry = await startRegistry({
      jobs: { pollIntervalMs: 50 },
      // Long enough that the receiver certainly still holds a delivery when the pushes end.
      webhooks: { allowPrivateTargets: true, retryDelaySeconds: 0.05, timeoutMs: 15_000, batchWindowMs: 20, maxAttempts: 2 },
    });
    await ok(api(registry, 'PUT', '/projects/slow', {}));
    await ok(api(registry, 'PUT', '/projects/slow/webhooks/hang', { url: `${target}/hang`, events: ['artifact.pushed', 'tag.created'] }));
  });
  afterAll(async () => {
    await registry?.stop();
    await receiver?.stop();
  });

  it('does not hold up pushes; its deliveries time out in the log', async () => {
    const client = new PushClient(registry.url);
    await client.pushImage('slow/app', 'first', await buildImage());
    await waitFor('the receiver to hold a delivery', () => receiver.held > 0);

    // Every push completes while the receiver holds the delivery connection open.
    for (let i = 0; i < 5; i++) await client.pushImage('slow/app', `t${i}`, await buildImage());
    expect(receiver.held).toBeGreaterThan(0);
    await registry.app.webhooks.flush();

    const { items } = await ok(api(registry, 'GET', '/projects/slow/webhooks/hang/deliveries?limit=500'));
    // 6 pushes, each a push and a new tag: all queued, none lost, none delivered.
    expect(items).toHaveLength(12);
    expect(items.some((d: any) => d.status === 'delivered')).toBe(false);

    const timedOut = await waitFor(
      'a delivery attempt to time out',
      async () => (await ok(api(registry, 'GET', '/projects/slow/webhooks/hang/deliveries?limit=500'))).items.find((d: any) => d.lastError),
      60_000,
    );
    expect(timedOut.lastError).toBe('timed out after 15000 ms');
    expect(['retrying', 'failed']).toContain(timedOut.status);
  }, 120_000);
});
