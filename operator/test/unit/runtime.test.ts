// Work queue, backoff, conditions and apply-diff logic of the controller runtime.
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/runtime/backoff.js';
import { applySummary, setCondition } from '../../src/runtime/conditions.js';
import { hashOf, isSubset, stableStringify, withAppliedHash } from '../../src/runtime/apply.js';
import { parseQuantity } from '../../src/runtime/quantity.js';
import { WorkQueue } from '../../src/runtime/workqueue.js';
import { computeKStatus } from '../support/kstatus.js';

describe('WorkQueue', () => {
  it('dedupes keys waiting in the queue', async () => {
    const q = new WorkQueue();
    q.add('ns/a');
    q.add('ns/b');
    q.add('ns/a');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('ns/a');
    expect(await q.get()).toBe('ns/b');
  });

  it('never hands a key to two workers; a key added while processing is queued again on done()', async () => {
    const q = new WorkQueue();
    q.add('k');
    const key = await q.get();
    q.add('k');
    expect(q.length).toBe(0);
    q.done(key!);
    expect(q.length).toBe(1);
    expect(await q.get()).toBe('k');
  });

  it('backs off exponentially per key, and forget() resets it', () => {
    const q = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 1000, qps: 1000, burst: 1000 });
    expect([q.when('k'), q.when('k'), q.when('k'), q.when('k'), q.when('k')]).toEqual([100, 200, 400, 800, 1000]);
    expect(q.numRequeues('k')).toBe(5);
    q.forget('k');
    expect(q.when('k')).toBe(100);
    expect(q.when('other')).toBe(100);
  });

  it('limits the overall rate with a token bucket', () => {
    let now = 0;
    const q = new WorkQueue({ baseDelayMs: 1, maxDelayMs: 1, qps: 10, burst: 2 }, () => now);
    expect(q.when('a')).toBe(1);
    expect(q.when('b')).toBe(1);
    expect(q.when('c')).toBe(100);
    expect(q.when('d')).toBe(200);
    now = 1000;
    expect(q.when('e')).toBe(1);
  });

  it('addAfter keeps the earliest deadline, and shutDown releases waiting workers', async () => {
    const q = new WorkQueue();
    q.addAfter('k', 60_000);
    q.addAfter('k', 10);
    expect(q.pendingDelayed).toBe(1);
    expect(await q.get()).toBe('k');
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBeUndefined();
  });
});

describe('Backoff', () => {
  it('grows to its cap with jitter in [d/2, d]', () => {
    const b = new Backoff(100, 1000, () => 1);
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000]);
    b.reset();
    expect(new Backoff(100, 1000, () => 0).next()).toBe(50);
  });
});

describe('conditions', () => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  const t1 = new Date('2026-01-01T00:05:00Z');

  it('keeps lastTransitionTime while the status does not change', () => {
    const a = setCondition([], { type: 'Ready', status: 'False', reason: 'A', message: 'a' }, 1, t0);
    const b = setCondition(a, { type: 'Ready', status: 'False', reason: 'B', message: 'b' }, 2, t1);
    expect(b[0]).toEqual({ type: 'Ready', status: 'False', reason: 'B', message: 'b', observedGeneration: 2, lastTransitionTime: '2026-01-01T00:00:00Z' });
    const c = setCondition(b, { type: 'Ready', status: 'True', reason: 'C', message: 'c' }, 2, t1);
    expect(c[0]!.lastTransitionTime).toBe('2026-01-01T00:05:00Z');
  });

  it('maps a summary onto Ready/Reconciling/Stalled so that kstatus reads it back', () => {
    const obj = (conditions: ReturnType<typeof applySummary>) => ({ metadata: { generation: 3 }, status: { observedGeneration: 3, conditions } });
    const progressing = applySummary([], { state: 'progressing', reason: 'RollingOut', message: '1 of 2' }, 3, t0);
    expect(progressing.map((x) => `${x.type}=${x.status}`)).toEqual(['Ready=False', 'Reconciling=True']);
    expect(computeKStatus(obj(progressing)).status).toBe('InProgress');
    const stalled = applySummary(progressing, { state: 'stalled', reason: 'SecretNotFound', message: 'x' }, 3, t0);
    expect(stalled.map((x) => `${x.type}=${x.status}`)).toEqual(['Ready=False', 'Stalled=True']);
    expect(computeKStatus(obj(stalled)).status).toBe('Failed');
    const ready = applySummary(stalled, { state: 'ready', reason: 'Available', message: 'ok' }, 3, t0);
    expect(ready.map((x) => `${x.type}=${x.status}`)).toEqual(['Ready=True']);
    expect(computeKStatus(obj(ready)).status).toBe('Current');
    expect(computeKStatus({ metadata: { generation: 4 }, status: { observedGeneration: 3, conditions: ready } }).status).toBe('InProgress');
    expect(computeKStatus({ metadata: { generation: 4, deletionTimestamp: 'x' } }).status).toBe('Terminating');
  });
});

describe('apply diff', () => {
  it('treats desired values present in the live object as unchanged, quantities semantically', () => {
    const desired = { spec: { replicas: 1, resources: { requests: { cpu: '0.5', memory: '1Gi' } }, ports: [{ port: 80 }] } };
    const live = { spec: { replicas: 1, resources: { requests: { cpu: '500m', memory: '1024Mi' } }, ports: [{ port: 80, protocol: 'TCP' }], extra: true } };
    expect(isSubset(desired, live)).toBe(true);
    expect(isSubset({ spec: { replicas: 2 } }, live)).toBe(false);
    expect(isSubset({ spec: { ports: [{ port: 80 }, { port: 81 }] } }, live)).toBe(false);
    expect(isSubset({ a: 'abc' }, { a: 'abd' })).toBe(false);
  });

  it('hashes independent of key order and stamps the hash annotation', () => {
    expect(stableStringify({ b: 1, a: [{ d: 1, c: 2 }] })).toBe('{"a":[{"c":2,"d":1}],"b":1}');
    expect(hashOf({ a: 1, b: 2 })).toBe(hashOf({ b: 2, a: 1 }));
    const stamped = withAppliedHash({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', annotations: { a: 'b' } } });
    expect(Object.keys(stamped.metadata.annotations!)).toEqual(['a', 'wharf.dev/applied-hash']);
  });

  it('parses quantities', () => {
    expect(parseQuantity('1Gi')).toBe(2 ** 30);
    expect(parseQuantity('500m')).toBe(0.5);
    expect(parseQuantity('1e3')).toBe(1000);
    expect(parseQuantity('abc')).toBeUndefined();
  });
});
