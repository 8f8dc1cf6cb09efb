// The Project controller's spec.proxyCache against a real registry process (reached as an
// external Registry) and the real control plane, with the operator as a real process. Docker Hub
// cannot be reached here: the upstream is Debian's docker-registry (distribution 2.8.2) on
// loopback with htpasswd Basic auth, standing in for it. Field by field in the registry's API, the
// password never readable back, a pull through the proxy project with the Secret's credentials,
// the password sent again when the Secret changes (and not on idle passes), and a missing Secret
// or key Stalled with a clear reason.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, sha256, type Image } from '../../registry/test/support/oci.js';
import { pushToUpstream, startDistribution, type Distribution } from '../../registry/test/support/upstream.js';
import { apply, getObject, raw, ROOT, waitFor, type Clients } from './support/kube.js';
import { dockerConfigFor, pullWith } from './support/oci-clients.js';
import { condition, ProjectFixture } from './support/project-fixture.js';
import { countsAdded, REGISTRY_ADMIN_PASSWORD, type RegistryProcess } from './support/registry-process.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

const exec = promisify(execFile);
const API = 'wharf.dev/v1alpha1';
const UPSTREAM_USER = 'puller';
const UPSTREAM_PASSWORD = 'upstream-pull-secret-1';

let f: ProjectFixture;
let c: Clients;
let ns: string;
let registry: RegistryProcess;
let upstream: Distribution;
let image: Image;
let work: string;

const projectRef = (name: string) => f.projectRef(name);
const getProject = (name: string) => f.getProject(name);
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

const waitProject = (name: string, check: (p: Any) => boolean, what?: string, timeoutMs?: number) => f.waitProject(name, check, what, timeoutMs);

async function putSecret(name: string, data: Record<string, string>): Promise<Any> {
  // Replaced as a whole (a PUT), so that a key left out is really gone.
  const body = { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns }, stringData: data };
  const existing = await getObject<Any>(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns } });
  if (!existing) return raw(c, 'POST', `/api/v1/namespaces/${ns}/secrets`, body);
  return raw(c, 'PUT', `/api/v1/namespaces/${ns}/secrets/${name}`, { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata.resourceVersion } });
}

/** The manifest digest crane resolves for `ref` through Wharf, as the registry's admin. */
async function craneDigest(ref: string): Promise<string> {
  const dir = mkdtempSync(join(work, 'crane-'));
  writeFileSync(join(dir, 'config.json'), dockerConfigFor(new URL(registry.url).host, 'admin', REGISTRY_ADMIN_PASSWORD));
  const { stdout } = await exec(join(ROOT, '.tools/bin/crane'), ['digest', '--insecure', ref], { env: { ...process.env, DOCKER_CONFIG: dir }, timeout: 60_000 });
  return stdout.trim();
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'wharf-op-proxy-'));
  const htpasswd = join(work, 'htpasswd');
  writeFileSync(htpasswd, execFileSync('htpasswd', ['-nbB', UPSTREAM_USER, UPSTREAM_PASSWORD]));
  upstream = await startDistribution(join(work, 'upstream'), { htpasswd });
  image = await buildImage({ layers: 1 });
  await pushToUpstream(upstream.url, 'library/app', '1', image, basic(UPSTREAM_USER, UPSTREAM_PASSWORD));
  f = await ProjectFixture.start('proxy-projects');
  ({ c, ns, registry } = f);
});

