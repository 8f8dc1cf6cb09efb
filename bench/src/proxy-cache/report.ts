import type { MachineInfo } from '../machine.js';
import { num, ratio, table } from '../report/format.js';
import { median, signTestLower } from '../util/stats.js';
import { describeLink, type LinkShape } from './link.js';
import type { Measurement } from './run.js';

export interface ProxyReportContext {
  date: string;
  startedAt: Date;
  finishedAt: Date;
  command: string;
  machine: MachineInfo;
  uptimeBefore: string[];
  uptimeAfter: string;
  rounds: number;
  /** Rounds run first, whose figures are listed but used by no median, ratio or verdict. */
  warmupRounds: number;
  /** Column label → what exactly ran. */
  versions: [string, string][];
  /** Columns that could not run, and why. */
  unavailable: [string, string][];
  direct: string;
  wharf: string;
  /** How the link to the upstream was shaped, when it was. */
  link?: LinkShape;
}

const COLD_GOAL = 0.9;
const WARM_GOAL = 1.0;

function pick(ms: Measurement[], shape: string, subject: string, phase: Measurement['phase']): Measurement[] {
  return ms.filter((m) => m.shape === shape && m.subject === subject && m.phase === phase);
}

/** Per-round ratios of `a` to `b` (rounds where both ran). */
function roundRatios(a: Measurement[], b: Measurement[]): number[] {
  return a.flatMap((x) => {
    const y = b.find((m) => m.round === x.round);
    return y ? [x.mibPerS / y.mibPerS] : [];
  });
}

function medianOf(values: number[]): number | undefined {
  return values.length === 0 ? undefined : median(values);
}

function spread(values: number[]): string {
  if (values.length === 0) return '—';
  return `${num(median(values))} (${num(Math.min(...values))}–${num(Math.max(...values))})`;
}

function verdict(ratios: number[], goal: number): string {
  if (ratios.length === 0) return '—';
  const m = median(ratios);
  const reached = ratios.filter((r) => r >= goal).length;
  return `${ratio(m)} ${m >= goal ? 'met' : 'not met'} (${reached}/${ratios.length} rounds ≥ ${goal.toFixed(2)}×)`;
}

/**
 * The warm goal compares two pulls that the same code serves from storage, so their ratio
 * sits at 1.0 and its median falls on either side of the goal by chance. Below the goal,
 * the paired pulls decide: the proxy's warm pull counts as slower only if it lost to the
 * non-proxy pull next to it in more pairs than chance explains (one-sided sign test, 5 %).
 */
export function warmVerdict(warm: Measurement[], local: Measurement[], goal = WARM_GOAL): string {
  const ratios = roundRatios(warm, local);
  if (ratios.length === 0) return '—';
  const m = median(ratios);
  const reached = ratios.filter((r) => r >= goal).length;
  const rounds = `${reached}/${ratios.length} rounds ≥ ${goal.toFixed(2)}×`;
  if (m >= goal) return `${ratio(m)} met (${rounds})`;
  const pairs = warm.flatMap((w) => {
    const l = local.find((x) => x.round === w.round);
    return (w.samples ?? []).flatMap((v, i) => (l?.samples?.[i] === undefined ? [] : [[v, l.samples[i]!] as const]));
  });
  if (pairs.length === 0) return `${ratio(m)} not met (${rounds})`;
  const atLeast = pairs.filter(([w, l]) => w >= l).length;
  const p = signTestLower(atLeast, pairs.length);
  const test = `the warm pull at least as fast in ${atLeast} of ${pairs.length} paired pulls, sign test p = ${p.toFixed(2)}`;
  return p < 0.05 ? `${ratio(m)} not met (${rounds}; ${test})` : `${ratio(m)}, not shown slower: met (${rounds}; ${test})`;
}

