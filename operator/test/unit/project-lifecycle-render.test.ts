import { describe, expect, it } from 'vitest';
import type { ProjectSpec } from '../../src/api/project.js';
import { renderLifecycle, samePolicy } from '../../src/resources/project/lifecycle.js';

const base = { registryRef: { name: 'r' }, visibility: 'private', adopt: false, deletionPolicy: 'Retain' } as ProjectSpec;

describe('Project retention and immutability render', () => {
  it('renders only what the spec sets, with the registry defaults filled in', () => {
    expect(renderLifecycle(base)).toEqual({});
    expect(renderLifecycle({ ...base, retention: { rules: [{ template: 'always' }] }, immutability: { rules: [] } })).toEqual({
      retention: { rules: [{ template: 'always' }], schedule: null },
      immutability: { rules: [], protectSignedArtifacts: false },
    });
  });

  it('compares policies regardless of key order (the registry keeps rules as jsonb), but not of rule order', () => {
    expect(samePolicy({ rules: [{ template: 'latestPushedK', count: 3 }], schedule: null }, { schedule: null, rules: [{ count: 3, template: 'latestPushedK' }] })).toBe(true);
    expect(samePolicy({ rules: [{ template: 'always' }, { template: 'latestPushedK', count: 1 }] }, { rules: [{ template: 'latestPushedK', count: 1 }, { template: 'always' }] })).toBe(false);
    expect(samePolicy({ rules: [{ template: 'latestPushedK', count: 3 }] }, { rules: [{ template: 'latestPushedK', count: 4 }] })).toBe(false);
  });
});
