import { describe, expect, it } from 'vitest';
import { clientKey, isRefusal, LoginThrottle, type Attempt, type LoginThrottleOptions } from '../../src/auth/login-throttle.js';
import { VerifiedCredentials } from '../../src/auth/verified-credentials.js';

class Clock {
  ms = 1_000_000;
  readonly now = () => this.ms;
  advance(seconds: number) {
    this.ms += seconds * 1000;
  }
}

const OPTIONS: LoginThrottleOptions = {
  perClient: { failures: 4, windowSeconds: 40 },
  perAccount: { failures: 2, windowSeconds: 60 },
  knownClientMs: 3600_000,
  capacity: 1000,
};

function admitted(outcome: Attempt | ReturnType<LoginThrottle['admit']>): Attempt {
  if (isRefusal(outcome)) throw new Error(`refused by the ${outcome.limit} limit`);
  return outcome;
}

describe('login throttle', () => {
  it('refuses an account after its failures, says when to retry, and earns attempts back over the window', () => {
    const clock = new Clock();
    const throttle = new LoginThrottle(OPTIONS, clock.now);
    admitted(throttle.admit('alice', '10.0.0.1')).failed();
    admitted(throttle.admit('alice', '10.0.0.2')).failed();
    expect(throttle.admit('alice', '10.0.0.3')).toEqual({ limit: 'account', retryAfterSeconds: 30 });
    clock.advance(29);
    expect(throttle.admit('alice', '10.0.0.3')).toEqual({ limit: 'account', retryAfterSeconds: 1 });
    clock.advance(1);
    admitted(throttle.admit('alice', '10.0.0.3')).failed();
    expect(throttle.admit('alice', '10.0.0.3')).toMatchObject({ limit: 'account' });
  });

  it('counts only failures: successes and abandoned attempts give their charge back', () => {
    const throttle = new LoginThrottle(OPTIONS, new Clock().now);
    for (let i = 0; i < 10; i++) admitted(throttle.admit('bob', '10.0.0.1')).succeeded();
    for (let i = 0; i < 10; i++) admitted(throttle.admit('carol', '10.0.0.2')).abandoned();
    admitted(throttle.admit('carol', '10.0.0.2')).failed();
    admitted(throttle.admit('carol', '10.0.0.2')).failed();
    expect(throttle.admit('carol', '10.0.0.2')).toMatchObject({ limit: 'account' });
  });

  it('charges attempts in flight, so that concurrent ones cannot overshoot the limit', () => {
    const throttle = new LoginThrottle(OPTIONS, new Clock().now);
    const inFlight = [admitted(throttle.admit('dave', '10.0.0.1')), admitted(throttle.admit('dave', '10.0.0.2'))];
    expect(throttle.admit('dave', '10.0.0.3')).toMatchObject({ limit: 'account' });
    inFlight[0]!.succeeded();
    // Reporting twice changes nothing.
    inFlight[0]!.succeeded();
    inFlight[0]!.abandoned();
    inFlight[1]!.failed();
    admitted(throttle.admit('dave', '10.0.0.3')).failed();
    expect(throttle.admit('dave', '10.0.0.3')).toMatchObject({ limit: 'account' });
  });

  it('limits a client across accounts, and a refused account attempt costs the client nothing', () => {
    const clock = new Clock();
    const throttle = new LoginThrottle(OPTIONS, clock.now);
    for (const name of ['a', 'b', 'c', 'd']) admitted(throttle.admit(name, '10.0.0.9')).failed();
    expect(throttle.admit('e', '10.0.0.9')).toEqual({ limit: 'client', retryAfterSeconds: 10 });
    admitted(throttle.admit('e', '10.0.0.10')).failed();
    admitted(throttle.admit('e', '10.0.0.10')).failed();
    for (let i = 0; i < 5; i++) expect(throttle.admit('e', '10.0.0.10')).toMatchObject({ limit: 'account' });
    admitted(throttle.admit('f', '10.0.0.10')).failed();
  });

  it('exempts a client from an account limit for a while after it signed in to that account', () => {
    const clock = new Clock();
    const throttle = new LoginThrottle(OPTIONS, clock.now);
    admitted(throttle.admit('erin', '10.0.0.1')).succeeded();
    admitted(throttle.admit('erin', '10.0.0.66')).failed();
    admitted(throttle.admit('erin', '10.0.0.66')).failed();
    expect(throttle.admit('erin', '10.0.0.66')).toMatchObject({ limit: 'account' });
    admitted(throttle.admit('erin', '10.0.0.1')).succeeded();
    // Its own failures still count against its client limit.
    for (let i = 0; i < 4; i++) admitted(throttle.admit('erin', '10.0.0.1')).failed();
    expect(throttle.admit('erin', '10.0.0.1')).toMatchObject({ limit: 'client' });
    clock.advance(3600);
    admitted(throttle.admit('erin', '10.0.0.66')).failed();
    admitted(throttle.admit('erin', '10.0.0.66')).failed();
    expect(throttle.admit('erin', '10.0.0.1')).toMatchObject({ limit: 'account' });
  });

  it('has no limit where the configured failures are 0', () => {
    const throttle = new LoginThrottle({ ...OPTIONS, perClient: { failures: 0, windowSeconds: 1 }, perAccount: { failures: 0, windowSeconds: 1 } }, new Clock().now);
    for (let i = 0; i < 100; i++) admitted(throttle.admit('frank', '10.0.0.1')).failed();
  });

  it('stays within its capacity when flooded with new keys, dropping buckets that have refilled first', () => {
    const clock = new Clock();
    const throttle = new LoginThrottle({ ...OPTIONS, perClient: { failures: 0, windowSeconds: 1 }, capacity: 10 }, clock.now);
    const tableSize = () => (throttle as unknown as { accounts: { buckets: Map<string, unknown> } }).accounts.buckets.size;
    for (let i = 0; i < 9; i++) admitted(throttle.admit(`old-${i}`, '10.0.0.1')).failed();
    clock.advance(60);
    admitted(throttle.admit('target', '10.0.0.1')).failed();
    admitted(throttle.admit('target', '10.0.0.1')).failed();
    admitted(throttle.admit('new', '10.0.0.1')).failed();
    expect(throttle.admit('target', '10.0.0.1')).toMatchObject({ limit: 'account' });
    for (let i = 0; i < 100; i++) admitted(throttle.admit(`spray-${i}`, '10.0.0.1')).failed();
    expect(tableSize()).toBeLessThanOrEqual(10);
  });
});