export function renderProxyReport(ctx: ProxyReportContext, all: Measurement[]): string {
  const ms = all.filter((m) => m.round >= 1);
  const shapes = [...new Set(ms.map((m) => m.shape))];
  const proxies = [...new Set(ms.filter((m) => m.subject !== ctx.direct).map((m) => m.subject))];
  const wharfs = [...new Set(ms.filter((m) => m.phase === 'local').map((m) => m.subject))];
  const lines: string[] = [
    `# Proxy cache: cold and warm pulls through Wharf, distribution 2.8.2 (proxy mode) and zot (on-demand sync)${ctx.link === undefined ? '' : `, upstream over ${describeLink(ctx.link)}`}, ${ctx.date}`,
    '',
    `Command: \`${ctx.command}\``,
    '',
    `Started ${ctx.startedAt.toISOString()}, finished ${ctx.finishedAt.toISOString()}; ${ctx.rounds} rounds, figures are medians (min–max) of the rounds, ratios the median of the per-round ratios.${ctx.warmupRounds > 0 ? ` ${ctx.warmupRounds} warm-up round${ctx.warmupRounds === 1 ? '' : 's'} ran first, the same as the others; their figures are listed under "Per round" and used in no median, ratio or verdict.` : ' No warm-up rounds: the first round met every server just started (Wharf\'s code not yet compiled by the JIT).'}`,
    '',
    '**The upstream is a stand-in for Docker Hub**, which cannot be reached here: Debian\'s `docker-registry` (distribution 2.8.2) on loopback, filesystem storage. Every proxy points at it; "direct" pulls from it. Upstream requests are counted in its access log.',
    '',
    ctx.link === undefined
      ? 'The link to the upstream is loopback, unshaped: the client, the upstream and the proxy share the machine\'s CPUs, and a proxy\'s own CPU time is what separates its cold pull from a direct one.'
      : `**The link to the upstream is shaped: ${describeLink(ctx.link)}** (nginx${ctx.link.mibPerSecond !== undefined ? ' `limit_rate` per connection' : ''}${ctx.link.rttMs !== undefined ? `${ctx.link.mibPerSecond !== undefined ? ';' : ''} each request held before it is passed on` : ''}), for direct pulls and proxies alike, as Docker Hub is reached over the internet; the proxies serve their clients over loopback, unshaped.`,
    '',
    `Machine: ${ctx.machine.nproc} × ${ctx.machine.cpuModel}, ${ctx.machine.memoryGiB.toFixed(0)} GiB, Linux ${ctx.machine.kernel}. Load before: ${ctx.uptimeBefore.at(-1)}; after: ${ctx.uptimeAfter}.`,
    '',
  ];
  for (const shape of shapes) {
    const direct = pick(ms, shape, ctx.direct, 'cold');
    lines.push(`## ${shape}`, '');
    const header = ['', ctx.direct, ...proxies];
    const cold = ['Cold pull, MiB/s', spread(direct.map((m) => m.mibPerS)), ...proxies.map((p) => spread(pick(ms, shape, p, 'cold').map((m) => m.mibPerS)))];
    const coldRatio = ['Cold ÷ direct', '1.00×', ...proxies.map((p) => ratio(medianOf(roundRatios(pick(ms, shape, p, 'cold'), direct))))];
    const warm = ['Warm pull by tag, MiB/s', '', ...proxies.map((p) => spread(pick(ms, shape, p, 'warm').map((m) => m.mibPerS)))];
    const local = [`Wharf's non-proxy pull of the same image, MiB/s`, '', ...proxies.map((p) => (wharfs.includes(p) ? spread(pick(ms, shape, p, 'local').map((m) => m.mibPerS)) : ''))];
    const ref = ctx.wharf;
    const warmRatio = [`Warm ÷ Wharf's non-proxy pull (same Wharf; peers: ÷ ${ref}'s)`, '', ...proxies.map((p) => ratio(medianOf(roundRatios(pick(ms, shape, p, 'warm'), pick(ms, shape, wharfs.includes(p) ? p : ref, 'local')))))];
    const requests = ['Upstream requests per warm pull (the most of any)', '', ...proxies.map((p) => String(Math.max(...pick(ms, shape, p, 'warm').map((m) => m.upstreamRequests ?? 0))))];
    lines.push(table(header, [cold, coldRatio, warm, local, warmRatio, requests]), '');
    const wharfCold = roundRatios(pick(ms, shape, ref, 'cold'), direct);
    const warmRequests = Math.max(0, ...pick(ms, shape, ref, 'warm').map((m) => m.upstreamRequests ?? 0));
    lines.push(
      `Goals (${ref}): cold ≥ ${COLD_GOAL.toFixed(2)}× direct: ${verdict(wharfCold, COLD_GOAL)}. Warm ≥ ${WARM_GOAL.toFixed(2)}× its non-proxy pull: ${warmVerdict(pick(ms, shape, ref, 'warm'), pick(ms, shape, ref, 'local'))}; upstream requests during one of its warm pulls: at most ${warmRequests} (goal 0).`,
      '',
    );
    lines.push('Per round (MiB/s, cold / warm / non-proxy):', '');
    const rounds = [...new Set(all.filter((m) => m.shape === shape).map((m) => m.round))];
    const perRound = rounds.map((r) => [
      r < 1 ? `warm-up ${r + ctx.warmupRounds} (not counted)` : `round ${r}`,
      ...[ctx.direct, ...proxies].map((subject) =>
        (['cold', 'warm', 'local'] as const)
          .map((phase) => all.find((m) => m.shape === shape && m.subject === subject && m.phase === phase && m.round === r))
          .filter((m): m is Measurement => m !== undefined)
          .map((m) => num(m.mibPerS))
          .join(' / '),
      ),
    ]);
    lines.push(table(header, perRound), '');
  }
  lines.push('## What ran', '');
  for (const [label, version] of ctx.versions) lines.push(`- **${label}**: ${version}`);
  for (const [label, why] of ctx.unavailable) lines.push(`- **${label}**: not run: ${why}`);
  lines.push(
    '',
    'Each pull is a client on keep-alive HTTP/1.1 connections: the manifest by tag, then the config and the layers 3 at a time (as containerd and Docker pull), every blob hashed and its digest checked, the bytes discarded. MiB/s counts blob bytes over the time from the manifest request to the last byte. Every round pushes new random images to the upstream (untimed), so that its cold pulls find nothing cached anywhere; the subjects take turns in an order that rotates and reverses from round to round. `sync` runs, untimed, after each cold pull. Before the warm pulls the same image is pushed into an ordinary Wharf project (untimed) to measure Wharf\'s non-proxy pull. Each proxy is then pulled warm 5 times, each Wharf\'s warm pull right before or right after a non-proxy pull (alternating); a round\'s warm and non-proxy figures are the medians of its 5.',
    '',
  );
  return lines.join('\n');
}
