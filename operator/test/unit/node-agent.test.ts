// The node agent's core, on temporary directories: the pure hosts.toml render, and the
// writer that touches only files carrying Wharf's marker (foreign files are set aside and
// restored, hosts that leave are cleaned up), including next to Spegel's layout as
// Spegel creates it (spegel pkg/oci/containerd/mirror.go: files moved into _backup/, the
// live ones rewritten from it at each start).
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanHostsDir, hostTablesOf, MARKER, parseNodeAgentConfig, renderHostsToml, syncHostsDir, type WharfEndpoint } from '../../src/node-agent/index.js';

const endpoint: WharfEndpoint = { url: 'http://10.0.0.5:30500' };
const FOREIGN = 'server = "https://registry-1.docker.io"\n\n[host."https://mirror.corp.example"]\n  capabilities = ["pull"]\n';

describe('renderHostsToml', () => {
  it('names the original upstream as server and Wharf as the one pull/resolve host, deterministically', () => {
    const text = renderHostsToml({ host: 'docker.io' }, endpoint);
    expect(text).toBe(`${MARKER}\nserver = "https://registry-1.docker.io"\n\n[host."http://10.0.0.5:30500"]\n  capabilities = ["pull", "resolve"]\n`);
    expect(renderHostsToml({ host: 'docker.io' }, endpoint)).toBe(text);
    expect(renderHostsToml({ host: 'ghcr.io' }, endpoint)).toContain('server = "https://ghcr.io"');
    expect(renderHostsToml({ host: 'registry.example:5000', server: 'http://registry.example:5000' }, endpoint)).toContain('server = "http://registry.example:5000"');
  });

  it('adds the CA files or skip_verify for Wharf, and kept host tables after Wharf (prepend)', () => {
    const tls = renderHostsToml({ host: 'quay.io' }, { url: 'https://wharf.example:30443/', ca: ['/etc/wharf/ca.crt'] });
    expect(tls).toContain('[host."https://wharf.example:30443"]\n  capabilities = ["pull", "resolve"]\n  ca = ["/etc/wharf/ca.crt"]\n');
    expect(renderHostsToml({ host: 'quay.io' }, { url: 'https://wharf.example', skipVerify: true })).toContain('  skip_verify = true\n');
    const kept = renderHostsToml({ host: 'docker.io' }, endpoint, { keep: hostTablesOf(FOREIGN) });
    expect(kept.indexOf('[host."http://10.0.0.5:30500"]')).toBeLessThan(kept.indexOf('[host."https://mirror.corp.example"]'));
    expect(kept.match(/^server = /gm)).toHaveLength(1);
  });

  it('refuses a config with a bad host or endpoint', () => {
    expect(() => parseNodeAgentConfig({ endpoint, hosts: ['../etc'] })).toThrow(/hosts\[0\]/);
    expect(() => parseNodeAgentConfig({ endpoint: { url: 'ftp://x' }, hosts: [] })).toThrow(/endpoint.url/);
    expect(parseNodeAgentConfig({ endpoint, hosts: ['docker.io'] })).toMatchObject({ configPath: '/etc/containerd/certs.d', mode: 'replace', hosts: [{ host: 'docker.io' }] });
  });
});

