// Project.spec.retention and spec.immutability (issue 21) reconciled by the Project controller
// against a real registry process and the real control plane, the operator as a real process:
// both policies show up in the registry's API field by field, a spec update is applied, a hand
// edit is reverted and reported, and CEL refuses a template without its parameter.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apply, raw, waitFor, type Clients } from './support/kube.js';
import { condition, ProjectFixture } from './support/project-fixture.js';
import type { RegistryProcess } from './support/registry-process.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

let f: ProjectFixture;
let c: Clients;
let ns: string;
let registry: RegistryProcess;
const projectRef = (name: string) => f.projectRef(name);
const waitReady = (name: string) => f.waitProject(name, (p) => condition(p, 'Ready')?.status === 'True', 'ready');

async function events(name: string, reason: string): Promise<string> {
  const list = await raw<{ items: Any[] }>(c, 'GET', `/apis/events.k8s.io/v1/namespaces/${ns}/events`);
  return list.items.filter((e) => e.regarding?.kind === 'Project' && e.regarding?.name === name && e.reason === reason).map((e) => e.note as string).join('\n');
}

const retention = {
  schedule: '0 5 * * *',
  rules: [
    { template: 'latestPushedK', count: 3, tagMatches: 'v*', tagExcludes: 'v*-rc*', repoMatches: 'app/**', repoExcludes: 'app/tmp', untagged: true },
    { template: 'nDaysSinceLastPull', days: 14 },
    { template: 'always', tagMatches: 'stable', disabled: true },
  ],
};
const immutability = { protectSignedArtifacts: true, rules: [{ name: 'releases', tagMatches: 'v*.*.*', repoMatches: '**' }, { tagMatches: 'prod-*', repoExcludes: 'scratch/**' }] };

beforeAll(async () => {
  f = await ProjectFixture.start('lifecycle');
  ({ c, ns, registry } = f);
});

afterAll(() => f?.stop());

describe('Project retention and immutability', () => {
  it('shows up in the registry API field by field', async () => {
    await apply(c, { ...projectRef('lc'), spec: { registryRef: { name: 'ext' }, retention, immutability } } as Any);
    await waitReady('lc');
    expect(await registry.ok('GET', '/projects/lc/retention')).toEqual(retention);
    expect(await registry.ok('GET', '/projects/lc/immutability')).toEqual(immutability);
  });

  it('applies a spec update', async () => {
    const changed = { schedule: undefined, rules: [{ template: 'latestPulledN', count: 10 }] };
    await apply(c, { ...projectRef('lc'), spec: { registryRef: { name: 'ext' }, retention: { rules: changed.rules }, immutability: { rules: [] } } } as Any);
    // Both policies are written in one pass, retention first: wait for the second.
    await waitFor('spec update applied', async () => {
      const r = await registry.ok('GET', '/projects/lc/retention');
      const i = await registry.ok('GET', '/projects/lc/immutability');
      return r.schedule === null && r.rules.length === 1 && i.rules.length === 0 ? r : undefined;
    }, 60_000);
    expect(await registry.ok('GET', '/projects/lc/retention')).toEqual({ rules: changed.rules, schedule: null });
    expect(await registry.ok('GET', '/projects/lc/immutability')).toEqual({ rules: [], protectSignedArtifacts: false });
  });

  it('reverts a hand edit at the next resync and says so', async () => {
    await waitReady('lc');
    await registry.ok('PUT', '/projects/lc/retention', { rules: [{ template: 'always' }], schedule: '@hourly' });
    await registry.ok('PUT', '/projects/lc/immutability', { rules: [{ tagMatches: '**' }], protectSignedArtifacts: true });
    await waitFor('drift reverted', async () => {
      const r = await registry.ok('GET', '/projects/lc/retention');
      const i = await registry.ok('GET', '/projects/lc/immutability');
      return r.rules[0]?.template === 'latestPulledN' && i.rules.length === 0 ? true : undefined;
    }, 30_000);
    const notes = await waitFor('DriftReverted event', async () => {
      const n = await events('lc', 'DriftReverted');
      return n.includes('retention policy') ? n : undefined;
    }, 30_000);
    expect(notes).toContain('immutability rules');
  });

  it('leaves the registry policies alone when the spec does not set them', async () => {
    await registry.ok('PUT', '/projects/by-hand', {});
    await registry.ok('PUT', '/projects/by-hand/retention', { rules: [{ template: 'always' }], schedule: null });
    await apply(c, { ...projectRef('by-hand'), spec: { registryRef: { name: 'ext' }, adopt: true } } as Any);
    await waitReady('by-hand');
    expect(await registry.ok('GET', '/projects/by-hand/retention')).toEqual({ rules: [{ template: 'always' }], schedule: null });
  });

  it('is refused by CEL when a template lacks its parameter', async () => {
    await expect(apply(c, { ...projectRef('bad'), spec: { registryRef: { name: 'ext' }, retention: { rules: [{ template: 'latestPushedK' }] } } } as Any)).rejects.toThrow(/latestPushedK and latestPulledN need count/);
    await expect(apply(c, { ...projectRef('bad'), spec: { registryRef: { name: 'ext' }, retention: { rules: [{ template: 'nDaysSinceLastPush' }] } } } as Any)).rejects.toThrow(/need days/);
  });
});
