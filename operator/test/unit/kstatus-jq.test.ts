// The e2e flow kstatus-current (e2e/flows/run.sh) computes kstatus with jq
// (e2e/flows/kstatus.jq), the same rules as the tests' computeKStatus (support/kstatus.ts). Both
// are run on the same objects, the listed corner cases and generated ones, and must agree.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { computeKStatus } from '../support/kstatus.js';
import { ROOT } from '../support/kube.js';

interface Obj {
  kind: string;
  metadata: { name: string; namespace?: string; generation?: number; deletionTimestamp?: string };
  status?: { observedGeneration?: number; conditions?: { type: string; status: string; message?: string }[] };
}

/** One jq run over all objects: a List as `kubectl get -o json` prints it. */
function jqStatuses(objects: Obj[]): string[] {
  const out = execFileSync('jq', ['-r', '-f', join(ROOT, 'e2e/flows/kstatus.jq')], { input: JSON.stringify({ kind: 'List', items: objects }), encoding: 'utf8' });
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => line.slice(line.lastIndexOf(' ') + 1));
}

const obj = (name: string, rest: Partial<Obj> = {}): Obj => ({ kind: 'Project', metadata: { name, namespace: 'ns', generation: 2 }, ...rest });
const ready = (status: string) => ({ type: 'Ready', status });

describe('kstatus.jq (the e2e flow) agrees with computeKStatus', () => {
  it('on each rule and its neighbours', () => {
    const cases: [Obj, string][] = [
      [obj('no-status'), 'Current'],
      [obj('ready', { status: { observedGeneration: 2, conditions: [ready('True')] } }), 'Current'],
      [obj('no-ready-condition', { status: { observedGeneration: 2, conditions: [] } }), 'Current'],
      [obj('not-ready', { status: { observedGeneration: 2, conditions: [ready('False')] } }), 'InProgress'],
      [obj('unknown', { status: { observedGeneration: 2, conditions: [ready('Unknown')] } }), 'InProgress'],
      [obj('behind', { status: { observedGeneration: 1, conditions: [ready('True')] } }), 'InProgress'],
      [obj('stalled', { status: { observedGeneration: 2, conditions: [ready('False'), { type: 'Stalled', status: 'True' }] } }), 'Failed'],
      [obj('reconciling', { status: { observedGeneration: 2, conditions: [ready('True'), { type: 'Reconciling', status: 'True' }] } }), 'InProgress'],
      [obj('stalled-false', { status: { observedGeneration: 2, conditions: [ready('True'), { type: 'Stalled', status: 'False' }] } }), 'Current'],
      [obj('deleting', { metadata: { name: 'deleting', generation: 2, deletionTimestamp: '2026-01-01T00:00:00Z' }, status: { conditions: [ready('True')] } }), 'Terminating'],
    ];
    const objects = cases.map(([o]) => o);
    expect(jqStatuses(objects)).toEqual(cases.map(([, want]) => want));
    expect(objects.map((o) => computeKStatus(o).status)).toEqual(cases.map(([, want]) => want));
  });

  it('on generated objects', () => {
    const condition = fc.record({ type: fc.constantFrom('Ready', 'Stalled', 'Reconciling', 'Other'), status: fc.constantFrom('True', 'False', 'Unknown') });
    const generated = fc.record(
      {
        kind: fc.constant('RobotAccount'),
        metadata: fc.record(
          { name: fc.constant('r'), generation: fc.integer({ min: 1, max: 3 }), deletionTimestamp: fc.constant('2026-01-01T00:00:00Z') },
          { requiredKeys: ['name'] },
        ),
        status: fc.record(
          { observedGeneration: fc.integer({ min: 1, max: 3 }), conditions: fc.uniqueArray(condition, { selector: (c) => c.type, maxLength: 4 }) },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: ['kind', 'metadata'] },
    );
    fc.assert(
      fc.property(fc.array(generated, { minLength: 1, maxLength: 50 }), (objects) => {
        expect(jqStatuses(objects)).toEqual(objects.map((o) => computeKStatus(o).status));
      }),
      { numRuns: 40 },
    );
  });
});
