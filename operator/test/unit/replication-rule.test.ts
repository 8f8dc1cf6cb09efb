// The pure half of the ReplicationRule controller: the names in the registry, the remote registry
// and policy bodies (docs/replication.md) and how the live ones differ, the keyed credentials
// digest, when wharf.dev/run asks for a run, the last execution in status, when a failure is new,
// and how often the rule is looked at again.
import { describe, expect, it } from 'vitest';
import type { LastExecution } from '../../src/api/replicationrule.js';
import type { ReplicationRuleObject } from '../../src/api/types.js';
import {
  credentialsDigest,
  EXECUTION_POLL_MS,
  lastExecutionStatus,
  newlyFailed,
  pendingRunRequest,
  policyDifferences,
  pollAfterMs,
  remoteRegistryDifferences,
  renderPolicy,
  renderRemoteRegistry,
  replicationName,
  summaryMessage,
  TRIGGER_POLL_MS,
  type LiveRemoteRegistry,
} from '../../src/resources/replication-rule/render.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

function rule(spec: Record<string, unknown> = {}, meta: Record<string, unknown> = {}, status?: Record<string, unknown>): ReplicationRuleObject {
  return {
    apiVersion: 'wharf.dev/v1alpha1',
    kind: 'ReplicationRule',
    metadata: { name: 'to-dr', namespace: 'platform', uid: 'u1', generation: 1, ...meta },
    spec: {
      registryRef: { name: 'reg' },
      enabled: true,
      mode: 'push',
      remote: { provider: 'wharf', url: 'https://dr.example.com', insecure: false },
      destination: { flattening: 'one' },
      trigger: { type: 'manual' },
      override: true,
      replicateDeletion: false,
      copyReferrers: true,
      ...spec,
    } as Any,
    ...(status && { status: status as Any }),
  };
}

describe('names', () => {
  it('is <namespace>.<name>, unique because a namespace has no dot', () => {
    expect(replicationName(rule())).toBe('platform.to-dr');
    expect(replicationName(rule({}, { name: 'a.b' }))).toBe('platform.a.b');
  });

  it('shortens a name the registry cannot hold (over 63 characters, or a--b) to a prefix and a hash, distinct per object', () => {
    const long = replicationName(rule({}, { name: 'x'.repeat(250) }));
    expect(long).toMatch(/^platform\.x+-[0-9a-f]{12}$/);
    expect(long).toHaveLength(63);
    expect(replicationName(rule({}, { name: 'x'.repeat(251) }))).not.toBe(long);
    const dashes = replicationName(rule({}, { name: 'a--b' }));
    expect(dashes).toMatch(/^platform\.a-b-[0-9a-f]{12}$/);
    expect(replicationName(rule({}, { name: 'a-b' }))).toBe('platform.a-b');
    for (const n of [long, dashes, replicationName(rule({}, { name: `${'y'.repeat(53)}.-z` }))]) expect(n).toMatch(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/);
  });
});

describe('remote registry', () => {
  const creds = { username: 'robot$sync', password: 's3cret-password' };

  it('renders provider, url, insecure, the ownership marker and the credentials', () => {
    expect(renderRemoteRegistry(rule({ remote: { provider: 'docker-registry', url: 'http://10.0.0.1:5000/', insecure: true } }), creds)).toEqual({
      provider: 'docker-registry',
      url: 'http://10.0.0.1:5000',
      insecure: true,
      description: 'Managed by ReplicationRule platform/to-dr',
      username: 'robot$sync',
      password: 's3cret-password',
    });
    const anonymous = renderRemoteRegistry(rule(), undefined);
    expect(anonymous.password).toBe('');
    expect('username' in anonymous).toBe(false);
  });

  const live = (over: Partial<LiveRemoteRegistry> = {}): LiveRemoteRegistry => ({
    provider: 'wharf',
    url: 'https://dr.example.com',
    insecure: false,
    description: 'Managed by ReplicationRule platform/to-dr',
    username: 'robot$sync',
    passwordSet: true,
    ...over,
  });

  it('finds no difference when in sync, and names each one otherwise', () => {
    const desired = renderRemoteRegistry(rule(), creds);
    expect(remoteRegistryDifferences(live(), desired, false)).toEqual([]);
    expect(remoteRegistryDifferences(live({ url: 'https://old.example.com', insecure: true }), desired, false)).toEqual(['url https://old.example.com → https://dr.example.com', 'insecure true → false']);
    expect(remoteRegistryDifferences(live(), desired, true)).toEqual(['credentials from the Secret changed']);
    expect(remoteRegistryDifferences(live({ passwordSet: false }), desired, false)).toEqual(['password set']);
    expect(remoteRegistryDifferences(live(), renderRemoteRegistry(rule(), undefined), false)).toEqual(['username "robot$sync" → ""', 'password removed']);
  });

  it('digests credentials with a key: another key, user or password gives another digest, and the digest does not contain them', () => {
    const d = credentialsDigest('key-1', creds);
    expect(d).toMatch(/^[0-9a-f]{64}$/);
    expect(credentialsDigest('key-1', creds)).toBe(d);
    expect(credentialsDigest('key-2', creds)).not.toBe(d);
    expect(credentialsDigest('key-1', { ...creds, password: 'other' })).not.toBe(d);
    expect(credentialsDigest('key-1', { username: 'robot$syn', password: `c${creds.password}` })).not.toBe(d);
    expect(credentialsDigest('key-1', undefined)).not.toBe(d);
  });
});

