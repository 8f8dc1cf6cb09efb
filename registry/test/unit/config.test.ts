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

  it('rejects bad addresses, unknown flags and unreadable files clearly', () => {
    expect(() => parseAddr('localhost')).toThrow(ConfigError);
    expect(() => parseAddr('host:99999')).toThrow(ConfigError);
    expect(parseAddr('[::1]:5000')).toEqual({ host: '::1', port: 5000 });
    expect(() => loadConfig(['--bogus'], {})).toThrow(/bogus/);
    expect(() => loadConfig(['--config', '/nonexistent/wharf.yaml'], {})).toThrow(ConfigError);
  });
});
