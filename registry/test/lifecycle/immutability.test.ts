// Tag immutability and referrers that follow their subject (issue 21), with real clients:
// skopeo re-pushes a different image to an immutable tag (refused, naming the rule) and
// the same one (accepted); deletes by tag and by digest are refused; retention skips the
// tag. oras attaches signatures; deleting the subject deletes them; cosign tag-scheme
// accessories (`sha256-<hex>.sig`) of a deleted subject go with the next GC; a project that
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
import { blobOf, buildImage, OCI_MANIFEST, RegistryClient, type Blob, type Image } from '../support/oci.js';
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
    // previousTagDigest: what the tag named before this push (tag-created webhooks).
    expect(await meta.manifests.put(record(second))).toEqual({ missing: [], previousTagDigest: first.manifest.digest, tagRefused: true });
    expect(await meta.manifests.put(record(first))).toEqual({ missing: [], previousTagDigest: first.manifest.digest });
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

  /**
   * A cosign tag-scheme accessory of `subject`, as cosign (before OCI 1.1 referrers) pushes
   * it: an image manifest without `subject`, tagged `sha256-<hex>.<suffix>` in the subject's
   * repository, whose config and payload layer no other manifest shares.
   */
  async function pushAccessory(repo: string, subject: string, suffix: 'sig' | 'att' | 'sbom'): Promise<{ digest: string; blobs: Blob[] }> {
    const payload = blobOf(JSON.stringify({ critical: { identity: { 'docker-reference': repo }, image: { 'docker-manifest-digest': subject }, type: 'cosign container image signature' }, optional: { nonce: Math.random() } }));
    const config = blobOf(JSON.stringify({ architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [payload.digest] }, config: {}, nonce: Math.random() }));
    for (const blob of [config, payload]) expect((await http.pushBlob(repo, blob)).status).toBe(201);
    const manifest = blobOf(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
        layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: payload.digest, size: payload.size, annotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQ==' } }],
      }),
    );
    expect((await http.pushManifest(repo, `${subject.replace(':', '-')}.${suffix}`, manifest)).status).toBe(201);
    return { digest: manifest.digest, blobs: [config, payload] };
  }
  const tagsIn = async (repo: string) => (((await (await http.fetch(`/v2/${repo}/tags/list`)).json()) as { tags: string[] | null }).tags ?? []).sort();
  const inStorage = async (digest: string) => (await registry.app.blobStore.stat(digest)) !== undefined;

  it('deleting a subject over /v2 leaves its cosign accessory tags until the next GC, which deletes them with their manifests and unshared blobs; an immutable one and those of present subjects stay', async () => {
    await api.project('acc');
    await api.ok('PUT', '/projects/acc/immutability', { rules: [{ name: 'attestations', tagMatches: '*.att' }], protectSignedArtifacts: false });
    const image = await buildImage({ layers: 1 });
    const other = await buildImage({ layers: 1 });
    await copy(await layoutOf('acc-subject', image), 'acc/app:v1');
    await copy(await layoutOf('acc-other', other), 'acc/app:v2');
    const subject = image.manifest.digest;
    const sig = await pushAccessory('acc/app', subject, 'sig');
    const sbom = await pushAccessory('acc/app', subject, 'sbom');
    const att = await pushAccessory('acc/app', subject, 'att');
    // A signature of the signature, by tag scheme too: it follows once the first one is gone.
    const sigOfSig = await pushAccessory('acc/app', sig.digest, 'sig');
    const otherSig = await pushAccessory('acc/app', other.manifest.digest, 'sig');
    const dir = join(work, 'attach-acc');
    await mkdir(dir, { recursive: true });
    const referrer = await attach(dir, `${registry.host}/acc/app:v1`, COSIGN_SIGNATURE, 'sig.json');
    const tag = (digest: string, suffix: string) => `${digest.replace(':', '-')}.${suffix}`;

    expect((await http.fetch(`/v2/acc/app/manifests/${subject}`, { method: 'DELETE' })).status).toBe(202);
    // The accessories are still there: a client that deletes them itself after the subject gets 202, not 404.
    expect(await tagsIn('acc/app')).toEqual([tag(subject, 'att'), tag(subject, 'sbom'), tag(subject, 'sig'), tag(sig.digest, 'sig'), tag(other.manifest.digest, 'sig'), 'v2'].sort());
    expect((await http.fetch(`/v2/acc/app/manifests/${sbom.digest}`, { method: 'DELETE' })).status).toBe(202);

    await sleep(GRACE_SECONDS * 1000 + 300);
    const report = await gcReport(registry.url, { deleteUntagged: false });
    expect(report.accessoryTags).toEqual({ deleted: 2, immutable: 1 });
    // The OCI referrer, the .sig manifest and the signature of the signature.
    expect(report.manifests.deleted).toBe(3);
    expect(await tagsIn('acc/app')).toEqual([tag(subject, 'att'), tag(other.manifest.digest, 'sig'), 'v2'].sort());
    for (const digest of [subject, referrer, sig.digest, sigOfSig.digest, sbom.digest]) expect(await present('acc/app', digest), digest).toBe(false);
    for (const digest of [att.digest, otherSig.digest, other.manifest.digest]) expect(await present('acc/app', digest), digest).toBe(true);
    for (const blob of [...sig.blobs, ...sigOfSig.blobs, ...sbom.blobs, ...image.layers]) expect(await inStorage(blob.digest), blob.digest).toBe(false);
    for (const blob of [...att.blobs, ...otherSig.blobs, ...other.layers]) expect(await inStorage(blob.digest), blob.digest).toBe(true);
  });

  it('a dry run counts the orphaned accessory tags and their manifests, and deletes nothing', async () => {
    await api.project('acc-dry');
    const image = await buildImage({ layers: 1 });
    await copy(await layoutOf('acc-dry', image), 'acc-dry/app:v1');
    const sig = await pushAccessory('acc-dry/app', image.manifest.digest, 'sig');
    expect((await http.fetch(`/v2/acc-dry/app/manifests/${image.manifest.digest}`, { method: 'DELETE' })).status).toBe(202);
    await sleep(GRACE_SECONDS * 1000 + 300);
    const dry = await gcReport(registry.url, { dryRun: true });
    // (acc's immutable .att tag is not counted: it stays.)
    expect(dry.accessoryTags).toEqual({ deleted: 1, immutable: 1 });
    expect(dry.manifests.deleted).toBe(1);
    expect(await present('acc-dry/app', sig.digest)).toBe(true);
    expect(await tagsIn('acc-dry/app')).toEqual([`${image.manifest.digest.replace(':', '-')}.sig`]);
    for (const blob of sig.blobs) expect(await inStorage(blob.digest)).toBe(true);
    const real = await gcReport(registry.url, {});
    expect(real.accessoryTags).toEqual({ deleted: 1, immutable: 1 });
    expect(real.manifests.deleted).toBe(1);
    expect(await present('acc-dry/app', sig.digest)).toBe(false);
    expect(await tagsIn('acc-dry/app')).toEqual([]);
  });

  it('a project that protects signed artifacts refuses deleting one signed by a cosign .sig tag', async () => {
    await api.project('acc-signed');
    await api.ok('PUT', '/projects/acc-signed/immutability', { rules: [], protectSignedArtifacts: true });
    const image = await buildImage({ layers: 1 });
    await copy(await layoutOf('acc-signed', image), 'acc-signed/app:v1');
    await pushAccessory('acc-signed/app', image.manifest.digest, 'sig');
    const refused = await http.fetch(`/v2/acc-signed/app/manifests/${image.manifest.digest}`, { method: 'DELETE' });
    expect(refused.status).toBe(403);
    expect((await errorOf(refused)).message).toContain('protects signed artifacts from deletion');
    expect(await present('acc-signed/app', image.manifest.digest)).toBe(true);
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
