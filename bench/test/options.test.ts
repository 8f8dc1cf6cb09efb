import { describe, expect, it } from 'vitest';
import { parseOptions } from '../src/options.js';

describe('bench options', () => {
  it('keeps the named workloads', () => {
    expect(parseOptions(['--workloads', 'blobPull, manifestGet'], {}).workloads).toEqual(['blobPull', 'manifestGet']);
  });

  it('rejects a workload it does not know, naming the known ones', () => {
    expect(() => parseOptions(['--workloads', 'blobPull,smallpush'], {})).toThrow(/unknown smallpush \(known: .*smallPush/);
  });

  it('knows the listings workload, which runs apart from the rounds', () => {
    const options = parseOptions(['--workloads', 'listings'], {});
    expect(options.workloads).toEqual(['listings']);
    expect(options.listings.tagCounts).toEqual([100, 10_000, 100_000]);
    expect(options.listings.repositoryCounts).toEqual([1_000, 50_000]);
  });
});
