import { describe, expect, it } from 'vitest';
import { crossesWarning } from '../../src/services/quota.js';
import type { ArtifactWebhookEvent, WebhookEvent } from '../../src/webhooks/events.js';
import { renderCloudEvent, renderHarbor } from '../../src/webhooks/formats.js';
import { mergePulls } from '../../src/webhooks/notifier.js';
import { checkTargetUrl, isPrivateAddress } from '../../src/webhooks/targets.js';

const at = new Date('2026-01-02T03:04:05.678Z');
const context = { eventId: 'e-1', project: 'team', projectPublic: true, webhook: 'ci', registryHost: 'r.example.com' };
const pull = (tag: string, actor = 'alice', repository = 'team/app'): { project: string; event: WebhookEvent } => ({
  project: 'team',
  event: { type: 'artifact.pulled', repository, artifacts: [{ digest: `sha256:${tag}`, tag }], actor, at },
});

describe('webhook payloads', () => {
  it('render Harbor\'s default payload with its field names', () => {
    const body = JSON.parse(renderHarbor({ type: 'artifact.deleted', repository: 'team/sub/app', artifacts: [{ digest: 'sha256:d' }], actor: 'robot$team+ci', at }, context).body);
    expect(body).toEqual({
      type: 'DELETE_ARTIFACT',
      occur_at: 1767323045,
      operator: 'robot$team+ci',
      event_data: {
        resources: [{ digest: 'sha256:d', resource_url: 'r.example.com/team/sub/app@sha256:d' }],
        repository: { name: 'sub/app', namespace: 'team', repo_full_name: 'team/sub/app', repo_type: 'public' },
      },
    });
  });

  it('render replication, retention and scanning events in both formats', () => {
    const events: WebhookEvent[] = [
      { type: 'replication.status', rule: 'to-dr', executionId: 'x1', status: 'succeeded', trigger: 'event', tasks: { total: 2, succeeded: 2, failed: 0 }, actor: 'wharf', at },
      { type: 'retention.finished', executionId: 'r1', status: 'succeeded', dryRun: true, retained: 3, deleted: 1, deletedArtifacts: [{ repository: 'team/app', tag: 'old', digest: 'sha256:o' }], actor: 'wharf', at },
      { type: 'scan.completed', repository: 'team/app', artifact: { digest: 'sha256:s', tag: '1' }, scanner: 'trivy', summary: { critical: 0 }, actor: 'wharf', at },
    ];
    const harborTypes = events.map((e) => JSON.parse(renderHarbor(e, context).body).type);
    expect(harborTypes).toEqual(['REPLICATION', 'TAG_RETENTION', 'SCANNING_COMPLETED']);
    expect(JSON.parse(renderHarbor(events[1]!, context).body).event_data.retention).toMatchObject({ total: 4, retained: 3, dry_run: true, deleted_artifact: [{ tag: 'old', resource_url: 'r.example.com/team/app:old' }] });
    const ce = events.map((e) => JSON.parse(renderCloudEvent(e, context).body));
    expect(ce.map((e) => e.type)).toEqual(['wharf.replication.status', 'wharf.retention.finished', 'wharf.scan.completed']);
    expect(ce[0]).toMatchObject({ specversion: '1.0', id: 'e-1', source: '/projects/team/webhooks/ci', time: at.toISOString(), datacontenttype: 'application/json' });
    expect(ce[0].data.replication).toMatchObject({ policy_name: 'to-dr', job_status: 'succeeded' });
  });
});

describe('pull batching', () => {
  it('merges pulls of one repository in a batch, once per artifact and puller, and passes other events through', () => {
    const push: { project: string; event: WebhookEvent } = { project: 'team', event: { type: 'artifact.pushed', repository: 'team/app', artifacts: [{ tag: 'p' }], actor: 'bob', at } };
    const merged = mergePulls([pull('a'), push, pull('b'), pull('a'), pull('a', 'carol'), pull('c', 'alice', 'team/other')]);
    expect(merged.map((m) => m.event.type)).toEqual(['artifact.pulled', 'artifact.pushed', 'artifact.pulled']);
    const first = merged[0]!.event as ArtifactWebhookEvent;
    expect(first.artifacts.map((a) => a.tag)).toEqual(['a', 'b', 'a']);
    expect((merged[2]!.event as typeof first).repository).toBe('team/other');
  });
});

describe('quota warning threshold', () => {
  it('is crossed once, by the push that reaches it', () => {
    expect(crossesWarning(100, 0, 85, 85)).toBe(true);
    expect(crossesWarning(100, 84, 1, 85)).toBe(true);
    expect(crossesWarning(100, 85, 1, 85)).toBe(false);
    expect(crossesWarning(100, 0, 84, 85)).toBe(false);
    expect(crossesWarning(-1, 0, 84, 85)).toBe(false);
  });
});

describe('webhook targets', () => {
  it('classifies private addresses, v4, v6 and v4-mapped', () => {
    for (const a of ['127.0.0.1', '10.0.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '::1', 'fd00::1', 'fe80::1', '::ffff:127.0.0.1', '0.0.0.0']) expect(isPrivateAddress(a), a).toBe(true);
    for (const a of ['8.8.8.8', '172.32.0.1', '2001:4860:4860::8888', 'example.com']) expect(isPrivateAddress(a), a).toBe(false);
  });

  it('accepts private targets only when allowed', () => {
    expect(() => checkTargetUrl('http://127.0.0.1/x', false)).toThrow(/private/);
    expect(checkTargetUrl('http://127.0.0.1/x', true).host).toBe('127.0.0.1');
    expect(() => checkTargetUrl('file:///etc/passwd', true)).toThrow(/http/);
  });
});
