// Push latency with no webhook, with a webhook to a receiver that answers at once, and with a
// webhook to a receiver that never answers (issue 21: "a receiver that hangs does not slow
// pushes"). One Wharf process (auth off, embedded database), one receiver in this process;
// each phase pushes the same number of small images (config, one layer, manifest) one after
// another into its own project and reports the median and p95 of the whole push.
//   node dist/bench/src/webhook-push-latency.js [--pushes 100]
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from './paths.js';
import { num, table } from './report/format.js';
import { median, quantile } from './util/stats.js';

const digest = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function ok(res: Promise<Response>, expected: number, what: string): Promise<Response> {
  const r = await res;
  if (r.status !== expected) throw new Error(`${what}: ${r.status} ${await r.text()}`);
  await r.arrayBuffer();
  return r;
}

async function pushImage(base: string, repo: string, tag: string): Promise<void> {
  const layer = randomBytes(4096);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digest(layer)] }, nonce: randomBytes(8).toString('hex') }));
  for (const blob of [layer, config]) {
    await ok(fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${digest(blob)}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: blob }), 201, 'blob');
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digest(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digest(layer), size: layer.length }],
    }),
  );
  await ok(fetch(`${base}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest }), 201, 'manifest');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { pushes: { type: 'string', default: '100' } } });
  const pushes = Number(values.pushes);
  const held = new Set<ServerResponse>();
  let answered = 0;
  const receiver = createServer((req, res) => {
    req.resume();
    if (req.url === '/hang') held.add(res);
    else req.on('end', () => void (answered++, res.end('ok')));
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const target = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  const dataDir = await mkdtemp(join(tmpdir(), 'wharf-bench-webhooks-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const base = `http://127.0.0.1:${port}`;
  const proc = spawn(process.execPath, [join(repoRoot, 'dist/registry/src/main.js'), '--addr', `127.0.0.1:${port}`, '--data-dir', dataDir, '--auth', 'none', '--log-level', 'error'], {
    env: { ...process.env, WHARF_WEBHOOKS_ALLOW_PRIVATE_TARGETS: 'true', WHARF_WEBHOOKS_TIMEOUT: '5m' },
    stdio: 'ignore',
  });
  try {
    for (let i = 0; ; i++) {
      if ((await fetch(`${base}/readyz`).catch(() => undefined))?.ok) break;
      if (i > 1200) throw new Error('registry did not become ready');
      await new Promise((r) => setTimeout(r, 100));
    }
    const api = (path: string, body: unknown) => ok(fetch(`${base}/api/v1${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }), 201, path);
    const phases = [
      { name: 'no webhook', project: 'plain' },
      { name: 'webhook, receiver answers 200', project: 'answered', url: `${target}/ok` },
      { name: 'webhook, receiver never answers', project: 'hanging', url: `${target}/hang` },
    ];
    const rows: string[][] = [];
    for (const phase of phases) {
      await api(`/projects/${phase.project}`, {});
      if (phase.url) await api(`/projects/${phase.project}/webhooks/bench`, { url: phase.url, events: ['artifact.pushed', 'tag.created'], secret: 'bench-secret' });
      await pushImage(base, `${phase.project}/warmup`, 'w');
      const times: number[] = [];
      for (let i = 0; i < pushes; i++) {
        const started = performance.now();
        await pushImage(base, `${phase.project}/app`, `t${i}`);
        times.push(performance.now() - started);
      }
      rows.push([phase.name, String(pushes), num(median(times)), num(quantile(times, 0.95)), String(held.size)]);
    }
    console.log(`Push latency (ms) with webhooks; ${pushes} sequential pushes per phase, Wharf with the embedded database, auth off.\n`);
    console.log(table(['phase', 'pushes', 'median ms', 'p95 ms', 'deliveries held open by the hanging receiver at the end'], rows));
    console.log(`\nDeliveries answered by the 200 receiver: ${answered}.`);
  } finally {
    proc.kill('SIGTERM');
    for (const res of held) res.destroy();
    receiver.closeAllConnections();
    receiver.close();
    await new Promise((r) => proc.once('exit', r));
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