describe('policy', () => {
  it('renders every field, grouping the filters by type and decoration', () => {
    const obj = rule({
      description: 'to DR',
      filters: [
        { type: 'name', value: 'team-a/**', decoration: 'matches' },
        { type: 'name', value: 'team-a/tmp-*', decoration: 'excludes' },
        { type: 'tag', value: 'v*', decoration: 'matches' },
        { type: 'tag', value: '*-rc*', decoration: 'excludes' },
        { type: 'label', value: 'release', decoration: 'matches' },
        { type: 'resource', value: 'image', decoration: 'matches' },
      ],
      destination: { project: 'mirror', flattening: 'all' },
      trigger: { type: 'eventBased' },
      replicateDeletion: true,
      override: false,
      bandwidthLimitKiBps: 2048,
      copyReferrers: false,
    });
    expect(renderPolicy(obj, 'platform.to-dr')).toEqual({
      description: 'to DR',
      mode: 'push',
      registry: 'platform.to-dr',
      filters: {
        name: { matches: ['team-a/**'], excludes: ['team-a/tmp-*'] },
        tag: { matches: ['v*'], excludes: ['*-rc*'] },
        label: { matches: ['release'], excludes: [] },
        resource: 'image',
      },
      destination: { namespace: 'mirror', flattening: 'all' },
      trigger: { type: 'eventBased' },
      replicateDeletion: true,
      override: false,
      enabled: true,
      bandwidthLimitKiBps: 2048,
      copyReferrers: false,
    });
  });

  it('defaults: everything, same namespace, manual, unlimited; a schedule becomes the cron', () => {
    const p = renderPolicy(rule({ mode: 'pull', enabled: false, trigger: { type: 'scheduled', schedule: '0 3 * * *' } }), 'r');
    expect(p).toMatchObject({
      mode: 'pull',
      enabled: false,
      filters: { name: { matches: [], excludes: [] }, tag: { matches: [], excludes: [] }, label: { matches: [], excludes: [] }, resource: 'all' },
      destination: { namespace: '', flattening: 'one' },
      trigger: { type: 'scheduled', cron: '0 3 * * *' },
      bandwidthLimitKiBps: 0,
      copyReferrers: true,
    });
  });

  it('compares with the live policy ignoring its extra fields and pattern order, naming what differs', () => {
    const desired = renderPolicy(rule({ filters: [{ type: 'tag', value: 'a', decoration: 'matches' }, { type: 'tag', value: 'b', decoration: 'matches' }] }), 'r');
    const live = { ...desired, id: 'x', name: 'r', createdAt: 't', filters: { ...desired.filters, tag: { matches: ['b', 'a'], excludes: [] } }, trigger: { type: 'manual', cron: null } };
    expect(policyDifferences(live, desired)).toEqual([]);
    expect(policyDifferences({ ...live, enabled: false, override: false }, desired)).toEqual(['override', 'enabled']);
    expect(policyDifferences({ ...live, trigger: { type: 'scheduled', cron: '* * * * *' } }, desired)).toEqual(['trigger']);
    expect(policyDifferences({ ...live, filters: { ...live.filters, tag: { matches: ['a'], excludes: [] } } }, desired)).toEqual(['filters']);
  });
});

