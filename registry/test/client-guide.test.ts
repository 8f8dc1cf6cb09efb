// The client guide (docs/clients.md), run as written (issue 16, 13b). Each `sh` block the
// guide marks with `<!-- recipe: NAME -->` runs here under `bash -euo pipefail`, against a
// registry with token auth on, with the pinned clients first on PATH. Isolation comes from
// the clients' own environment variables (HOME, XDG_*, CONTAINERS_STORAGE_CONF,
// CONTAINERD_ADDRESS, ...), never from editing a recipe; the two edits made to a recipe's
// text are named where they happen (SETUP_OUTPUT, CERTS_D).
// After each recipe the registry's content is read back with an admin token.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AdminClient, type Account } from './support/clients/admin.js';
import { startContainerd, type Containerd } from './support/clients/containerd.js';
import { imageBlobs, readOciLayout, writeOciLayout } from './support/clients/oci-layout.js';
import { expectImageInLayout, failure } from './support/clients/expect.js';
import { run, type RunResult } from './support/clients/run.js';
import { buildImage, sha256, type Image } from './support/oci.js';
import { removeDir, startRegistry, TEST_ADMIN_PASSWORD, tempDir, tokenAuth, type RunningRegistry } from './support/registry.js';

const GUIDE = new URL('../../docs/clients.md', import.meta.url);

/** Every recipe the guide holds, in the order this file runs them. */
const RECIPES = ['setup', 'skopeo', 'crane', 'regctl', 'oras', 'helm', 'cosign', 'podman', 'ctr', 'containerd-mirror'];

/** `<!-- recipe: NAME -->` followed by a fenced `sh` block: NAME → the block's text. */
function parseRecipes(markdown: string): Map<string, string> {
  const recipes = new Map<string, string>();
  for (const match of markdown.matchAll(/^<!-- recipe: ([\w-]+) -->\n```sh\n([\s\S]*?)^```$/gm)) {
    if (recipes.has(match[1]!)) throw new Error(`docs/clients.md: recipe ${match[1]} appears twice`);
    recipes.set(match[1]!, match[2]!);
  }
  return recipes;
}

const recipes = parseRecipes(readFileSync(GUIDE, 'utf8'));

function recipe(name: string): string {
  const text = recipes.get(name);
  if (text === undefined) throw new Error(`docs/clients.md has no recipe ${name}`);
  return text;
}

/** The one line of a recipe that starts with `prefix` (to run a login alone). */
function recipeLine(name: string, prefix: string): string {
  const lines = recipe(name)
    .split('\n')
    .filter((line) => line.startsWith(prefix));
  expect(lines, `recipe ${name}: lines starting with ${prefix}`).toHaveLength(1);
  return lines[0]!;
}

let registry: RunningRegistry;
let admin: AdminClient;
let work: string;
let toolsBin: string;
/** The robot the setup recipe created, as the recipes sign in with it. */
let robot: Account;
/** `demo/app:v1`, pushed by the admin: what the pull recipes pull and cosign signs. */
let appImage: Image;

/** A recipe's own working directory and client configuration, with a fresh image in `./app` (tag `v1`). */
interface Workspace {
  dir: string;
  env: Record<string, string>;
  image: Image;
}

