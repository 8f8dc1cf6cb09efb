// Real clients, unmodified, against the running registry (issue 2): skopeo,
// crane, regctl, oras and containerd push and pull through the HTTP API, and
// every check compares digests and bytes with the fixtures they started from.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startContainerd, type Containerd } from './support/clients/containerd.js';
import { imageBlobs, readOciArchive, readOciLayout, writeOciLayout, type OciLayout } from './support/clients/oci-layout.js';
import { run, type RunResult } from './support/clients/run.js';
import { buildImage, indexOf, OCI_INDEX, OCI_MANIFEST, RegistryClient, sha256, type Blob, type Image } from './support/oci.js';
import { removeDir, startRegistry, tempDir, type RunningRegistry } from './support/registry.js';

const ACCEPT_ALL = [
  OCI_MANIFEST,
  OCI_INDEX,
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

let registry: RunningRegistry;
let http: RegistryClient;
let work: string;
/** HOME, DOCKER_CONFIG, REGCTL_CONFIG, ... all inside `work`: no client reads or writes the machine's config. */
let clientEnv: Record<string, string>;
let toolsBin: string;

/** A three-layer linux/amd64 image (one layer over 1 MiB) and a two-platform index. */
let image: Image;
let amd64: Image;
let arm64: Image;
let index: Blob;
/** OCI layouts holding them: `image` tagged `v1`, `index` tagged `multi`. */
let imageLayout: string;
let indexLayout: string;

const tool = (name: string) => join(toolsBin, name);

function client(cmd: string, args: string[], cwd?: string): Promise<RunResult> {
  return run(cmd, args, { env: clientEnv, ...(cwd && { cwd }), timeoutMs: 60_000 });
}

async function freshDir(name: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

// ---- what the registry holds, read over plain HTTP ----

async function manifestFromRegistry(repo: string, reference: string): Promise<{ bytes: Buffer; digest: string; contentType: string }> {
  const res = await http.fetch(`/v2/${repo}/manifests/${reference}`, { headers: { Accept: ACCEPT_ALL } });
  const bytes = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) throw new Error(`GET /v2/${repo}/manifests/${reference}: ${res.status} ${bytes.toString()}`);
  return { bytes, digest: res.headers.get('docker-content-digest') ?? '', contentType: res.headers.get('content-type') ?? '' };
}

async function tagsFromRegistry(repo: string): Promise<string[]> {
  const res = await http.fetch(`/v2/${repo}/tags/list`);
  const body = (await res.json()) as { name: string; tags: string[] };
  if (res.status !== 200) throw new Error(`GET /v2/${repo}/tags/list: ${res.status} ${JSON.stringify(body)}`);
  expect(body.name).toBe(repo);
  expect(Array.isArray(body.tags), JSON.stringify(body)).toBe(true);
  return body.tags;
}

/** The registry serves `img` under `repo:reference` byte-exact: manifest, config and every layer. */
async function expectImageInRegistry(repo: string, reference: string, img: Image): Promise<void> {
  const m = await manifestFromRegistry(repo, reference);
  expect(m.digest).toBe(img.manifest.digest);
  expect(m.contentType).toBe(img.mediaType);
  expect(m.bytes.equals(img.manifest.data)).toBe(true);
  for (const blob of [img.config, ...img.layers]) {
    const data = await http.getBlob(repo, blob.digest);
    expect(sha256(data), `${repo} blob ${blob.digest}`).toBe(blob.digest);
    expect(data.equals(blob.data)).toBe(true);
  }
}

/** The registry serves the two-platform index under `repo:reference`, and both images by digest. */
async function expectIndexInRegistry(repo: string, reference: string): Promise<void> {
  const m = await manifestFromRegistry(repo, reference);
  expect(m.digest).toBe(index.digest);
  expect(m.contentType).toBe(OCI_INDEX);
  expect(m.bytes.equals(index.data)).toBe(true);
  await expectImageInRegistry(repo, amd64.manifest.digest, amd64);
  await expectImageInRegistry(repo, arm64.manifest.digest, arm64);
}

// ---- what a client wrote to an OCI layout ----

async function expectImageInLayout(layout: OciLayout, img: Image): Promise<void> {
  for (const blob of imageBlobs(img)) {
    const data = await layout.blob(blob.digest);
    expect(data.equals(blob.data), `${layout.dir}: blob ${blob.digest} differs`).toBe(true);
  }
}

async function expectIndexInLayout(layout: OciLayout): Promise<void> {
  expect((await layout.blob(index.digest)).equals(index.data)).toBe(true);
  await expectImageInLayout(layout, amd64);
  await expectImageInLayout(layout, arm64);
}

/** The single descriptor in a layout's index.json that points at `digest`. */
function layoutEntry(layout: OciLayout, digest: string) {
  const found = layout.index.manifests.filter((d) => d.digest === digest);
  expect(found, `${layout.dir}/index.json: ${JSON.stringify(layout.index)}`).toHaveLength(1);
  return found[0]!;
}

beforeAll(async () => {
  toolsBin = inject('toolsBin');
  registry = await startRegistry();
  http = new RegistryClient(registry.url);
  work = await tempDir('wharf-clients-');

  const home = await freshDir('home');
  const xdgRuntime = await freshDir('xdg-runtime');
  await writeFile(join(work, 'registries.conf'), '');
  await writeFile(join(work, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  clientEnv = {
    HOME: home,
    DOCKER_CONFIG: join(home, '.docker'),
    REGCTL_CONFIG: join(home, 'regctl.json'),
    XDG_RUNTIME_DIR: xdgRuntime,
    XDG_CONFIG_HOME: join(home, '.config'),
    CONTAINERS_REGISTRIES_CONF: join(work, 'registries.conf'),
    NO_COLOR: '1',
  };

  image = await buildImage({ layers: 3, payloadSize: 1536 * 1024 });
  amd64 = await buildImage({ layers: 2, architecture: 'amd64' });
  arm64 = await buildImage({ layers: 2, architecture: 'arm64' });
  index = indexOf([
    { image: amd64, architecture: 'amd64' },
    { image: arm64, architecture: 'arm64' },
  ]);
  imageLayout = await freshDir('src-image');
  await writeOciLayout(imageLayout, [{ tag: 'v1', manifest: image.manifest, mediaType: image.mediaType }], imageBlobs(image));
  indexLayout = await freshDir('src-index');
  await writeOciLayout(indexLayout, [{ tag: 'multi', manifest: index, mediaType: OCI_INDEX }], [...imageBlobs(amd64), ...imageBlobs(arm64)]);
});

afterAll(async () => {
  await registry?.stop();
  if (work) await removeDir(work);
});

describe('skopeo', () => {
  const skopeo = (...args: string[]) => client('skopeo', ['--policy', join(work, 'policy.json'), '--tmpdir', work, ...args]);

  it('copies a multi-layer OCI image into the registry and back out with digests unchanged', async () => {
    const ref = `docker://${registry.host}/skopeo/image:v1`;
    await skopeo('copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${imageLayout}:v1`, ref);
    await expectImageInRegistry('skopeo/image', 'v1', image);

    const raw = await skopeo('inspect', '--raw', '--tls-verify=false', ref);
    expect(raw.stdoutBytes.equals(image.manifest.data)).toBe(true);
    const inspected = JSON.parse((await skopeo('inspect', '--tls-verify=false', ref)).stdout) as { Digest: string; Layers: string[]; Architecture: string };
    expect(inspected.Digest).toBe(image.manifest.digest);
    expect(inspected.Layers).toEqual(image.layers.map((l) => l.digest));
    expect(inspected.Architecture).toBe('amd64');

    const out = await freshDir('skopeo-image-out');
    await skopeo('copy', '--preserve-digests', '--src-tls-verify=false', ref, `oci:${out}:v1`);
    const layout = await readOciLayout(out);
    expect(layout.ref('v1')).toMatchObject({ digest: image.manifest.digest, size: image.manifest.size, mediaType: OCI_MANIFEST });
    await expectImageInLayout(layout, image);
  });

  it('copies a multi-arch index in and out with --all, index and image digests unchanged', async () => {
    const ref = `docker://${registry.host}/skopeo/multi:v1`;
    await skopeo('copy', '--all', '--preserve-digests', '--dest-tls-verify=false', `oci:${indexLayout}:multi`, ref);
    await expectIndexInRegistry('skopeo/multi', 'v1');
    expect((await skopeo('inspect', '--raw', '--tls-verify=false', ref)).stdoutBytes.equals(index.data)).toBe(true);

    const out = await freshDir('skopeo-index-out');
    await skopeo('copy', '--all', '--preserve-digests', '--src-tls-verify=false', ref, `oci:${out}:v1`);
    const layout = await readOciLayout(out);
    expect(layout.ref('v1')).toMatchObject({ digest: index.digest, size: index.size, mediaType: OCI_INDEX });
    await expectIndexInLayout(layout);

    const listed = JSON.parse((await skopeo('list-tags', '--tls-verify=false', `docker://${registry.host}/skopeo/multi`)).stdout) as { Tags: string[] };
    expect(listed.Tags).toEqual(['v1']);
  });
});

describe('crane', () => {
  const crane = (...args: string[]) => client(tool('crane'), [...args, '--insecure']);
  const at = (repo: string, ref = '') => `${registry.host}/${repo}${ref}`;

  it('pushes an OCI layout, reads digest, manifest and blobs, tags and lists tags', async () => {
    const pushed = await crane('push', imageLayout, at('crane/image', ':v1'));
    expect(pushed.stdout.trim()).toBe(at('crane/image', `@${image.manifest.digest}`));
    await expectImageInRegistry('crane/image', 'v1', image);

    expect((await crane('digest', at('crane/image', ':v1'))).stdout.trim()).toBe(image.manifest.digest);
    expect((await crane('manifest', at('crane/image', ':v1'))).stdoutBytes.equals(image.manifest.data)).toBe(true);
    expect((await crane('config', at('crane/image', ':v1'))).stdoutBytes.equals(image.config.data)).toBe(true);
    const big = image.layers[2]!;
    expect((await crane('blob', at('crane/image', `@${big.digest}`))).stdoutBytes.equals(big.data)).toBe(true);

    await crane('tag', at('crane/image', ':v1'), 'v2');
    await crane('tag', at('crane/image', ':v1'), 'latest');
    expect((await crane('ls', at('crane/image'))).stdout.trim().split('\n')).toEqual(['latest', 'v1', 'v2']);
    expect(await tagsFromRegistry('crane/image')).toEqual(['latest', 'v1', 'v2']);
    expect((await crane('digest', at('crane/image', ':v2'))).stdout.trim()).toBe(image.manifest.digest);
  });

  it('pulls an image to an OCI layout byte-exact', async () => {
    const out = await freshDir('crane-pull');
    await crane('pull', '--format', 'oci', at('crane/image', ':v1'), out);
    const layout = await readOciLayout(out);
    expect(layoutEntry(layout, image.manifest.digest)).toMatchObject({ mediaType: OCI_MANIFEST, size: image.manifest.size });
    await expectImageInLayout(layout, image);
  });

  it('pushes a multi-arch index and copies images and indexes between repositories', async () => {
    const pushed = await crane('push', indexLayout, at('crane/multi', ':v1'));
    expect(pushed.stdout.trim()).toBe(at('crane/multi', `@${index.digest}`));
    await expectIndexInRegistry('crane/multi', 'v1');

    await crane('copy', at('crane/image', ':v1'), at('crane/copy', ':v1'));
    await expectImageInRegistry('crane/copy', 'v1', image);
    await crane('copy', at('crane/multi', ':v1'), at('crane/copy', ':multi'));
    await expectIndexInRegistry('crane/copy', 'multi');
    expect((await crane('ls', at('crane/copy'))).stdout.trim().split('\n')).toEqual(['multi', 'v1']);

    const catalog = (await crane('catalog', registry.host)).stdout.trim().split('\n');
    expect(catalog).toEqual(expect.arrayContaining(['crane/copy', 'crane/image', 'crane/multi']));
  });
});

describe('regctl', () => {
  const regctl = (...args: string[]) => client(tool('regctl'), args);
  const at = (repo: string, ref = '') => `${registry.host}/${repo}${ref}`;

  beforeAll(async () => {
    await regctl('registry', 'set', '--tls', 'disabled', registry.host);
    const config = JSON.parse(await readFile(clientEnv.REGCTL_CONFIG!, 'utf8')) as { hosts: Record<string, { tls?: string }> };
    expect(config.hosts[registry.host]?.tls).toBe('disabled');
  });

  it('pushes from an OCI layout and reads digest, manifest, blobs and tags', async () => {
    await regctl('image', 'copy', `ocidir://${imageLayout}:v1`, at('regctl/image', ':v1'));
    await expectImageInRegistry('regctl/image', 'v1', image);

    expect((await regctl('image', 'digest', at('regctl/image', ':v1'))).stdout.trim()).toBe(image.manifest.digest);
    expect((await regctl('manifest', 'get', '--format', 'raw-body', at('regctl/image', ':v1'))).stdoutBytes.equals(image.manifest.data)).toBe(true);
    for (const blob of [image.config, ...image.layers]) {
      expect((await regctl('blob', 'get', at('regctl/image'), blob.digest)).stdoutBytes.equals(blob.data), blob.digest).toBe(true);
    }

    await regctl('image', 'copy', at('regctl/image', ':v1'), at('regctl/image', ':v2'));
    await regctl('image', 'copy', at('regctl/image', ':v1'), at('regctl/image', ':a-first'));
    expect((await regctl('tag', 'ls', at('regctl/image'))).stdout.trim().split('\n')).toEqual(['a-first', 'v1', 'v2']);
    expect(await tagsFromRegistry('regctl/image')).toEqual(['a-first', 'v1', 'v2']);
  });

  it('copies across repositories and pulls back to an OCI layout byte-exact', async () => {
    await regctl('image', 'copy', at('regctl/image', ':v1'), at('regctl/other', ':v1'));
    await expectImageInRegistry('regctl/other', 'v1', image);

    const out = await freshDir('regctl-pull');
    await regctl('image', 'copy', at('regctl/other', ':v1'), `ocidir://${out}:v1`);
    const layout = await readOciLayout(out);
    expect(layout.ref('v1')).toMatchObject({ digest: image.manifest.digest, size: image.manifest.size });
    await expectImageInLayout(layout, image);

    const archive = join(work, 'regctl-export.tar');
    await regctl('image', 'export', at('regctl/other', ':v1'), archive);
    const exported = await readOciArchive(archive);
    expect(layoutEntry(exported, image.manifest.digest)).toMatchObject({ mediaType: OCI_MANIFEST, size: image.manifest.size });
    await expectImageInLayout(exported, image);
  });

  it('copies a multi-arch index in and out with all platforms', async () => {
    await regctl('image', 'copy', `ocidir://${indexLayout}:multi`, at('regctl/multi', ':v1'));
    await expectIndexInRegistry('regctl/multi', 'v1');
    expect((await regctl('image', 'digest', at('regctl/multi', ':v1'))).stdout.trim()).toBe(index.digest);
    const arm = await regctl('image', 'digest', '--platform', 'linux/arm64', at('regctl/multi', ':v1'));
    expect(arm.stdout.trim()).toBe(arm64.manifest.digest);

    const out = await freshDir('regctl-index-out');
    await regctl('image', 'copy', at('regctl/multi', ':v1'), `ocidir://${out}:v1`);
    const layout = await readOciLayout(out);
    expect(layout.ref('v1')).toMatchObject({ digest: index.digest, size: index.size, mediaType: OCI_INDEX });
    await expectIndexInLayout(layout);
  });
});

describe('oras', () => {
  const oras = (cwd: string, ...args: string[]) => client(tool('oras'), [...args, '--plain-http'], cwd);
  const ARTIFACT_TYPE = 'application/vnd.wharf.test.artifact';
  const SIGNATURE_TYPE = 'application/vnd.wharf.test.signature';

  it('pushes an artifact, attaches a referrer and discovers it', async () => {
    const dir = await freshDir('oras-src');
    const payload = randomBytes(64 * 1024);
    const signature = Buffer.from(JSON.stringify({ signed: true, nonce: randomBytes(8).toString('hex') }));
    await writeFile(join(dir, 'payload.bin'), payload);
    await writeFile(join(dir, 'signature.json'), signature);
    const ref = `${registry.host}/oras/artifact:v1`;

    const pushed = JSON.parse((await oras(dir, 'push', '--format', 'json', '--artifact-type', ARTIFACT_TYPE, ref, 'payload.bin:application/octet-stream')).stdout) as {
      digest: string;
      mediaType: string;
    };
    const artifact = await manifestFromRegistry('oras/artifact', 'v1');
    expect(artifact.digest).toBe(pushed.digest);
    expect(sha256(artifact.bytes)).toBe(pushed.digest);
    const artifactManifest = JSON.parse(artifact.bytes.toString()) as { artifactType: string; layers: { digest: string; size: number }[] };
    expect(artifactManifest.artifactType).toBe(ARTIFACT_TYPE);
    expect(artifactManifest.layers).toMatchObject([{ digest: sha256(payload), size: payload.length }]);
    expect((await http.getBlob('oras/artifact', sha256(payload))).equals(payload)).toBe(true);

    const attached = JSON.parse(
      (await oras(dir, 'attach', '--format', 'json', '--artifact-type', SIGNATURE_TYPE, '--annotation', 'org.wharf.test=attached', ref, 'signature.json:application/json')).stdout,
    ) as { digest: string };
    const referrer = await manifestFromRegistry('oras/artifact', attached.digest);
    const referrerManifest = JSON.parse(referrer.bytes.toString()) as { subject: { digest: string }; artifactType: string };
    expect(referrerManifest.subject.digest).toBe(pushed.digest);
    expect(referrerManifest.artifactType).toBe(SIGNATURE_TYPE);

    // The registry answered the referrers API, so oras must not have fallen back to the tag scheme.
    expect(await tagsFromRegistry('oras/artifact')).toEqual(['v1']);
    const res = await http.fetch(`/v2/oras/artifact/referrers/${pushed.digest}`);
    expect(res.status).toBe(200);
    const referrers = (await res.json()) as { manifests: { digest: string; artifactType: string; annotations?: Record<string, string> }[] };
    expect(referrers.manifests).toMatchObject([{ digest: attached.digest, artifactType: SIGNATURE_TYPE, annotations: { 'org.wharf.test': 'attached' } }]);

    // No `sha256-<hex>` fallback tag exists, so what discover finds came through the referrers API.
    type Discovered = { digest: string; referrers: { digest: string; artifactType: string; annotations?: Record<string, string> }[] };
    const discover = async (...args: string[]) => JSON.parse((await oras(dir, 'discover', '--format', 'json', ...args, ref)).stdout) as Discovered;
    const discovered = await discover();
    expect(discovered.digest).toBe(pushed.digest);
    expect(discovered.referrers).toHaveLength(1);
    expect(discovered.referrers[0]).toMatchObject({ digest: attached.digest, artifactType: SIGNATURE_TYPE });
    expect(discovered.referrers[0]!.annotations?.['org.wharf.test']).toBe('attached');
    expect((await discover('--artifact-type', SIGNATURE_TYPE)).referrers.map((r) => r.digest)).toEqual([attached.digest]);
    expect((await discover('--artifact-type', 'application/vnd.wharf.none')).referrers).toEqual([]);

    const out = await freshDir('oras-pull');
    await oras(out, 'pull', `${registry.host}/oras/artifact@${attached.digest}`);
    expect((await readFile(join(out, 'signature.json'))).equals(signature)).toBe(true);
    await oras(out, 'pull', ref);
    expect((await readFile(join(out, 'payload.bin'))).equals(payload)).toBe(true);
  });
});

describe('containerd', () => {
  let containerd: Containerd;

  beforeAll(async () => {
    // Pushed over raw HTTP so this block depends on no other client.
    containerd = await startContainerd();
    await http.pushImage('containerd/image', 'v1', image);
    await http.pushImage('containerd/multi', 'amd64', amd64);
    await http.pushImage('containerd/multi', 'arm64', arm64);
    const res = await http.pushManifest('containerd/multi', 'v1', index, OCI_INDEX);
    if (res.status !== 201) throw new Error(`index push failed: ${res.status} ${await res.text()}`);
  });

  afterAll(async () => {
    await containerd?.stop();
  });

  /** `ctr images ls` as {ref → digest, mediaType}. */
  async function listImages(): Promise<Map<string, { mediaType: string; digest: string }>> {
    const lines = (await containerd.ctr(['images', 'ls'])).stdout.trim().split('\n').slice(1);
    return new Map(
      lines.map((line) => {
        const [ref, mediaType, digest] = line.trim().split(/\s+/);
        return [ref!, { mediaType: mediaType!, digest: digest! }];
      }),
    );
  }

  async function expectContent(digest: string, data: Buffer): Promise<void> {
    const got = await containerd.ctr(['content', 'get', digest]);
    expect(got.stdoutBytes.equals(data), `containerd content ${digest}`).toBe(true);
  }

  it('pulls and unpacks an image with `ctr images pull --plain-http`', async () => {
    const ref = `${registry.host}/containerd/image:v1`;
    try {
      await containerd.ctr(['images', 'pull', '--plain-http', '--snapshotter', containerd.snapshotter, '--platform', 'linux/amd64', ref]);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- containerd log ---\n${containerd.log().slice(-8192)}`);
    }
    expect((await listImages()).get(ref)).toEqual({ mediaType: OCI_MANIFEST, digest: image.manifest.digest });
    for (const blob of imageBlobs(image)) await expectContent(blob.digest, blob.data);

    // `check` confirms every blob is present and the layers were unpacked into the snapshotter.
    const check = (await containerd.ctr(['images', 'check', '--snapshotter', containerd.snapshotter, `name==${ref}`])).stdout;
    const row = check.split('\n').find((line) => line.startsWith(`${ref} `));
    expect(row, check).toBeDefined();
    expect(row).toContain(image.manifest.digest);
    expect(row).toMatch(/complete \(4\/4\)/);
    expect(row).toMatch(/\btrue\s*$/);
  });

  it('pulls a multi-arch index for every platform with digests unchanged', async () => {
    const ref = `${registry.host}/containerd/multi:v1`;
    try {
      await containerd.ctr(['images', 'pull', '--plain-http', '--snapshotter', containerd.snapshotter, '--all-platforms', ref]);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- containerd log ---\n${containerd.log().slice(-8192)}`);
    }
    expect((await listImages()).get(ref)).toEqual({ mediaType: OCI_INDEX, digest: index.digest });
    await expectContent(index.digest, index.data);
    for (const img of [amd64, arm64]) for (const blob of imageBlobs(img)) await expectContent(blob.digest, blob.data);
  });
});
