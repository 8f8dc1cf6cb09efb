// Replication throughput (issue 20): Wharf → Wharf with a push policy, against
// `skopeo sync` and `regctl image copy` over the same pair of registries (both Wharf, as
// processes, auth off, filesystem storage). Each method copies into a fresh destination,
// so none finds blobs another already sent. Usage:
//   node dist/bench/src/replication.js [--quick] [--rounds N] [--out bench/results/<file>.md]
// BENCH_ONLY=<method name prefix> runs one method; WHARF_REPLICATION_CHUNK_SIZE is passed
// to the source registry (to compare chunked and monolithic blob uploads). BENCH_MAIN runs
// another build of the registry (before/after comparisons); BENCH_SOURCE_NODE_ARGS and
// BENCH_DESTINATION_NODE_ARGS add node options to the source and destination registries (e.g. `--cpu-prof --cpu-prof-dir=tmp/prof`).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeMachine, uptime } from './machine.js';
import { exec } from './util/exec.js';
import { median } from './util/stats.js';

const MAIN = resolve(process.env.BENCH_MAIN ?? 'dist/registry/src/main.js');
const TOOLS = resolve('.tools/bin');
const MiB = 1024 * 1024;
const quick = process.argv.includes('--quick');
const roundsIndex = process.argv.indexOf('--rounds');
const rounds = roundsIndex > 0 ? Number(process.argv[roundsIndex + 1]) : quick ? 1 : 3;
if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds takes a whole number from 1');
const outIndex = process.argv.indexOf('--out');
const out = outIndex > 0 ? process.argv[outIndex + 1] : undefined;

interface Registry {
  url: string;
  host: string;
  child: ChildProcess;
  dir: string;
}

async function freePort(): Promise<number> {
  return new Promise((done) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

async function startWharf(nodeArgs: string[] = []): Promise<Registry> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-bench-repl-'));
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, MAIN, '--addr', `127.0.0.1:${port}`, '--data-dir', dir], {
    env: { PATH: process.env.PATH ?? '', WHARF_AUTH_MODE: 'none', WHARF_LOG_LEVEL: 'error', WHARF_GC_SCHEDULE: 'off', WHARF_JOBS_POLL_INTERVAL: '200ms', ...(process.env.WHARF_REPLICATION_CHUNK_SIZE && { WHARF_REPLICATION_CHUNK_SIZE: process.env.WHARF_REPLICATION_CHUNK_SIZE }) },
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 180_000; ; ) {
    if ((await fetch(`${url}/readyz`).then((r) => r.status, () => 0)) === 200) break;
    if (Date.now() > deadline) throw new Error('registry not ready');
    await sleep(200);
  }
  return { url, host: `127.0.0.1:${port}`, child, dir };
}

async function stopWharf(r: Registry): Promise<void> {
  const exited = new Promise((done) => r.child.once('exit', done));
  r.child.kill('SIGTERM');
  await exited;
  await rm(r.dir, { recursive: true, force: true });
}

