// Tag immutability and referrers that follow their subject (issue 21), with real clients:
// skopeo re-pushes a different image to an immutable tag (refused, naming the rule) and
// the same one (accepted); deletes by tag and by digest are refused; retention skips the
// tag. oras attaches signatures; deleting the subject deletes them; a project that
// protects signed artifacts refuses the delete.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManagementClient } from '../support/auth.js';
import { gcReport } from '../support/gc.js';
import { failure } from '../support/clients/expect.js';
import { imageBlobs, writeOciLayout } from '../support/clients/oci-layout.js';
import { run, type RunResult } from '../support/clients/run.js';
import { buildImage, OCI_MANIFEST, RegistryClient, type Image } from '../support/oci.js';
import { removeDir, startRegistry, tempDir, type RunningRegistry } from '../support/registry.js';
import { retentionRun, tagsOf } from './support.js';

const COSIGN_SIGNATURE = 'application/vnd.dev.cosign.artifact.sig.v1+json';
const SBOM = 'application/vnd.example.sbom';
const GRACE_SECONDS = 1;

let registry: RunningRegistry;
let http: RegistryClient;
let api: ManagementClient;
let work: string;
let env: Record<string, string>;

const tool = (name: string) => join(inject('toolsBin'), name);
const client = (cmd: string, args: string[], cwd?: string): Promise<RunResult> => run(cmd, args, { env, ...(cwd && { cwd }), timeoutMs: 60_000 });
const skopeo = (...args: string[]) => client('skopeo', ['--policy', join(work, 'policy.json'), '--tmpdir', work, ...args]);
const oras = (cwd: string, ...args: string[]) => client(tool('oras'), [...args, '--plain-http'], cwd);

async function layoutOf(name: string, image: Image): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  await writeOciLayout(dir, [{ tag: 'src', manifest: image.manifest, mediaType: image.mediaType }], imageBlobs(image));
  return dir;
}

