import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseAddr } from '../../src/config.js';
import { dsnWithCaFile } from '../../src/metadata/dsn.js';

describe('registry configuration', () => {
  it('defaults to 127.0.0.1:5000 with PGlite and filesystem storage in ./data', () => {
    const config = loadConfig([], {});
    expect(config).toMatchObject({ host: '127.0.0.1', port: 5000, dataDir: resolve('data'), logLevel: 'info' });
    expect(config.database).toEqual({ embeddedDir: resolve('data/metadata') });
    expect(config.storage).toMatchObject({ driver: 'filesystem', dir: resolve('data/blobs') });
  });

  it('prefetches 8 blobs at once unless proxy.prefetch says otherwise; 0 turns it off; nonsense is refused', () => {
    expect(loadConfig([], {}).proxy.prefetch).toBe(8);
    expect(loadConfig([], { WHARF_PROXY_PREFETCH: '0' }).proxy.prefetch).toBe(0);
    const file = join(tmpdir(), `wharf-config-prefetch-${process.pid}.yaml`);
    writeFileSync(file, 'proxy:\n  prefetch: 9\n');
    expect(loadConfig(['--config', file], {}).proxy.prefetch).toBe(9);
    for (const bad of ['-1', '65', '2.5', 'many', ' ', '0x8', '1e1', '+3']) expect(() => loadConfig([], { WHARF_PROXY_PREFETCH: bad }), bad).toThrow(ConfigError);
    // In the file, a key with no value (null), an empty string or a boolean is a mistake, not "off".
    for (const bad of ['', '""', 'true', '[8]']) {
      writeFileSync(file, `proxy:\n  prefetch: ${bad}\n`);
      expect(() => loadConfig(['--config', file], {}), bad).toThrow(ConfigError);
    }
    expect(() => loadConfig([], { WHARF_PROXY_PREFETCH: 'many' })).toThrow(/proxy\.prefetch \(WHARF_PROXY_PREFETCH\) must be a whole number from 0 \(off\) to 64/);
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

  it('takes a CA file for PostgreSQL (database.caFile, WHARF_DATABASE_CA_FILE) only with a DSN that can use it', () => {
    const ca = join(tmpdir(), `wharf-db-ca-${process.pid}.crt`);
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const yaml = join(tmpdir(), `wharf-config-ca-${process.pid}.yaml`);
    writeFileSync(yaml, `database:\n  url: postgres://u:p@db/wharf?sslmode=verify-full\n  caFile: ${ca}\n`);
    expect(loadConfig(['--config', yaml], {}).database).toMatchObject({ url: 'postgres://u:p@db/wharf?sslmode=verify-full', caFile: ca });
    expect(loadConfig([], { WHARF_DATABASE_URL: 'postgres://u:p@db/wharf', WHARF_DATABASE_CA_FILE: ca }).database.caFile).toBe(ca);
    expect(() => loadConfig([], { WHARF_DATABASE_CA_FILE: ca })).toThrow(/needs database.url/);
    expect(() => loadConfig([], { WHARF_DATABASE_URL: 'postgres://u:secret@db/wharf?sslmode=disable', WHARF_DATABASE_CA_FILE: ca })).toThrow(/sslmode=disable/);
    expect(() => loadConfig([], { WHARF_DATABASE_URL: 'postgres://u:p@db/wharf?sslrootcert=/x.pem', WHARF_DATABASE_CA_FILE: ca })).toThrow(/already names a CA/);
    expect(() => loadConfig([], { WHARF_DATABASE_URL: 'postgres://u:p@db/wharf', WHARF_DATABASE_CA_FILE: '/nonexistent/ca.crt' })).toThrow(ConfigError);
    expect(() => loadConfig([], { WHARF_DATABASE_URL: 'postgres://u:p@db/wharf', WHARF_DATABASE_CA_FILE: yaml })).toThrow(/no PEM certificate/);
    const err = (() => {
      try {
        loadConfig([], { WHARF_DATABASE_URL: 'postgres://u:secret@db/wharf?sslmode=disable', WHARF_DATABASE_CA_FILE: ca });
      } catch (e) {
        return (e as Error).message;
      }
    })();
    expect(err).not.toContain('secret');
  });

  it('adds the CA file to the DSN as sslrootcert, keeping the rest of the DSN as written', () => {
    expect(dsnWithCaFile('postgres://u:p%40ss@db:5432/wharf', '/etc/wharf/database-ca/ca.crt')).toBe('postgres://u:p%40ss@db:5432/wharf?sslrootcert=%2Fetc%2Fwharf%2Fdatabase-ca%2Fca.crt');
    expect(dsnWithCaFile('postgres://u:p@db/wharf?sslmode=verify-full#x', '/ca.pem')).toBe('postgres://u:p@db/wharf?sslmode=verify-full&sslrootcert=%2Fca.pem#x');
    expect(() => dsnWithCaFile('/var/run/postgresql wharf', '/ca.pem')).toThrow(/Unix-socket/);
  });

  it('rejects bad addresses, unknown flags and unreadable files clearly', () => {
    expect(() => parseAddr('localhost')).toThrow(ConfigError);
    expect(() => parseAddr('host:99999')).toThrow(ConfigError);
    expect(parseAddr('[::1]:5000')).toEqual({ host: '::1', port: 5000 });
    expect(() => loadConfig(['--bogus'], {})).toThrow(/bogus/);
    expect(() => loadConfig(['--config', '/nonexistent/wharf.yaml'], {})).toThrow(ConfigError);
  });
});
