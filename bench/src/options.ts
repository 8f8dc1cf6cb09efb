import { parseArgs } from 'node:util';
import type { ListingsOptions } from './listings/run.js';
import { WORKLOADS } from './run.js';

/** Runs apart from the rounds, with registries of its own (bench/src/listings/). */
export const LISTINGS = 'listings';
const KNOWN_WORKLOADS = [...WORKLOADS, LISTINGS];

const MiB = 2 ** 20;

export interface BenchOptions {
  quick: boolean;
  rounds: number;
  /** One short untimed pass of every workload before round 1. */
  warmup: boolean;
  blobPull: { sizeBytes: number; durationS: number; connections: number; threads: number };
  monolithicPush: { layerBytes: number; pushes: number; concurrency: number };
  smallPush: { layerBytes: number; durationS: number; maxPushes: number; concurrency: number };
  manifestGet: { durationS: number; connections: number; threads: number };
  /** Page latency of tags/list and _catalog against the number of tags and repositories. */
  listings: ListingsOptions;
  /** zb's own suite, once per registry after the rounds; 0 requests skips it. */
  zb: { concurrency: number; requests: number };
  /** Above this 1-minute load average, wait once (`waitS`) for the machine to calm down. */
  load: { threshold: number; waitS: number };
  /** Restrict to these target ids (default: all that are available). */
  targets: string[] | undefined;
  /** Restrict to these workloads (default: all), for iterating on one of them. */
  workloads: string[] | undefined;
  /** Results file; default bench/results/<date>.md (full runs) or tmp/bench/<date>-quick.md. */
  out: string | undefined;
  /** Keep the run directory (data, configs, logs) instead of removing it. */
  keep: boolean;
  /** The command line, for the results file. */
  command: string;
}

const FULL = {
  rounds: 5,
  warmup: true,
  blobPull: { sizeBytes: 100 * MiB, durationS: 10, connections: 4, threads: 2 },
  monolithicPush: { layerBytes: 10 * MiB, pushes: 64, concurrency: 4 },
  smallPush: { layerBytes: 1 * MiB, durationS: 8, maxPushes: 5000, concurrency: 4 },
  manifestGet: { durationS: 10, connections: 32, threads: 2 },
  listings: { tagCounts: [100, 10_000, 100_000], repositoryCounts: [1_000, 50_000], requests: 40, chunk: 10, warmup: 5 },
  zb: { concurrency: 4, requests: 16 },
};

const QUICK = {
  rounds: 1,
  warmup: false,
  blobPull: { sizeBytes: 8 * MiB, durationS: 2, connections: 4, threads: 2 },
  monolithicPush: { layerBytes: 1 * MiB, pushes: 8, concurrency: 4 },
  smallPush: { layerBytes: 1 * MiB, durationS: 2, maxPushes: 1000, concurrency: 4 },
  manifestGet: { durationS: 2, connections: 32, threads: 2 },
  listings: { tagCounts: [100, 1_000], repositoryCounts: [100, 1_000], requests: 10, chunk: 5, warmup: 2 },
  zb: { concurrency: 4, requests: 0 },
};

const USAGE = `usage: node dist/bench/src/main.js [--quick] [--rounds N] [--targets a,b] [--workloads a,b] [--no-zb] [--no-wait] [--out FILE] [--keep]
  --quick      smoke run: small sizes, one short round, no warm-up, no zb (well under 2 minutes)
  --rounds N   interleaved rounds; the table reports the median (default 5, quick 1)
  --targets    comma-separated subset of: nginx,distribution,zot,zot-nosync,wharf-pglite,wharf-postgres
  --workloads  comma-separated subset of: ${KNOWN_WORKLOADS.join(',')}
               (${LISTINGS}: page latency at 100 / 10,000 / 100,000 tags and 1,000 / 50,000 repositories,
               on registries of its own; \`--workloads ${LISTINGS}\` runs only that)
  --no-zb      skip the pass of zb's own suite
  --no-wait    do not wait for a busy machine (load above 1.5) to calm down
  --out FILE   results file (default bench/results/<date>.md; quick runs: tmp/bench/<date>-quick.md)
  --keep       keep the run directory with every registry's data, config and log`;

function list(value: string | undefined): string[] | undefined {
  return value?.split(',').map((t) => t.trim()).filter(Boolean);
}

function checkedWorkloads(names: string[] | undefined): string[] | undefined {
  const unknown = names?.filter((n) => !(KNOWN_WORKLOADS as readonly string[]).includes(n)) ?? [];
  if (unknown.length > 0) throw new Error(`--workloads: unknown ${unknown.join(', ')} (known: ${KNOWN_WORKLOADS.join(', ')})`);
  return names;
}

export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean' },
      rounds: { type: 'string' },
      targets: { type: 'string' },
      workloads: { type: 'string' },
      'no-zb': { type: 'boolean' },
      'no-wait': { type: 'boolean' },
      out: { type: 'string' },
      keep: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick === true || (env.QUICK !== undefined && env.QUICK !== '' && env.QUICK !== '0');
  const base = quick ? QUICK : FULL;
  const rounds = values.rounds === undefined ? base.rounds : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds: expected a positive integer, got ${values.rounds}`);
  return {
    quick,
    rounds,
    warmup: base.warmup,
    blobPull: base.blobPull,
    monolithicPush: base.monolithicPush,
    smallPush: base.smallPush,
    manifestGet: base.manifestGet,
    listings: base.listings,
    zb: values['no-zb'] ? { ...base.zb, requests: 0 } : base.zb,
    load: { threshold: 1.5, waitS: values['no-wait'] ? 0 : 120 },
    targets: list(values.targets),
    workloads: checkedWorkloads(list(values.workloads)),
    out: values.out,
    keep: values.keep === true,
    command: ['node', 'dist/bench/src/main.js', ...argv].join(' '),
  };
}
