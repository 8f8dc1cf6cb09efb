// Real clients, unmodified, through the token flow (issue 3): skopeo, crane, oras,
// regctl and containerd sign in as robot accounts and local users against a registry
// with token auth on. Every success is checked against what the registry holds, read
// with an admin token; every refusal must be a non-zero exit that changed nothing.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AdminClient, type Account } from './support/clients/admin.js';
import { startContainerd, type Containerd } from './support/clients/containerd.js';
import { imageBlobs, readOciLayout, writeOciLayout } from './support/clients/oci-layout.js';
import { expectImageInLayout, failure } from './support/clients/expect.js';
import { run } from './support/clients/run.js';
import { buildImage, sha256, type Image } from './support/oci.js';
import { removeDir, startRegistry, tempDir, tokenAuth, type RunningRegistry } from './support/registry.js';

const PRIVATE = 'private-apps';
const PUBLIC = 'public-apps';

let registry: RunningRegistry;
/** The distribution API as the admin sees it: every request carries an admin token. */
let admin: AdminClient;
let work: string;
let toolsBin: string;

/** `robot$private-apps+ci` (pull, push), `robot$private-apps+reader` (pull), `robot$public-apps+ci` (pull, push). */
let privateCi: Account;
let privateReader: Account;
let publicCi: Account;
/** Local users: `developer` and `guest` in the private project. */
let developer: Account;
let guest: Account;

/** A two-layer linux/amd64 image, and an OCI layout holding it under the tag `v1`. */
let image: Image;
let imageLayout: string;

const tool = (name: string) => join(toolsBin, name);

/**
 * A client's own HOME and config locations. Each client (and each identity signed in
 * with crane) gets its own, so a login by one never lends credentials to another.
 */
async function isolatedEnv(name: string): Promise<Record<string, string>> {
  const home = await freshDir(`home-${name}`);
  return {
    HOME: home,
    DOCKER_CONFIG: join(home, '.docker'),
    REGCTL_CONFIG: join(home, 'regctl.json'),
    XDG_RUNTIME_DIR: await freshDir(`xdg-runtime-${name}`),
    XDG_CONFIG_HOME: join(home, '.config'),
    CONTAINERS_REGISTRIES_CONF: join(work, 'registries.conf'),
    NO_COLOR: '1',
  };
}

async function freshDir(name: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Whether `path` exists; any error but "no such file" is an error, not a no. */
async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? false : Promise.reject(err)),
  );
}

/** An image no one has pushed yet, for pushes that must be refused. */
const freshImage = () => buildImage({ layers: 2, payloadSize: 4096 });

