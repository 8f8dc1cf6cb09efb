import { describe, expect, it } from 'vitest';
import { IdleCollector } from '../../src/idle-collector.js';

describe('IdleCollector', () => {
  const ticks = (utilizations: number[]) => {
    let collected = 0;
    const collector = new IdleCollector(() => collected++, 0.05);
    const decisions = utilizations.map((u) => collector.tick(u));
    return { decisions, collected };
  };

  it('collects once, on the first quiet interval after work', () => {
    expect(ticks([0.9, 0.4, 0.01, 0.01, 0.0])).toEqual({ decisions: [false, false, true, false, false], collected: 1 });
  });

  it('collects again after the next burst', () => {
    expect(ticks([0.5, 0.02, 0.7, 0.03]).collected).toBe(2);
  });

  it('never collects in a process that has done no work, or while it stays busy', () => {
    expect(ticks([0.01, 0.0, 0.05]).collected).toBe(0);
    expect(ticks([0.3, 0.2, 0.06, 0.9]).collected).toBe(0);
  });
});
