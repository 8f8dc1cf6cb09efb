// The node agent's core, on temporary directories: the pure hosts.toml render, and the
// writer that touches only files carrying Wharf's marker (foreign files are set aside and
// restored, hosts that leave are cleaned up), including next to Spegel's layout as
// Spegel creates it (spegel pkg/oci/containerd/mirror.go: files moved into _backup/, the
// live ones rewritten from it at each start).
import { lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanHostsDir, hostTablesOf, isMirrorHost, MARKER, MIRROR_HOST_PATTERN, parseNodeAgentConfig, renderHostsToml, syncHostsDir, type WharfEndpoint } from '../../src/node-agent/index.js';
import { isMirrorHost as registryIsMirrorHost } from '../../../registry/src/proxy/names.js';

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

  it('refuses a config with a bad endpoint or owner, and leaves out (only) the hosts that are not host names', () => {
    expect(() => parseNodeAgentConfig({ endpoint: { url: 'ftp://x' }, hosts: [] })).toThrow(/endpoint.url/);
    expect(() => parseNodeAgentConfig({ endpoint, hosts: [], owner: '../x' })).toThrow(/owner/);
    const config = parseNodeAgentConfig({ endpoint, hosts: ['../etc', 'docker..io', 'docker.io', '_backup', 'Quay.io', { host: 'ghcr.io' }], owner: 'ns/reg' });
    expect(config).toMatchObject({ configPath: '/etc/containerd/certs.d', mode: 'replace', hosts: [{ host: 'docker.io' }, { host: 'ghcr.io' }], owner: 'ns/reg' });
    expect(config.invalidHosts).toEqual(['"../etc"', '"docker..io"', '"_backup"', '"Quay.io"']);
  });

  it('checks hosts with one pattern, the one the CRDs carry, which agrees with the registry on mirror hosts', () => {
    const hosts = ['docker.io', 'registry.example:5000', 'localhost', 'a-b.c', 'docker..io', '.docker.io', 'docker.io.', '-a.io', 'a-.io', 'a/b', '..', '_backup', 'DOCKER.IO', `${'a'.repeat(64)}.io`, 'x:123456', 'x:99999', 'x:65536', 'x:0', 'x:01', 'x:65535', 'x:1'];
    for (const host of hosts) {
      expect(isMirrorHost(host), host).toBe(new RegExp(MIRROR_HOST_PATTERN).test(host));
      expect(isMirrorHost(host), host).toBe(registryIsMirrorHost(host) && host === host.toLowerCase());
    }
    expect(hosts.filter(isMirrorHost)).toEqual(['docker.io', 'registry.example:5000', 'localhost', 'a-b.c', 'x:65535', 'x:1']);
  });

  it("leaves out a foreign file's table for Wharf's own endpoint when prepending, so containerd never sees it twice", () => {
    const foreign = `server = "https://registry-1.docker.io"\n\n[host.'http://10.0.0.5:30500/']\n  capabilities = ["pull"]\n[host."http://10.0.0.5:30500".header]\n  x = ["1"]\n\n[host."https://mirror.corp.example"]\n  capabilities = ["pull"]\n`;
    const kept = hostTablesOf(foreign, endpoint.url);
    expect(kept).toBe('[host."https://mirror.corp.example"]\n  capabilities = ["pull"]');
    const text = renderHostsToml({ host: 'docker.io' }, endpoint, { keep: kept });
    expect(text.match(/10\.0\.0\.5:30500/g)).toHaveLength(1);
    expect(hostTablesOf(FOREIGN, endpoint.url)).toBe(hostTablesOf(FOREIGN));
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

  it('never overwrites a foreign file while an earlier original is still set aside, and still configures the other hosts', async () => {
    await mkdir(join(dir, 'docker.io'));
    await writeFile(join(dir, 'docker.io', 'hosts.toml'), FOREIGN);
    await writeFile(join(dir, 'docker.io', 'hosts.toml.wharf-original'), 'older');
    const report = await syncHostsDir({ configPath: dir, hosts: [{ host: 'docker.io' }, { host: 'quay.io' }], endpoint, mode: 'replace' });
    expect(report.failed).toEqual([{ path: 'docker.io', error: expect.stringMatching(/resolve by hand/) }]);
    expect(report.written).toEqual(['quay.io/hosts.toml']);
    expect(await read('docker.io/hosts.toml')).toBe(FOREIGN);
    expect(await read('docker.io/hosts.toml.wharf-original')).toBe('older');
  });

  it('a host directory it cannot use (a file, a directory named hosts.toml, a symbolic link out of config_path) fails alone, the rest of the pass goes on', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'wharf-node-agent-outside-'));
    try {
      await writeFile(join(dir, 'docker.io'), 'a file');
      await mkdir(join(dir, 'ghcr.io', 'hosts.toml'), { recursive: true });
      await writeFile(join(outside, 'hosts.toml'), 'outside');
      await symlink(outside, join(dir, 'quay.io'));
      // A host that left, still configured: it must be removed in the same pass.
      await mkdir(join(dir, 'old.example'));
      await writeFile(join(dir, 'old.example', 'hosts.toml'), renderHostsToml({ host: 'old.example' }, endpoint));
      const report = await syncHostsDir({ configPath: dir, hosts: ['docker.io', 'ghcr.io', 'quay.io', 'registry.k8s.io'].map((host) => ({ host })), endpoint, mode: 'replace' });
      expect(report.failed.map((f) => f.path).sort()).toEqual(['docker.io', 'ghcr.io', 'quay.io']);
      expect(report.written).toEqual(['registry.k8s.io/hosts.toml']);
      expect(report.removed).toEqual(['old.example/hosts.toml']);
      expect(await readdir(outside)).toEqual(['hosts.toml']);
      expect(await readFile(join(outside, 'hosts.toml'), 'utf8')).toBe('outside');
      expect((await cleanHostsDir(dir)).failed).toEqual([]);
      expect(await readFile(join(outside, 'hosts.toml'), 'utf8')).toBe('outside');
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('never writes through a symbolic link left at its temporary file name', async () => {
    const outside = await mkdtemp(join(tmpdir(), 'wharf-node-agent-outside-'));
    try {
      await writeFile(join(outside, 'target'), 'precious');
      await mkdir(join(dir, 'docker.io'));
      await symlink(join(outside, 'target'), join(dir, 'docker.io', 'hosts.toml.wharf-tmp'));
      const report = await syncHostsDir({ configPath: dir, hosts: [{ host: 'docker.io' }], endpoint, mode: 'replace' });
      expect(report.written).toEqual(['docker.io/hosts.toml']);
      expect(await readFile(join(outside, 'target'), 'utf8')).toBe('precious');
      expect((await lstat(join(dir, 'docker.io', 'hosts.toml'))).isFile()).toBe(true);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('restores an original that a pass killed between its two renames left without a hosts.toml, and removes the temporary file left over', async () => {
    // Killed after setting the foreign file aside, before Wharf's was renamed into place.
    await mkdir(join(dir, 'docker.io'));
    await writeFile(join(dir, 'docker.io', 'hosts.toml.wharf-original'), FOREIGN);
    await writeFile(join(dir, 'docker.io', 'hosts.toml.wharf-tmp'), renderHostsToml({ host: 'docker.io' }, endpoint).slice(0, 40));
    const cleaned = await cleanHostsDir(dir);
    expect(cleaned.restored).toEqual(['docker.io/hosts.toml']);
    expect(await readdir(join(dir, 'docker.io'))).toEqual(['hosts.toml']);
    expect(await read('docker.io/hosts.toml')).toBe(FOREIGN);
    // The same state, found by a pass that still mirrors the host: Wharf's file goes in, the original stays aside.
    await rename(join(dir, 'docker.io', 'hosts.toml'), join(dir, 'docker.io', 'hosts.toml.wharf-original'));
    const report = await syncHostsDir({ configPath: dir, hosts: [{ host: 'docker.io' }], endpoint, mode: 'replace' });
    expect(report.written).toEqual(['docker.io/hosts.toml']);
    expect(await read('docker.io/hosts.toml.wharf-original')).toBe(FOREIGN);
  });

  describe('two Registries on one node', () => {
    const a = { endpoint, mode: 'replace' as const, owner: 'staging/wharf' };
    const b = { endpoint: { url: 'http://10.0.0.6:30500' }, mode: 'replace' as const, owner: 'prod/wharf' };

    it("each keeps its own files and leaves the other's alone: the first to write a host keeps it, the other reports the conflict", async () => {
      const first = await syncHostsDir({ configPath: dir, hosts: [{ host: 'docker.io' }], ...a });
      expect(first.written).toEqual(['docker.io/hosts.toml']);
      const second = await syncHostsDir({ configPath: dir, hosts: [{ host: 'docker.io' }, { host: 'ghcr.io' }], ...b });
      expect(second).toMatchObject({ written: ['ghcr.io/hosts.toml'], conflicts: ['docker.io/hosts.toml'], removed: [], failed: [] });
      for (let pass = 0; pass < 2; pass++) {
        expect(await syncHostsDir({ configPath: dir, hosts: [{ host: 'docker.io' }], ...a })).toMatchObject({ written: [], removed: [] });
        expect(await syncHostsDir({ configPath: dir, hosts: [{ host: 'docker.io' }, { host: 'ghcr.io' }], ...b })).toMatchObject({ written: [], removed: [], conflicts: ['docker.io/hosts.toml'] });
      }
      expect(await read('docker.io/hosts.toml')).toBe(renderHostsToml({ host: 'docker.io' }, endpoint, { owner: 'staging/wharf' }));
      expect(await read('ghcr.io/hosts.toml')).toContain('# Owner: prod/wharf');
      // Removing one Registry removes its files only.
      const cleaned = await cleanHostsDir(dir, 'staging/wharf');
      expect(cleaned.removed).toEqual(['docker.io/hosts.toml']);
      expect(await readdir(dir)).toEqual(['ghcr.io']);
    });

    it('adopts a file written before files named their owner', async () => {
      await mkdir(join(dir, 'docker.io'));
      await writeFile(join(dir, 'docker.io', 'hosts.toml'), renderHostsToml({ host: 'docker.io' }, endpoint));
      const report = await syncHostsDir({ configPath: dir, hosts: [{ host: 'docker.io' }], ...b });
      expect(report).toMatchObject({ written: ['docker.io/hosts.toml'], conflicts: [], backedUp: [] });
      expect(await read('docker.io/hosts.toml')).toContain('# Owner: prod/wharf');
    });
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

    it('keeps the live file it wrote for a host Spegel does not mirror up to date when the endpoint changes', async () => {
      await spegelStart(['docker.io']);
      await syncHostsDir({ configPath: dir, hosts: [{ host: 'ghcr.io' }], endpoint, mode: 'replace' });
      const moved = { url: 'http://10.0.0.9:30500' };
      const report = await syncHostsDir({ configPath: dir, hosts: [{ host: 'ghcr.io' }], endpoint: moved, mode: 'replace' });
      expect(report.written.sort()).toEqual(['_backup/ghcr.io/hosts.toml', 'ghcr.io/hosts.toml']);
      expect(await read('ghcr.io/hosts.toml')).toBe(renderHostsToml({ host: 'ghcr.io' }, moved));
      expect(await read('docker.io/hosts.toml')).not.toContain(MARKER);
    });
  });
});
