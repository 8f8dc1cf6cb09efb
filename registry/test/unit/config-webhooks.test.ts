import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('webhook configuration', () => {
  it('defaults: 10 s timeout, 6 attempts from 10 s doubling, 500 ms batches, no private targets, warning at 85 %', () => {
    expect(loadConfig(['--addr', '0.0.0.0:5000'], {}).webhooks).toEqual({
      timeoutMs: 10_000,
      maxAttempts: 6,
      retryDelaySeconds: 10,
      batchWindowMs: 500,
      allowPrivateTargets: false,
      quotaWarningPercent: 85,
      registryHost: '0.0.0.0:5000',
    });
  });

  it('reads the YAML file, and the environment over it', () => {
    const file = join(tmpdir(), `wharf-webhooks-${process.pid}.yaml`);
    writeFileSync(file, 'webhooks:\n  timeout: 3s\n  maxAttempts: 2\n  retryDelay: 1m\n  batchWindow: 50ms\n  allowPrivateTargets: true\n  quotaWarningPercent: 90\n  registryHost: registry.example.com\n');
    expect(loadConfig(['--config', file], {}).webhooks).toEqual({
      timeoutMs: 3000,
      maxAttempts: 2,
      retryDelaySeconds: 60,
      batchWindowMs: 50,
      allowPrivateTargets: true,
      quotaWarningPercent: 90,
      registryHost: 'registry.example.com',
    });
    expect(loadConfig(['--config', file], { WHARF_WEBHOOKS_ALLOW_PRIVATE_TARGETS: 'false', WHARF_WEBHOOKS_TIMEOUT: '20s' }).webhooks).toMatchObject({ allowPrivateTargets: false, timeoutMs: 20_000 });
  });

  it('rejects values out of range with the key named', () => {
    expect(() => loadConfig([], { WHARF_WEBHOOKS_MAX_ATTEMPTS: '0' })).toThrow(/webhooks.maxAttempts \(WHARF_WEBHOOKS_MAX_ATTEMPTS\)/);
    expect(() => loadConfig([], { WHARF_WEBHOOKS_QUOTA_WARNING_PERCENT: '101' })).toThrow(ConfigError);
    expect(() => loadConfig([], { WHARF_WEBHOOKS_TIMEOUT: '1h' })).toThrow(/webhooks.timeout/);
    expect(() => loadConfig([], { WHARF_WEBHOOKS_ALLOW_PRIVATE_TARGETS: 'maybe' })).toThrow(ConfigError);
  });
});
