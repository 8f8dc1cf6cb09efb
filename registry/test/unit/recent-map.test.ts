import { describe, expect, it } from 'vitest';
import { rememberRecent } from '../../src/recent-map.js';

describe('rememberRecent', () => {
  it('keeps the newest entries up to the limit, a key set again counting as new', () => {
    const entries = new Map<string, number>();
    for (const [key, value] of [['a', 1], ['b', 2], ['c', 3]] as const) rememberRecent(entries, key, value, 3);
    rememberRecent(entries, 'a', 10, 3);
    rememberRecent(entries, 'd', 4, 3);
    expect([...entries]).toEqual([['c', 3], ['a', 10], ['d', 4]]);
  });

  it('drops down to a lowered limit at once', () => {
    const entries = new Map([['a', 1], ['b', 2], ['c', 3]]);
    rememberRecent(entries, 'd', 4, 1);
    expect([...entries]).toEqual([['d', 4]]);
  });
});
