// The pure parts of tag retention: planning (Harbor's semantics) and which scheduled runs are due.
import { describe, expect, it } from 'vitest';
import { planRetention, type RetentionCandidate } from '../../src/lifecycle/retention-plan.js';
import pino from 'pino';
import { dueTicks, StoredScheduleChecker } from '../../src/jobs/stored-schedules.js';
import { immutableBy } from '../../src/lifecycle/immutability.js';

const NOW = new Date('2026-06-01T12:00:00Z');
const daysAgo = (d: number) => new Date(NOW.getTime() - d * 86400_000);
const tag = (repository: string, name: string, pushed: number, pulled?: number): RetentionCandidate => ({
  repository,
  tag: name,
  digest: `sha256:${name}`,
  pushedAt: daysAgo(pushed),
  pulledAt: pulled === undefined ? null : daysAgo(pulled),
});

describe('retention planning', () => {
  it('counts per repository, and leaves repositories no rule selects alone', () => {
    const plan = planRetention(
      { rules: [{ template: 'latestPushedK', count: 1, repoMatches: '{a,b}' }], schedule: null },
      [tag('p/a', 'x', 1), tag('p/a', 'y', 2), tag('p/b', 'z', 5), tag('p/c', 'w', 9)],
      NOW,
    );
    expect(plan.kept.map((d) => d.tag)).toEqual(['x', 'z']);
    expect(plan.deleted.map((d) => d.tag)).toEqual(['y']);
  });

  it('selects untagged artifacts only with untagged, and tag patterns with * stop at / while ** crosses it', () => {
    const untagged: RetentionCandidate = { repository: 'p/a', tag: null, digest: 'sha256:u', pushedAt: daysAgo(1), pulledAt: null };
    const keepAll = (extra: object) => planRetention({ rules: [{ template: 'always', ...extra }], schedule: null }, [untagged, tag('p/a', 'v1', 1)], NOW);
    expect(keepAll({}).deleted.map((d) => d.digest)).toEqual(['sha256:u']);
    expect(keepAll({ untagged: true }).deleted).toEqual([]);
    expect(planRetention({ rules: [{ template: 'always', repoMatches: '*' }], schedule: null }, [tag('p/a/b', 'x', 1)], NOW).kept).toEqual([]);
    expect(planRetention({ rules: [{ template: 'always', repoMatches: '**' }], schedule: null }, [tag('p/a/b', 'x', 1)], NOW).kept).toHaveLength(1);
  });

  it('latestPulledN ranks never-pulled artifacts after pulled ones, by push time', () => {
    const plan = planRetention({ rules: [{ template: 'latestPulledN', count: 2 }], schedule: null }, [tag('p/a', 'old-pull', 1, 30), tag('p/a', 'fresh', 0), tag('p/a', 'stale', 50)], NOW);
    expect(plan.kept.map((d) => d.tag).sort()).toEqual(['fresh', 'old-pull']);
  });

  it('always keeps immutable tags and protected signed artifacts, saying why', () => {
    const immutable = { ...tag('p/a', 'v1', 99), immutableBy: '"releases"' };
    const signed = { ...tag('p/a', 'signed', 99), protectedSigned: true };
    const plan = planRetention({ rules: [{ template: 'latestPushedK', count: 0 }], schedule: null }, [immutable, signed], NOW);
    expect(plan.deleted).toEqual([]);
    expect(plan.kept.map((d) => d.reason).sort()).toEqual(['immutable (immutability rule "releases")', 'signed, and the project protects signed artifacts']);
  });

  it('an empty policy deletes nothing', () => {
    expect(planRetention({ rules: [], schedule: null }, [tag('p/a', 'x', 1)], NOW)).toEqual({ kept: [], deleted: [] });
  });
});

describe('immutability rules', () => {
  it('name the first enabled rule that selects the tag', () => {
    const policy = { rules: [{ tagMatches: 'v*', disabled: true }, { name: 'rel', tagMatches: 'v*', repoExcludes: 'tmp/**' }, { tagMatches: '**' }], protectSignedArtifacts: false };
    expect(immutableBy(policy, 'p/app', 'v1')).toBe('"rel"');
    expect(immutableBy(policy, 'p/tmp/x', 'v1')).toBe('#3');
    expect(immutableBy({ rules: [], protectSignedArtifacts: false }, 'p/app', 'v1')).toBeUndefined();
  });
});

describe('scheduled retention runs', () => {
  it('are due once per project whose schedule fired in the window, at its latest tick', () => {
    const schedules = [
      { key: 'a', schedule: '*/10 * * * *' },
      { key: 'b', schedule: '0 3 * * *' },
      { key: 'c', schedule: 'not a schedule' },
    ];
    expect(dueTicks(schedules, new Date('2026-06-01T02:55:00Z'), new Date('2026-06-01T03:25:00Z'))).toEqual([
      { key: 'a', tick: new Date('2026-06-01T03:20:00Z') },
      { key: 'b', tick: new Date('2026-06-01T03:00:00Z') },
    ]);
    expect(dueTicks(schedules, new Date('2026-06-01T03:21:00Z'), new Date('2026-06-01T03:29:59Z'))).toEqual([]);
  });
});

describe('the retention scheduler', () => {
  it('enqueues each due tick once per check window, keyed by project and tick', async () => {
    const enqueued: string[] = [];
    const scheduler = new StoredScheduleChecker(async () => [{ key: 'a', schedule: '0 * * * *' }], async (project, tick) => void enqueued.push(`${project}@${tick.toISOString()}`), 60_000, pino({ level: 'silent' }));
    (scheduler as unknown as { last: Date }).last = new Date('2026-06-01T02:59:30Z');
    await scheduler.check(new Date('2026-06-01T03:00:00Z'));
    await scheduler.check(new Date('2026-06-01T03:00:30Z'));
    await scheduler.check(new Date('2026-06-01T04:00:10Z'));
    expect(enqueued).toEqual(['a@2026-06-01T03:00:00.000Z', 'a@2026-06-01T04:00:00.000Z']);
  });

  it('keeps the window of a check that failed for the next one, so no tick is lost', async () => {
    const enqueued: string[] = [];
    let failing = true;
    const scheduler = new StoredScheduleChecker(
      async () => {
        if (failing) throw new Error('database unavailable');
        return [{ key: 'a', schedule: '0 * * * *' }];
      },
      async (key, tick) => void enqueued.push(`${key}@${tick.toISOString()}`),
      60_000,
      pino({ level: 'silent' }),
    );
    (scheduler as unknown as { last: Date }).last = new Date('2026-06-01T02:59:30Z');
    await scheduler.check(new Date('2026-06-01T03:00:10Z'));
    failing = false;
    await scheduler.check(new Date('2026-06-01T03:00:40Z'));
    expect(enqueued).toEqual(['a@2026-06-01T03:00:00.000Z']);
  });
});
