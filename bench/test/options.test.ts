import { describe, expect, it } from 'vitest';
import { parseOptions } from '../src/options.js';

describe('bench options', () => {
  it('keeps the named workloads', () => {
    expect(parseOptions(['--workloads', 'blobPull, manifestGet'], {}).workloads).toEqual(['blobPull', 'manifestGet']);
  });

  it('rejects a workload it does not know, naming the known ones', () => {
    expect(() => parseOptions(['--workloads', 'blobPull,smallpush'], {})).toThrow(/unknown smallpush \(known: .*smallPush/);
  });
});
