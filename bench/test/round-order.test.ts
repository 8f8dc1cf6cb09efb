import { describe, expect, it } from 'vitest';
import { roundOrder } from '../src/run.js';

describe('round order', () => {
  const targets = ['distribution', 'zot', 'wharf-pglite', 'wharf-postgres'];

  it('runs every target once per round', () => {
    for (let round = 0; round < 6; round++) expect([...roundOrder(targets, round)].sort()).toEqual([...targets].sort());
  });

  it('varies which target goes first and which one each target follows', () => {
    const firsts = new Set<string>();
    const predecessors = new Map<string, Set<string>>();
    for (let round = 1; round <= 4; round++) {
      const order = roundOrder(targets, round);
      firsts.add(order[0]!);
      for (let i = 1; i < order.length; i++) {
        const seen = predecessors.get(order[i]!) ?? new Set<string>();
        predecessors.set(order[i]!, seen.add(order[i - 1]!));
      }
    }
    expect(firsts.size).toBe(4);
    for (const t of targets) expect(predecessors.get(t)?.size, t).toBe(2);
  });

  it('orders warm-up rounds (0 and below) as it orders the others', () => {
    for (let round = -3; round <= 0; round++) expect([...roundOrder(targets, round)].sort()).toEqual([...targets].sort());
    expect(roundOrder(targets, -1)).toEqual(roundOrder(targets, targets.length - 1));
    expect(roundOrder(targets, -2)).toEqual(roundOrder(targets, targets.length - 2));
  });
});
