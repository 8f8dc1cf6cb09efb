import type { MachineInfo } from '../machine.js';
import type { BenchOptions } from '../options.js';
import { mb, mib, num, ratio, table } from './format.js';
import type { MetricId, Results, WorkloadId } from './results.js';
import { judgeTargets, WHARF_VARIANTS } from './targets.js';

export interface TargetDescription {
  id: string;
  label: string;
  version: string;
}

export interface RunReport {
  date: string;
  startedAt: Date;
  finishedAt: Date;
  options: BenchOptions;
  machine: MachineInfo;
  /** `uptime` before the run (twice when the harness waited for a busy machine) and after it. */
  uptimeBefore: string[];
  uptimeAfter: string;
  /** Load averages (1 min) sampled before each round. */
  roundLoads: number[];
  /** Whether the clean page cache could be dropped after every workload (root only). */
  pageCacheDropped: boolean;
  /** Every target, in column order (nginx first), available or not. */
  targets: TargetDescription[];
  tools: { wrk: string };
  /** Registry source files that were uncommitted when Wharf was built and run. */
  wharfUncommitted: string[];
  results: Results;
}

const ROWS: Array<{ metric: MetricId; workload: WorkloadId; short: string; label: (o: BenchOptions) => string }> = [
  { metric: 'blobPull', workload: 'blobPull', short: 'Blob pull (MiB/s)', label: (o) => `Blob pull: ${mib(o.blobPull.sizeBytes)} blob, ${o.blobPull.connections} clients, ${o.blobPull.durationS} s (MiB/s)` },
  { metric: 'monolithicPush', workload: 'monolithicPush', short: 'Monolithic push (pushes/s)', label: (o) => `Monolithic push: ${o.monolithicPush.pushes} images of ${mib(o.monolithicPush.layerBytes)}, concurrency ${o.monolithicPush.concurrency} (pushes/s)` },
  { metric: 'smallPush', workload: 'smallPush', short: 'Small push (pushes/s)', label: (o) => `Small push: ${mib(o.smallPush.layerBytes)} image, zb "Push Monolith" shape, concurrency ${o.smallPush.concurrency}, ${o.smallPush.durationS} s (pushes/s)` },
  { metric: 'manifestRps', workload: 'manifestGet', short: 'Manifest GET (requests/s)', label: (o) => `Manifest GET by tag, ${o.manifestGet.connections} connections, ${o.manifestGet.durationS} s (requests/s)` },
  { metric: 'manifestP99', workload: 'manifestGet', short: 'Manifest GET p99 (ms)', label: () => 'Manifest GET p99 (ms)' },
];

function figure(results: Results, target: string, metric: MetricId, workload: WorkloadId): string {
  const failure = results.failure(target, workload);
  if (failure) return 'failed';
  if (results.unavailable.has(target)) return 'n/a';
  return num(results.median(target, metric));
}

function mainTable(r: RunReport): string {
  const { results, options } = r;
  const rows = ROWS.map(({ metric, workload, label }) => [label(options), ...r.targets.map((t) => (t.id === 'nginx' && metric !== 'blobPull' ? '—' : figure(results, t.id, metric, workload)))]);
  rows.push(['Peak RSS during the workloads (MB)', ...r.targets.map((t) => (t.id === 'nginx' ? '—' : mb(results.peakMemory(t.id))))]);
  return table(['Workload', ...r.targets.map((t) => t.label)], rows);
}

function ratioTable(r: RunReport): string {
  const { results } = r;
  const present = (id: string) => r.targets.some((t) => t.id === id) && !results.unavailable.has(id);
  const wharfs = WHARF_VARIANTS.filter(present);
  const peers = ['distribution', 'zot', 'zot-nosync', 'nginx'].filter(present);
  const labelOf = (id: string) => r.targets.find((t) => t.id === id)!.label;
  const columns = wharfs.flatMap((w) => peers.map((p) => ({ w, p })));
  const rows = ROWS.filter((row) => row.metric !== 'manifestP99').map(({ metric, label }) => [
    label(r.options).replace(/ \([^)]*\)$/, ''),
    ...columns.map(({ w, p }) => {
      if (p === 'nginx' && metric !== 'blobPull') return '—';
      return ratio(results.pairedRatio(w, p, metric));
    }),
  ]);
  return table(['Workload', ...columns.map(({ w, p }) => `${labelOf(w)} ÷ ${labelOf(p)}`)], rows);
}

function targetTable(r: RunReport): string {
  const wharfs = WHARF_VARIANTS.filter((w) => r.targets.some((t) => t.id === w));
  const labelOf = (id: string) => r.targets.find((t) => t.id === id)!.label;
  const rows = judgeTargets(r.results).map((v) => [v.goal, ...wharfs.map((w) => v.cells.get(w)?.text ?? '—')]);
  return table(['Target (issue 6)', ...wharfs.map(labelOf)], rows);
}