afterAll(async () => {
  await f?.stop();
  await upstream?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('Project spec.proxyCache (upstream stand-in: distribution 2.8.2 with htpasswd on loopback)', () => {
  it('shows up in the registry field by field, with the password set but never readable back', async () => {
    await putSecret('upstream-creds', { username: UPSTREAM_USER, password: 'not-the-password' });
    await apply(c, {
      ...projectRef('hub'),
      spec: {
        registryRef: { name: 'ext' },
        visibility: 'public',
        proxyCache: { provider: 'docker-registry', url: `${upstream.url}/`, credentialsSecretRef: { name: 'upstream-creds' }, mirrorOf: ['docker.io', 'ghcr.io'], manifestTTLSeconds: 60 },
      },
    } as Any);
    const p = await waitProject('hub', (x) => condition(x, 'Ready')?.status === 'True', 'ready');
    const got = await registry.api('GET', '/projects/hub');
    expect(got.body.proxyCache).toEqual({ provider: 'docker-registry', url: upstream.url, username: UPSTREAM_USER, passwordSet: true, insecure: false, mirrorOf: ['docker.io', 'ghcr.io'], manifestTTLSeconds: 60 });
    expect(JSON.stringify(got.body)).not.toContain('not-the-password');
    const secret = await getObject<Any>(c, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'upstream-creds', namespace: ns } });
    expect(p.status.proxyCache).toEqual({ credentialsVersion: `${secret.metadata.uid}/${secret.metadata.resourceVersion}` });
    expect(JSON.stringify(p)).not.toContain('not-the-password');
  });

  it('pulls through the proxy project only with the right credentials: a Secret change sends the password again', async () => {
    const auth = dockerConfigFor(new URL(registry.url).host, 'admin', REGISTRY_ADMIN_PASSWORD);
    const ref = `${new URL(registry.url).host}/hub/library/app:1`;
    const refused = await pullWith(auth, ref);
    expect(refused.ok).toBe(false);
    expect(refused.output).toMatch(/503|unavailable|upstream/i);

    const updated = await putSecret('upstream-creds', { username: UPSTREAM_USER, password: UPSTREAM_PASSWORD });
    await waitProject('hub', (x) => x.status?.proxyCache?.credentialsVersion === `${updated.metadata.uid}/${updated.metadata.resourceVersion}`, 'sent the new password', 30_000);
    const pulled = await pullWith(auth, ref);
    expect(pulled.ok, pulled.output).toBe(true);
    expect(await craneDigest(ref)).toBe(sha256(image.manifest.data));
  });

  it('writes nothing to the registry on idle passes (the password is not re-sent while the Secret is unchanged)', async () => {
    // The pull before this cached blobs: the status's usage catches up at the next pass, which is a real change.
    const used = (await registry.api('GET', '/projects/hub')).body.usedBytes;
    await waitProject('hub', (x) => x.status?.usage?.storageBytes === used, 'usage caught up with the cached pull', 30_000);
    const before = await registry.writeCounts();
    const p = await getProject('hub');
    // Three resyncs (every 3 s) re-read the Secret and the project: no project PUT, no status write.
    await new Promise((r) => setTimeout(r, 10_000));
    expect(countsAdded(await registry.writeCounts(), before)).toEqual({});
    expect((await getProject('hub')).metadata.resourceVersion).toBe(p.metadata.resourceVersion);
  });

  it('reverts a proxy setting changed by hand through the API', async () => {
    await registry.ok('PUT', '/projects/hub', { proxyCache: { provider: 'docker-registry', url: upstream.url, mirrorOf: ['quay.io'] } });
    await waitFor('proxy settings reverted', async () => {
      const pc = (await registry.ok('GET', '/projects/hub')).proxyCache;
      return pc?.mirrorOf.join(',') === 'docker.io,ghcr.io' && pc.username === UPSTREAM_USER && pc.passwordSet && pc.manifestTTLSeconds === 60 ? true : undefined;
    }, 30_000);
  });

  it('is Stalled while the credentials Secret or one of its keys is missing, and syncs once it is there', async () => {
    await apply(c, {
      ...projectRef('quay'),
      spec: { registryRef: { name: 'ext' }, proxyCache: { provider: 'quay', url: upstream.url, credentialsSecretRef: { name: 'quay-creds' } } },
    } as Any);
    const missing = await waitProject('quay', (x) => condition(x, 'Stalled')?.status === 'True');
    expect(condition(missing, 'Stalled')).toMatchObject({ reason: 'CredentialsSecretNotFound', message: 'Secret quay-creds (spec.proxyCache.credentialsSecretRef) not found' });
    expect((await registry.api('GET', '/projects/quay')).status).toBe(404);

    await putSecret('quay-creds', { username: 'robot' });
    const noKey = await waitProject('quay', (x) => condition(x, 'Stalled')?.reason === 'CredentialsSecretKeyMissing', 'stalled on the key', 30_000);
    expect(condition(noKey, 'Stalled').message).toBe('Secret quay-creds (spec.proxyCache.credentialsSecretRef) has no password key');

    await putSecret('quay-creds', { username: 'robot', password: 'robot-password' });
    await waitProject('quay', (x) => condition(x, 'Ready')?.status === 'True', 'ready', 30_000);
    expect((await registry.ok('GET', '/projects/quay')).proxyCache).toMatchObject({ provider: 'quay', username: 'robot', passwordSet: true, mirrorOf: [], manifestTTLSeconds: 300 });
  });

  it('a mirrorOf host another project mirrors is Stalled with the registry\'s reason', async () => {
    await apply(c, { ...projectRef('hub2'), spec: { registryRef: { name: 'ext' }, proxyCache: { provider: 'docker-hub', url: upstream.url, mirrorOf: ['docker.io'] } } } as Any);
    const p = await waitProject('hub2', (x) => condition(x, 'Stalled')?.status === 'True');
    expect(condition(p, 'Stalled')).toMatchObject({ reason: 'RegistryRejected' });
    expect(condition(p, 'Stalled').message).toContain('docker.io is already mirrored by project "hub"');
  });

  it('removing spec.proxyCache makes the project ordinary again', async () => {
    const p = await getProject('quay');
    const { proxyCache: _drop, ...spec } = p.spec;
    await raw(c, 'PUT', `/apis/${API}/namespaces/${ns}/projects/quay`, { ...p, spec });
    await waitProject('quay', (x) => condition(x, 'Ready')?.status === 'True' && !x.spec.proxyCache, 'ready', 30_000);
    expect((await registry.ok('GET', '/projects/quay')).proxyCache).toBeNull();
    expect((await getProject('quay')).status.proxyCache).toBeUndefined();
  });
});