const copy = (layout: string, ref: string) => skopeo('copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${layout}:src`, `docker://${registry.host}/${ref}`);
const digestOf = async (repo: string, reference: string) => {
  const res = await http.fetch(`/v2/${repo}/manifests/${reference}`, { method: 'HEAD', headers: { Accept: OCI_MANIFEST } });
  return res.status === 200 ? res.headers.get('docker-content-digest') : undefined;
};
const errorOf = async (res: Response) => ((await res.json()) as { errors: { code: string; message: string }[] }).errors[0]!;

beforeAll(async () => {
  registry = await startRegistry({ jobs: { pollIntervalMs: 50, gc: { graceSeconds: GRACE_SECONDS, schedule: undefined }, uploads: { purgeSchedule: undefined } } });
  http = new RegistryClient(registry.url);
  api = new ManagementClient(registry.url, null);
  work = await tempDir('wharf-lifecycle-');
  const home = join(work, 'home');
  await mkdir(home, { recursive: true });
  await writeFile(join(work, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  await writeFile(join(work, 'registries.conf'), '');
  env = { HOME: home, DOCKER_CONFIG: join(home, '.docker'), XDG_CONFIG_HOME: join(home, '.config'), XDG_RUNTIME_DIR: home, CONTAINERS_REGISTRIES_CONF: join(work, 'registries.conf'), NO_COLOR: '1' };
});

afterAll(async () => {
  await registry?.stop();
  if (registry) await removeDir(registry.dataDir);
  if (work) await removeDir(work);
});

describe('tag immutability', () => {
  let first: Image;
  let second: Image;

  beforeAll(async () => {
    await api.project('imm');
    await api.ok('PUT', '/projects/imm/immutability', { rules: [{ name: 'releases', tagMatches: 'v*', repoMatches: '**' }], protectSignedArtifacts: false });
    first = await buildImage({ layers: 1 });
    second = await buildImage({ layers: 1 });
  });

  it('refuses a skopeo re-push of a different image to an immutable tag, naming the rule; accepts the same digest again', async () => {
    const one = await layoutOf('first', first);
    const two = await layoutOf('second', second);
    await copy(one, 'imm/app:v1');
    expect(await digestOf('imm/app', 'v1')).toBe(first.manifest.digest);

    const refused = await failure(copy(two, 'imm/app:v1'));
    expect(refused.stderr).toMatch(/denied: tag \\?"v1\\?" of imm\/app is immutable \(immutability rule \\?"releases\\?"\)/);
    expect(await digestOf('imm/app', 'v1')).toBe(first.manifest.digest);

    await copy(one, 'imm/app:v1');
    expect(await digestOf('imm/app', 'v1')).toBe(first.manifest.digest);
    // Tags no rule selects move freely.
    await copy(one, 'imm/app:latest');
    await copy(two, 'imm/app:latest');
    expect(await digestOf('imm/app', 'latest')).toBe(second.manifest.digest);
  });

  it('refuses the move with DENIED over the API too', async () => {
    const res = await http.pushManifest('imm/app', 'v1', second.manifest);
    expect(res.status).toBe(403);
    expect(await errorOf(res)).toMatchObject({ code: 'DENIED', message: 'tag "v1" of imm/app is immutable (immutability rule "releases") and cannot be moved to another digest' });
  });

  it('refuses deleting the tag, and deleting its manifest by digest', async () => {
    const byTag = await http.fetch('/v2/imm/app/manifests/v1', { method: 'DELETE' });
    expect(byTag.status).toBe(403);
    expect((await errorOf(byTag)).message).toContain('immutability rule "releases"');
    const byDigest = await http.fetch(`/v2/imm/app/manifests/${first.manifest.digest}`, { method: 'DELETE' });
    expect(byDigest.status).toBe(403);
    expect((await errorOf(byDigest)).code).toBe('DENIED');
    expect(await digestOf('imm/app', 'v1')).toBe(first.manifest.digest);
  });

  it('retention never deletes an immutable tag', async () => {
    await api.ok('PUT', '/projects/imm/retention', { rules: [{ template: 'latestPushedK', count: 0 }], schedule: null });
    const report = await retentionRun(api, 'imm', false);
    expect(report.kept).toEqual([expect.objectContaining({ tag: 'v1', reason: 'immutable (immutability rule "releases")' })]);
    expect(tagsOf(report.deleted)).toEqual(['latest']);
    expect(await digestOf('imm/app', 'v1')).toBe(first.manifest.digest);
  });

  it('the store refuses moving a locked tag atomically, even when the caller checked first and lost a race', async () => {
    const meta = registry.app.metadata;
    const record = (image: Image) => ({
      repository: 'imm/app',
      digest: image.manifest.digest,
      mediaType: OCI_MANIFEST,
      content: image.manifest.data,
      blobs: [image.config.digest, ...image.layers.map((l) => l.digest)],
      manifests: [],
      tag: 'v1',
      tagLocked: true,
    });
    expect(await meta.manifests.put(record(second))).toEqual({ missing: [], tagRefused: true });
    expect(await meta.manifests.put(record(first))).toEqual({ missing: [] });
    expect(await digestOf('imm/app', 'v1')).toBe(first.manifest.digest);
  });

  it('lets the tag go once the rule is removed', async () => {
    await api.ok('PUT', '/projects/imm/immutability', { rules: [], protectSignedArtifacts: false });
    expect((await http.fetch('/v2/imm/app/manifests/v1', { method: 'DELETE' })).status).toBe(202);
  });
});

describe('referrers follow their subject', () => {
  async function attach(dir: string, ref: string, artifactType: string, file: string): Promise<string> {
    await writeFile(join(dir, file), JSON.stringify({ artifactType, nonce: Math.random() }));
    return (JSON.parse((await oras(dir, 'attach', '--format', 'json', '--artifact-type', artifactType, ref, `${file}:application/json`)).stdout) as { digest: string }).digest;
  }
  const referrers = async (repo: string, digest: string) => ((await (await http.fetch(`/v2/${repo}/referrers/${digest}`)).json()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest);
  const present = async (repo: string, digest: string) => (await http.fetch(`/v2/${repo}/manifests/${digest}`, { method: 'HEAD' })).status === 200;

  it('deleting a manifest over /v2 deletes it at once and its referrers, recursively, in the next GC (even without deleteUntagged)', async () => {
    await api.project('refs');
    const image = await buildImage({ layers: 1 });
    await copy(await layoutOf('subject', image), 'refs/app:v1');
    const dir = join(work, 'attach');
    await mkdir(dir, { recursive: true });
    const signature = await attach(dir, `${registry.host}/refs/app:v1`, COSIGN_SIGNATURE, 'sig.json');
    const sbom = await attach(dir, `${registry.host}/refs/app:v1`, SBOM, 'sbom.json');
    // A signature of the SBOM: a referrer of a referrer.
    const sbomSignature = await attach(dir, `${registry.host}/refs/app@${sbom}`, COSIGN_SIGNATURE, 'sbom-sig.json');
    expect((await referrers('refs/app', image.manifest.digest)).sort()).toEqual([signature, sbom].sort());
    expect(await referrers('refs/app', sbom)).toEqual([sbomSignature]);

    // An unrelated untagged manifest stays: GC without deleteUntagged only takes orphaned referrers.
    const untagged = await buildImage({ layers: 1 });
    await http.pushImage('refs/app', untagged.manifest.digest, untagged);
    expect((await http.fetch(`/v2/refs/app/manifests/${image.manifest.digest}`, { method: 'DELETE' })).status).toBe(202);
    expect(await present('refs/app', image.manifest.digest)).toBe(false);
    await sleep(GRACE_SECONDS * 1000 + 300);
    const report = await gcReport(registry.url, { deleteUntagged: false });
    expect(report.manifests.deleted).toBe(3);
    for (const digest of [image.manifest.digest, signature, sbom, sbomSignature]) expect(await present('refs/app', digest), digest).toBe(false);
    expect(await referrers('refs/app', image.manifest.digest)).toEqual([]);
    const left = await registry.app.metadata.sql.query("SELECT digest FROM manifests WHERE repository = 'refs/app'");
    expect(left).toEqual([{ digest: untagged.manifest.digest }]);
  });

  it('retention deletes an artifact together with its referrers, in the same operation', async () => {
    await api.project('refs-ret');
    const image = await buildImage({ layers: 1 });
    await copy(await layoutOf('ret-subject', image), 'refs-ret/app:old');
    const dir = join(work, 'attach-ret');
    await mkdir(dir, { recursive: true });
    const signature = await attach(dir, `${registry.host}/refs-ret/app:old`, COSIGN_SIGNATURE, 'sig.json');
    await api.ok('PUT', '/projects/refs-ret/retention', { rules: [{ template: 'latestPushedK', count: 0 }], schedule: null });
    const report = await retentionRun(api, 'refs-ret', false);
    expect(report.manifestsDeleted.map((m) => m.digest).sort()).toEqual([image.manifest.digest, signature].sort());
    expect(await registry.app.metadata.sql.query("SELECT digest FROM manifests WHERE repository = 'refs-ret/app'")).toEqual([]);
  });

  it('a project that protects signed artifacts refuses deleting a signed one; unsigned ones and the signature itself can go', async () => {
    await api.project('signed');
    await api.ok('PUT', '/projects/signed/immutability', { rules: [], protectSignedArtifacts: true });
    const signedImage = await buildImage({ layers: 1 });
    const plain = await buildImage({ layers: 1 });
    await copy(await layoutOf('signed', signedImage), 'signed/app:v1');
    await copy(await layoutOf('plain', plain), 'signed/app:v2');
    const dir = join(work, 'attach-signed');
    await mkdir(dir, { recursive: true });
    const signature = await attach(dir, `${registry.host}/signed/app:v1`, COSIGN_SIGNATURE, 'sig.json');
    await attach(dir, `${registry.host}/signed/app:v2`, SBOM, 'sbom.json');

    const refused = await http.fetch(`/v2/signed/app/manifests/${signedImage.manifest.digest}`, { method: 'DELETE' });
    expect(refused.status).toBe(403);
    expect(await errorOf(refused)).toMatchObject({ code: 'DENIED', message: `signed/app@${signedImage.manifest.digest} is signed and project "signed" protects signed artifacts from deletion` });
    expect(await present('signed/app', signature)).toBe(true);

    // An SBOM is not a signature.
    expect((await http.fetch(`/v2/signed/app/manifests/${plain.manifest.digest}`, { method: 'DELETE' })).status).toBe(202);
    // Retention keeps the signed artifact too.
    await api.ok('PUT', '/projects/signed/retention', { rules: [], schedule: null });
    await api.ok('PUT', '/projects/signed/retention', { rules: [{ template: 'latestPushedK', count: 0 }], schedule: null });
    const report = await retentionRun(api, 'signed', true);
    expect(report.kept).toEqual([expect.objectContaining({ tag: 'v1', reason: 'signed, and the project protects signed artifacts' })]);

    // Deleting the signature unsigns it; then it can go.
    expect((await http.fetch(`/v2/signed/app/manifests/${signature}`, { method: 'DELETE' })).status).toBe(202);
    expect((await http.fetch(`/v2/signed/app/manifests/${signedImage.manifest.digest}`, { method: 'DELETE' })).status).toBe(202);
  });
});