function roundsTable(r: RunReport): string {
  const rows: string[][] = [];
  for (const { metric, workload, short } of ROWS) {
    for (const t of r.targets) {
      const values = r.results.roundValues(t.id, metric);
      if (values.length === 0 && !r.results.failure(t.id, workload)) continue;
      const med = r.results.median(t.id, metric);
      const spread = med && values.length > 1 ? `${(((Math.max(...values) - Math.min(...values)) / med) * 100).toFixed(0)}%` : '—';
      const cells = Array.from({ length: r.options.rounds }, (_, i) => num(r.results.value(t.id, metric, i + 1)));
      rows.push([`${short} · ${t.label}`, ...cells, num(med), spread, r.results.failure(t.id, workload) ?? '']);
    }
  }
  const rounds = Array.from({ length: r.options.rounds }, (_, i) => `round ${i + 1}`);
  return table(['Workload · target', ...rounds, 'median', 'spread (max−min)/median', 'failure'], rows);
}

/** Peak memory per registry and workload, and the server beside a registry on a row of its own. */
export function memoryTable(r: Pick<RunReport, 'targets' | 'results'>): string {
  const registries = r.targets.filter((t) => t.id !== 'nginx' && !r.results.unavailable.has(t.id));
  const workloads: Array<[WorkloadId, string]> = [
    ['blobPull', 'Blob pull'],
    ['monolithicPush', 'Monolithic push'],
    ['smallPush', 'Small push'],
    ['manifestGet', 'Manifest GET'],
  ];
  const rows = workloads.map(([id, label]) => [`${label}: sampled VmRSS peak`, ...registries.map((t) => mb(r.results.sampledPeak(t.id, id)))]);
  rows.push(['VmHWM from the first workload to the last (exact peak)', ...registries.map((t) => mb(r.results.hwm.get(t.id)))]);
  // The server beside a registry (Wharf's PostgreSQL), under the registry it serves.
  const beside = registries.map((t) => r.results.companion(t.id));
  const label = beside.find((c) => c !== undefined)?.label;
  if (label) rows.push([`Beside it: ${label}, all its processes (sum of PSS, highest reading after a workload)`, ...beside.map((c) => (c ? mb(c.peak) : '—'))]);
  return table(['Memory of the registry process (MB)', ...registries.map((t) => t.label)], rows);
}

function zbSection(r: RunReport): string {
  const registries = r.targets.filter((t) => r.results.zb.has(t.id));
  if (registries.length === 0) return '';
  const names: string[] = [];
  for (const t of registries) {
    const outcome = r.results.zb.get(t.id)!;
    if ('tests' in outcome) for (const test of outcome.tests) if (!names.includes(test.name)) names.push(test.name);
  }
  const cell = (id: string, name: string) => {
    const outcome = r.results.zb.get(id)!;
    if ('skipped' in outcome) return 'not run';
    if ('error' in outcome) return 'failed';
    const test = outcome.tests.find((x) => x.name === name);
    if (!test) return '—';
    return `${num(test.rps)}${test.failed > 0 ? ` (${test.failed} failed)` : ''}`;
  };
  const rows = names.map((name) => [name, ...registries.map((t) => cell(t.id, name))]);
  const errors = registries.flatMap((t) => {
    const o = r.results.zb.get(t.id)!;
    if ('skipped' in o) return [`- ${t.label}: not run: ${o.skipped}`];
    if ('error' in o) return [`- ${t.label}: failed: ${o.error}`];
    return [];
  });
  return [
    `## zb's own suite (one pass per registry after the rounds, \`zb -c ${r.options.zb.concurrency} -n ${r.options.zb.requests}\`)`,
    '',
    `Requests per second as zb reports them. zb v1.4.3 cannot select tests, so each pass runs the whole suite; with ${r.options.zb.requests} requests per test the short tests are noisy, and the pass is not interleaved: read it as a cross-check of the small-push row above, not as the measurement.`,
    '',
    table(['zb test (requests/s)', ...registries.map((t) => t.label)], rows),
    ...(errors.length > 0 ? ['', ...errors] : []),
    '',
  ].join('\n');
}

function loadNote(r: RunReport): string {
  const loads = r.uptimeBefore.concat(r.uptimeAfter).map((u) => Number(/load average:\s*([\d.]+)/.exec(u)?.[1] ?? NaN));
  const maxRoundLoad = Math.max(...r.roundLoads, ...loads.filter(Number.isFinite));
  if (!(maxRoundLoad > 1.5)) return '';
  return `> **Load.** The 1-minute load average reached ${maxRoundLoad.toFixed(1)} on ${r.machine.nproc} CPUs during this run. It counts the benchmark's own servers and load generators, which share these CPUs, as well as anything else running on the machine, so absolute figures vary from run to run; the ratios, taken from the same interleaved rounds, are the more meaningful numbers.\n`;
}

