import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, defaultLoginConfig, loadConfig } from '../../src/config.js';

describe('login configuration', () => {
  it('defaults: half the CPUs hash (1 to 4 threads), 32 may wait, 30 failures a minute per client, 10 per 10 minutes per account, a 5-minute cache, 429s held for 1 s', () => {
    expect(loadConfig([], {}).auth.login).toEqual(defaultLoginConfig());
    expect(defaultLoginConfig(2)).toEqual({
      hashThreads: 1,
      hashQueue: 32,
      perClient: { failures: 30, windowSeconds: 60 },
      perAccount: { failures: 10, windowSeconds: 600 },
      cacheTtlSeconds: 300,
      refusalDelaySeconds: 1,
    });
    expect(defaultLoginConfig(1).hashThreads).toBe(1);
    expect(defaultLoginConfig(6).hashThreads).toBe(3);
    expect(defaultLoginConfig(64).hashThreads).toBe(4);
  });

  it('reads the YAML file, and the environment over it', () => {
    const file = join(tmpdir(), `wharf-login-${process.pid}.yaml`);
    writeFileSync(file, 'auth:\n  login:\n    hashThreads: 2\n    hashQueue: 8\n    clientFailures: 100\n    clientWindow: 5m\n    accountFailures: 0\n    accountWindow: 1h\n    cacheTtl: 0\n    refusalDelay: 250ms\n');
    expect(loadConfig(['--config', file], {}).auth.login).toEqual({
      hashThreads: 2,
      hashQueue: 8,
      perClient: { failures: 100, windowSeconds: 300 },
      perAccount: { failures: 0, windowSeconds: 3600 },
      cacheTtlSeconds: 0,
      refusalDelaySeconds: 0.25,
    });
    const env = { WHARF_LOGIN_HASH_THREADS: '3', WHARF_LOGIN_CLIENT_FAILURES: '0', WHARF_LOGIN_ACCOUNT_FAILURES: '5', WHARF_LOGIN_ACCOUNT_WINDOW: '30m', WHARF_LOGIN_CACHE_TTL: '90s', WHARF_LOGIN_REFUSAL_DELAY: '0' };
    expect(loadConfig(['--config', file], env).auth.login).toEqual({
      hashThreads: 3,
      hashQueue: 8,
      perClient: { failures: 0, windowSeconds: 300 },
      perAccount: { failures: 5, windowSeconds: 1800 },
      cacheTtlSeconds: 90,
      refusalDelaySeconds: 0,
    });
  });

  it('rejects values out of range with the key named', () => {
    expect(() => loadConfig([], { WHARF_LOGIN_HASH_THREADS: '0' })).toThrow(/auth.login.hashThreads \(WHARF_LOGIN_HASH_THREADS\)/);
    expect(() => loadConfig([], { WHARF_LOGIN_CLIENT_FAILURES: '-1' })).toThrow(ConfigError);
    expect(() => loadConfig([], { WHARF_LOGIN_CLIENT_FAILURES: '2.5' })).toThrow(ConfigError);
    expect(() => loadConfig([], { WHARF_LOGIN_ACCOUNT_WINDOW: '0' })).toThrow(/auth.login.accountWindow/);
    expect(() => loadConfig([], { WHARF_LOGIN_CACHE_TTL: '2d' })).toThrow(ConfigError);
    expect(() => loadConfig([], { WHARF_LOGIN_HASH_QUEUE: 'lots' })).toThrow(ConfigError);
    expect(() => loadConfig([], { WHARF_LOGIN_REFUSAL_DELAY: '2m' })).toThrow(/auth.login.refusalDelay/);
  });
});
