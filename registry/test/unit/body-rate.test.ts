import { describe, expect, it } from 'vitest';
import { BodyRateMeter } from '../../src/http/body-rate.js';

const policy = { minBytesPerSecond: 1000, windowMs: 10_000, graceMs: 10_000 };

describe('the request body rate meter', () => {
  it('judges nothing during the grace period, even a silent client', () => {
    const meter = new BodyRateMeter(policy, 0, 0);
    for (let t = 0; t < 10_000; t += 1000) expect(meter.check(t, 0, false)).toEqual({ slow: false });
  });

  it('cuts a body slower than the minimum over a window once the grace period is over', () => {
    const meter = new BodyRateMeter(policy, 0, 500);
    expect(meter.check(9_999, 500 + 9_000, false)).toEqual({ slow: false });
    expect(meter.check(10_000, 500 + 9_000, false)).toEqual({ slow: true, bytes: 9_000, ms: 10_000 });
  });

  it('lets a steady body above the minimum run for as long as it takes', () => {
    const meter = new BodyRateMeter(policy, 0, 0);
    for (let t = 0; t <= 3_600_000; t += 5000) expect(meter.check(t, t * 1.5, false)).toEqual({ slow: false });
  });

  it('judges each window on its own: a fast start buys no silence later', () => {
    const meter = new BodyRateMeter(policy, 0, 0);
    expect(meter.check(10_000, 100_000_000, false)).toEqual({ slow: false });
    expect(meter.check(15_000, 100_000_000, false)).toEqual({ slow: false });
    expect(meter.check(20_000, 100_000_500, false)).toEqual({ slow: true, bytes: 500, ms: 10_000 });
  });

  it('never blames the client while the registry itself is not reading, and then gives it a full window', () => {
    const meter = new BodyRateMeter(policy, 0, 0);
    expect(meter.check(10_000, 20_000, false)).toEqual({ slow: false });
    // Storage is slow: the registry stops reading for a minute; the client can send nothing.
    for (let t = 11_000; t <= 70_000; t += 1000) expect(meter.check(t, 20_000, true)).toEqual({ slow: false });
    expect(meter.check(79_000, 20_000, false)).toEqual({ slow: false });
    expect(meter.check(80_000, 21_000, false)).toEqual({ slow: true, bytes: 1_000, ms: 10_000 });
  });
});
