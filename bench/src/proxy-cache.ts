// `make bench-proxy`: pulls through proxy caches (issue 18), see bench/README.md "Proxy cache".
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { describeMachine, uptime, waitForQuiet } from './machine.js';
import { repoRoot, toolsBin } from './paths.js';
import { SHAPES } from './proxy-cache/images.js';
import { renderProxyReport } from './proxy-cache/report.js';
import { runProxyRounds, type Subject } from './proxy-cache/run.js';
import { startDockerRegistry, startShapedLink, startWharfProxy, startZotSync, type Upstream } from './proxy-cache/servers.js';
import { parseLinkShape } from './proxy-cache/link.js';
import { exec } from './util/exec.js';
import { goModuleVersion, nginxVersion, wharfRevision } from './versions.js';

const t0 = Date.now();
const log = (line: string) => process.stderr.write(`[bench-proxy ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);

const USAGE = `node dist/bench/src/proxy-cache.js [--quick] [--rounds N] [--warmup N] [--big-mib N] [--small-layers N] [--small-kib N]
    [--before <another build's dist/registry/src/main.js> [--before-label text]] [--zot-sync <binary>]
    [--without distribution,zot] [--images big,small] [--link-mibps N] [--link-rtt-ms N] [--out file] [--keep]`;

/** bench/results/<date>-proxy-cache.md, or -2, -3… when a run of that day exists: before/after pairs need both. */
function defaultOutput(quick: boolean, date: string): string {
  if (quick) return join(repoRoot, 'tmp', 'bench', `${date}-proxy-cache-quick.md`);
  for (let n = 1; ; n++) {
    const file = join(repoRoot, 'bench', 'results', `${date}-proxy-cache${n === 1 ? '' : `-${n}`}.md`);
    if (!existsSync(file)) return file;
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      'big-mib': { type: 'string' },
      'small-layers': { type: 'string' },
      'small-kib': { type: 'string' },
      before: { type: 'string' },
      'before-label': { type: 'string' },
      'zot-sync': { type: 'string' },
      without: { type: 'string' },
      images: { type: 'string' },
      'link-mibps': { type: 'string' },
      'link-rtt-ms': { type: 'string' },
      out: { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const quick = values.quick!;
  const rounds = Number(values.rounds ?? (quick ? 1 : 5));
  const warmupRounds = Number(values.warmup ?? (quick ? 0 : 2));
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a whole number from 1, not ${values.rounds}`);
  if (!Number.isInteger(warmupRounds) || warmupRounds < 0) throw new Error(`--warmup must be a whole number from 0, not ${values.warmup}`);
  const images = (values.images ?? 'big,small').split(',');
  const without = new Set((values.without ?? '').split(',').filter(Boolean));
  const shapes = [
    ...(images.includes('big') ? [SHAPES.big(Number(values['big-mib'] ?? (quick ? 32 : 256)))] : []),
    ...(images.includes('small') ? [SHAPES.small(Number(values['small-layers'] ?? (quick ? 8 : 40)), Number(values['small-kib'] ?? (quick ? 256 : 512)))] : []),
  ];
  const zotSync = values['zot-sync'] ?? join(toolsBin, 'zot-sync');
  const link = parseLinkShape(values['link-mibps'], values['link-rtt-ms']);
  const machine = await describeMachine();
  const uptimeBefore = await waitForQuiet(1.5, quick ? 0 : 120, log);
  const startedAt = new Date();
  const date = startedAt.toISOString().slice(0, 10);
  const dir = await mkdtemp(join(tmpdir(), 'wharf-bench-proxy-'));
  const stops: (() => Promise<void>)[] = [];
  const versions: [string, string][] = [];
  const unavailable: [string, string][] = [];
  const revision = await wharfRevision();
  const wharfLabel = 'Wharf';
  try {
    const registry = await startDockerRegistry(join(dir, 'upstream'));
    stops.push(registry.stop);
    const dockerRegistry = (await exec('dpkg-query', ['-W', '-f=${Version}', 'docker-registry'])).stdout.trim();
    versions.push(['upstream and "direct"', `Debian docker-registry ${dockerRegistry} (distribution 2.8.2), filesystem storage, in-memory blob descriptor cache, access log on (counted), a stand-in for Docker Hub`]);
    let upstream: Upstream = registry;
    if (link) {
      upstream = await startShapedLink(join(dir, 'link'), registry, link);
      stops.push(upstream.stop);
      const shaping = [
        ...(link.mibPerSecond !== undefined ? [`\`limit_rate\` ${link.mibPerSecond} MiB/s per connection`] : []),
        ...(link.rttMs !== undefined ? [`each request held ${link.rttMs} ms (\`auth_request\` to an \`echo_sleep\` location)`] : []),
      ];
      versions.push(['the link', `nginx ${await nginxVersion()} (Debian) in front of the upstream, ${shaping.join(', ')}, buffered (8 × 64 KiB, no temp file): direct pulls and every proxy reach the upstream through it`]);
    }
    const subjects: Subject[] = [{ kind: 'direct', label: 'direct from the upstream', server: upstream }];
    const wharf = await startWharfProxy(join(dir, 'wharf'), upstream.origin, wharfLabel);
    stops.push(wharf.stop);
    subjects.push({ kind: 'wharf', label: wharfLabel, server: wharf });
    versions.push([wharfLabel, `Wharf ${revision.commit}${revision.uncommitted.length > 0 ? ' + uncommitted changes' : ''}, Node.js ${process.version}, PGlite, filesystem storage, \`--auth none\`; proxy-cache project \`hub\` (provider docker-hub, manifest TTL 3600 s) and ordinary project \`local\``]);
    if (values.before) {
      const label = values['before-label'] ?? 'Wharf before';
      const before = await startWharfProxy(join(dir, 'wharf-before'), upstream.origin, label, resolve(values.before));
      stops.push(before.stop);
      subjects.push({ kind: 'wharf', label, server: before });
      versions.push([label, `the build at \`${values.before}\`, otherwise as Wharf`]);
    }
    if (!without.has('distribution')) {
      const distribution = await startDockerRegistry(join(dir, 'distribution-proxy'), { proxyOf: upstream.origin });
      stops.push(distribution.stop);
      subjects.push({ kind: 'peer', label: distribution.label, server: distribution });
      versions.push([distribution.label, `Debian docker-registry ${dockerRegistry} with \`proxy.remoteurl\` = the upstream, filesystem storage, in-memory blob descriptor cache`]);
    }
    if (!without.has('zot')) {
      if (existsSync(zotSync)) {
        try {
          const zot = await startZotSync(zotSync, join(dir, 'zot-sync'), upstream.origin);
          stops.push(zot.stop);
          subjects.push({ kind: 'peer', label: zot.label, server: zot });
          const version = await goModuleVersion(zotSync, 'zotregistry.io/zot').catch(() => 'unknown');
          versions.push([zot.label, `zot ${version} built with \`-tags sync\` (\`${relative(repoRoot, zotSync)}\`), sync extension \`onDemand: true\` for \`**\` of the upstream, filesystem storage, defaults but \`commit: true\``]);
        } catch (err) {
          unavailable.push(['zot, on-demand sync', (err as Error).message]);
        }
      } else {
        unavailable.push(['zot, on-demand sync', `${zotSync} is missing (\`make bench-tools\` builds it)`]);
      }
    }
    const measurements = await runProxyRounds(upstream, subjects, { rounds, warmupRounds, shapes, log });
    const quoted = process.argv.slice(2).map((arg) => (/^[\w./,=:-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`));
    const command = ['node dist/bench/src/proxy-cache.js', ...quoted].join(' ');
    const report = renderProxyReport({ ...(link && { link }), date, startedAt, finishedAt: new Date(), command, machine, uptimeBefore, uptimeAfter: await uptime(), rounds, warmupRounds, versions, unavailable, direct: subjects[0]!.label, wharf: wharfLabel }, measurements);
    const out = values.out ?? defaultOutput(quick, date);
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, report);
    process.stdout.write(`${report}\n`);
    log(`written to ${relative(process.cwd(), out)}`);
    return unavailable.length > 0 ? 1 : 0;
  } finally {
    for (const stop of stops.reverse()) await stop().catch((err: Error) => log(`stopping: ${err.message}`));
    if (values.keep) log(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    log(err.stack ?? err.message);
    process.exit(1);
  },
);
