import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { describeMachine, uptime } from './machine.js';
import { blobOf, imageManifest, MEDIA_TYPE, randomConfig } from './oci/content.js';
import { HttpClient } from './oci/http.js';
import { repoRoot, wharfMain } from './paths.js';
import { num, ratio, table } from './report/format.js';
import { startWharf } from './targets/wharf.js';
import { median, quantile } from './util/stats.js';
import { wharfRevision } from './versions.js';
import { probeLatency, startLoginFlood, type FloodCounts } from './workloads/login-flood.js';

/**
 * `make bench-login` (and `make bench`): the latency of a 1 MiB blob GET and a manifest
 * GET against Wharf with token authentication, idle and while 12 clients send wrong
 * passwords to /token (issue 16: "within 2x of idle"). Three registries in turn: the
 * default login limits; throttling off, so that every attempt is hashed and only the
 * hashing pool stands between the flood and the data plane; and, with `--before`,
 * another build (the code before the fix). See bench/README.md, "Login flood".
 */

const ADMIN_PASSWORD = 'bench-login-admin-password';
const SERVICE = 'wharf';
const REPO = 'bench/login';
const BLOB_BYTES = 2 ** 20;
const GOAL = 2;
/** A flood phase ends after this long even with fewer samples (the build before the fix took 20 s per blob GET). */
const PHASE_MAX_SECONDS = 120;

const USAGE = `usage: node dist/bench/src/login-flood.js [--quick] [--rounds N] [--samples N] [--clients N] [--before MAIN_JS] [--out FILE] [--keep]
  --quick       smoke run: 1 round of 40 samples per phase
  --rounds N    idle/flood rounds per registry (default 3)
  --samples N   blob and manifest GETs per phase and round (default 200)
  --clients N   flooding clients (default 12)
  --before F    also run this build's dist/registry/src/main.js (e.g. one built from the commit before the fix)
  --out FILE    results file (default bench/results/<date>-login-flood.md; quick runs: tmp/bench/)
  --keep        keep the run directory with each registry's data and log`;

