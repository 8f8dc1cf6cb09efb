import { chmod, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseOptions } from './options.js';
import type { WorkloadId } from './report/results.js';
import { WORKLOADS } from './run.js';
import { writePullBlob } from './pull-blob.js';
import { RssSampler } from './rss.js';
import { prepareTarget } from './setup.js';
import { startPostgres, type PostgresServer } from './targets/postgres.js';
import { startWharf } from './targets/wharf.js';
import { blobPull } from './workloads/blob-pull.js';
import { manifestGet } from './workloads/manifest-get.js';
import { monolithicPush } from './workloads/monolithic-push.js';
import { smallPush } from './workloads/small-push.js';
import { monotonicUs, summarizeProfile, type CpuProfile, type TimeWindow } from './report/cpu-profile.js';

const USAGE = `usage: node dist/bench/src/profile.js --workload W [--target wharf-pglite|wharf-postgres] [--seconds S] [--top N] [--keep DIR]
  Runs one bench workload against Wharf started with \`node --cpu-prof\` and prints where the
  registry process spent its CPU while the workload ran (start-up and setup excluded): the
  hottest functions by self time and the share per module.
  W is one of ${WORKLOADS.join(', ')}.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      workload: { type: 'string' },
      target: { type: 'string', default: 'wharf-pglite' },
      seconds: { type: 'string', default: '10' },
      top: { type: 'string', default: '30' },
      keep: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const workload = values.workload as WorkloadId;
  if (values.help || !WORKLOADS.includes(workload)) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(values.help ? 0 : 2);
  }
  const seconds = Number(values.seconds);
  const bench = parseOptions([]);
  const dir = values.keep ?? (await mkdtemp(join(tmpdir(), 'wharf-profile-')));
  await mkdir(dir, { recursive: true });
  // Reachable by PostgreSQL, which drops root for its own user.
  await chmod(dir, 0o755);
  const profDir = join(dir, 'cpu-profiles');
  let pg: PostgresServer | undefined;
  try {
    if (values.target === 'wharf-postgres') pg = await startPostgres(join(dir, 'postgres'));
    const target = await startWharf(
      { ...(pg && { databaseUrl: pg.url }), nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] },
      { dir },
    );
    let summary: string;
    let window: TimeWindow | undefined;
    if (target.pid === undefined) throw new Error(`${target.label} has no process id`);
    const sampler = new RssSampler(target.pid);
    try {
      const blob = await writePullBlob(join(dir, 'pull.blob'), bench.blobPull.sizeBytes);
      const prepared = await prepareTarget(target, blob);
      sampler.start();
      const fromUs = monotonicUs();
      switch (workload) {
        case 'blobPull':
          summary = `${(await blobPull(prepared.blobUrl, { ...bench.blobPull, durationS: seconds, workDir: dir })).mibPerS.toFixed(0)} MiB/s`;
          break;
        case 'manifestGet': {
          const r = await manifestGet(prepared.manifestUrl!, { ...bench.manifestGet, durationS: seconds, workDir: dir });
          summary = `${r.rps.toFixed(0)} requests/s, p99 ${r.p99Ms.toFixed(1)} ms`;
          break;
        }
        case 'monolithicPush': {
          const r = await monolithicPush(target.origin, prepared.uploadShape!, { ...bench.monolithicPush, repo: 'bench/push', tagPrefix: 'p' });
          summary = `${r.pushesPerS.toFixed(1)} pushes/s`;
          break;
        }
        case 'smallPush': {
          const r = await smallPush(target.origin, { ...bench.smallPush, durationS: seconds, repoPrefix: 'bench' });
          summary = `${r.pushesPerS.toFixed(1)} pushes/s (${r.pushes} pushes)`;
          break;
        }
      }
      window = { fromUs, toUs: monotonicUs() };
    } finally {
      const peak = sampler.stop();
      await target.stop();
      process.stdout.write(`peak RSS during the workload: ${(peak / 2 ** 20).toFixed(1)} MB\n`);
    }
    process.stdout.write(`${workload} on ${target.label}: ${summary}\n\n`);
    // Node.js writes one profile per thread, named CPU.<date>.<time>.<pid>.<thread>.<seq>: thread 0
    // is the main thread; on PGlite, thread 1 is the embedded database's (metadata/pglite-thread.ts).
    const files = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile'));
    const threadOf = (f: string) => Number(/\.(\d+)\.\d+\.cpuprofile$/.exec(f)?.[1] ?? NaN);
    const main = files.find((f) => threadOf(f) === 0);
    if (!main) throw new Error(`no main-thread profile was written to ${profDir}`);
    for (const file of [main, ...files.filter((f) => f !== main).sort()]) {
      const profile = JSON.parse(await readFile(join(profDir, file), 'utf8')) as CpuProfile;
      process.stdout.write(`${file === main ? 'main thread' : `thread ${threadOf(file)} (the embedded database)`}:\n${summarizeProfile(profile, Number(values.top), window)}\n`);
      if (values.keep) process.stdout.write(`profile: ${join(profDir, file)} (open in Chrome DevTools)\n\n`);
    }
  } finally {
    await pg?.stop();
    if (!values.keep) await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`profile: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