export function renderReport(r: RunReport): string {
  const o = r.options;
  const minutes = ((r.finishedAt.getTime() - r.startedAt.getTime()) / 60_000).toFixed(1);
  const viaMake = process.env.MAKELEVEL !== undefined;
  const command = viaMake ? `make bench${o.quick ? ' QUICK=1' : ''}` : o.command;
  const shapes = [...r.results.uploadShapes]
    .map(([id, shape]) => `${r.targets.find((t) => t.id === id)?.label ?? id}: ${shape === 'single-post' ? 'single-request `POST ?digest=`' : '`POST` then `PUT ?digest=` (the single-request POST is not supported)'}`)
    .join('; ');
  const unavailable = [...r.results.unavailable].map(([id, why]) => `- **${r.targets.find((t) => t.id === id)?.label ?? id} was not measured:** ${why}`);
  const failures = r.results.allFailures().map((f) => `- ${f.target}, ${f.workload}: ${f.message}`);
  return [
    `# Wharf benchmark, ${r.date}${o.quick ? ' (QUICK smoke run: small sizes, not for comparison)' : ''}`,
    '',
    `- **Command:** \`${command}\`${viaMake ? ` (runs \`${o.command}\`)` : ''}`,
    `- **Mode:** ${o.quick ? 'quick' : 'full'}; ${o.rounds} interleaved round${o.rounds > 1 ? 's' : ''} (each workload runs on every target in turn, the starting target rotating each round)${o.warmup ? ' after one untimed warm-up pass' : ''}; tables show the median of the rounds.`,
    `- **Between workloads (untimed):** \`sync\`, then ${r.pageCacheDropped ? 'the clean page cache is dropped, so that every target writes into memory this VM has touched lately; each blob pull starts with one read of the blob' : '**the page cache could not be dropped (not root)**: later targets write into colder memory, and push figures are less comparable'}.`,
    `- **Machine:** ${r.machine.cpuModel}, nproc ${r.machine.nproc}, Linux ${r.machine.kernel}, ${r.machine.memoryGiB.toFixed(1)} GiB RAM. Load generators and servers share these CPUs.`,
    `- **Load before:** ${r.uptimeBefore.map((u) => `\`${u}\``).join(', then ')}`,
    `- **Load before each round (1 min):** ${r.roundLoads.map((l) => l.toFixed(2)).join(', ')}`,
    `- **Load after:** \`${r.uptimeAfter}\``,
    `- **Started** ${r.startedAt.toISOString()}, took ${minutes} min.`,
    '',
    loadNote(r),
    '## Targets',
    '',
    r.targets.map((t) => `- **${t.label}:** ${t.version}`).join('\n'),
    `- **Load tools:** wrk ${r.tools.wrk}; pushes from Node.js ${process.version} (node:http keep-alive agent)`,
    ...(r.wharfUncommitted.length > 0
      ? [`- **Wharf's build included uncommitted registry changes** from the shared working tree: ${r.wharfUncommitted.map((f) => `\`${f}\``).join(', ')}`]
      : []),
    ...(unavailable.length > 0 ? ['', ...unavailable] : []),
    '',
    `## Results (median of ${o.rounds} round${o.rounds > 1 ? 's' : ''})`,
    '',
    mainTable(r),
    '',
    '## Against the targets',
    '',
    targetTable(r),
    '',
    '## Ratios',
    '',
    'Each ratio is the median, over the rounds, of the two figures of the same round (the interleaving puts them minutes apart at most), so load that comes and goes during the run affects both sides; the verdicts above use these ratios.',
    '',
    ratioTable(r),
    '',
    `Upload shapes used by the monolithic push: ${shapes || '—'}.`,
    '',
    ...(failures.length > 0 ? ['## Failures', '', ...failures, ''] : []),
    '## Every round',
    '',
    roundsTable(r),
    '',
    '## Memory',
    '',
    memoryTable(r),
    '',
    "Sampled every 50 ms from `/proc/<pid>/status` during each workload run; VmHWM was reset (`/proc/<pid>/clear_refs`) after the setup pushes, so it is the exact peak over all workloads. Wharf on PostgreSQL: the Node.js process only; the PostgreSQL server's memory is on its own row, as the sum of its processes' proportional set sizes (`/proc/<pid>/smaps_rollup`, so that the shared buffers every backend maps count once), read once after each workload run rather than sampled, because each reading costs about 9 ms of CPU. Wharf on PGlite: the database runs inside the process and is included.",
    '',
    zbSection(r),
  ].join('\n');
}
