import { scryptSync } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { generateRobotSecret, PasswordHasher } from '../../src/auth/passwords.js';
import { RegistryError } from '../../src/oci/errors.js';
import { ScryptPool, ScryptPoolBusyError } from '../../src/auth/scrypt-pool.js';

const FAST = { N: 1024, r: 8, p: 1, keyLength: 32 };

describe('scrypt pool', () => {
  const pool = new ScryptPool({ threads: 1, maxQueue: 2 });
  afterAll(() => pool.close());

  it('derives what scrypt derives', async () => {
    const salt = Buffer.from('0123456789abcdef');
    expect((await pool.derive('pässword', salt, FAST)).equals(scryptSync('pässword', salt, 32, { N: 1024, r: 8, p: 1 }))).toBe(true);
  });

  it('runs at most `threads` at once, queues `maxQueue` more and refuses the rest at once', async () => {
    const salt = Buffer.alloc(16);
    const jobs = Array.from({ length: 5 }, (_, i) => pool.derive(`password-${i}`, salt, FAST));
    expect({ running: pool.running, waiting: pool.waiting }).toEqual({ running: 1, waiting: 2 });
    const settled = await Promise.allSettled(jobs);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected']);
    expect((settled[3] as PromiseRejectedResult).reason).toBeInstanceOf(ScryptPoolBusyError);
    expect({ running: pool.running, waiting: pool.waiting }).toEqual({ running: 0, waiting: 0 });
  });
});

describe('password hasher', () => {
  let derivations = 0;
  const pool = new ScryptPool({ threads: 1, maxQueue: 0, onDerived: () => derivations++ });
  const hasher = new PasswordHasher((password, salt, params) => pool.derive(password, salt, params));
  afterAll(() => pool.close());

  const counted = async <T>(work: () => Promise<T>): Promise<{ result: T; derivations: number }> => {
    const before = derivations;
    const result = await work();
    return { result, derivations: derivations - before };
  };

  it('verifies a password against its scrypt hash, and a generated robot secret against its fast hash without scrypt', async () => {
    const stored = await hasher.hash('correct horse battery');
    expect(stored).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);
    expect(await counted(() => hasher.verify('correct horse battery', stored))).toEqual({ result: true, derivations: 1 });
    const secret = generateRobotSecret();
    const fast = await hasher.hashRobotSecret(secret, true);
    expect(fast).toMatch(/^sha256\$/);
    expect(await counted(() => hasher.verify(secret, fast))).toEqual({ result: true, derivations: 0 });
    expect(await hasher.hashRobotSecret('chosen by a person', false)).toMatch(/^scrypt\$/);
  });

  it('spends exactly one derivation on every mismatch, whatever is stored', async () => {
    const scrypt = await hasher.hash('correct horse battery');
    const fast = await hasher.hashRobotSecret(generateRobotSecret(), true);
    for (const stored of [scrypt, fast, undefined, '!', 'scrypt$broken', '']) {
      expect(await counted(() => hasher.verify('wrong', stored))).toEqual({ result: false, derivations: 1 });
    }
  });

  it('matches one of several hashes (a rotation grace window): fast ones without scrypt, a mismatch costs one derivation per scrypt hash and at least one', async () => {
    const previous = generateRobotSecret();
    const current = generateRobotSecret();
    const fastPrevious = await hasher.hashRobotSecret(previous, true);
    const fastCurrent = await hasher.hashRobotSecret(current, true);
    const chosen = await hasher.hash('chosen by a person');
    expect(await counted(() => hasher.match(previous, [fastCurrent, fastPrevious]))).toEqual({ result: fastPrevious, derivations: 0 });
    expect(await counted(() => hasher.match(current, [fastCurrent, chosen]))).toEqual({ result: fastCurrent, derivations: 0 });
    expect(await counted(() => hasher.match('chosen by a person', [fastCurrent, chosen]))).toEqual({ result: chosen, derivations: 1 });
    expect(await counted(() => hasher.match('wrong', [fastCurrent, fastPrevious]))).toEqual({ result: undefined, derivations: 1 });
    expect(await counted(() => hasher.match('wrong', [fastCurrent, chosen]))).toEqual({ result: undefined, derivations: 1 });
    expect(await counted(() => hasher.match('wrong', []))).toEqual({ result: undefined, derivations: 1 });
  });

  it('sheds a derivation the pool cannot take with 429 TOOMANYREQUESTS and Retry-After', async () => {
    const first = hasher.hash('one at a time');
    const refused = await hasher.hash('no room').catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(RegistryError);
    expect(refused).toMatchObject({ code: 'TOOMANYREQUESTS', httpStatus: 429, headers: { 'Retry-After': '1' } });
    await first;
  });
});