async function api(r: Registry, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${r.url}/api/v1${path}`, { method, headers: body ? { 'Content-Type': 'application/json' } : {}, ...(body !== undefined && { body: JSON.stringify(body) }) });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** The command as run, with the environment variables that change what runs. */
function commandLine(): string {
  const env = ['BENCH_ONLY', 'BENCH_WORKLOADS', 'BENCH_MAIN', 'WHARF_REPLICATION_CHUNK_SIZE'].filter((name) => process.env[name]).map((name) => `${name}=${JSON.stringify(process.env[name])} `);
  return `${env.join('')}node dist/bench/src/replication.js${quick ? ' --quick' : ''} --rounds ${rounds}${out ? ` --out ${out}` : ''}`;
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const digest = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Pushes a one-layer image of `size` random bytes (chunked, 64 MiB at a time). */
async function pushImage(r: Registry, repo: string, size: number): Promise<void> {
  const layer = randomBytes(size);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digest(layer)] } }));
  for (const blob of [layer, config]) {
    const started = await fetch(`${r.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    let location = new URL(started.headers.get('location')!, r.url).href;
    for (let offset = 0; offset < blob.length; offset += 64 * MiB) {
      const chunk = blob.subarray(offset, Math.min(offset + 64 * MiB, blob.length));
      const res = await fetch(location, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': `${offset}-${offset + chunk.length - 1}` }, body: chunk });
      location = new URL(res.headers.get('location')!, r.url).href;
    }
    const done = await fetch(`${location}${location.includes('?') ? '&' : '?'}digest=${digest(blob)}`, { method: 'PUT' });
    if (done.status !== 201) throw new Error(`push ${repo}: ${done.status}`);
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digest(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digest(layer), size: layer.length }],
  });
  const res = await fetch(`${r.url}/v2/${repo}/manifests/v1`, { method: 'PUT', headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
  if (res.status !== 201) throw new Error(`manifest ${repo}: ${res.status}`);
}

/** The execution's times and its first tasks' logs (BENCH_TASK_LOGS=1: where the time goes). */
async function printTaskLogs(source: Registry, execution: { id: string; createdAt: string; startedAt: string; endedAt: string }): Promise<void> {
  console.log(`execution created ${execution.createdAt} started ${execution.startedAt} ended ${execution.endedAt}`);
  const tasks = (await api(source, 'GET', `/replication/executions/${execution.id}/tasks?limit=3`)).items as { id: string; createdAt: string; startedAt: string; endedAt: string }[];
  for (const task of tasks) {
    console.log(`task created ${task.createdAt} started ${task.startedAt} ended ${task.endedAt}`);
    console.log(await (await fetch(`${source.url}/api/v1/replication/executions/${execution.id}/tasks/${task.id}/log`)).text());
  }
}

interface Method {
  /** Untimed: the destination project and the method's configuration. */
  prepare(source: Registry, destination: Registry, repos: string[], work: string): Promise<void>;
  /** Timed: the copy, until the last image is at the destination. */
  run(source: Registry, destination: Registry, repos: string[], work: string): Promise<void>;
}

const methods: Record<string, Method> = {
  'Wharf replication (push policy)': {
    async prepare(source, destination, repos) {
      await api(destination, 'PUT', '/projects/dst', {});
      await api(source, 'PUT', '/registries/dst', { provider: 'wharf', url: destination.url });
      await api(source, 'PUT', '/replication/policies/bench', { mode: 'push', registry: 'dst', filters: { name: { matches: [repos[0]!.replace(/-\d+$/, '-*')] } }, destination: { namespace: 'dst', flattening: 'one' } });
    },
    async run(source) {
      const started = await api(source, 'POST', '/replication/executions', { policy: 'bench' });
      for (;;) {
        const e = await api(source, 'GET', `/replication/executions/${started.id}`);
        if (e.status === 'Succeeded') {
          if (process.env.BENCH_TASK_LOGS) await printTaskLogs(source, e);
          return;
        }
        if (e.status !== 'Pending' && e.status !== 'InProgress') throw new Error(`execution ${e.status}: ${JSON.stringify(e)}`);
        await sleep(50);
      }
    },
  },
  'skopeo sync': {
    async prepare(source, destination, repos, work) {
      await api(destination, 'PUT', '/projects/dst', {});
      const yaml = [`${source.host}:`, '  tls-verify: false', '  images:', ...repos.map((r) => `    ${r}: [v1]`), ''].join('\n');
      await writeFile(join(work, 'sync.yaml'), yaml);
      await writeFile(join(work, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    },
    async run(_source, destination, _repos, work) {
      const res = await exec('skopeo', ['--policy', join(work, 'policy.json'), 'sync', '--src', 'yaml', '--dest', 'docker', '--dest-tls-verify=false', '--preserve-digests', join(work, 'sync.yaml'), `${destination.host}/dst`], { timeoutMs: 3_600_000 });
      if (res.code !== 0) throw new Error(`skopeo sync: ${res.stderr.slice(-2000)}`);
    },
  },
  'regctl image copy': {
    async prepare(_source, destination) {
      await api(destination, 'PUT', '/projects/dst', {});
    },
    async run(source, destination, repos, work) {
      const env = ['--host', `reg=${source.host},tls=disabled`, '--host', `reg=${destination.host},tls=disabled`];
      for (const repo of repos) {
        const res = await exec(join(TOOLS, 'regctl'), [...env, 'image', 'copy', `${source.host}/${repo}:v1`, `${destination.host}/dst/${repo.split('/').slice(1).join('/')}:v1`], { timeoutMs: 3_600_000, cwd: work });
        if (res.code !== 0) throw new Error(`regctl: ${res.stderr.slice(-2000)}`);
      }
    },
  },
};

async function main(): Promise<void> {
  const workloads = quick
    ? [
        { name: '1 × 64 MiB', count: 1, size: 64 * MiB },
        { name: '20 × 1 MiB', count: 20, size: MiB },
      ]
    : [
        { name: '1 × 1 GiB', count: 1, size: 1024 * MiB },
        { name: '200 × 1 MiB', count: 200, size: MiB },
      ];
  // BENCH_WORKLOADS=<name prefix> runs only the workloads whose name starts with it (e.g. "1 ×").
  const workloadsRun = workloads.filter((w) => !process.env.BENCH_WORKLOADS || w.name.startsWith(process.env.BENCH_WORKLOADS));
  const machine = await describeMachine();
  const before = await uptime();
  const rows: string[] = [];
  const source = await startWharf(process.env.BENCH_SOURCE_NODE_ARGS?.split(' ').filter(Boolean));
  try {
    await api(source, 'PUT', '/projects/src', {});
    for (const workload of workloadsRun) {
      const repos = Array.from({ length: workload.count }, (_, i) => `src/${workload.name.replace(/\W+/g, '-').toLowerCase()}-${i}`);
      for (const repo of repos) await pushImage(source, repo, workload.size);
      // Untimed: the pushed files reach the disk now, so the first method to read them does not pay for their writeback.
      await exec('sync', []);
      const runs: Record<string, { seconds: number; cpu: number[] }[]> = {};
      const chosen = Object.entries(methods).filter(([n]) => !process.env.BENCH_ONLY || n.startsWith(process.env.BENCH_ONLY));
      for (let round = 0; round < rounds; round++) {
        // The order rotates from round to round, so that no method always runs first or last.
        const order = chosen.map((_, i) => chosen[(i + round) % chosen.length]!);
        for (const [name, method] of order) {
          const destination = await startWharf(process.env.BENCH_DESTINATION_NODE_ARGS?.split(' ').filter(Boolean));
          const work = await mkdtemp(join(tmpdir(), 'wharf-bench-repl-work-'));
          let run;
          try {
            await method.prepare(source, destination, repos, work);
            const cpu0 = [cpuSeconds(source.child.pid), cpuSeconds(destination.child.pid)];
            const t0 = performance.now();
            await method.run(source, destination, repos, work);
            run = { seconds: (performance.now() - t0) / 1000, cpu: [cpuSeconds(source.child.pid) - cpu0[0]!, cpuSeconds(destination.child.pid) - cpu0[1]!] };
          } finally {
            await stopWharf(destination);
            await rm(work, { recursive: true, force: true });
          }
          (runs[name] ??= []).push(run);
          const mibs = (workload.count * workload.size) / MiB / run.seconds;
          console.log(`${workload.name}  round ${round + 1}  ${name}: ${run.seconds.toFixed(2)} s, ${mibs.toFixed(1)} MiB/s; CPU s source ${run.cpu[0]!.toFixed(2)}, destination ${run.cpu[1]!.toFixed(2)}`);
        }
      }
      const seconds = Object.fromEntries(Object.entries(runs).map(([name, r]) => [name, median(r.map((x) => x.seconds))]));
      const fastest = Math.min(seconds['skopeo sync'] ?? Infinity, seconds['regctl image copy'] ?? Infinity);
      for (const [name, r] of Object.entries(runs)) {
        const s = seconds[name]!;
        const cpu = [0, 1].map((i) => median(r.map((x) => x.cpu[i]!)).toFixed(2));
        rows.push(`| ${workload.name} | ${name} | ${s.toFixed(2)} | ${r.map((x) => x.seconds.toFixed(2)).join(', ')} | ${((workload.count * workload.size) / MiB / s).toFixed(1)} | ${cpu[0]} / ${cpu[1]} | ${name.startsWith('Wharf') ? `${(fastest / s).toFixed(2)}×` : ''} |`);
      }
    }
  } finally {
    await stopWharf(source);
  }
  const report = [
    `# Replication throughput: Wharf → Wharf (${new Date().toISOString().slice(0, 10)}${quick ? ', quick' : ''})`,
    '',
    `Command: \`${commandLine()}\` (after \`npm run build\`). Each round runs every method once, in an order that rotates from round to round; CPU seconds are what the source and destination registry processes used during the copy (from /proc; regctl and skopeo are separate processes, not counted).`,
    '',
    `Machine: ${machine.nproc} CPUs (${machine.cpuModel}), ${machine.memoryGiB.toFixed(1)} GiB, Linux ${machine.kernel}. Load before: \`${before}\`; after: \`${await uptime()}\`.`,
    '',
    `Source and destination: Wharf processes on loopback (PGlite, filesystem, auth off); a fresh destination per method. One-layer images of random bytes, each under tag v1 in its own repository. Time from the start of the copy to the last image at the destination (Wharf: from POST of the execution to its status Succeeded, polled every 50 ms); the destination project and each method's configuration (Wharf: the remote registry and the policy; skopeo: its YAML) are set up before, untimed. Goal (issue 20): Wharf ≥ 1.0× the faster tool.`,
    '',
    '| Workload | Method | Seconds (median) | Seconds, each round | MiB/s (median) | CPU s, source / destination (median) | Wharf vs the faster tool |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
  ].join('\n');
  console.log(report);
  if (out) await writeFile(out, report);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
