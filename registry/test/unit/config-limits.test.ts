import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseByteSize } from '../../src/config.js';

const GiB = 1024 ** 3;

describe('upload and HTTP limits configuration', () => {
  it('defaults: 32 GiB uploads, 128 sessions per principal and 512 per repository, 1 KiB/s bodies judged over 30 s, 256 connections per client', () => {
    expect(loadConfig([], {}).limits).toEqual({
      uploads: { maxSize: 32 * GiB, maxSessionsPerPrincipal: 128, maxSessionsPerRepository: 512 },
      http: { headersTimeoutMs: 30_000, bodyMinBytesPerSecond: 1024, bodyRateWindowMs: 30_000, bodyGraceMs: 30_000, maxConnectionsPerClient: 256 },
    });
  });

  it('reads the YAML file, and the environment over it', () => {
    const file = join(tmpdir(), `wharf-limits-${process.pid}.yaml`);
    writeFileSync(
      file,
      'uploads:\n  maxSize: 10Gi\n  maxSessionsPerPrincipal: 8\n  maxSessionsPerRepository: 0\nhttp:\n  headersTimeout: 10s\n  bodyMinRate: 4KiB\n  bodyRateWindow: 1m\n  bodyGrace: 2m\n  maxConnectionsPerClient: 0\n',
    );
    expect(loadConfig(['--config', file], {}).limits).toEqual({
      uploads: { maxSize: 10 * GiB, maxSessionsPerPrincipal: 8, maxSessionsPerRepository: 0 },
      http: { headersTimeoutMs: 10_000, bodyMinBytesPerSecond: 4096, bodyRateWindowMs: 60_000, bodyGraceMs: 120_000, maxConnectionsPerClient: 0 },
    });
    const env = { WHARF_UPLOAD_MAX_SIZE: '5GB', WHARF_HTTP_BODY_MIN_RATE: '0', WHARF_HTTP_MAX_CONNECTIONS_PER_CLIENT: '32' };
    expect(loadConfig(['--config', file], env).limits).toMatchObject({ uploads: { maxSize: 5e9 }, http: { bodyMinBytesPerSecond: 0, maxConnectionsPerClient: 32 } });
  });

  it('rejects bad sizes, counts and durations with the key named', () => {
    expect(() => loadConfig([], { WHARF_UPLOAD_MAX_SIZE: 'lots' })).toThrow(/uploads.maxSize \(WHARF_UPLOAD_MAX_SIZE\)/);
    expect(() => loadConfig([], { WHARF_UPLOAD_MAX_SIZE: '0' })).toThrow(ConfigError);
    expect(() => loadConfig([], { WHARF_UPLOAD_MAX_SESSIONS_PER_PRINCIPAL: '-1' })).toThrow(/uploads.maxSessionsPerPrincipal/);
    expect(() => loadConfig([], { WHARF_HTTP_BODY_RATE_WINDOW: 'soon' })).toThrow(/http.bodyRateWindow/);
    expect(() => loadConfig([], { WHARF_HTTP_HEADERS_TIMEOUT: '10ms' })).toThrow(/at least 100 ms/);
    expect(parseByteSize('x', '1.5KiB')).toBe(1536);
    expect(parseByteSize('x', 7)).toBe(7);
    expect(() => parseByteSize('x', '10 parsecs')).toThrow(ConfigError);
  });
});
