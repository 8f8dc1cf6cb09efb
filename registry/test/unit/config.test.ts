import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseAddr } from '../../src/config.js';

describe('registry configuration', () => {
  it('defaults to 127.0.0.1:5000 with PGlite and filesystem storage in ./data', () => {
    const config = loadConfig([], {});
    expect(config).toMatchObject({ host: '127.0.0.1', port: 5000, dataDir: resolve('data'), logLevel: 'info' });
    expect(config.database).toEqual({ embeddedDir: resolve('data/metadata') });
    expect(config.storage).toMatchObject({ driver: 'filesystem', dir: resolve('data/blobs') });
  });

  it('applies file < environment < flags', () => {
    const file = join(tmpdir(), `wharf-config-${process.pid}.yaml`);
    writeFileSync(file, 'addr: 0.0.0.0:6000\nlogLevel: debug\ndataDir: /srv/from-file\ndatabase:\n  url: postgres://file/db\n');
    const config = loadConfig(['--config', file, '--addr', '127.0.0.1:7000'], { WHARF_LOG_LEVEL: 'warn', WHARF_DATA_DIR: '/srv/from-env' });
    expect(config).toMatchObject({ host: '127.0.0.1', port: 7000, logLevel: 'warn', dataDir: '/srv/from-env' });
    expect(config.database.url).toBe('postgres://file/db');
  });

  it('reads the bootstrap admin password from the environment, a file named in the environment, or the YAML file', () => {
    const secret = join(tmpdir(), `wharf-admin-${process.pid}`);
    writeFileSync(secret, 'from-a-file\n');
    const yaml = join(tmpdir(), `wharf-config-admin-${process.pid}.yaml`);
    writeFileSync(yaml, `auth:\n  adminPasswordFile: ${secret}\n`);
    expect(loadConfig([], { WHARF_ADMIN_PASSWORD: 'from-env' }).auth.adminPassword).toBe('from-env');
    expect(loadConfig([], { WHARF_ADMIN_PASSWORD_FILE: secret }).auth.adminPassword).toBe('from-a-file');
    expect(loadConfig(['--config', yaml], {}).auth.adminPassword).toBe('from-a-file');
    expect(loadConfig([], {}).auth).toMatchObject({ mode: 'token', tokenTtlSeconds: 300, generateKey: true });
    expect(() => loadConfig([], { WHARF_ADMIN_PASSWORD_FILE: '/nonexistent/secret' })).toThrow(ConfigError);
    expect(() => loadConfig(['--auth', 'maybe'], {})).toThrow(ConfigError);
  });

  it('rejects bad addresses, unknown flags and unreadable files clearly', () => {
    expect(() => parseAddr('localhost')).toThrow(ConfigError);
    expect(() => parseAddr('host:99999')).toThrow(ConfigError);
    expect(parseAddr('[::1]:5000')).toEqual({ host: '::1', port: 5000 });
    expect(() => loadConfig(['--bogus'], {})).toThrow(/bogus/);
    expect(() => loadConfig(['--config', '/nonexistent/wharf.yaml'], {})).toThrow(ConfigError);
  });
});