describe('wharf.dev/run', () => {
  it('asks for a run when set to a value not handled yet', () => {
    expect(pendingRunRequest(rule())).toBeUndefined();
    expect(pendingRunRequest(rule({}, { annotations: { 'wharf.dev/run': '1' } }))).toBe('1');
    expect(pendingRunRequest(rule({}, { annotations: { 'wharf.dev/run': '1' } }, { lastRunRequest: '1' }))).toBeUndefined();
    expect(pendingRunRequest(rule({}, { annotations: { 'wharf.dev/run': '2' } }, { lastRunRequest: '1' }))).toBe('2');
    // handled by this process, while the cache still holds the status from before
    expect(pendingRunRequest(rule({}, { annotations: { 'wharf.dev/run': '2' } }, { lastRunRequest: '1' }), '2')).toBeUndefined();
  });
});

describe('executions', () => {
  const running = { id: 'e1', trigger: 'manual', status: 'InProgress', startedAt: '2026-01-01T00:00:00Z', endedAt: null, tasks: { total: 3, failed: 0 }, artifacts: 1, bytes: 10, message: '' };

  it('maps the registry execution to status', () => {
    expect(lastExecutionStatus(running)).toEqual({ id: 'e1', trigger: 'manual', phase: 'InProgress', startTime: '2026-01-01T00:00:00Z', artifacts: 1, bytes: 10, tasks: 3, failedTasks: 0 });
    expect(lastExecutionStatus({ ...running, status: 'Failed', endedAt: '2026-01-01T00:01:00Z', tasks: { total: 3, failed: 2 }, message: '2 tasks failed' })).toMatchObject({
      phase: 'Failed',
      endTime: '2026-01-01T00:01:00Z',
      failedTasks: 2,
      message: '2 tasks failed',
    });
    expect(() => lastExecutionStatus({ ...running, status: 'Exploded' })).toThrow(/unknown execution status/);
  });

  const ex = (id: string, phase: LastExecution['phase']): LastExecution => ({ id, phase, artifacts: 0, bytes: 0, tasks: 1, failedTasks: phase === 'Failed' ? 1 : 0 });

  it('reports a failure once: when the status did not already show this execution failed', () => {
    expect(newlyFailed(undefined, ex('e1', 'Failed'))).toBe(true);
    expect(newlyFailed(ex('e1', 'InProgress'), ex('e1', 'Failed'))).toBe(true);
    expect(newlyFailed(ex('e1', 'Failed'), ex('e1', 'Failed'))).toBe(false);
    expect(newlyFailed(ex('e1', 'Failed'), ex('e2', 'Failed'))).toBe(true);
    expect(newlyFailed(ex('e1', 'Failed'), ex('e2', 'Succeeded'))).toBe(false);
    expect(newlyFailed(undefined, undefined)).toBe(false);
  });

  it('polls quickly while an execution runs, every minute for rules the registry triggers, else not at all', () => {
    const manual = rule().spec;
    const events = rule({ trigger: { type: 'eventBased' } }).spec;
    expect(pollAfterMs(manual, ex('e', 'InProgress'))).toBe(EXECUTION_POLL_MS);
    expect(pollAfterMs(manual, ex('e', 'Pending'))).toBe(EXECUTION_POLL_MS);
    expect(pollAfterMs(manual, ex('e', 'Succeeded'))).toBeUndefined();
    expect(pollAfterMs(manual, undefined)).toBeUndefined();
    expect(pollAfterMs(events, ex('e', 'Failed'))).toBe(TRIGGER_POLL_MS);
    expect(pollAfterMs({ ...events, enabled: false }, undefined)).toBeUndefined();
  });

  it('summarises the last execution and an unhealthy remote in the Ready message', () => {
    expect(summaryMessage('p.r', undefined)).toBe('Remote registry and policy p.r are in sync; no execution yet');
    expect(summaryMessage('p.r', { ...ex('e9', 'Failed'), tasks: 4, failedTasks: 1, artifacts: 3, bytes: 99 }, { status: 'unhealthy', message: 'connection refused' })).toBe(
      'Remote registry and policy p.r are in sync; the remote registry is unhealthy: connection refused; last execution e9 Failed (3 artifacts, 99 bytes, 1 of 4 tasks failed)',
    );
  });
});