describe('syncHostsDir on a temporary directory', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wharf-node-agent-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const read = (path: string) => readFile(join(dir, path), 'utf8');

  it('writes only its own files and leaves every other file alone', async () => {
    await mkdir(join(dir, 'quay.io'));
    await writeFile(join(dir, 'quay.io', 'hosts.toml'), 'server = "https://quay.io"\n');
    await writeFile(join(dir, 'quay.io', 'ca.crt'), 'CERT');
    const report = await syncHostsDir({ configPath: dir, hosts: [{ host: 'docker.io' }, { host: 'ghcr.io' }], endpoint, mode: 'replace' });
    expect(report.written.sort()).toEqual(['docker.io/hosts.toml', 'ghcr.io/hosts.toml']);
    expect(await read('docker.io/hosts.toml')).toBe(renderHostsToml({ host: 'docker.io' }, endpoint));
    expect(await read('quay.io/hosts.toml')).toBe('server = "https://quay.io"\n');
    expect(await read('quay.io/ca.crt')).toBe('CERT');
    // A second pass changes nothing.
    expect((await syncHostsDir({ configPath: dir, hosts: [{ host: 'docker.io' }, { host: 'ghcr.io' }], endpoint, mode: 'replace' })).written).toEqual([]);
  });

  it('sets a foreign file for one of its hosts aside and restores it when the host leaves; a removed host is cleaned up', async () => {
    await mkdir(join(dir, 'docker.io'));
    await writeFile(join(dir, 'docker.io', 'hosts.toml'), FOREIGN);
    const first = await syncHostsDir({ configPath: dir, hosts: [{ host: 'docker.io' }, { host: 'ghcr.io' }], endpoint, mode: 'replace' });
    expect(first.backedUp).toEqual(['docker.io/hosts.toml']);
    expect(await read('docker.io/hosts.toml.wharf-original')).toBe(FOREIGN);
    expect((await read('docker.io/hosts.toml')).startsWith(MARKER)).toBe(true);
    // ghcr.io leaves: its directory (Wharf's only) goes; docker.io leaves: the original comes back.
    const second = await syncHostsDir({ configPath: dir, hosts: [{ host: 'docker.io' }], endpoint, mode: 'replace' });
    expect(second.removed).toEqual(['ghcr.io/hosts.toml']);
    expect(await readdir(dir)).toEqual(['docker.io']);
    const third = await syncHostsDir({ configPath: dir, hosts: [], endpoint, mode: 'replace' });
    expect(third.restored).toEqual(['docker.io/hosts.toml']);
    expect(await read('docker.io/hosts.toml')).toBe(FOREIGN);
    expect(await readdir(join(dir, 'docker.io'))).toEqual(['hosts.toml']);
  });

  it('prepends Wharf to a foreign file in mode prepend, and cleanup restores the foreign file byte for byte', async () => {
    await mkdir(join(dir, 'docker.io'));
    await writeFile(join(dir, 'docker.io', 'hosts.toml'), FOREIGN);
    await syncHostsDir({ configPath: dir, hosts: [{ host: 'docker.io' }], endpoint, mode: 'prepend' });
    const written = await read('docker.io/hosts.toml');
    expect(written.indexOf('http://10.0.0.5:30500')).toBeLessThan(written.indexOf('https://mirror.corp.example'));
    const cleaned = await cleanHostsDir(dir);
    expect(cleaned.restored).toEqual(['docker.io/hosts.toml']);
    expect(await read('docker.io/hosts.toml')).toBe(FOREIGN);
  });

  it('never overwrites a foreign file while an earlier original is still set aside', async () => {
    await mkdir(join(dir, 'docker.io'));
    await writeFile(join(dir, 'docker.io', 'hosts.toml'), FOREIGN);
    await writeFile(join(dir, 'docker.io', 'hosts.toml.wharf-original'), 'older');
    await expect(syncHostsDir({ configPath: dir, hosts: [{ host: 'docker.io' }], endpoint, mode: 'replace' })).rejects.toThrow(/resolve by hand/);
    expect(await read('docker.io/hosts.toml')).toBe(FOREIGN);
    expect(await read('docker.io/hosts.toml.wharf-original')).toBe('older');
  });

  describe("next to Spegel's layout", () => {
    // What Spegel's AddMirrorConfiguration does at its start: move everything into
    // _backup/ (first start only), clear the rest, write its mirrors for each registry
    // and, with prependExisting, append the [host] tables of _backup/<host>/hosts.toml.
    async function spegelStart(registries: string[]): Promise<void> {
      const backup = join(dir, '_backup');
      const hasBackup = await readdir(backup).then(() => true, () => false);
      if (!hasBackup) {
        const entries = await readdir(dir);
        await mkdir(backup);
        for (const e of entries) await rename(join(dir, e), join(backup, e));
      }
      for (const e of await readdir(dir)) if (e !== '_backup') await rm(join(dir, e), { recursive: true });
      for (const registry of registries) {
        const server = registry === 'docker.io' ? 'https://registry-1.docker.io' : `https://${registry}`;
        let text = `server = '${server}'\n\n[host.'http://127.0.0.1:30020']\ncapabilities = ['pull', 'resolve']\ndial_timeout = '200ms'`;
        const existing = await readFile(join(backup, registry, 'hosts.toml'), 'utf8').catch(() => undefined);
        const tables = existing === undefined ? '' : hostTablesOf(existing);
        if (tables) text = `${text}\n\n${tables}`;
        await mkdir(join(dir, registry), { recursive: true });
        await writeFile(join(dir, registry, 'hosts.toml'), text);
      }
    }

    async function spegelCleanup(): Promise<void> {
      for (const e of await readdir(dir)) if (e !== '_backup') await rm(join(dir, e), { recursive: true });
      for (const e of await readdir(join(dir, '_backup'))) await rename(join(dir, '_backup', e), join(dir, e));
      await rm(join(dir, '_backup'), { recursive: true });
    }

    it("writes into _backup/ so that Spegel keeps Wharf as the fallback after its peers, and never edits Spegel's live files", async () => {
      await mkdir(join(dir, 'docker.io'));
      await writeFile(join(dir, 'docker.io', 'hosts.toml'), FOREIGN);
      await spegelStart(['docker.io']);
      const spegelLive = await read('docker.io/hosts.toml');

      const report = await syncHostsDir({ configPath: dir, hosts: [{ host: 'docker.io' }, { host: 'quay.io' }], endpoint, mode: 'prepend' });
      expect(report.spegel).toBe(true);
      expect(await read('docker.io/hosts.toml')).toBe(spegelLive);
      expect(await read('_backup/docker.io/hosts.toml.wharf-original')).toBe(FOREIGN);
      expect((await read('_backup/docker.io/hosts.toml')).startsWith(MARKER)).toBe(true);
      // A host Spegel does not mirror is written live too.
      expect((await read('quay.io/hosts.toml')).startsWith(MARKER)).toBe(true);

      // Spegel's next start rebuilds the live file: its peer first, then Wharf, then the original mirror.
      await spegelStart(['docker.io']);
      const rebuilt = await read('docker.io/hosts.toml');
      const order = ['http://127.0.0.1:30020', 'http://10.0.0.5:30500', 'https://mirror.corp.example'].map((h) => rebuilt.indexOf(h));
      expect(order.every((i) => i >= 0)).toBe(true);
      expect([...order].sort((a, b) => a - b)).toEqual(order);

      // Spegel removed, then Wharf removed: the original file is back where it was.
      await spegelCleanup();
      await cleanHostsDir(dir);
      expect(await read('docker.io/hosts.toml')).toBe(FOREIGN);
      expect(await readdir(dir)).toEqual(['docker.io']);
    });
  });
});