async function workspace(name: string, extraEnv: Record<string, string> = {}): Promise<Workspace> {
  const dir = join(work, name);
  const home = join(dir, '.home');
  await mkdir(join(home, '.config'), { recursive: true });
  await mkdir(join(dir, '.xdg-runtime'), { recursive: true });
  const image = await buildImage({ layers: 2, payloadSize: 64 * 1024 });
  await writeOciLayout(join(dir, 'app'), [{ tag: 'v1', manifest: image.manifest, mediaType: image.mediaType }], imageBlobs(image));
  const env = {
    PATH: `${toolsBin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_RUNTIME_DIR: join(dir, '.xdg-runtime'),
    CONTAINERS_REGISTRIES_CONF: join(work, 'registries.conf'),
    NO_COLOR: '1',
    // Nothing a recipe runs may leave this machine: any request to a host other than the
    // registry (loopback, which Go clients never proxy) fails at once on a closed port.
    HTTP_PROXY: 'http://127.0.0.1:9',
    HTTPS_PROXY: 'http://127.0.0.1:9',
    NO_PROXY: '127.0.0.1,localhost',
    WHARF: registry.host,
    WHARF_ADMIN_PASSWORD: TEST_ADMIN_PASSWORD,
    ...(robot && { WHARF_USER: robot.username, WHARF_PASSWORD: robot.password }),
    ...extraEnv,
  };
  return { dir, env, image };
}

/** Where skopeo and podman keep logins: `${XDG_RUNTIME_DIR}/containers/auth.json`. */
const containersAuth = (ws: Workspace) => join(ws.env.XDG_RUNTIME_DIR!, 'containers', 'auth.json');

function runScript(script: string, ws: Workspace, env: Record<string, string> = {}): Promise<RunResult> {
  return run('bash', ['-euo', 'pipefail', '-c', script], { cwd: ws.dir, env: { ...ws.env, ...env }, timeoutMs: 240_000 });
}

beforeAll(async () => {
  toolsBin = inject('toolsBin');
  registry = await startRegistry({ auth: tokenAuth() });
  admin = new AdminClient(registry.url);
  work = await tempDir('wharf-client-guide-');
  await writeFile(join(work, 'registries.conf'), '');

  // Edit 1 (SETUP_OUTPUT): the setup recipe exports the robot's name and secret; a child
  // shell cannot hand variables back, so the test prints them after the recipe has run.
  const ws = await workspace('setup');
  const out = await runScript(`${recipe('setup')}\nprintf '%s\\n' "$WHARF_USER" "$WHARF_PASSWORD"`, ws);
  const [username, password] = out.stdout.trimEnd().split('\n').slice(-2);
  expect(username).toBe('robot$demo+ci');
  expect(password).toMatch(/^\S{16,}$/);
  robot = { username: username!, password: password! };
  expect((await admin.manage<{ public: boolean }>('GET', '/projects/demo')).body.public).toBe(false);
  expect((await admin.manage<{ public: boolean }>('GET', '/projects/dockerhub')).body.public).toBe(true);

  appImage = await buildImage({ layers: 2, payloadSize: 64 * 1024 });
  await admin.pushImage('demo/app', 'v1', appImage);
});

afterAll(async () => {
  await registry?.stop();
  if (work) await removeDir(work);
});

describe('docs/clients.md', () => {
  it('holds exactly the recipes this file runs', () => {
    expect([...recipes.keys()]).toEqual(RECIPES);
  });

  it('the setup recipe made a robot that may push to demo and nothing else', async () => {
    const res = await fetch(`${registry.url}/token?service=wharf-test&scope=repository:demo/x:pull,push&scope=repository:dockerhub/x:push`, {
      headers: { Authorization: `Basic ${Buffer.from(`${robot.username}:${robot.password}`).toString('base64')}` },
    });
    expect(res.status).toBe(200);
    const { token } = (await res.json()) as { token: string };
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { access: { name: string; actions: string[] }[] };
    expect(claims.access.filter((a) => a.actions.length > 0)).toEqual([{ type: 'repository', name: 'demo/x', actions: ['pull', 'push'] }]);
  });
});

describe('the recipes, run as written', () => {
  it('skopeo', async () => {
    const ws = await workspace('skopeo');
    const out = await runScript(recipe('skopeo'), ws);
    await admin.expectImage('demo/skopeo', 'v1', ws.image);
    expect(out.stdout).toContain(`"Digest": "${ws.image.manifest.digest}"`);
    await expectImageInLayout(await readOciLayout(join(ws.dir, 'skopeo-pulled')), 'v1', ws.image);
    expect(await readFile(containersAuth(ws), 'utf8')).toContain(registry.host);
  });

  it('crane', async () => {
    const ws = await workspace('crane');
    const out = await runScript(recipe('crane'), ws);
    await admin.expectImage('demo/crane', 'v1', ws.image);
    expect(out.stdout.split('\n')).toContain('v1');
    await expectImageInLayout(await readOciLayout(join(ws.dir, 'crane-pulled')), undefined, ws.image);
  });

  it('regctl', async () => {
    const ws = await workspace('regctl', { REGCTL_CONFIG: join(work, 'regctl', '.home', 'regctl.json') });
    const out = await runScript(recipe('regctl'), ws);
    await admin.expectImage('demo/regctl', 'v1', ws.image);
    expect(out.stdout.split('\n')).toContain('v1');
    await expectImageInLayout(await readOciLayout(join(ws.dir, 'regctl-pulled')), 'v1', ws.image);
  });

  it('oras', async () => {
    const ws = await workspace('oras');
    const out = await runScript(recipe('oras'), ws);
    const pushed = await admin.manifest<{ artifactType?: string; layers: { digest: string; mediaType: string }[] }>('demo/oras', 'v1');
    expect(pushed.body.artifactType).toBe('application/vnd.example.notes');
    expect(pushed.body.layers).toMatchObject([{ mediaType: 'text/plain', digest: sha256('release notes\n') }]);
    const referrers = await admin.referrers('demo/oras', pushed.digest);
    expect(referrers).toMatchObject([{ artifactType: 'application/vnd.example.review' }]);
    expect(out.stdout).toContain(referrers[0]!.digest);
    expect(await readFile(join(ws.dir, 'oras-pulled', 'notes.txt'), 'utf8')).toBe('release notes\n');
  });

  it('helm', async () => {
    const ws = await workspace('helm');
    const out = await runScript(recipe('helm'), ws);
    const packaged = await readFile(join(ws.dir, 'mychart-0.1.0.tgz'));
    expect(await admin.tags('demo/charts/mychart')).toEqual(['0.1.0']);
    const chart = await admin.manifest<{ config: { mediaType: string }; layers: { mediaType: string; digest: string }[] }>('demo/charts/mychart', '0.1.0');
    expect(chart.body.config.mediaType).toBe('application/vnd.cncf.helm.config.v1+json');
    expect(chart.body.layers).toEqual([expect.objectContaining({ mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', digest: sha256(packaged) })]);
    expect((await readFile(join(ws.dir, 'helm-pulled', 'mychart-0.1.0.tgz'))).equals(packaged)).toBe(true);
    expect(out.stdout).toMatch(/^kind: Deployment$/m);
    expect(out.stdout).toMatch(/^ {2}name: demo-mychart$/m);
  });

  it('helm: a wrong password fails the login and stores no credentials', async () => {
    const ws = await workspace('helm-wrong');
    const err = await failure(runScript(recipeLine('helm', 'helm registry login'), ws, { WHARF_PASSWORD: 'not-the-secret' }));
    expect(err.stderr).toMatch(/\/token\S* response status code 401: unauthorized/);
    const stored = await readFile(join(ws.env.XDG_CONFIG_HOME!, 'helm', 'registry', 'config.json'), 'utf8').catch((err: NodeJS.ErrnoException) =>
      err.code === 'ENOENT' ? '' : Promise.reject(err),
    );
    expect(stored).not.toContain(registry.host);
  });

  it('cosign', async () => {
    const ws = await workspace('cosign');
    const out = await runScript(recipe('cosign'), ws);
    // Offline: no attempt to fetch Sigstore's trusted root (cosign warns when one fails).
    expect(out.stderr).not.toMatch(/TUF|trusted_root\.json/);
    const verified = JSON.parse(out.stdout.slice(out.stdout.indexOf('['))) as { critical: { image: { 'docker-manifest-digest': string } } }[];
    expect(verified.map((s) => s.critical.image['docker-manifest-digest'])).toContain(appImage.manifest.digest);
    const signatures = await admin.referrers('demo/app', appImage.manifest.digest);
    expect(signatures.map((r) => r.artifactType)).toContain('application/vnd.dev.sigstore.bundle.v0.3+json');

    // The verification is real: another key does not verify the same image.
    const other = await runScript('COSIGN_PASSWORD=other cosign generate-key-pair --output-key-prefix other', ws);
    expect(other.stderr + other.stdout).toContain('other.pub');
    const verify = recipeLine('cosign', 'cosign verify').replace('--key cosign.pub', '--key other.pub');
    const refused = await failure(runScript(`DIGEST=${appImage.manifest.digest}\n${verify}`, ws));
    expect(refused.stderr).toMatch(/failed to verify signature/);
  });

  it('podman', async () => {
    const ws = await workspace('podman');
    const storage = join(ws.dir, '.storage');
    await writeFile(
      join(ws.dir, 'storage.conf'),
      ['[storage]', 'driver = "vfs"', `graphroot = ${JSON.stringify(join(storage, 'root'))}`, `runroot = ${JSON.stringify(join(storage, 'run'))}`, ''].join('\n'),
    );
    await runScript(recipe('podman'), ws, { CONTAINERS_STORAGE_CONF: join(ws.dir, 'storage.conf') });
    expect(await readFile(containersAuth(ws), 'utf8')).toContain(registry.host);
    expect(await admin.digest('demo/podman', 'v1')).toBe(appImage.manifest.digest);
    await admin.expectImage('demo/podman', 'v1', appImage);
  });

  it('podman: a wrong password fails the login and stores no credentials', async () => {
    const ws = await workspace('podman-wrong');
    const err = await failure(runScript(recipeLine('podman', 'podman login'), ws, { WHARF_PASSWORD: 'not-the-secret' }));
    expect(err.stderr).toMatch(/invalid username\/password/);
    const stored = await readFile(containersAuth(ws), 'utf8').catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? '' : Promise.reject(e)));
    expect(stored).not.toContain(registry.host);
  });

  describe('containerd', () => {
    let containerd: Containerd;
    /** Where `ctr` reaches the private containerd: its own socket, namespace and snapshotter. */
    let ctrEnv: Record<string, string>;

    beforeAll(async () => {
      containerd = await startContainerd();
      ctrEnv = { CONTAINERD_ADDRESS: containerd.socket, CONTAINERD_NAMESPACE: containerd.namespace, CONTAINERD_SNAPSHOTTER: containerd.snapshotter };
    });

    afterAll(async () => {
      await containerd?.stop();
    });

    /** `ctr images ls` as ref → digest. */
    async function listImages(): Promise<Map<string, string>> {
      const lines = (await containerd.ctr(['images', 'ls'])).stdout.trim().split('\n').slice(1);
      return new Map(
        lines
          .filter((l) => l.trim())
          .map((line) => {
            const [ref, , digest] = line.trim().split(/\s+/);
            return [ref!, digest!];
          }),
      );
    }

    const withLog = async <T>(work: Promise<T>): Promise<T> => {
      try {
        return await work;
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- containerd log ---\n${containerd.log().slice(-8192)}`, { cause: err });
      }
    };

    it('ctr', async () => {
      const ws = await workspace('ctr', ctrEnv);
      await withLog(runScript(recipe('ctr'), ws));
      const images = await listImages();
      expect(images.get(`${registry.host}/demo/app:v1`)).toBe(appImage.manifest.digest);
      expect(images.get(`${registry.host}/demo/ctr:v1`)).toBe(appImage.manifest.digest);
      await admin.expectImage('demo/ctr', 'v1', appImage);
    });

    it('containerd-mirror: docker.io pulls come from the project dockerhub', async () => {
      // Only Wharf holds this image (random content, and this machine cannot reach Docker
      // Hub), so the digest below proves the pull went through the mirror.
      const mirrored = await buildImage({ layers: 1, payloadSize: 32 * 1024 });
      await admin.pushImage('dockerhub/library/alpine', '3.20', mirrored);
      const ws = await workspace('containerd-mirror', ctrEnv);
      // Edit 2 (CERTS_D): the hosts directory lives in the test's temp dir, not in /etc.
      const certsD = join(ws.dir, 'certs.d');
      const script = recipe('containerd-mirror').replaceAll('/etc/containerd/certs.d', certsD);
      expect(script).not.toBe(recipe('containerd-mirror'));
      await withLog(runScript(script, ws));
      expect(await readFile(join(certsD, 'docker.io', 'hosts.toml'), 'utf8')).toContain(`[host."http://${registry.host}/v2/dockerhub"]`);
      expect((await listImages()).get('docker.io/library/alpine:3.20')).toBe(mirrored.manifest.digest);
      for (const blob of imageBlobs(mirrored)) expect((await containerd.ctr(['content', 'get', blob.digest])).stdoutBytes.equals(blob.data), blob.digest).toBe(true);
    });
  });
});
