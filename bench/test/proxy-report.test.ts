import { describe, expect, it } from 'vitest';
import { warmVerdict } from '../src/proxy-cache/report.js';
import type { Measurement } from '../src/proxy-cache/run.js';
import { signTestLower } from '../src/util/stats.js';

function rounds(phase: 'warm' | 'local', perRound: number[][]): Measurement[] {
  return perRound.map((samples, i) => {
    const sorted = [...samples].sort((a, b) => a - b);
    return { round: i + 1, shape: 'small', subject: 'Wharf', phase, mibPerS: sorted[Math.floor(sorted.length / 2)]!, samples };
  });
}

describe('sign test', () => {
  it('gives the binomial tail', () => {
    expect(signTestLower(0, 1)).toBeCloseTo(0.5);
    expect(signTestLower(10, 20)).toBeCloseTo(0.588, 3);
    expect(signTestLower(5, 20)).toBeCloseTo(0.0207, 4);
    expect(signTestLower(20, 20)).toBe(1);
  });
});

describe('warm verdict', () => {
  const local = rounds('local', [
    [200, 210, 220, 230, 240],
    [200, 210, 220, 230, 240],
    [200, 210, 220, 230, 240],
    [200, 210, 220, 230, 240],
  ]);

  it('meets the goal when the median ratio reaches it', () => {
    const warm = rounds('warm', local.map((m) => m.samples!.map((v) => v * 1.05)));
    expect(warmVerdict(warm, local)).toMatch(/^1\.05× met \(4\/4 rounds/);
  });

  it('fails a warm pull that loses to its neighbour in more pairs than chance explains', () => {
    const warm = rounds('warm', local.map((m) => m.samples!.map((v) => v * 0.97)));
    expect(warmVerdict(warm, local)).toMatch(/^0\.97× not met .*at least as fast in 0 of 20 paired pulls, sign test p = 0\.00/);
  });

  it('does not fail a median below the goal that the pairs do not show slower', () => {
    // Same speeds, paired in an order that puts every round's median a little low.
    const warm = rounds('warm', [
      [240, 230, 213, 200, 210],
      [240, 230, 213, 200, 210],
      [240, 230, 213, 200, 210],
      [240, 230, 213, 200, 210],
    ]);
    expect(warmVerdict(warm, local)).toMatch(/^0\.97×, not shown slower: met .*at least as fast in 8 of 20 paired pulls, sign test p = 0\.25/);
  });

  it('says not met when there are no pairs to weigh', () => {
    const warm = rounds('warm', [[190], [190], [190], [190]]);
    const single = rounds('local', [[200], [200], [200], [200]]).map(({ samples: _, ...m }) => m);
    expect(warmVerdict(warm, single)).toMatch(/^0\.95× not met/);
  });
});
