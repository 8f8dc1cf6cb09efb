import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { IdleCollector, watchEventLoop } from '../../src/idle-collector.js';

describe('IdleCollector', () => {
  /** Ticks with the given utilizations; each busy tick leaves `growth` bytes behind, and a collection frees them all. */
  const ticks = (utilizations: number[], growth = 100, minGrowth = 50) => {
    let collected = 0;
    let held = 0;
    const collector = new IdleCollector(
      () => {
        collected++;
        held = 0;
      },
      () => held,
      minGrowth,
      0.05,
    );
    const decisions = utilizations.map((u) => {
      if (u > 0.05) held += growth;
      return collector.tick(u);
    });
    return { decisions, collected };
  };

  it('collects once, on the first quiet interval after work that left memory behind', () => {
    expect(ticks([0.9, 0.4, 0.01, 0.01, 0.0])).toEqual({ decisions: [false, false, true, false, false], collected: 1 });
  });

  it('collects again after the next burst', () => {
    expect(ticks([0.5, 0.02, 0.7, 0.03]).collected).toBe(2);
  });

  it('never collects in a process that has done no work, or while it stays busy', () => {
    expect(ticks([0.01, 0.0, 0.05]).collected).toBe(0);
    expect(ticks([0.3, 0.2, 0.06, 0.9]).collected).toBe(0);
  });

  it('does not collect after work that left less than the minimum growth behind, and counts growth from the last collection', () => {
    // Each burst leaves 30 behind, and 50 is the minimum: the second quiet spell collects (60), the first and third do not.
    expect(ticks([0.5, 0.01, 0.5, 0.01, 0.5, 0.01, 0.0], 30, 50).decisions).toEqual([false, false, false, true, false, false, false]);
  });
});

describe('watchEventLoop', () => {
  it('does not take its own collection for work: one slow collection per quiet spell, not one every other interval', async () => {
    const busy = (ms: number) => {
      const end = performance.now() + ms;
      while (performance.now() < end);
    };
    let collected = 0;
    // Each collection keeps the loop busy for 30 % of an interval, far above the 5 % threshold.
    const watch = watchEventLoop(new IdleCollector(() => (collected++, busy(60)), () => 0, 0, 0.05), 200);
    try {
      busy(150);
      await sleep(2200);
    } finally {
      watch.stop();
    }
    expect(collected).toBe(1);
  });
});
