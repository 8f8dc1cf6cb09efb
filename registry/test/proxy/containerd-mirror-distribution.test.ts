// Transparent mirroring: containerd (Debian's, started by the test) pulls
// docker.io/library/app:1 with a hosts dir written by the node agent's writer, and the
// image arrives through Wharf's ?ns= mapping. The upstream behind the proxy-cache
// project is a stand-in for Docker Hub: Debian's docker-registry (distribution 2.8.2).
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { syncHostsDir } from '../../../operator/src/node-agent/index.js';
import { ManagementClient } from '../support/auth.js';
import { startContainerd, type Containerd } from '../support/clients/containerd.js';
import { buildImage, errorCode, type Image } from '../support/oci.js';
import { removeDir, startRegistry, tempDir, tokenAuth, type RunningRegistry } from '../support/registry.js';
import { pushToUpstream, startDistribution, startUpstreamProxy, type Distribution, type UpstreamProxy } from '../support/upstream.js';
import { parseChallenge } from '../support/challenge.js';

interface LogLine {
  msg: string;
  url?: string;
  status?: number;
}

let work: string;
let upstream: Distribution;
let counter: UpstreamProxy;
let wharf: RunningRegistry;
let containerd: Containerd;
let image: Image;
const logs: LogLine[] = [];

beforeAll(async () => {
  work = await tempDir('wharf-proxy-ctr-');
  upstream = await startDistribution(join(work, 'upstream'));
  counter = await startUpstreamProxy(upstream.url);
  image = await buildImage({ layers: 2 });
  await pushToUpstream(upstream.url, 'library/app', '1', image);
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  wharf = await startRegistry({ auth: tokenAuth(), logger });
  const api = new ManagementClient(wharf.url);
  await api.ok('PUT', '/projects/hub', { public: true, proxyCache: { provider: 'docker-hub', url: counter.url, mirrorOf: ['docker.io'] } });
  await api.ok('PUT', '/projects/private-quay', { public: false, proxyCache: { provider: 'quay', url: counter.url, mirrorOf: ['quay.io'] } });
  containerd = await startContainerd();
}, 300_000);

afterAll(async () => {
  await containerd?.stop();
  await wharf?.stop();
  await counter?.close();
  await upstream?.stop();
  if (work) await removeDir(work);
});

describe('containerd mirror through ?ns= (stand-in: distribution 2.8.2)', () => {
  it('pulls docker.io/library/app:1 through Wharf with the hosts dir the node agent writes; the log shows ?ns=docker.io', async () => {
    const hostsDir = join(work, 'certs.d');
    const report = await syncHostsDir({ configPath: hostsDir, hosts: [{ host: 'docker.io' }], endpoint: { url: wharf.url }, mode: 'replace' });
    expect(report.written).toEqual(['docker.io/hosts.toml']);
    counter.reset();
    // Docker Hub itself is out of reach here: the pull can only succeed through Wharf.
    await containerd.ctr(['images', 'pull', '--hosts-dir', hostsDir, '--snapshotter', containerd.snapshotter, 'docker.io/library/app:1'], 120_000);
    const listed = (await containerd.ctr(['images', 'ls'])).stdout;
    expect(listed).toContain('docker.io/library/app:1');
    expect(listed).toContain(image.manifest.digest);
    // A response's log line is written once it has ended, which may be just after ctr is done.
    await vi.waitFor(
      () => {
        const mirrored = logs.filter((l) => l.msg === 'request' && l.status === 200 && l.url?.endsWith('?ns=docker.io')).map((l) => l.url);
        expect(mirrored).toContain('/v2/library/app/manifests/1?ns=docker.io');
        for (const blob of [image.config, ...image.layers]) expect(mirrored).toContain(`/v2/library/app/blobs/${blob.digest}?ns=docker.io`);
      },
      { timeout: 10_000 },
    );
    // Cached in the mirroring project under the upstream's name.
    expect((await wharf.app.metadata.manifests.byTag('hub/library/app', '1', false))?.digest).toBe(image.manifest.digest);
    expect(counter.count('GET', /\/v2\/library\/app\/manifests\/1$/)).toBe(1);
  });

  it('answers an ns that no project mirrors with 404 NAME_UNKNOWN, not a pass-through', async () => {
    const res = await fetch(`${wharf.url}/v2/library/app/manifests/1?ns=ghcr.io`);
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe('NAME_UNKNOWN');
    // override_path mirrors send ns too, with the project in the path: taken as addressed.
    const addressed = await fetch(`${wharf.url}/v2/hub/library/app/manifests/1?ns=ghcr.io`);
    expect(addressed.status).toBe(401);
    expect(parseChallenge(addressed.headers.get('www-authenticate')!).params.scope).toBe('repository:hub/library/app:pull');
    // ns given twice, or as a list, is refused rather than taken for a request without ns.
    for (const query of ['ns=docker.io&ns=ghcr.io', 'ns[]=docker.io']) {
      const twice = await fetch(`${wharf.url}/v2/library/app/manifests/1?${query}`);
      expect(twice.status, query).toBe(400);
      expect(await errorCode(twice)).toBe('NAME_INVALID');
    }
  });

  it('asks for a token with the mirroring project in the challenge scope (private project: the usual token flow)', async () => {
    const res = await fetch(`${wharf.url}/v2/team/tool/manifests/1?ns=quay.io`);
    expect(res.status).toBe(401);
    expect(parseChallenge(res.headers.get('www-authenticate')!).params.scope).toBe('repository:private-quay/team/tool:pull');
    // docker.io's aliases map to the same project.
    const alias = await fetch(`${wharf.url}/v2/library/app/manifests/1?ns=registry-1.docker.io`);
    expect(parseChallenge(alias.headers.get('www-authenticate')!).params.scope).toBe('repository:hub/library/app:pull');
  });
});