interface Options {
  quick: boolean;
  rounds: number;
  samples: number;
  clients: number;
  before: string | undefined;
  out: string | undefined;
  keep: boolean;
  command: string;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      rounds: { type: 'string' },
      samples: { type: 'string' },
      clients: { type: 'string' },
      before: { type: 'string' },
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
  const quick = values.quick === true || (process.env.QUICK !== undefined && process.env.QUICK !== '' && process.env.QUICK !== '0');
  const positive = (name: string, value: string | undefined, fallback: number) => {
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got ${value}`);
    return n;
  };
  const before = values.before === undefined ? undefined : resolve(values.before);
  if (before && !existsSync(before)) throw new Error(`--before: ${before} does not exist`);
  return {
    quick,
    rounds: positive('rounds', values.rounds, quick ? 1 : 3),
    samples: positive('samples', values.samples, quick ? 40 : 200),
    clients: positive('clients', values.clients, 12),
    before,
    out: values.out,
    keep: values.keep === true,
    command: ['node', 'dist/bench/src/login-flood.js', ...argv].join(' '),
  };
}

interface Variant {
  id: string;
  label: string;
  env?: Record<string, string>;
  main?: string;
}

interface PhaseResult {
  blobMs: number[];
  manifestMs: number[];
}

interface VariantResult {
  variant: Variant;
  idle: PhaseResult;
  flood: PhaseResult;
  /** Per round: blob and manifest median under flood / idle. */
  roundRatios: { blob: number; manifest: number }[];
  floods: FloodCounts[];
  /** scrypt derivations during the flood phases (builds that export the metric). */
  derivations: number | undefined;
  error?: string;
}

const t0 = Date.now();
const log = (line: string) => process.stderr.write(`[bench-login ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);

async function hashCount(origin: string): Promise<number | undefined> {
  const text = await (await fetch(`${origin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('wharf_password_hashes_total '));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

async function token(origin: string, scope: string): Promise<string> {
  const res = await fetch(`${origin}/token?service=${SERVICE}&scope=${encodeURIComponent(scope)}`, {
    headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` },
  });
  const body = (await res.json()) as { token?: string };
  if (res.status !== 200 || !body.token) throw new Error(`token for ${scope}: status ${res.status} ${JSON.stringify(body)}`);
  return body.token;
}

/** Creates the project and pushes a 1 MiB layer, a config and a manifest; returns the probe's target. */
async function setUp(origin: string) {
  const project = await fetch(`${origin}/api/v1/projects/bench`, {
    method: 'PUT',
    headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}`, 'content-type': 'application/json' },
    body: '{}',
  });
  if (project.status >= 300) throw new Error(`PUT project: ${project.status} ${await project.text()}`);
  const push = { authorization: `Bearer ${await token(origin, `repository:${REPO}:pull,push`)}` };
  const http = new HttpClient(origin, 1);
  try {
    const layer = blobOf([randomBytes(BLOB_BYTES)]);
    const config = randomConfig(layer);
    for (const blob of [layer, config]) {
      const res = await http.send('POST', `/v2/${REPO}/blobs/uploads/?digest=${blob.digest}`, { ...push, 'content-type': 'application/octet-stream' }, blob.chunks);
      if (res.status !== 201) throw new Error(`push ${blob.digest}: ${res.status} ${res.body.toString('utf8', 0, 200)}`);
    }
    const manifest = await http.send('PUT', `/v2/${REPO}/manifests/latest`, { ...push, 'content-type': MEDIA_TYPE.manifest }, [imageManifest(config, layer)]);
    if (manifest.status !== 201) throw new Error(`push manifest: ${manifest.status} ${manifest.body.toString('utf8', 0, 200)}`);
    return {
      blobPath: `/v2/${REPO}/blobs/${layer.digest}`,
      blobSize: BLOB_BYTES,
      manifestPath: `/v2/${REPO}/manifests/latest`,
      headers: { authorization: `Bearer ${await token(origin, `repository:${REPO}:pull`)}` },
    };
  } finally {
    http.close();
  }
}

async function runVariant(variant: Variant, options: Options, runDir: string): Promise<VariantResult> {
  const dir = join(runDir, variant.id);
  await mkdir(dir, { recursive: true });
  const result: VariantResult = { variant, idle: { blobMs: [], manifestMs: [] }, flood: { blobMs: [], manifestMs: [] }, roundRatios: [], floods: [], derivations: undefined };
  // Tokens outlive the run; PGlite, as `make run`.
  const wharf = await startWharf({ adminPassword: ADMIN_PASSWORD, env: { WHARF_TOKEN_TTL_SECONDS: '3600', ...variant.env }, ...(variant.main && { main: variant.main }) }, { dir });
  const http = new HttpClient(wharf.origin, 1);
  try {
    const target = await setUp(wharf.origin);
    await probeLatency(http, target, Math.min(20, options.samples));
    for (let round = 1; round <= options.rounds; round++) {
      const idle = await probeLatency(http, target, options.samples);
      const before = await hashCount(wharf.origin);
      const flood = startLoginFlood(wharf.origin, { clients: options.clients, username: 'admin', service: SERVICE });
      await flood.warm;
      const busy = await probeLatency(http, target, options.samples, PHASE_MAX_SECONDS);
      const counts = await flood.stop();
      const after = await hashCount(wharf.origin);
      if (before !== undefined && after !== undefined) result.derivations = (result.derivations ?? 0) + after - before;
      result.idle.blobMs.push(...idle.blobMs);
      result.idle.manifestMs.push(...idle.manifestMs);
      result.flood.blobMs.push(...busy.blobMs);
      result.flood.manifestMs.push(...busy.manifestMs);
      result.floods.push(counts);
      const r = { blob: median(busy.blobMs) / median(idle.blobMs), manifest: median(busy.manifestMs) / median(idle.manifestMs) };
      result.roundRatios.push(r);
      log(
        `  ${variant.id} round ${round}: blob ${num(median(idle.blobMs))} → ${num(median(busy.blobMs))} ms (${ratio(r.blob)}), manifest ${num(median(idle.manifestMs))} → ${num(median(busy.manifestMs))} ms (${ratio(r.manifest)}); flood ${JSON.stringify(counts.statuses)} in ${counts.durationS.toFixed(1)} s`,
      );
    }
  } catch (err) {
    result.error = (err as Error).message;
    log(`  ${variant.id}: FAILED ${result.error}`);
  } finally {
    http.close();
    await wharf.stop();
  }
  return result;
}

function render(results: VariantResult[], o: Options, meta: { date: string; machine: Awaited<ReturnType<typeof describeMachine>>; uptimeBefore: string; uptimeAfter: string; commit: string; uncommitted: string[] }): string {
  const ms = (values: number[], q: number) => (values.length === 0 ? '—' : num(q === 0.5 ? median(values) : quantile(values, q)));
  const rows: string[][] = [];
  for (const r of results) {
    if (r.error) {
      rows.push([r.variant.label, 'failed', r.error, '', '', '', '', '', '', '', '']);
      continue;
    }
    const answered = r.floods.reduce((n, c) => n + c.answered, 0);
    const seconds = r.floods.reduce((n, c) => n + c.durationS, 0);
    const status = (code: string) => String(r.floods.reduce((n, c) => n + (c.statuses[code] ?? 0), 0));
    const errors = r.floods.reduce((n, c) => n + c.errors, 0);
    rows.push([r.variant.label, `idle (${r.idle.blobMs.length} + ${r.idle.manifestMs.length} GETs)`, ms(r.idle.blobMs, 0.5), ms(r.idle.blobMs, 0.99), ms(r.idle.manifestMs, 0.5), ms(r.idle.manifestMs, 0.99), '', '', '', '', '']);
    rows.push([
      '',
      `${o.clients} clients flooding (${r.flood.blobMs.length} + ${r.flood.manifestMs.length} GETs)`,
      ms(r.flood.blobMs, 0.5),
      ms(r.flood.blobMs, 0.99),
      ms(r.flood.manifestMs, 0.5),
      ms(r.flood.manifestMs, 0.99),
      `${ratio(median(r.flood.blobMs) / median(r.idle.blobMs))} / ${ratio(quantile(r.flood.blobMs, 0.99) / quantile(r.idle.blobMs, 0.99))}`,
      `${ratio(median(r.flood.manifestMs) / median(r.idle.manifestMs))} / ${ratio(quantile(r.flood.manifestMs, 0.99) / quantile(r.idle.manifestMs, 0.99))}`,
      num(answered / seconds),
      `${status('401')} / ${status('429')}${errors > 0 ? ` (+${errors} connection errors)` : ''}`,
      r.derivations === undefined ? '—' : String(r.derivations),
    ]);
  }
  const verdicts = results
    .filter((r) => !r.error && r.variant.id !== 'before')
    .map((r) => {
      const blob = median(r.flood.blobMs) / median(r.idle.blobMs);
      const manifest = median(r.flood.manifestMs) / median(r.idle.manifestMs);
      const rounds = r.roundRatios.filter((x) => x.blob <= GOAL && x.manifest <= GOAL).length;
      const met = blob <= GOAL && manifest <= GOAL;
      return `- ${r.variant.label}: median blob GET ${ratio(blob)}, manifest GET ${ratio(manifest)} of idle: **${met ? 'met' : 'not met'}** (within ${GOAL}× in ${rounds} of ${r.roundRatios.length} rounds; per round ${r.roundRatios.map((x) => `${ratio(x.blob)}/${ratio(x.manifest)}`).join(', ')})`;
    });
  return [
    `# Login flood: blob and manifest latency, idle and under a flood of wrong passwords (${meta.date}${o.quick ? ', quick run: not for comparison' : ''})`,
    '',
    `Command: \`${o.command}\` (after \`npm run build\`)${o.before ? `; the "before" build was made from the commit before the fix (see bench/README.md, "Login flood")` : ''}.`,
    '',
    `Machine: ${meta.machine.nproc} CPUs (${meta.machine.cpuModel}), ${meta.machine.memoryGiB.toFixed(1)} GiB, Linux ${meta.machine.kernel}. Load before: \`${meta.uptimeBefore}\`; after: \`${meta.uptimeAfter}\`.`,
    `Wharf ${meta.commit}${meta.uncommitted.length > 0 ? ` + uncommitted changes in ${meta.uncommitted.join(', ')}` : ''}, Node.js ${process.version}, PGlite, filesystem storage, \`--auth token\`.`,
    '',
    `Each registry: a ${BLOB_BYTES / 2 ** 20} MiB layer and its manifest pushed once; then ${o.rounds} round${o.rounds === 1 ? '' : 's'} of ${o.samples} blob GETs and ${o.samples} manifest GETs (alternating, one keep-alive connection, bearer token, timed to the last byte) while idle, and as many (or fewer, when a flood phase reaches ${PHASE_MAX_SECONDS} s) while ${o.clients} clients (one keep-alive connection each, on a thread of their own) send \`GET /token\` for \`admin\` with a new wrong password each time. Latencies in ms; the ratios are flood / idle, median / p99. Goal (issue 16): within ${GOAL}× of idle.`,
    '',
    table(['Registry', 'Phase', 'Blob GET median', 'Blob GET p99', 'Manifest GET median', 'Manifest GET p99', 'Blob ×idle', 'Manifest ×idle', 'Flood answers/s', 'Flood 401 / 429', 'scrypt derivations'], rows),
    '',
    ...verdicts,
    '',
  ].join('\n');
}

function defaultOutput(o: Options, date: string): string {
  if (o.quick) return join(repoRoot, 'tmp', 'bench', `${date}-login-flood-quick.md`);
  for (let n = 1; ; n++) {
    const file = join(repoRoot, 'bench', 'results', n === 1 ? `${date}-login-flood.md` : `${date}-login-flood-${n}.md`);
    if (!existsSync(file)) return file;
  }
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (!existsSync(wharfMain)) throw new Error(`${relative(repoRoot, wharfMain)} is missing: run \`npm run build\``);
  const machine = await describeMachine();
  const uptimeBefore = await uptime();
  const revision = await wharfRevision();
  const date = new Date().toISOString().slice(0, 10);
  const runDir = await mkdtemp(join(tmpdir(), 'wharf-bench-login-'));
  await chmod(runDir, 0o755);
  const variants: Variant[] = [
    { id: 'defaults', label: 'Wharf, default login limits' },
    { id: 'unthrottled', label: 'Wharf, throttling off (every attempt hashed)', env: { WHARF_LOGIN_CLIENT_FAILURES: '0', WHARF_LOGIN_ACCOUNT_FAILURES: '0' } },
    ...(options.before ? [{ id: 'before', label: 'Before the fix (scrypt on libuv\'s pool, no throttling)', main: options.before }] : []),
  ];
  try {
    const results: VariantResult[] = [];
    for (const variant of variants) {
      log(`${variant.label}`);
      results.push(await runVariant(variant, options, runDir));
    }
    const report = render(results, options, { date, machine, uptimeBefore, uptimeAfter: await uptime(), commit: revision.commit, uncommitted: revision.uncommitted });
    const out = options.out ?? defaultOutput(options, date);
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, report);
    process.stdout.write(`${report}\n`);
    log(`written to ${relative(process.cwd(), out)}`);
    return results.some((r) => r.error) ? 1 : 0;
  } finally {
    if (options.keep) log(`kept ${runDir}`);
    else await rm(runDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    log(`failed: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