beforeAll(async () => {
  toolsBin = inject('toolsBin');
  registry = await startRegistry({ auth: tokenAuth() });
  admin = new AdminClient(registry.url);
  work = await tempDir('wharf-clients-auth-');
  await writeFile(join(work, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  await writeFile(join(work, 'registries.conf'), '');

  await admin.createProject(PRIVATE, false);
  await admin.createProject(PUBLIC, true);
  privateCi = await admin.createRobot(PRIVATE, 'ci', ['pull', 'push']);
  privateReader = await admin.createRobot(PRIVATE, 'reader', ['pull']);
  publicCi = await admin.createRobot(PUBLIC, 'ci', ['pull', 'push']);
  developer = await admin.createUser('dana', PRIVATE, 'developer');
  guest = await admin.createUser('gus', PRIVATE, 'guest');

  image = await buildImage({ layers: 2, payloadSize: 256 * 1024 });
  imageLayout = await freshDir('src-image');
  await writeOciLayout(imageLayout, [{ tag: 'v1', manifest: image.manifest, mediaType: image.mediaType }], imageBlobs(image));
});

afterAll(async () => {
  await registry?.stop();
  if (work) await removeDir(work);
});

describe('the registry without a token', () => {
  it('answers /v2 requests with a Bearer challenge naming realm, service and scope', async () => {
    const res = await fetch(`${registry.url}/v2/${PRIVATE}/skopeo/manifests/v1`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer realm="${registry.url}/token",service="wharf-test",scope="repository:${PRIVATE}/skopeo:pull"`);
  });
});

describe('skopeo', () => {
  let env: Record<string, string>;
  const skopeo = (...args: string[]) => run('skopeo', ['--policy', join(work, 'policy.json'), '--tmpdir', work, ...args], { env, timeoutMs: 60_000 });
  const creds = (account: Account) => `${account.username}:${account.password}`;
  const ref = (repo: string, tag: string) => `docker://${registry.host}/${repo}:${tag}`;

  beforeAll(async () => {
    env = await isolatedEnv('skopeo');
  });

  it('pushes and pulls with a robot account (--dest-creds, --src-creds, --creds), digests unchanged', async () => {
    const repo = `${PRIVATE}/skopeo`;
    await skopeo('copy', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', creds(privateCi), `oci:${imageLayout}:v1`, ref(repo, 'v1'));
    await admin.expectImage(repo, 'v1', image);

    const inspected = JSON.parse((await skopeo('inspect', '--tls-verify=false', '--creds', creds(privateCi), ref(repo, 'v1'))).stdout) as { Digest: string; Layers: string[] };
    expect(inspected.Digest).toBe(image.manifest.digest);
    expect(inspected.Layers).toEqual(image.layers.map((l) => l.digest));

    const out = await freshDir('skopeo-private-out');
    await skopeo('copy', '--preserve-digests', '--src-tls-verify=false', '--src-creds', creds(privateReader), ref(repo, 'v1'), `oci:${out}:v1`);
    await expectImageInLayout(await readOciLayout(out), 'v1', image);
  });

  it('fails with an authentication error on a wrong password, and stores nothing', async () => {
    const repo = `${PRIVATE}/skopeo`;
    const rejected = await freshImage();
    const layout = await freshDir('skopeo-rejected-src');
    await writeOciLayout(layout, [{ tag: 'bad', manifest: rejected.manifest, mediaType: rejected.mediaType }], imageBlobs(rejected));

    const wrong = { ...privateCi, password: `${privateCi.password}-wrong` };
    const push = await failure(skopeo('copy', '--dest-tls-verify=false', '--dest-creds', creds(wrong), `oci:${layout}:bad`, ref(repo, 'bad')));
    expect(push.stderr).toMatch(/unable to retrieve auth token.*authentication failed/);
    await admin.expectNothingStored(repo, 'bad', rejected);

    const out = await freshDir('skopeo-wrong-password-out');
    const pull = await failure(skopeo('copy', '--src-tls-verify=false', '--src-creds', creds(wrong), ref(repo, 'v1'), `oci:${out}:v1`));
    expect(pull.stderr).toMatch(/unable to retrieve auth token.*authentication failed/);
    expect(await exists(join(out, 'index.json'))).toBe(false);
  });

  it('pulls anonymously from a public project but not from a private one', async () => {
    await skopeo('copy', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', creds(publicCi), `oci:${imageLayout}:v1`, ref(`${PUBLIC}/skopeo`, 'v1'));
    await admin.expectImage(`${PUBLIC}/skopeo`, 'v1', image);

    const privateOut = await freshDir('skopeo-anonymous-private');
    const refused = await failure(skopeo('copy', '--src-tls-verify=false', ref(`${PRIVATE}/skopeo`, 'v1'), `oci:${privateOut}:v1`));
    // The same words as for a project that does not exist: outsiders learn nothing.
    expect(refused.stderr).toMatch(/project \\?"private-apps\\?" does not exist, or it is private and you are not signed in/);
    expect(await exists(join(privateOut, 'index.json'))).toBe(false);

    const publicOut = await freshDir('skopeo-anonymous-public');
    await skopeo('copy', '--preserve-digests', '--src-tls-verify=false', ref(`${PUBLIC}/skopeo`, 'v1'), `oci:${publicOut}:v1`);
    await expectImageInLayout(await readOciLayout(publicOut), 'v1', image);

    // Public means anonymous pull, never anonymous push.
    const rejected = await freshImage();
    const layout = await freshDir('skopeo-anonymous-push-src');
    await writeOciLayout(layout, [{ tag: 'anon', manifest: rejected.manifest, mediaType: rejected.mediaType }], imageBlobs(rejected));
    const anonymousPush = await failure(skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:anon`, ref(`${PUBLIC}/skopeo`, 'anon')));
    expect(anonymousPush.stderr).toMatch(/does not grant push on public-apps\/skopeo/);
    await admin.expectNothingStored(`${PUBLIC}/skopeo`, 'anon', rejected);
  });

  it('says why a push is refused although it starts with HEAD (no body): the reason is in the challenge', async () => {
    // A project that does not exist and a private one the user is not in read the same.
    await admin.createProject('skopeo-hidden', false);
    for (const project of ['skopeo-absent', 'skopeo-hidden']) {
      const push = await failure(skopeo('copy', '--dest-tls-verify=false', '--dest-creds', creds(developer), `oci:${imageLayout}:v1`, ref(`${project}/app`, 'v1')));
      expect(push.stderr).toMatch(new RegExp(`denied: project \\\\?"${project}\\\\?" does not exist or you have no access to it`));
    }
  });
});

describe('crane', () => {
  /** crane with a config dir of its own, signed in as `account` with `crane auth login`. */
  async function craneAs(name: string, account: Account) {
    const env = await isolatedEnv(`crane-${name}`);
    const crane = (...args: string[]) => run(tool('crane'), [...args, '--insecure'], { env, timeoutMs: 60_000 });
    await crane('auth', 'login', registry.host, '-u', account.username, '-p', account.password);
    const config = JSON.parse(await readFile(join(env.DOCKER_CONFIG!, 'config.json'), 'utf8')) as { auths: Record<string, { auth?: string }> };
    expect(config.auths[registry.host]?.auth).toBe(Buffer.from(`${account.username}:${account.password}`).toString('base64'));
    return crane;
  }
  const at = (repo: string, ref = '') => `${registry.host}/${repo}${ref}`;
  const repo = `${PRIVATE}/crane`;

  it('pushes, pulls and lists tags after `crane auth login` as a robot', async () => {
    const crane = await craneAs('ci', privateCi);
    const pushed = await crane('push', imageLayout, at(repo, ':v1'));
    expect(pushed.stdout.trim()).toBe(at(repo, `@${image.manifest.digest}`));
    await admin.expectImage(repo, 'v1', image);
    await crane('tag', at(repo, ':v1'), 'v2');

    expect((await crane('digest', at(repo, ':v2'))).stdout.trim()).toBe(image.manifest.digest);
    expect((await crane('ls', at(repo))).stdout.trim().split('\n')).toEqual(['v1', 'v2']);
    expect(await admin.tags(repo)).toEqual(['v1', 'v2']);

    const out = await freshDir('crane-ci-pull');
    await crane('pull', '--format', 'oci', at(repo, ':v1'), out);
    await expectImageInLayout(await readOciLayout(out), undefined, image);
  });

  it('lets a pull-only robot pull but not push', async () => {
    const crane = await craneAs('reader', privateReader);
    const out = await freshDir('crane-reader-pull');
    await crane('pull', '--format', 'oci', at(repo, ':v1'), out);
    await expectImageInLayout(await readOciLayout(out), undefined, image);
    expect((await crane('ls', at(repo))).stdout.trim().split('\n')).toEqual(['v1', 'v2']);

    const rejected = await freshImage();
    const layout = await freshDir('crane-reader-src');
    await writeOciLayout(layout, [{ tag: 'reader', manifest: rejected.manifest, mediaType: rejected.mediaType }], imageBlobs(rejected));
    const push = await failure(crane('push', layout, at(repo, ':reader')));
    expect(push.stderr).toMatch(/UNAUTHORIZED: insufficient access: the token does not grant push/);
    await admin.expectNothingStored(repo, 'reader', rejected);

    // Retagging needs push too: the manifest is already there, the new tag must not appear.
    expect((await failure(crane('tag', at(repo, ':v1'), 'reader-tag'))).stderr).toMatch(/does not grant push/);
    expect(await admin.tags(repo)).toEqual(['v1', 'v2']);
  });

  it('lets a local user with role developer push, and a guest pull but not push', async () => {
    const usersRepo = `${PRIVATE}/crane-users`;
    const asDeveloper = await craneAs('developer', developer);
    await asDeveloper('push', imageLayout, at(usersRepo, ':dev'));
    await admin.expectImage(usersRepo, 'dev', image);

    const asGuest = await craneAs('guest', guest);
    expect((await asGuest('digest', at(usersRepo, ':dev'))).stdout.trim()).toBe(image.manifest.digest);
    const out = await freshDir('crane-guest-pull');
    await asGuest('pull', '--format', 'oci', at(usersRepo, ':dev'), out);
    await expectImageInLayout(await readOciLayout(out), undefined, image);

    const rejected = await freshImage();
    const layout = await freshDir('crane-guest-src');
    await writeOciLayout(layout, [{ tag: 'guest', manifest: rejected.manifest, mediaType: rejected.mediaType }], imageBlobs(rejected));
    expect((await failure(asGuest('push', layout, at(usersRepo, ':guest')))).stderr).toMatch(/does not grant push/);
    await admin.expectNothingStored(usersRepo, 'guest', rejected);
    expect((await failure(asGuest('tag', at(usersRepo, ':dev'), 'guest-tag'))).stderr).toMatch(/does not grant push/);
    expect(await admin.tags(usersRepo)).toEqual(['dev']);
  });

  it('refuses a login whose password is wrong at the first request', async () => {
    const crane = await craneAs('wrong', { ...developer, password: 'not-the-password' });
    const err = await failure(crane('ls', at(repo)));
    expect(err.stderr).toMatch(/GET http:\S+\/token\S*: UNAUTHORIZED: authentication failed/);
  });
});

describe('oras', () => {
  let env: Record<string, string>;
  const oras = (cwd: string, ...args: string[]) => run(tool('oras'), [...args, '--plain-http'], { env, cwd, timeoutMs: 60_000 });
  const ARTIFACT_TYPE = 'application/vnd.wharf.test.artifact';
  const SIGNATURE_TYPE = 'application/vnd.wharf.test.signature';

  beforeAll(async () => {
    env = await isolatedEnv('oras');
  });

  it('refuses `oras login` with a wrong password', async () => {
    const err = await failure(oras(work, 'login', '-u', privateCi.username, '-p', 'wrong-secret', registry.host));
    expect(err.stderr).toMatch(/unauthorized: authentication failed/);
    // A refused login stores no credentials.
    const config = join(env.DOCKER_CONFIG!, 'config.json');
    expect((await exists(config)) ? await readFile(config, 'utf8') : '').not.toContain(registry.host);
  });

  it('pushes an artifact, attaches a referrer and discovers it after `oras login`', async () => {
    await oras(work, 'login', '-u', privateCi.username, '-p', privateCi.password, registry.host);
    const repo = `${PRIVATE}/oras`;
    const ref = `${registry.host}/${repo}:v1`;
    const dir = await freshDir('oras-src');
    const payload = randomBytes(32 * 1024);
    const signature = Buffer.from(JSON.stringify({ signed: true, nonce: randomBytes(8).toString('hex') }));
    await writeFile(join(dir, 'payload.bin'), payload);
    await writeFile(join(dir, 'signature.json'), signature);

    const pushed = JSON.parse((await oras(dir, 'push', '--format', 'json', '--artifact-type', ARTIFACT_TYPE, ref, 'payload.bin:application/octet-stream')).stdout) as { digest: string };
    expect(await admin.digest(repo, 'v1')).toBe(pushed.digest);
    expect((await admin.getBlob(repo, sha256(payload))).equals(payload)).toBe(true);

    const attached = JSON.parse(
      (await oras(dir, 'attach', '--format', 'json', '--artifact-type', SIGNATURE_TYPE, '--annotation', 'org.wharf.test=attached', ref, 'signature.json:application/json')).stdout,
    ) as { digest: string };
    const referrers = (await (await admin.fetch(`/v2/${repo}/referrers/${pushed.digest}`)).json()) as { manifests: { digest: string; artifactType: string }[] };
    expect(referrers.manifests).toMatchObject([{ digest: attached.digest, artifactType: SIGNATURE_TYPE }]);
    expect(await admin.tags(repo)).toEqual(['v1']);

    const discovered = JSON.parse((await oras(dir, 'discover', '--format', 'json', ref)).stdout) as { digest: string; referrers: { digest: string; artifactType: string }[] };
    expect(discovered.digest).toBe(pushed.digest);
    expect(discovered.referrers).toMatchObject([{ digest: attached.digest, artifactType: SIGNATURE_TYPE }]);

    const out = await freshDir('oras-pull');
    await oras(out, 'pull', ref);
    expect((await readFile(join(out, 'payload.bin'))).equals(payload)).toBe(true);
  });
});

describe('regctl', () => {
  let env: Record<string, string>;
  const regctl = (...args: string[]) => run(tool('regctl'), args, { env, timeoutMs: 60_000 });
  const at = (repo: string, ref = '') => `${registry.host}/${repo}${ref}`;
  const repo = `${PRIVATE}/regctl`;

  beforeAll(async () => {
    env = await isolatedEnv('regctl');
    await regctl('registry', 'set', '--tls', 'disabled', registry.host);
  });

  it('refuses `regctl registry login` with a wrong password', async () => {
    // regctl pings /v2/, is challenged, and the token request with the wrong secret is refused.
    const err = await failure(regctl('registry', 'login', registry.host, '--user', privateCi.username, '--pass', 'wrong-secret'));
    expect(err.stderr).toMatch(/failed to ping registry \S+: unauthorized/);
  });

  it('copies an image in and out and lists tags after `regctl registry login`', async () => {
    await regctl('registry', 'login', registry.host, '--user', privateCi.username, '--pass', privateCi.password);
    const config = JSON.parse(await readFile(env.REGCTL_CONFIG!, 'utf8')) as { hosts: Record<string, { tls?: string; user?: string }> };
    expect(config.hosts[registry.host]).toMatchObject({ tls: 'disabled', user: privateCi.username });

    await regctl('image', 'copy', `ocidir://${imageLayout}:v1`, at(repo, ':v1'));
    await admin.expectImage(repo, 'v1', image);
    await regctl('image', 'copy', at(repo, ':v1'), at(repo, ':v2'));
    expect((await regctl('tag', 'ls', at(repo))).stdout.trim().split('\n')).toEqual(['v1', 'v2']);
    expect(await admin.tags(repo)).toEqual(['v1', 'v2']);
    expect((await regctl('image', 'digest', at(repo, ':v2'))).stdout.trim()).toBe(image.manifest.digest);

    const out = await freshDir('regctl-pull');
    await regctl('image', 'copy', at(repo, ':v2'), `ocidir://${out}:v2`);
    await expectImageInLayout(await readOciLayout(out), 'v2', image);
  });
});

describe('containerd', () => {
  let containerd: Containerd;
  const repo = `${PRIVATE}/containerd`;

  beforeAll(async () => {
    // Pushed over HTTP with an admin token, so this block depends on no other client.
    containerd = await startContainerd();
    await admin.pushImage(repo, 'v1', image);
    await admin.pushImage(`${PUBLIC}/containerd`, 'v1', image);
  });

  afterAll(async () => {
    await containerd?.stop();
  });

  const pull = (ref: string, ...extra: string[]) =>
    containerd.ctr(['images', 'pull', '--plain-http', '--snapshotter', containerd.snapshotter, '--platform', 'linux/amd64', ...extra, ref]);

  /** `ctr images ls` as ref → digest. */
  async function listImages(): Promise<Map<string, string>> {
    const lines = (await containerd.ctr(['images', 'ls'])).stdout.trim().split('\n').slice(1);
    return new Map(
      lines.filter((l) => l.trim()).map((line) => {
        const [ref, , digest] = line.trim().split(/\s+/);
        return [ref!, digest!];
      }),
    );
  }

  it('refuses `ctr images pull` of a private project without --user', async () => {
    const ref = `${registry.host}/${repo}:v1`;
    const err = await failure(pull(ref));
    expect(err.stderr).toMatch(/pull access denied.*insufficient_scope/);
    expect((await listImages()).has(ref)).toBe(false);
  });

  it('pulls a private image with `ctr images pull --user <robot>:<secret>`', async () => {
    const ref = `${registry.host}/${repo}:v1`;
    try {
      await pull(ref, '--user', `${privateReader.username}:${privateReader.password}`);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- containerd log ---\n${containerd.log().slice(-8192)}`);
    }
    expect((await listImages()).get(ref)).toBe(image.manifest.digest);
    for (const blob of imageBlobs(image)) expect((await containerd.ctr(['content', 'get', blob.digest])).stdoutBytes.equals(blob.data), blob.digest).toBe(true);
  });

  it('pulls from a public project without --user', async () => {
    const ref = `${registry.host}/${PUBLIC}/containerd:v1`;
    await pull(ref);
    expect((await listImages()).get(ref)).toBe(image.manifest.digest);
  });
});