describe('client key', () => {
  it('is the IPv4 address, or the /64 of an IPv6 address', () => {
    expect(clientKey('192.0.2.7')).toBe('192.0.2.7');
    expect(clientKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(clientKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2::9')).toBe(clientKey('2001:0db8:0001:0002:ffff::1'));
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientKey('2001:db8:1:3::1')).not.toBe(clientKey('2001:db8:1:2::1'));
  });
});

describe('verified credentials', () => {
  it('holds a verification for the stored hash it matched, until it expires', () => {
    const clock = new Clock();
    const cache = new VerifiedCredentials({ ttlMs: 60_000, capacity: 10 }, clock.now);
    cache.add('alice', 'secret', 'hash-1');
    expect(cache.has('alice', 'secret', 'hash-1')).toBe(true);
    expect(cache.has('alice', 'other', 'hash-1')).toBe(false);
    expect(cache.has('alicesecret', '', 'hash-1')).toBe(false);
    expect(cache.has('alices', 'ecret', 'hash-1')).toBe(false);
    expect(cache.has('bob', 'secret', 'hash-1')).toBe(false);
    // A new stored hash (password changed) ends it for good.
    expect(cache.has('alice', 'secret', 'hash-2')).toBe(false);
    expect(cache.has('alice', 'secret', 'hash-1')).toBe(false);
    cache.add('alice', 'secret', 'hash-2');
    clock.advance(60);
    expect(cache.has('alice', 'secret', 'hash-2')).toBe(false);
  });

  it('keeps no secret, and stays within its capacity', () => {
    const cache = new VerifiedCredentials({ ttlMs: 60_000, capacity: 3 }, new Clock().now);
    for (let i = 0; i < 10; i++) cache.add(`user-${i}`, `password-${i}`, 'hash');
    expect(cache.size).toBe(3);
    expect(cache.has('user-9', 'password-9', 'hash')).toBe(true);
    expect(cache.has('user-0', 'password-0', 'hash')).toBe(false);
    expect(JSON.stringify([...(cache as unknown as { entries: Map<string, unknown> }).entries])).not.toMatch(/password-/);
  });

  it('is off with a TTL of 0', () => {
    const cache = new VerifiedCredentials({ ttlMs: 0, capacity: 3 }, new Clock().now);
    cache.add('alice', 'secret', 'hash');
    expect(cache.has('alice', 'secret', 'hash')).toBe(false);
  });
});
