import { describe, expect, it } from 'vitest';
import { DEFAULT_REGISTRY_IMAGE, parseOptions } from '../../src/options.js';

describe('operator options', () => {
  it('defaults to client-go leader election timings, a 10 min resync and the bundled registry image', () => {
    const o = parseOptions([], { POD_NAME: 'wharf-operator-abc', POD_NAMESPACE: 'ops' });
    expect(o).toMatchObject({
      identity: 'wharf-operator-abc',
      namespace: 'ops',
      leaderElect: true,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      healthAddr: ':8081',
      resyncMs: 600_000,
      defaultImage: DEFAULT_REGISTRY_IMAGE,
    });
  });

  it('reads flags in both forms, flags over environment', () => {
    const o = parseOptions(['--watch-namespace', 'team', '--resync=2', '--leader-elect=false', '--registry-image', 'r/x:1'], { WHARF_REGISTRY_IMAGE: 'env/x:2' });
    expect(o).toMatchObject({ watchNamespace: 'team', resyncMs: 2000, leaderElect: false, defaultImage: 'r/x:1' });
  });

  it('rejects unknown flags and bad numbers', () => {
    expect(() => parseOptions(['--nope', '1'], {})).toThrow('unknown flag --nope');
    expect(() => parseOptions(['--resync', 'soon'], {})).toThrow('--resync must be a number of seconds');
  });
});
